"""Retrieval units: sentences of the documents, tokenized, with their offsets.

Each unit is read by the model as ``" " + text``. A sentence longer than ``max_tokens`` is cut
into consecutive pieces of at most ``max_tokens`` tokens; each piece keeps exact offsets.
Text that spells a special token (``<|im_end|>``) is read as plain text, never as that token.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from .sentences import SentenceSplitter
from .sources import DocumentReader

TOKENIZE_BATCH = 256


@dataclass(slots=True)
class Unit:
    """A retrieval unit: a sentence (or a piece of a long one) and its token ids."""

    doc_index: int
    char_start: int
    char_end: int
    text: str
    ids: list[int]


class Segmenter:
    """Turn documents into a lazy stream of tokenized units."""

    def __init__(self, tokenizer, max_tokens: int, splitter: SentenceSplitter | None = None):
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be positive, got {max_tokens}")
        self.tokenizer = tokenizer
        self.max_tokens = max_tokens
        self.splitter = splitter or SentenceSplitter()
        # Hugging Face tokenizers: read "<|im_end|>" in a document as text, not as the token.
        self._options = {"add_special_tokens": False}
        if hasattr(tokenizer, "split_special_tokens"):
            self._options["split_special_tokens"] = True

    def encode_text(self, text: str) -> list[int]:
        """Token ids of ``text`` as written, special-token spellings read as plain text."""
        return list(self.tokenizer(text, **self._options)["input_ids"])

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids of each text as read mid-document (with a leading space)."""
        if not texts:
            return []
        encoded = self.tokenizer([" " + t for t in texts], **self._options)
        return [list(ids) for ids in encoded["input_ids"]]

    def units(self, documents: Sequence[DocumentReader]) -> Iterator[Unit]:
        """All units of all documents, in order."""
        for doc in documents:
            for base, block in self.splitter.blocks(doc.pieces()):
                yield from self.block_units(doc.index, base, block)

    def blocks(self, documents: Sequence[DocumentReader]) -> Iterator[tuple[int, int, str]]:
        """``(doc_index, offset, text)`` blocks of all documents, in order (see ``units``)."""
        for doc in documents:
            for base, block in self.splitter.blocks(doc.pieces()):
                yield doc.index, base, block

    def block_units(self, doc_index: int, base: int, block: str) -> list[Unit]:
        """The units of one block that starts at character ``base`` of its document."""
        units: list[Unit] = []
        spans = [(base + a, base + b, block[a:b]) for a, b in self.splitter.split(block)]
        for i in range(0, len(spans), TOKENIZE_BATCH):
            units.extend(self._tokenize(doc_index, spans[i : i + TOKENIZE_BATCH]))
        return units

    def _tokenize(self, doc_index: int, spans: list[tuple[int, int, str]]) -> Iterator[Unit]:
        for (start, end, text), ids in zip(spans, self.encode([s[2] for s in spans])):
            if len(ids) <= self.max_tokens:
                yield Unit(doc_index, start, end, text, ids)
            else:
                yield from self._cut(doc_index, start, text, ids)

    def _cut(self, doc_index: int, start: int, text: str, ids: list[int]) -> Iterator[Unit]:
        """Cut a long sentence into pieces of at most ``max_tokens`` tokens, keeping offsets."""
        if getattr(self.tokenizer, "is_fast", False):
            yield from self._cut_by_offsets(doc_index, start, text)
        else:
            yield from self._cut_by_halving(doc_index, start, text)

    def _cut_by_offsets(self, doc_index: int, start: int, text: str) -> Iterator[Unit]:
        enc = self.tokenizer(" " + text, return_offsets_mapping=True, **self._options)
        ids, offsets = list(enc["input_ids"]), enc["offset_mapping"]
        # Greedy groups of at most max_tokens tokens, each ending where a character ends: a
        # character made of several byte tokens (CJK, emoji) is never split between two pieces,
        # so every piece's ids are exactly its text's and no token is lost.
        n, first, a = len(ids), 0, 0
        while first < n:
            cut = self._piece_end(offsets, first, a)
            b = len(text) if cut >= n else offsets[cut][0] - 1
            yield from self._emit(doc_index, start, text, a, b, ids[first:cut])
            first, a = cut, b

    def _piece_end(self, offsets, first: int, a: int) -> int:
        """The token that starts the next piece (``len(offsets)``: none)."""
        n = len(offsets)
        limit = first + self.max_tokens
        if limit >= n:
            return n

        def clean(i: int) -> bool:  # token i starts a character of its own, after ``a``
            return offsets[i - 1][1] <= offsets[i][0] and offsets[i][0] - 1 > a

        for cut in range(limit, first, -1):
            if clean(cut):
                return cut
        # One character needs more than max_tokens tokens: end it where it ends (``_emit``
        # keeps its first max_tokens ids).
        return next((cut for cut in range(limit + 1, n) if clean(cut)), n)

    def _cut_by_halving(self, doc_index: int, start: int, text: str) -> Iterator[Unit]:
        pending = [(0, len(text))]
        while pending:
            a, b = pending.pop(0)
            piece_ids = self.encode([text[a:b]])[0]
            if len(piece_ids) <= self.max_tokens or b - a < 2:
                yield from self._emit(doc_index, start, text, a, b, piece_ids)
                continue
            mid = (a + b) // 2
            space = text.rfind(" ", a + 1, mid + 1)
            mid = space if space > a else mid
            pending[:0] = [(a, mid), (mid, b)]

    def _emit(self, doc_index, start, text, a, b, ids) -> Iterator[Unit]:
        while a < b and text[a].isspace():
            a += 1
        while b > a and text[b - 1].isspace():
            b -= 1
        if a < b and ids:
            yield Unit(doc_index, start + a, start + b, text[a:b], ids[: self.max_tokens])
