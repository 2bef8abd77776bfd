"""The answer's decoding steps: eager everywhere, recorded CUDA graphs on CUDA."""

from __future__ import annotations

import threading

import pytest
import torch

from infiniretri import InfiniRetri
from infiniretri.decoding import DecodeGraphs, EagerDecoder, GraphDecoder
from infiniretri.generation import stream_greedy

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def greedy_tokens(model, prompt: list[int], steps: int) -> list[int]:
    """Greedy tokens from a full forward over the whole sequence at every step (no cache)."""
    ids = list(prompt)
    out = []
    with torch.inference_mode():
        for _ in range(steps):
            logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0, -1]
            out.append(int(logits.argmax()))
            ids.append(out[-1])
    return out


def decoded(decoder, prompt: list[int], steps: int) -> list[int]:
    out = []
    with torch.inference_mode():
        logits = decoder.first(prompt)
        for _ in range(steps):
            out.append(int(logits.argmax()))
            logits = decoder.next(out[-1])
    return out


def test_the_eager_decoder_follows_a_full_forward(tiny_llama):
    model, tokenizer = tiny_llama
    prompt = tokenizer("The value of key seven is", add_special_tokens=False)["input_ids"]
    assert decoded(EagerDecoder(model), prompt, 12) == greedy_tokens(model, prompt, 12)


def test_off_cuda_or_off_the_setting_the_decoder_is_eager(tiny_llama):
    model, _ = tiny_llama
    for graphs in (DecodeGraphs(model, 8192), DecodeGraphs(model, 8192, enabled=False)):
        assert not graphs.enabled
        with graphs.decoder(100) as decoder:
            assert isinstance(decoder, EagerDecoder)


def test_stream_greedy_takes_the_decoder_it_is_given(tiny_llama):
    model, tokenizer = tiny_llama
    prompt = tokenizer("Numbers: one two three", add_special_tokens=False)["input_ids"]
    calls = []

    class Counting(EagerDecoder):
        def next(self, token):
            calls.append(token)
            return super().next(token)

    plain = "".join(stream_greedy(model, tokenizer, prompt, 10, set()))
    given = "".join(stream_greedy(model, tokenizer, prompt, 10, set(), decoder=Counting(model)))
    assert given == plain and len(calls) == 9  # the prompt, then one call per further token


@cuda
def test_graph_decoding_gives_the_eager_tokens_and_one_answer_holds_the_graph(tiny_llama):
    model, tokenizer = tiny_llama
    model = model.to("cuda").float()
    graphs = DecodeGraphs(model, 8192)
    prompts = [
        tokenizer(f"Item {i} of the list is number {i * 3}", add_special_tokens=False)["input_ids"]
        for i in range(4)
    ]
    for prompt in prompts:
        with graphs.decoder(len(prompt) + 20) as decoder:
            assert isinstance(decoder, GraphDecoder)
            assert decoded(decoder, prompt, 20) == decoded(EagerDecoder(model), prompt, 20)
            # Held: a second answer meanwhile (another thread) decodes eagerly.
            seen: list = []

            def other(seen=seen):
                with graphs.decoder(10) as other_decoder:
                    seen.append(other_decoder)

            thread = threading.Thread(target=other)
            thread.start()
            thread.join()
            assert isinstance(seen[0], EagerDecoder)
    assert graphs.error is None
    with graphs.decoder(3000) as decoder:  # longer than the cache: a larger one, recorded anew
        assert decoded(decoder, prompts[0], 5) == decoded(EagerDecoder(model), prompts[0], 5)
    with graphs.decoder(9000) as decoder:  # beyond the window
        assert isinstance(decoder, EagerDecoder)


@cuda
def test_engine_answers_are_the_same_with_and_without_graphs(tiny_llama):
    model, tokenizer = tiny_llama
    engine = InfiniRetri(model.to("cuda").float(), tokenizer, retrieval_layer=1)
    eager = engine.with_options(cuda_graphs=False)
    text = " ".join(f"Sentence {j} says the value is {j * 7}." for j in range(80))
    for question in ("What is value 3?", "Which sentence says 21?"):
        assert engine.answer(text, question).text == eager.answer(text, question).text


@cuda
def test_a_step_that_cannot_be_recorded_decodes_eagerly_from_then_on(tiny_llama, monkeypatch):
    model, tokenizer = tiny_llama
    model = model.to("cuda").float()

    def refuse(*args, **kwargs):
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(torch.cuda, "graph", refuse)
    graphs = DecodeGraphs(model, 8192)
    prompt = tokenizer("A short prompt", add_special_tokens=False)["input_ids"]
    with graphs.decoder(len(prompt) + 8) as decoder:
        assert decoded(decoder, prompt, 8) == decoded(EagerDecoder(model), prompt, 8)
    assert not graphs.enabled and "capturing" in graphs.error
    with graphs.decoder(10) as decoder:
        assert isinstance(decoder, EagerDecoder)
