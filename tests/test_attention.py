"""Attention capture: equal to an eager-attention reference, stops early, changes nothing else."""

from __future__ import annotations

import pytest
import torch

from infiniretri.attention import capture, install_capture
from infiniretri.loading import load_model
from infiniretri.testing import TINY_ARCHS, tiny_model


def eager_reference(model, ids, rows, layer):
    with torch.no_grad():
        out = model(input_ids=ids, output_attentions=True)
    return out.attentions[layer][0, :, rows[0], :].sum(dim=(0, 1))


def relative_error(got, ref):
    return ((got - ref).abs().max() / ref.abs().max()).item()


@pytest.mark.parametrize("arch", TINY_ARCHS)
def test_capture_equals_eager_reference(arch):
    model, _ = tiny_model(arch, layers=4)
    reference, _ = tiny_model(arch, layers=4, attn_implementation="eager")
    install_capture(model)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(100, 5000, (1, 300), generator=generator)
    rows = torch.arange(270, 300)[None]
    got = capture(model, ids, rows, torch.ones(1, 30), (0, 1, 3))
    for layer in (0, 1, 3):
        ref = eager_reference(reference, ids, rows, layer)
        assert relative_error(got[layer][0], ref) < 1e-4, (arch, layer)


def test_capture_equals_eager_on_the_embedded_model(prose):
    model, tokenizer = load_model(dtype=torch.float32)
    ids = torch.tensor([tokenizer(prose[:3000])["input_ids"][:600]])
    rows = torch.arange(580, 600)[None]
    install_capture(model)
    got = capture(model, ids, rows, torch.ones(1, 20), (5, 20))
    model.set_attn_implementation("eager")
    for layer in (5, 20):
        assert relative_error(got[layer][0], eager_reference(model, ids, rows, layer)) < 1e-4


def test_batch_rows_with_padding_match_single_items():
    model, _ = tiny_model("qwen2")
    install_capture(model)
    generator = torch.Generator().manual_seed(2)
    a = torch.randint(100, 5000, (1, 120), generator=generator)
    b = torch.randint(100, 5000, (1, 90), generator=generator)
    batch = torch.zeros(2, 120, dtype=torch.long)
    batch[0], batch[1, :90] = a[0], b[0]
    rows = torch.tensor([[100, 101, 102, 103], [80, 81, 82, 0]])
    valid = torch.tensor([[1.0, 1, 1, 1], [1, 1, 1, 0]])
    got = capture(model, batch, rows, valid, (2,))[2]
    single_a = capture(model, a, rows[:1], valid[:1], (2,))[2][0]
    single_b = capture(model, b, rows[1:, :3], valid[1:, :3], (2,))[2][0]
    assert torch.allclose(got[0], single_a, atol=1e-5)
    assert torch.allclose(got[1, :90], single_b, atol=1e-5)
    assert got[1, 90:].abs().max() == 0


def test_layers_above_the_retrieval_layer_do_not_run():
    model, _ = tiny_model("llama", layers=6)
    install_capture(model)
    ran = []
    hooks = [
        layer.register_forward_pre_hook(lambda module, args, i=i: ran.append(i))
        for i, layer in enumerate(model.model.layers)
    ]
    head_calls = []
    hooks.append(model.lm_head.register_forward_pre_hook(lambda *a: head_calls.append(1)))
    try:
        capture(
            model,
            torch.randint(100, 900, (1, 50)),
            torch.tensor([[45, 46]]),
            torch.ones(1, 2),
            (2,),
        )
    finally:
        for hook in hooks:
            hook.remove()
    assert ran == [0, 1, 2]
    assert head_calls == []


def test_installing_capture_leaves_model_outputs_unchanged():
    model, _ = tiny_model("mistral")
    ids = torch.randint(100, 5000, (1, 64))
    with torch.no_grad():
        before = model(input_ids=ids).logits
        install_capture(model)
        install_capture(model)  # idempotent
        after = model(input_ids=ids).logits
    assert model.config._attn_implementation == "infiniretri_sdpa"
    assert torch.equal(before, after)
