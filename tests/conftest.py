"""Shared fixtures: one real embedded engine per session, prose, tiny random-weight models."""

from __future__ import annotations

from pathlib import Path

import pytest

from infiniretri.testing import embedded_engine, tiny_model

EXAMPLE_DOCUMENT = (
    Path(__file__).resolve().parents[1] / "examples" / "data" / "wikipedia_steam_oxygen_amazon.txt"
)


@pytest.fixture(scope="session")
def engine():
    """The real embedded SmolLM2-135M engine, default settings, loaded once."""
    return embedded_engine()


@pytest.fixture(scope="session")
def prose() -> str:
    """About 17k tokens of Wikipedia prose (CC BY-SA 4.0, see examples/data/ATTRIBUTION.md)."""
    return EXAMPLE_DOCUMENT.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def tiny_llama():
    """A tiny random-weight Llama model and the embedded tokenizer."""
    return tiny_model("llama")


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Point the engine's on-disk cache (calibrated layers) at an empty folder."""
    monkeypatch.setenv("INFINIRETRI_CACHE_DIR", str(tmp_path))
    return tmp_path
