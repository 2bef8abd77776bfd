"""Turn what the caller passes as ``source`` into documents read lazily as text pieces.

A ``str`` is always document text, never a path: only ``os.PathLike`` objects are opened.
Offsets of a file document index into ``open(path, encoding="utf-8", newline="").read()``.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

Source = str | bytes | os.PathLike | Sequence | Iterable[str]

READ_BLOCK_BYTES = 1 << 20


@dataclass(frozen=True)
class DocumentReader:
    """One document: its index in the source, a name for messages, and a factory of text pieces."""

    index: int
    name: str
    _pieces: Iterable[str]

    def pieces(self) -> Iterator[str]:
        """Yield the document's text pieces, checking each is text."""
        for piece in self._pieces:
            if not isinstance(piece, str):
                raise ValueError(
                    f"source: {self.name} yielded a {type(piece).__name__}; "
                    "an iterable source must yield str pieces"
                )
            if "\x00" in piece:
                raise ValueError(
                    f"source: {self.name} contains NUL characters; it looks binary, not text"
                )
            yield piece


def _decode_bytes(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(
            f"source: {name} is not UTF-8 text (undecodable byte at offset {err.start})"
        ) from None


def _check_path(path: Path, name: str) -> None:
    if not path.exists():
        raise FileNotFoundError(f"source: {name} does not exist")
    if path.is_dir():
        raise ValueError(f"source: {name} is a directory, not a text file")


def _decode_blocks(blocks: Iterator[bytes | str], name: str) -> Iterator[str]:
    """Decode UTF-8 blocks incrementally (a character may straddle two blocks)."""
    decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
    offset = 0
    for block in blocks:
        if isinstance(block, str):
            yield block
            continue
        try:
            text = decoder.decode(block)
        except UnicodeDecodeError as err:
            raise ValueError(
                f"source: {name} is not UTF-8 text "
                f"(undecodable byte at offset {offset + err.start})"
            ) from None
        offset += len(block)
        if text:
            yield text
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise ValueError(f"source: {name} is not UTF-8 text (truncated at its end)") from None


def _blocks(stream) -> Iterator[bytes | str]:
    while True:
        block = stream.read(READ_BLOCK_BYTES)
        if not block:
            return
        yield block


def _read_file(path: Path, name: str) -> Iterator[str]:
    with path.open("rb") as handle:
        yield from _decode_blocks(_blocks(handle), name)


def _read_stream(stream, name: str) -> Iterator[str]:
    yield from _decode_blocks(_blocks(stream), name)


def _one(item: object, index: int, name: str) -> DocumentReader:
    if isinstance(item, str):
        return DocumentReader(index, name, (item,))
    if isinstance(item, (bytes, bytearray)):
        return DocumentReader(index, name, (_decode_bytes(bytes(item), name),))
    if isinstance(item, os.PathLike):
        path = Path(item)
        label = f"{name} ({os.fspath(item)!r})"
        _check_path(path, label)
        return DocumentReader(index, label, _LazyFile(path, label))
    if hasattr(item, "read"):
        return DocumentReader(index, name, _LazyStream(item, name))
    raise ValueError(
        f"source: {name} is a {type(item).__name__}; expected str, bytes, os.PathLike or a "
        "readable file object"
    )


@dataclass(frozen=True)
class _LazyFile:
    path: Path
    name: str

    def __iter__(self) -> Iterator[str]:
        return _read_file(self.path, self.name)


@dataclass(frozen=True)
class _LazyStream:
    stream: object
    name: str

    def __iter__(self) -> Iterator[str]:
        return _read_stream(self.stream, self.name)


def open_documents(source: Source) -> list[DocumentReader]:
    """Validate ``source`` and return one lazy reader per document.

    Paths are checked here (before any model work); text is read only when iterated.
    """
    if source is None:
        raise ValueError("source must be text, a path, a sequence of documents or an iterable")
    if isinstance(source, (str, bytes, bytearray, os.PathLike)) or hasattr(source, "read"):
        return [_one(source, 0, "document 0")]
    if isinstance(source, Sequence):
        if len(source) == 0:
            raise ValueError("source is an empty sequence; give at least one document")
        return [_one(item, i, f"document {i}") for i, item in enumerate(source)]
    if isinstance(source, Iterable):
        return [DocumentReader(0, "document 0", source)]
    raise ValueError(
        f"source is a {type(source).__name__}; expected str, a path, a sequence of documents "
        "or an iterable of text pieces"
    )
