"""The engine fields every InfiniRetri LangChain class has, over ``infiniretri.integration``.

Each class takes either a ready ``engine`` (one loaded model, shareable by all of them) or the
name/path of a model to load on first use with ``InfiniRetri.from_pretrained``.
"""

from __future__ import annotations

from typing import Any

from infiniretri import EMBEDDED_MODEL_ID, InfiniRetri
from infiniretri.integration import EngineHolder
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, model_validator

DEFAULT_MODEL_NAME = EMBEDDED_MODEL_ID
"""The name of the embedded default model, known before it is loaded."""


class InfiniRetriEngineMixin(BaseModel):
    """Fields and lazy loading of the InfiniRetri engine.

    Give ``engine`` to share one loaded model between several LangChain objects. Without it, the
    engine is built on first use from ``model`` (``None``: the embedded default model) with
    ``model_kwargs`` (``device``, ``dtype``, ``trust_remote_code``). ``engine_kwargs``
    (``chunk_tokens``, ``phrase_tokens``, ``top_k_tokens``, ``retrieval_layer``, ...: the names of
    ``infiniretri.EngineSettings``) tune the scan; with an ``engine`` they are applied with
    ``engine.with_options``, which reuses the loaded model. Every option is checked when the
    object is built, before any model is loaded.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    engine: InfiniRetri | None = Field(default=None, exclude=True)
    """A loaded engine to use (and share). Built lazily from ``model`` when not given."""
    model: str | None = None
    """Local model directory for ``InfiniRetri.from_pretrained``; ``None``: the embedded model."""
    model_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Keyword arguments for ``InfiniRetri.from_pretrained`` (``device``, ``dtype``, ...)."""
    engine_kwargs: dict[str, Any] = Field(default_factory=dict)
    """Engine settings (``chunk_tokens``, ...; see ``infiniretri.EngineSettings``)."""

    _holder: EngineHolder = PrivateAttr()

    @model_validator(mode="after")
    def _hold_engine(self) -> InfiniRetriEngineMixin:
        self._holder = EngineHolder(
            self.engine,
            model=self.model,
            model_kwargs=self.model_kwargs,
            engine_kwargs=self.engine_kwargs,
        )
        return self

    def get_engine(self) -> InfiniRetri:
        """Return the engine, loading the model on first use when none was given."""
        return self._holder.get()

    @property
    def model_name(self) -> str:
        """Name of the model, without loading it."""
        return self._holder.model_name

    def _engine_settings(self) -> dict[str, Any]:
        """The model and every engine setting, for tracing and cache keys (without loading)."""
        return {"model_name": self.model_name, **self._holder.settings.as_dict()}
