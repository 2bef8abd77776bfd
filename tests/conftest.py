"""Shared fixtures: one real embedded engine per session, prose, tiny random-weight models."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from infiniretri.testing import embedded_engine, tiny_model

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # the bench package, for the bench generators' haystacks
    sys.path.insert(0, str(ROOT))

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


@pytest.fixture(scope="session")
def tokenizer():
    """The embedded model's tokenizer."""
    from infiniretri.testing import embedded_tokenizer

    return embedded_tokenizer()


def _haystack(name: str, text: str, tokenizer):
    from bench.multineedle_data import HaystackSource

    return HaystackSource(name, text, tokenizer)


@pytest.fixture(scope="session")
def wiki(tokenizer):
    """The Wikipedia prose haystack of the bench generators."""
    from bench.multineedle_data import wiki_text

    return _haystack("wiki", wiki_text(), tokenizer)


@pytest.fixture(scope="session")
def essays(tokenizer):
    """The first 300k characters of the essays (the whole text takes long to tokenize)."""
    from bench.common import load_essays

    try:
        text = load_essays()
    except FileNotFoundError as err:
        pytest.skip(f"bench data missing ({err}); run bench/install.sh")
    return _haystack("essays", text[:300_000], tokenizer)


@pytest.fixture(params=["wiki", "essays"])
def source(request):
    """Each haystack in turn."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """Point the engine's on-disk cache (calibrated layers) at an empty folder."""
    monkeypatch.setenv("INFINIRETRI_CACHE_DIR", str(tmp_path))
    return tmp_path
