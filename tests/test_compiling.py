"""Compiled scan layers (``compile_layers``, ``infiniretri.compiling``).

A CPU compiles the layers here (inductor's C++ backend) and checks that the capture inside them
still routes through the capture attention and equals eager; the choice rule; the runner's
fallback when compiling fails. Recording graphs through compiled layers needs CUDA (the last
test, skipped without it).
"""

from __future__ import annotations

import contextlib

import pytest
import torch

from infiniretri import InfiniRetri
from infiniretri.attention import capture, install_capture
from infiniretri.cli import build_parser, setting_options
from infiniretri.compiling import LayerCompiler, choose_compile, layer_modules
from infiniretri.forward import ForwardRunner
from infiniretri.settings import EngineSettings

LAYERS = (1, 3)


@pytest.fixture(scope="module")
def model(tiny_llama):
    model, _ = tiny_llama
    install_capture(model)
    return model


def inputs(seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(100, 5000, (2, 96), generator=generator)
    rows = torch.arange(80, 96).repeat(2, 1)
    return ids, rows, torch.ones(2, 16)


def test_the_decoder_layers_are_found(model):
    layers = layer_modules(model)
    assert layers is model.model.layers and len(layers) == 4


def test_compiling_is_chosen_only_on_cuda_with_graphs(model):
    assert choose_compile(False, model, True) == (False, "set explicitly")
    for setting in ("auto", True):  # a CPU model: never, whatever the setting
        value, why = choose_compile(setting, model, True)
        assert value is False and "CUDA" in why
    assert choose_compile("auto", model, False).value is False


def test_the_setting_is_checked_and_has_a_flag():
    assert EngineSettings().compile_layers == "auto"
    for bad in ("yes", 1, None):
        with pytest.raises(ValueError, match="compile_layers"):
            EngineSettings(compile_layers=bad)
    args = build_parser().parse_args(["ask", "x.txt", "-q", "q", "--compile-layers", "off"])
    assert setting_options(args) == {"compile_layers": False}


def test_an_engine_on_a_cpu_says_why_it_does_not_compile(tiny_llama):
    engine = InfiniRetri(*tiny_llama, compile_layers=True)
    assert engine.compiled is False
    assert "CUDA" in engine.sizing["compile_layers"].reason
    assert engine.compile_error is None


@pytest.mark.filterwarnings("ignore:`torch.jit.script_method` is deprecated:DeprecationWarning")
def test_compiled_layers_capture_what_eager_does_and_are_swapped_back(model):
    ids, rows, valid = inputs()
    with torch.inference_mode():
        want = capture(model, ids, rows, valid, LAYERS)
    compiler = LayerCompiler(layer_modules(model))
    torch._dynamo.reset()
    with compiler.active():
        assert all(layer._compiled_call_impl is not None for layer in model.model.layers)
        with torch.inference_mode():
            got = capture(model, ids, rows, valid, LAYERS)
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] >= 1  # it did compile
    assert all(layer._compiled_call_impl is None for layer in model.model.layers)
    for layer in LAYERS:
        torch.testing.assert_close(got[layer], want[layer], rtol=1e-4, atol=1e-5)


def test_a_layer_the_user_compiled_is_left_alone(model):
    mine = object()
    layer = model.model.layers[0]
    layer._compiled_call_impl = mine
    try:
        with LayerCompiler(layer_modules(model)).active():
            assert layer._compiled_call_impl is mine
        assert layer._compiled_call_impl is mine
    finally:
        layer._compiled_call_impl = None


class FailingCompiler:
    @contextlib.contextmanager
    def active(self):
        raise RuntimeError("inductor: no C++ compiler")
        yield


def test_a_failed_compile_records_eagerly_and_says_why(model, monkeypatch):
    runner = ForwardRunner(model, 0, graphs=True)
    runner.compiler = FailingCompiler()
    recorded = []
    monkeypatch.setattr(runner, "_record_graph", lambda *key: recorded.append(key) or "graph")
    assert runner._record(1, 256, 16, LAYERS, ()) == "graph"
    assert recorded == [(1, 256, 16, LAYERS, ())]
    assert runner.compiler is None
    assert runner.compile_error == "RuntimeError: inductor: no C++ compiler"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graphs_recorded_through_compiled_layers_equal_eager_on_cuda():
    from infiniretri.testing import tiny_model

    model, tokenizer = tiny_model("llama")
    model = model.to("cuda")
    compiled = InfiniRetri(model, tokenizer, compile_layers=True, retrieval_layer=2)
    assert compiled.compiled, compiled.sizing["compile_layers"]
    eager = compiled.with_options(compile_layers=False, cuda_graphs=False)
    text = " ".join(f"Sentence {i} talks about item {i * 7}." for i in range(400))
    question = "Which sentence talks about item 700?"
    got, want = compiled.retrieve(text, question), eager.retrieve(text, question)
    assert compiled.compile_error is None and compiled.cuda_graph_error is None
    assert [s.char_start for s in got.sentences] == [s.char_start for s in want.sentences]
