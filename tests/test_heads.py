"""Retrieval heads: per-head capture, the readout of chosen (layer, head) pairs, and 'auto'."""

from __future__ import annotations

import json

import pytest
import torch

from infiniretri import EngineSettings, InfiniRetri
from infiniretri.attention import capture, install_capture, question_attention
from infiniretri.calibration import best_heads, stored_heads
from infiniretri.readout import Readout
from infiniretri.testing import tiny_model

TEXT = " ".join(
    f"Crate {i} holds {i * 7} copper bolts and sits on shelf {i % 6} of the north room."
    for i in range(40)
)
QUESTION = "How many copper bolts does crate 23 hold?"


def test_per_head_attention_sums_to_the_all_heads_sum():
    torch.manual_seed(0)
    b, h, h_kv, t, d = 2, 4, 2, 11, 8
    query, key = torch.randn(b, h, t, d), torch.randn(b, h_kv, t, d)
    rows = torch.tensor([[8, 9, 10], [7, 8, 0]])
    valid = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    summed = question_attention(query, key, rows, valid, d**-0.5)
    every = question_attention(query, key, rows, valid, d**-0.5, heads=torch.arange(h))
    assert every.shape == (b, h, t)
    torch.testing.assert_close(every.sum(1), summed)
    # Head 3 reads key head 1 (grouped-query attention): the same as that head alone.
    one = question_attention(query, key, rows, valid, d**-0.5, heads=torch.tensor([3]))
    alone = question_attention(query[:, 3:4], key[:, 1:2], rows, valid, d**-0.5)
    torch.testing.assert_close(one[:, 0], alone)


def test_capture_of_chosen_heads_matches_the_layer_sum(tiny_llama):
    model, tokenizer = tiny_llama
    install_capture(model)  # as ModelContext does (idempotent)
    ids = torch.tensor([tokenizer(TEXT, add_special_tokens=False)["input_ids"][:80]])
    rows, valid = torch.arange(70, 80)[None], torch.ones(1, 10)
    summed = capture(model, ids, rows, valid, (1, 2))
    heads = capture(model, ids, rows, valid, (1, 2), {2: (0, 1, 2, 3), 1: (2,)})
    assert heads[2].shape == (1, 4, 80) and heads[1].shape == (1, 1, 80)
    torch.testing.assert_close(heads[2].sum(1), summed[2], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(heads[1][:, 0], summed[1])


def test_readout_orders_groups_and_checks_them():
    readout = Readout.heads([(3, 1), (1, 2), (3, 0)])
    assert readout.layers_read == (1, 3) and readout.stop_layer == 3
    assert readout.head_map == ((1, (2,)), (3, (0, 1)))
    values = {1: torch.arange(6.0).view(1, 1, 6), 3: torch.arange(12.0).view(1, 2, 6)}
    gathered = readout.gather(values)
    assert gathered.shape == (1, 3, 6)
    assert gathered[0, 0].tolist() == values[3][0, 1].tolist()  # (3, 1)
    assert gathered[0, 2].tolist() == values[3][0, 0].tolist()  # (3, 0)
    readout.check(4, 4)
    with pytest.raises(ValueError, match="layer 9"):
        Readout.heads([(9, 0)]).check(4, 4)
    with pytest.raises(ValueError, match="head 4 of layer 1"):
        Readout.heads([(1, 4)]).check(4, 4)
    with pytest.raises(ValueError, match="both summed and head by head"):
        Readout(((1, None), (1, 0)))


def test_explicit_heads_run_up_to_their_highest_layer(tiny_llama):
    model, tokenizer = tiny_llama
    engine = InfiniRetri(model, tokenizer, chunk_tokens=128, retrieval_heads=[[1, 0], [2, 3]])
    assert engine.settings.retrieval_heads == ((1, 0), (2, 3))
    assert engine.readout == Readout.heads([(1, 0), (2, 3)])
    seen = []
    layers = model.model.layers
    hooks = [
        layer.register_forward_hook(lambda *a, i=i: seen.append(i))
        for i, layer in enumerate(layers)
    ]
    try:
        retrieval = engine.retrieve(TEXT, QUESTION)
    finally:
        for hook in hooks:
            hook.remove()
    assert retrieval.sentences and retrieval.stats.retrieval_layer == 2
    assert 3 not in seen and {0, 1} <= set(seen)


def test_chosen_heads_change_what_is_kept(tiny_llama):
    model, tokenizer = tiny_llama
    base = InfiniRetri(model, tokenizer, chunk_tokens=128, lexical_weight=0, top_k_tokens=20)
    scores = {}
    for heads in ([(2, 0)], [(2, 3)], "all"):
        engine = base.with_options(retrieval_heads=heads, retrieval_layer=2)
        scores[str(heads)] = [s.score for s in engine.retrieve(TEXT, QUESTION).sentences]
    assert len(set(map(tuple, scores.values()))) == 3


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([(1, 0), (1, 0)], "twice"),
        ([(1, -1)], "non-negative"),
        ([], "non-empty"),
        ("some", "'all', 'auto'"),
        ([(1, 0, 2)], "pairs"),
    ],
)
def test_bad_heads_name_the_setting(value, message):
    with pytest.raises(ValueError, match="retrieval_heads") as err:
        EngineSettings(retrieval_heads=value)
    assert message in str(err.value)


def test_heads_the_model_lacks_are_an_error_before_any_scan(tiny_llama):
    model, tokenizer = tiny_llama
    with pytest.raises(ValueError, match="retrieval_heads names layer 7"):
        InfiniRetri(model, tokenizer, retrieval_heads=[(7, 0)])
    with pytest.raises(ValueError, match="head 5 of layer 1"):
        InfiniRetri(model, tokenizer, retrieval_heads=[(1, 5)])


def test_auto_heads_calibrate_once_and_are_stored(isolated_cache, monkeypatch):
    model, tokenizer = tiny_model("llama", seed=1)
    model.config._name_or_path = "tiny-llama-for-heads"
    engine = InfiniRetri(model, tokenizer, chunk_tokens=128)
    assert engine.settings.retrieval_heads == "auto"
    mrr = engine.calibrate_heads(trials=3)
    assert set(mrr) == {(layer, head) for layer in range(4) for head in range(4)}
    assert all(0 < v <= 1 for v in mrr.values())
    readout = engine.readout
    assert len(readout.groups) == 8 and readout.groups == tuple(
        (layer, head) for layer, head in best_heads(engine.calibrate_heads())
    )
    stored = json.loads((isolated_cache / "retrieval_heads.json").read_text())
    assert [tuple(p) for p in next(iter(stored.values()))] == list(readout.groups)

    # A second engine over the same model reads the stored heads (no calibration).
    def no_calibration(*args, **kwargs):
        raise AssertionError("calibrated again")

    monkeypatch.setattr(InfiniRetri, "calibrate_heads", no_calibration)
    again = InfiniRetri(model, tokenizer, chunk_tokens=128)
    assert again.readout == readout
    assert stored_heads(next(iter(stored))) == readout.groups


def test_auto_heads_give_way_to_an_explicit_layer(tiny_llama):
    model, tokenizer = tiny_llama
    engine = InfiniRetri(model, tokenizer, chunk_tokens=128, retrieval_layer=1)
    assert engine.readout == Readout.layer(1)


def test_the_embedded_model_ships_its_heads(engine):
    assert engine.settings.retrieval_heads == "auto"
    readout = engine.readout
    assert len(readout.groups) == 8 and readout.stop_layer <= 18
    assert all(head is not None for _, head in readout.groups)
