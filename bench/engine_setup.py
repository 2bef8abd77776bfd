"""Build the engine the benchmarks measure, and describe its settings for the result files."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from infiniretri import EngineSettings

ENGINE_OPTIONS = EngineSettings.names()
"""Options a tuning run may choose: every engine setting."""


def load_engine(device: str = "cpu", dtype: str | None = None, **options: Any):
    """The embedded SmolLM2-135M-Instruct engine (``dtype=None``: the engine's default)."""
    from infiniretri import InfiniRetri

    return InfiniRetri.from_pretrained(device=device, dtype=dtype, **options)


def engine_settings(engine) -> dict[str, Any]:
    """Settings of one engine, as written into result files."""
    settings = {k: v for k, v in engine.settings.as_dict().items() if k != "prompt_template"}
    return {
        "model": engine.model_name,
        "device": str(engine.device),
        "dtype": str(next(engine.model.parameters()).dtype).removeprefix("torch."),
        **settings,
        "retrieval_layer": engine.retrieval_layer_index,
        "max_sentence_tokens": engine.max_sentence_tokens,
        "context_window": engine.context_window,
        "custom_prompt": engine.settings.prompt_template != EngineSettings().prompt_template,
    }


def read_options(path: str | os.PathLike | None) -> dict[str, Any]:
    """Engine options chosen by a tuning run (``{"chosen": {...}}``), or ``{}``."""
    if not path:
        return {}
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    chosen = data.get("chosen", data)
    return {k: chosen[k] for k in ENGINE_OPTIONS if k in chosen}


def parse_options(value: str | None) -> dict[str, Any]:
    """Engine settings from a JSON file (``{"chosen": {...}}`` or plain) or inline JSON."""
    if not value:
        return {}
    if value.lstrip().startswith("{"):
        data = json.loads(value)
        chosen = data.get("chosen", data)
        unknown = sorted(set(chosen) - set(ENGINE_OPTIONS))
        if unknown:
            raise SystemExit(f"--options: unknown engine settings {unknown}")
        return dict(chosen)
    return read_options(value)
