"""Memory stays flat while a long generated document streams from a file through the engine.

The same check as ``bench/stress.py memory`` at full size (100k to 1M tokens), at a size a test
can afford: 20k then 300k tokens, in a fresh process (peak RSS is per process).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SIZES = (20_000, 300_000)
CHUNK = 1024  # bench/stress.py's tiny engine: chunk_tokens
MAX_SENTENCE = 128  # its sentence cap (the default, below the chunk)
CONTEXT_WINDOW = 8192  # the tiny model's max_position_embeddings


@pytest.fixture(scope="module")
def memory() -> dict:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "stress.py"), "memory", "--out", "-", "--tokens"]
        + [str(n) for n in SIZES],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=1200,
    )
    # Exit status 0: the check ran and memory stayed within its bound (1 means it did not).
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_the_whole_generated_file_is_read_with_exact_offsets(memory):
    assert [run["tokens_requested"] for run in memory["runs"]] == list(SIZES)
    for run, size in zip(memory["runs"], SIZES):
        assert run["tokens_written"] >= size
        # The engine splits sentences on its own, so its count differs a little from the writer's.
        assert abs(run["tokens_read"] - run["tokens_written"]) <= 0.01 * run["tokens_written"]
        # Chunks of whole sentences: at most CHUNK tokens each, and every chunk but the last
        # leaves less room than the next sentence (at most MAX_SENTENCE tokens).
        read = run["tokens_read"]
        assert -(-read // CHUNK) <= run["forward_passes"] <= read // (CHUNK - MAX_SENTENCE) + 1
        assert run["offsets_exact"]


@pytest.mark.slow
def test_the_cache_stays_within_its_budget(memory):
    for run in memory["runs"]:
        assert 0 < run["cache_tokens"] <= CONTEXT_WINDOW - CHUNK


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_document(memory):
    # The bound, from 100k to 1M tokens: under 100 MB of peak RSS growth.
    assert memory["rss_growth_mb"] < 100
    # Python objects, measured exactly (tracemalloc): keeping every token read would add about
    # 40 bytes a token (12 MB here); a streaming scan holds one read block, one chunk and the
    # cache whatever the length (about 1.5 MB more once files exceed the 1 MB read block).
    assert memory["python_heap_growth_mb"] < 4
    assert memory["within_bound"]
    # Each run's peak is its own (the high-water mark was reset before it), not the warm-up's.
    assert all(run["peak_rss_reset_before_run"] for run in memory["runs"])
