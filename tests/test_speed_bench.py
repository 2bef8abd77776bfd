"""The speed benchmark's big section (issue 16): each setting runs in a process of its own."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import speed_defaults  # noqa: E402


def test_each_big_setting_is_measured_in_a_fresh_process(tmp_path):
    out = tmp_path / "speed.json"
    argv = ["--device", "cpu", "--scale", "0.004", "--sections", "big", "--out", str(out)]
    assert speed_defaults.main(argv) == 0
    big = json.loads(out.read_text(encoding="utf-8"))["big"]
    assert "failed" not in big and "skipped" not in big and "error" not in big
    names = [name for name, _ in speed_defaults.BIG_RUNS]
    records = [big[name] for name in names]
    pids = {r["process_id"] for r in records}
    assert len(pids) == len(names) and os.getpid() not in pids
    assert big["process"] == "one per setting" and big["parameters"] > 0
    assert big["today"]["setting"]["chunk_tokens"] == 1024
    assert big["new_eager_layers"]["why"]["compile_layers"] == "set explicitly"
    for r in records:
        assert r["tokens_read"] >= 0.9 * big["document_tokens"]
        assert r["tokens_processed"] > r["tokens_read"]  # the cache and question are read too
        assert len(r["scan_seconds_warm"]) == 3
