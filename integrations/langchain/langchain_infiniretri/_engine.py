"""Engine settings shared by every InfiniRetri LangChain class.

Each class takes either a ready ``engine`` (one loaded model, shareable by all of them) or the
name/path of a model to load on first use with ``InfiniRetri.from_pretrained``.
"""

from __future__ import annotations

import threading
from typing import Any

from infiniretri import InfiniRetri
from infiniretri.loading import EMBEDDED_MODEL_ID
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

DEFAULT_MODEL_NAME = EMBEDDED_MODEL_ID
"""The name of the embedded default model, known before it is loaded."""


class InfiniRetriEngineMixin(BaseModel):
    """Fields and lazy loading of the InfiniRetri engine.

    Give ``engine`` to share one loaded model between several LangChain objects. Without it, the
    engine is built on first use from ``model`` (``None``: the embedded default model) with
    ``model_kwargs`` (``device``, ``dtype``, ``trust_remote_code``). ``engine_kwargs``
    (``chunk_tokens``, ``phrase_tokens``, ``top_k_tokens``, ``retrieval_layer``,
    ``max_cache_tokens``, ...) tune the scan; they are applied with ``engine.with_options``,
    which reuses the loaded model.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: InfiniRetri | None = Field(default=None, exclude=True)
    """A loaded engine to use (and share). Built lazily from ``model`` when not given."""
    model: str | None = None
    """Local model directory for ``InfiniRetri.from_pretrained``; ``None``: the embedded model."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for ``InfiniRetri.from_pretrained`` (``device``, ``dtype``, ...)."""
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Scan settings applied with ``engine.with_options`` (``chunk_tokens``, ...)."""

    _resolved_engine: InfiniRetri | None = PrivateAttr(default=None)
    _engine_lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @model_validator(mode="after")
    def _check_engine_settings(self) -> InfiniRetriEngineMixin:
        if self.engine is not None:
            if self.model is not None or self.model_kwargs:
                raise ValueError(
                    "model: give either a loaded engine or a model to load, not both "
                    f"(engine is {self.engine.model_name!r}, model is {self.model!r})"
                )
            if self.engine_kwargs:
                # Cheap (no reload) and surfaces a bad setting now rather than at first use.
                self._resolved_engine = self.engine.with_options(**self.engine_kwargs)
            else:
                self._resolved_engine = self.engine
        return self

    def get_engine(self) -> InfiniRetri:
        """Return the engine, loading the model on first use when none was given."""
        engine = self._resolved_engine
        if engine is not None:
            return engine
        with self._engine_lock:
            if self._resolved_engine is None:
                self._resolved_engine = InfiniRetri.from_pretrained(
                    self.model, **self.model_kwargs, **self.engine_kwargs
                )
            return self._resolved_engine

    @property
    def model_name(self) -> str:
        """Name of the model, without loading it."""
        if self._resolved_engine is not None:
            return self._resolved_engine.model_name
        return self.model or DEFAULT_MODEL_NAME

    def _engine_settings(self) -> dict[str, Any]:
        """Scan settings for tracing and caching keys (without loading the model)."""
        settings: dict[str, Any] = {"model_name": self.model_name}
        engine = self._resolved_engine
        if engine is not None:
            for name in ENGINE_SETTING_NAMES:
                if hasattr(engine, name):
                    settings[name] = getattr(engine, name)
        settings.update(self.engine_kwargs)
        return settings


ENGINE_SETTING_NAMES = (
    "chunk_tokens",
    "phrase_tokens",
    "top_k_tokens",
    "retrieval_layer",
    "max_cache_tokens",
)
