"""Every engine option, once: its default, its check and its one-line doc.

:class:`EngineSettings` is the single source of truth. The engine, ``with_options``, ``repr``,
the CLI flags, both integrations and the benchmarks read their option names, defaults and docs
from it. Checks that need the model (is the chunk too large for its window? is the layer in
range?) run when an engine is built; the values derived from settings and model are
:class:`~infiniretri.engine.InfiniRetri` properties, recomputed for every engine, never copied.

To add a setting: add a field here with ``setting(default, doc, check)``, then read it where it
is used. The CLI flag, ``repr``, ``with_options`` and the integrations' fields follow.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .prompt import DEFAULT_PROMPT, QUESTION_ROWS, check_template
from .sizing import check_auto_or_positive_int
from .summary import ANSWER_MODES

Check = Callable[[str, Any], None]


def positive_int(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is an int >= 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _optional(check: Check) -> Check:
    def optional(name: str, value: Any) -> None:
        if value is not None:
            check(name, value)

    return optional


def _non_negative_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {value!r}")


def _layer(name: str, value: Any) -> None:
    if value == "auto":
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an int or 'auto', got {value!r}")


def _heads(name: str, value: Any) -> None:
    if value in ("all", "auto"):
        return
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)) or not value:
        raise ValueError(
            f"{name} must be 'all', 'auto' or a non-empty list of (layer, head) pairs, "
            f"got {value!r}"
        )
    for pair in value:
        if (
            not isinstance(pair, (list, tuple))
            or len(pair) != 2
            or any(isinstance(x, bool) or not isinstance(x, int) or x < 0 for x in pair)
        ):
            raise ValueError(
                f"{name} must list (layer, head) pairs of non-negative ints, got {pair!r}"
            )
    if len({tuple(p) for p in value}) != len(value):
        raise ValueError(f"{name} lists a (layer, head) pair twice: {value!r}")


def _head_pairs(value: Any) -> Any:
    """Lists of pairs become a tuple of tuples (settings are immutable and hashable)."""
    if isinstance(value, (list, tuple)):
        return tuple((int(layer), int(head)) for layer, head in value)
    return value


def _non_negative_number(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a non-negative number, got {value!r}")
    if value == float("inf"):
        raise ValueError(f"{name} must be finite, got {value!r}")


def _boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _on_off_auto(name: str, value: Any) -> None:
    if value is not True and value is not False and value != "auto":
        raise ValueError(f"{name} must be True, False or 'auto', got {value!r}")


def _choice(choices: tuple[str, ...]) -> Check:
    def choice(name: str, value: Any) -> None:
        if value not in choices:
            raise ValueError(f"{name} must be one of {choices}, got {value!r}")

    return choice


def _template(name: str, value: Any) -> None:
    check_template(value)  # its messages name prompt_template


def setting(
    default: Any, doc: str, check: Check, convert: Callable[[Any], Any] | None = None
) -> Any:
    """A settings field: its default, its one-line doc, its check and an optional conversion
    to its stored form (applied after the check)."""
    metadata = {"doc": doc, "check": check, "convert": convert}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class EngineSettings:
    """All options of an :class:`~infiniretri.engine.InfiniRetri` engine (immutable)."""

    chunk_tokens: int | str = setting(
        "auto",
        "document tokens read per step, or 'auto': on a GPU the largest multiple of 1024 that "
        "fits the window beside cache and question (at most 16384), on a CPU 1024 (see sizing)",
        check_auto_or_positive_int,
    )
    phrase_tokens: int = setting(
        8, "width of the window that sums token scores into phrase scores", positive_int
    )
    top_k_tokens: int | str = setting(
        300,
        "phrase positions kept per step; the sentences holding them form the cache ('auto': "
        "300 plus every sentence standing out of the step's scores, see topk)",
        check_auto_or_positive_int,
    )
    retrieval_layer: int | str = setting(
        "auto",
        "decoder layer whose attention is read (negative counts from the top), or 'auto' to "
        "calibrate it once per model",
        _layer,
    )
    retrieval_heads: str | tuple[tuple[int, int], ...] = setting(
        "auto",
        "heads read: 'auto' (picked once per model by a calibration; with a numeric "
        "retrieval_layer, all of its heads), 'all' (all heads of retrieval_layer), or "
        "(layer, head) pairs",
        _heads,
        _head_pairs,
    )
    lexical_weight: float = setting(
        2.5,
        "weight of in-view BM25 fused with attention when ranking sentences (0: attention only)",
        _non_negative_number,
    )
    lexical_feedback: float = setting(
        0.5,
        "weight of the best-ranked sentence's words added to the question for a second BM25 "
        "pass (pseudo-relevance feedback for two-hop questions; 0: off)",
        _non_negative_number,
    )
    question_rows: str = setting(
        "question",
        "prompt rows whose attention is read: 'question' (its tokens), 'end' (the template "
        "after it, where the answer starts) or 'all' (both)",
        _choice(QUESTION_ROWS),
    )
    score_baseline: bool = setting(
        False,
        "subtract the attention a content-free question gives each token (ICR; one more "
        "forward per step)",
        _boolean,
    )
    score_position: bool = setting(
        False,
        "divide out each token's distance-to-question trend and cap attention sinks",
        _boolean,
    )
    max_cache_tokens: int | None = setting(
        None,
        "upper bound of the cache (None: what fits the window next to a chunk and the question)",
        _optional(positive_int),
    )
    prompt_template: str = setting(
        DEFAULT_PROMPT, "the user turn, with {context} before {question}", _template
    )
    max_sentence_tokens: int | None = setting(
        None,
        "longer sentences are cut into pieces of at most this many tokens (None: 128, at most "
        "the chunk)",
        _optional(positive_int),
    )
    prep_workers: int | None = setting(
        None,
        "processes that split and tokenize ahead of the scan (None: 0 on a CPU, up to 8 on a "
        "GPU); results do not depend on it",
        _optional(_non_negative_int),
    )
    cuda_graphs: bool = setting(
        True,
        "on CUDA, replay the scan's forward passes and the answer's decoding steps as CUDA "
        "graphs (kept sentences do not depend on it; answer tokens up to floating-point ties)",
        _boolean,
    )
    compile_layers: bool | str = setting(
        "auto",
        "on CUDA with cuda_graphs, record the scan's graphs through torch.compile'd decoder layers "
        "(fused elementwise work; a one-time compile), or 'auto': for models of 1B parameters or "
        "more (see compiling)",
        _on_off_auto,
    )
    answer_sentences: int | None = setting(
        8,
        "the answer prompt shows only the best N cached sentences, in document order (None: "
        "the whole cache)",
        _optional(positive_int),
    )
    answer_rescore: bool = setting(
        True,
        "re-score the final cache against the question (one forward over the cache) before "
        "choosing the answer's evidence",
        _boolean,
    )
    answer_quote: int = setting(
        4,
        "quote up to N best sentences at the start of the answer, where the reader copies "
        "from (0: no quote)",
        _non_negative_int,
    )
    answer_quote_margin: float = setting(
        0.5,
        "quote the sentences whose standardised score is within this of the best one",
        _non_negative_number,
    )
    answer_quote_coverage: bool = setting(
        True,
        "quote only shown sentences that hold the most of the question's key terms (the asked "
        "one among look-alike keys)",
        _boolean,
    )
    answer_copy: float = setting(
        3.0,
        "logit bonus for answer tokens that continue a span of the quoted (or shown) evidence "
        "(0: free decoding)",
        _non_negative_number,
    )
    answer_gather: bool = setting(
        True,
        "after a quoted answer, add the values of shown sentences that read the same as its "
        "source sentence but for the value",
        _boolean,
    )
    answer_mode: str = setting(
        "retrieval",
        "'retrieval': answer from the cache; 'summary': also write notes on what the cache left "
        "out and answer from both; 'auto': the engine decides per question (see scope)",
        _choice(ANSWER_MODES),
    )
    summary_notes: int = setting(
        8,
        "most notes of the summary track (drafts of neighbouring stretches merge beyond it)",
        positive_int,
    )
    summary_note_tokens: int = setting(
        48, "tokens the model may write per note of the summary track", positive_int
    )
    summary_source_tokens: int = setting(
        384,
        "left-out sentences one note is written from, in tokens (the best-scored of its stretch)",
        positive_int,
    )
    summary_answer: str = setting(
        "map",
        "how the summary track answers: 'map' reads each cached sentence (the best 48) and each "
        "note alone and lists the distinct answers (see itemizing), 'read' reads them all in one "
        "prompt",
        _choice(("map", "read")),
    )
    batch_size: int | str = setting(
        "auto",
        "pairs that retrieve_batch and answer_batch run together, or 'auto': one per forward on "
        "a CPU, where padding only adds work, 16 on an accelerator (see sizing)",
        check_auto_or_positive_int,
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            f.metadata["check"](f.name, getattr(self, f.name))
            if f.metadata["convert"] is not None:
                object.__setattr__(self, f.name, f.metadata["convert"](getattr(self, f.name)))

    @classmethod
    def names(cls) -> tuple[str, ...]:
        """Every setting's name, in declaration order."""
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def docs(cls) -> dict[str, str]:
        """Every setting's one-line doc."""
        return {f.name: f.metadata["doc"] for f in dataclasses.fields(cls)}

    @classmethod
    def defaults(cls) -> dict[str, Any]:
        """Every setting's default."""
        return {f.name: f.default for f in dataclasses.fields(cls)}

    @classmethod
    def from_options(cls, options: Mapping[str, Any] | None = None) -> EngineSettings:
        """Settings from keyword options; an unknown name is a ``ValueError``."""
        options = dict(options or {})
        check_names(options)
        return cls(**options)

    def replace(self, **options: Any) -> EngineSettings:
        """A copy with ``options`` changed (checked like the constructor)."""
        check_names(options)
        return dataclasses.replace(self, **options)

    def as_dict(self) -> dict[str, Any]:
        """Every setting and its value."""
        return {name: getattr(self, name) for name in self.names()}

    def changed(self) -> dict[str, Any]:
        """The settings whose value is not the default."""
        defaults = self.defaults()
        return {k: v for k, v in self.as_dict().items() if v != defaults[k]}


def check_names(options: Mapping[str, Any]) -> None:
    """Raise ``ValueError`` for an option that is not an engine setting."""
    unknown = sorted(set(options) - set(EngineSettings.names()))
    if unknown:
        raise ValueError(
            f"unknown engine options: {unknown} (settings are {list(EngineSettings.names())})"
        )
