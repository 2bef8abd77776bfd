"""The InfiniRetri engine a component reads with: given, or the default one loaded on first use."""

from __future__ import annotations

import threading
from typing import Any

from infiniretri import InfiniRetri


class EngineSlot:
    """Holds one engine, or the arguments to load the default engine when first needed.

    ``EngineSlot(engine)`` uses ``engine`` (``engine.with_options(**engine_kwargs)`` when options
    are given: same model, other settings). ``EngineSlot(None, **engine_kwargs)`` loads
    ``InfiniRetri.from_pretrained(**engine_kwargs)`` on the first :meth:`get`, once, even when
    several threads ask at the same time.
    """

    def __init__(self, engine: InfiniRetri | None = None, **engine_kwargs: Any) -> None:
        if engine is not None and not isinstance(engine, InfiniRetri):
            raise ValueError(
                f"engine must be an infiniretri.InfiniRetri instance or None, "
                f"got {type(engine).__name__}"
            )
        if engine is not None and engine_kwargs:
            engine = engine.with_options(**engine_kwargs)
        self._engine = engine
        self._kwargs = dict(engine_kwargs)
        self._lock = threading.Lock()

    @property
    def loaded(self) -> bool:
        """Whether the engine exists yet (given, or already loaded)."""
        return self._engine is not None

    def get(self) -> InfiniRetri:
        """The engine, loading the default one now if none was given."""
        engine = self._engine
        if engine is None:
            with self._lock:
                if self._engine is None:
                    self._engine = InfiniRetri.from_pretrained(**self._kwargs)
                engine = self._engine
        return engine


def split_engine_kwargs(
    kwargs: dict[str, Any], own_fields: set[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split constructor keywords into the component's own fields and engine options."""
    own = {k: v for k, v in kwargs.items() if k in own_fields}
    engine_kwargs = {k: v for k, v in kwargs.items() if k not in own_fields}
    return own, engine_kwargs
