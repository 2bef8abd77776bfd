"""What a scan returns: the cached sentences, the scan's statistics, and answers."""

from __future__ import annotations

from dataclasses import dataclass, field, fields


@dataclass(frozen=True)
class Sentence:
    """One cached sentence, with its attention score and its place in the source.

    ``documents[doc_index][char_start:char_end] == text`` always holds.
    """

    text: str
    score: float
    doc_index: int
    char_start: int
    char_end: int


@dataclass(frozen=True)
class Note:
    """A note the model wrote on a stretch of the source that the cache left out.

    Generated text, not a source sentence (``kind == "summary"``). It covers the source from
    ``char_start`` of document ``doc_index`` to ``char_end`` of document ``end_doc_index``
    (one document: the two indices are equal).
    """

    text: str
    doc_index: int
    char_start: int
    end_doc_index: int
    char_end: int
    kind: str = "summary"
    sources: tuple[tuple[int, int, int], ...] = ()
    """``(doc_index, char_start, char_end)`` of each sentence the note was written from."""


@dataclass(frozen=True)
class Stats:
    """Counters of one scan."""

    tokens_read: int = 0
    """Document tokens read (each document token once)."""
    forward_passes: int = 0
    """Model forward passes made by the scan."""
    tokens_processed: int = 0
    """Tokens fed through the model by the scan (cache, chunk, question and template)."""
    cache_tokens: int = 0
    """Tokens in the final cache: what the answer step reads."""
    seconds: float = 0.0
    """Wall-clock time of the scan."""
    documents: int = 0
    """Documents read."""
    sentences_read: int = 0
    """Sentences (retrieval units) read."""
    retrieval_layer: int = 0
    """The decoder layer whose attention was read."""
    summary_tokens: int = 0
    """Tokens the summary track cost: auto's question probe, the note prompts read and the
    notes written."""
    summary_seconds: float = 0.0
    """Wall-clock time of writing the notes (after the scan; not in ``seconds``)."""


@dataclass(frozen=True)
class Retrieval:
    """The final sentence cache of a scan, in document order."""

    question: str
    sentences: list[Sentence]
    stats: Stats
    token_ids: list[list[int]] = field(default_factory=list, repr=False)
    """Token ids of each cached sentence, as the model read them (parallel to ``sentences``)."""
    notes: list[Note] = field(default_factory=list)
    """The summary track's notes, in document order (empty unless it ran)."""
    mode: str = "retrieval"
    """What the answer step reads: ``"retrieval"`` (the cache) or ``"summary"`` (notes and
    cache); with ``answer_mode="auto"``, the engine's choice for this question."""
    mode_reason: str = ""
    """Why ``mode`` is what it is: ``"setting"`` (``answer_mode`` chose it), or under
    ``"auto"``: ``"competing"`` (many cached sentences compete for the top), ``"question"`` (the
    model judged that the question needs the whole document) or ``"needle"`` (neither)."""

    @property
    def context(self) -> str:
        """The cached sentences joined with spaces: the text the answer step reads."""
        return " ".join(s.text for s in self.sentences)

    def top(self, k: int) -> list[Sentence]:
        """The ``k`` highest-scoring sentences, best first (ties keep document order)."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise ValueError(f"k must be a positive integer, got {k!r}")
        order = sorted(range(len(self.sentences)), key=lambda i: -self.sentences[i].score)
        return [self.sentences[i] for i in order[:k]]


@dataclass(frozen=True)
class Usage:
    """Tokens one answer cost: what the model read and what it wrote.

    The one definition every integration reports (LangChain ``usage_metadata``, LlamaIndex
    ``raw["usage"]``, the CLI's JSON).
    """

    scan_tokens: int = 0
    """Tokens the scan fed through the model (cache, chunk, question and template, every step)."""
    answer_prompt_tokens: int = 0
    """Tokens of the answer prompt (final cache, question and template)."""
    completion_tokens: int = 0
    """Tokens the model generated."""
    rescore_tokens: int = 0
    """Tokens of the forward that re-scored the final cache (``answer_rescore``)."""
    summary_tokens: int = 0
    """Tokens of the summary track's notes: prompts read and notes written."""

    @classmethod
    def of(
        cls, retrieval: Retrieval, prompt_tokens: int, generated: int, rescore_tokens: int = 0
    ) -> Usage:
        """What answering ``retrieval`` cost: its scan's and notes' tokens, plus the answer's
        prompt, generated and re-scoring tokens."""
        return cls(
            retrieval.stats.tokens_processed,
            prompt_tokens,
            generated,
            rescore_tokens,
            retrieval.stats.summary_tokens,
        )

    @property
    def prompt_tokens(self) -> int:
        """Every token the model read or wrote before the answer: the scan's, the notes', the
        re-scoring's and the answer prompt's."""
        return (
            self.scan_tokens + self.summary_tokens + self.rescore_tokens + self.answer_prompt_tokens
        )

    def __add__(self, other: Usage) -> Usage:
        """Two usages added up, count by count."""
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Usage)))

    @property
    def total_tokens(self) -> int:
        """Tokens read and written."""
        return self.prompt_tokens + self.completion_tokens

    def as_dict(self) -> dict[str, int]:
        """The counts by name, with ``prompt_tokens`` and ``total_tokens``."""
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "scan_tokens": self.scan_tokens,
            "rescore_tokens": self.rescore_tokens,
            "summary_tokens": self.summary_tokens,
            "answer_prompt_tokens": self.answer_prompt_tokens,
        }


@dataclass(frozen=True)
class Answer:
    """A generated answer and the retrieval it was read from."""

    text: str
    retrieval: Retrieval
    prompt_tokens: int = 0
    """Tokens of the answer prompt (cache, question and template)."""
    generated_tokens: int = 0
    """Tokens the model generated."""
    rescore_tokens: int = 0
    """Tokens of the forward that re-scored the final cache (``answer_rescore``), else 0."""
    quoted: list[Sentence] = field(default_factory=list)
    """Cached sentences quoted before the answer (``answer_quote``), document order."""
    shown: list[Sentence] = field(default_factory=list)
    """Cached sentences the answer prompt held (``answer_sentences``), document order."""

    @property
    def usage(self) -> Usage:
        """Tokens this answer cost, the scan's (and any re-scoring's) included."""
        return Usage.of(
            self.retrieval, self.prompt_tokens, self.generated_tokens, self.rescore_tokens
        )
