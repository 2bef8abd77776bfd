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

from .prompt import DEFAULT_PROMPT, check_template

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


def _boolean(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{name} must be True or False, got {value!r}")


def _template(name: str, value: Any) -> None:
    check_template(value)  # its messages name prompt_template


def setting(default: Any, doc: str, check: Check) -> Any:
    """A settings field: its default, its one-line doc and its check."""
    return dataclasses.field(default=default, metadata={"doc": doc, "check": check})


@dataclass(frozen=True)
class EngineSettings:
    """All options of an :class:`~infiniretri.engine.InfiniRetri` engine (immutable)."""

    chunk_tokens: int = setting(1024, "document tokens read per step", positive_int)
    phrase_tokens: int = setting(
        8, "width of the window that sums token scores into phrase scores", positive_int
    )
    top_k_tokens: int = setting(
        300,
        "phrase positions kept per step; the sentences holding them form the cache",
        positive_int,
    )
    retrieval_layer: int | str = setting(
        "auto",
        "decoder layer whose attention is read (negative counts from the top), or 'auto' to "
        "calibrate it once per model",
        _layer,
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
        "on CUDA, replay the scan's forward passes as CUDA graphs; results do not depend on it",
        _boolean,
    )
    batch_size: int = setting(
        16, "pairs that retrieve_batch and answer_batch run together", positive_int
    )

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            f.metadata["check"](f.name, getattr(self, f.name))

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
