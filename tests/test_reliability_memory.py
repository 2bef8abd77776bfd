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
    assert done.returncode in (0, 1), done.stderr[-3000:]
    return json.loads(done.stdout)


@pytest.mark.slow
def test_the_whole_generated_file_is_read_with_exact_offsets(memory):
    for run, size in zip(memory["runs"], SIZES):
        assert run["tokens_read"] >= size
        assert run["forward_passes"] >= size // 1024
        assert run["offsets_exact"]


@pytest.mark.slow
def test_peak_memory_does_not_grow_with_the_document(memory):
    # The bound, from 100k to 1M tokens: under 100 MB of peak RSS growth.
    assert memory["rss_growth_mb"] < 100
    # Python objects, measured exactly (tracemalloc): keeping every token read would add about
    # 40 bytes a token (12 MB here); a streaming scan holds one read block, one chunk and the
    # cache whatever the length (about 1.5 MB more once files exceed the 1 MB read block).
    assert memory["python_heap_growth_mb"] < 4
    assert memory["within_bound"]
