"""Pack whole units (sentences) into chunks of about ``chunk_tokens`` tokens."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from .segments import Unit


def pack_chunks(units: Iterable[Unit], chunk_tokens: int) -> Iterator[list[Unit]]:
    """Greedily fill chunks with whole units; a chunk never exceeds ``chunk_tokens``.

    Every unit must hold at most ``chunk_tokens`` tokens (the segmenter guarantees it).
    """
    if chunk_tokens < 1:
        raise ValueError(f"chunk_tokens must be positive, got {chunk_tokens}")
    chunk: list[Unit] = []
    size = 0
    for unit in units:
        n = len(unit.ids)
        if n > chunk_tokens:
            raise ValueError(f"a unit of {n} tokens exceeds chunk_tokens={chunk_tokens}")
        if chunk and size + n > chunk_tokens:
            yield chunk
            chunk, size = [], 0
        chunk.append(unit)
        size += n
    if chunk:
        yield chunk
