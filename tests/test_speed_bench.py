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


def test_the_mfu_flop_count_matches_torchs_count_of_a_scan_forward():
    """``forward_flops``' weight FLOPs are what torch counts in the matrix products of one
    capture forward up to the retrieval layer (its q/k/v projections included); its attention
    term is causal attention's 2 T^2 per head dimension and layer."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from infiniretri.attention import capture, install_capture
    from infiniretri.testing import tiny_model

    model, _ = tiny_model(layers=4)
    install_capture(model)
    layer, length = 2, 96
    ids = torch.randint(0, model.config.vocab_size, (1, length))
    rows, valid = torch.tensor([[length - 1]]), torch.ones(1, 1)
    with FlopCounterMode(display=False) as counter:
        capture(model, ids, rows, valid, (layer,))
    counts = {str(op).split(".")[1]: n for op, n in counter.get_flop_counts()["Global"].items()}
    matmuls = counts["mm"]  # every linear layer the forward ran
    assert counts["bmm"] < 0.01 * matmuls  # the captured question rows (not in the formula)
    config = model.config
    causal = layer * 2 * length**2 * config.num_attention_heads * config.head_dim
    assert speed_defaults.forward_flops(model, layer, 1, length) == matmuls + causal
