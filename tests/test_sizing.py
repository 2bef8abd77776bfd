"""``chunk_tokens="auto"``, ``batch_size="auto"`` and ``warmup``: the rules and what they change."""

from __future__ import annotations

import pytest
import torch

from infiniretri import EngineSettings, InfiniRetri
from infiniretri.cli import build_parser, setting_options
from infiniretri.sizing import (
    ACCELERATOR_MAX_CHUNK,
    CHUNK_STEP,
    CPU_CHUNK,
    GENERATION_BATCH,
    LAUNCH_BOUND_BATCH,
    MAX_WARM_SHAPES,
    ROWS_PER_CALL,
    TYPICAL_CACHE_TOKENS,
    auto_batch_size,
    auto_chunk_tokens,
    choose_batch_size,
    choose_chunk_tokens,
    generation_batch_size,
    rows_per_call,
    warm_shapes,
)
from infiniretri.testing import embedded_tokenizer, tiny_config

TEXT = " ".join(
    f"Sentence {i} tells that the {c} box number {i} holds {i * 7} marbles."
    for i, c in enumerate(["red", "blue", "green", "grey"] * 40)
)
QUESTION = "How many marbles does the green box number 30 hold?"
PAIRS = [
    (TEXT, QUESTION),
    (TEXT[: len(TEXT) // 2], "Which box holds 140 marbles?"),
    (TEXT[len(TEXT) // 3 :], "What colour is box number 77?"),
]


def tiny_with_window(window: int):
    """A tiny random-weight Llama whose context window is ``window`` tokens."""
    from transformers import AutoModelForCausalLM

    config = tiny_config("llama")
    config.max_position_embeddings = window
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, attn_implementation="sdpa")
    return model.eval(), embedded_tokenizer()


def kept(retrieval) -> list[tuple[str, int, int]]:
    return [(s.text, s.char_start, s.char_end) for s in retrieval.sentences]


# --------------------------------------------------------------------------- the chunk rule
@pytest.mark.parametrize(
    ("window", "cuda", "cpu"),
    [
        (8192, 6144, 1024),
        (32768, 16384, 1024),
        (131072, 16384, 1024),
        (4096, 2048, 1024),
        (12288, 10240, 1024),
        (2048, 512, 512),
    ],
)
def test_auto_chunk_grows_with_the_window_on_an_accelerator_and_stays_1024_on_a_cpu(
    window, cuda, cpu
):
    assert auto_chunk_tokens("cuda", window, 46) == cuda
    assert auto_chunk_tokens("cpu", window, 46) == cpu


def test_auto_chunk_leaves_the_cache_its_room_in_whole_steps():
    for device in ("cuda", "cpu"):
        previous = 0
        for window in (256, 512, 1000, 2048, 3000, 8192, 20000, 32768, 200000):
            chunk = auto_chunk_tokens(device, window, 46)
            power_of_two = chunk & (chunk - 1) == 0
            # A CPU chunk is a power of two; an accelerator's a multiple of CHUNK_STEP (or a
            # power of two below it).
            assert power_of_two or (device == "cuda" and chunk % CHUNK_STEP == 0), (window, chunk)
            assert chunk >= previous  # larger windows, larger chunks (or the same)
            assert chunk <= (ACCELERATOR_MAX_CHUNK if device == "cuda" else CPU_CHUNK)
            left = window - 46 - 64
            assert window - 46 - 64 - chunk >= min(TYPICAL_CACHE_TOKENS, left // 2)
            previous = chunk


def test_choices_say_why():
    auto = choose_chunk_tokens("auto", "cuda", 8192, 46)
    assert auto.value == 6144 and "auto" in auto.reason and "8192" in auto.reason
    assert choose_chunk_tokens(512, "cuda", 8192, 46) == (512, "set explicitly")
    assert choose_batch_size("auto", "cuda").value == LAUNCH_BOUND_BATCH
    assert choose_batch_size(7, "cuda") == (7, "set explicitly")


def test_auto_batch_is_one_on_a_cpu_and_a_batch_on_an_accelerator():
    assert auto_batch_size("cpu") == 1
    assert auto_batch_size("cuda") == LAUNCH_BOUND_BATCH
    assert generation_batch_size("auto") == GENERATION_BATCH and generation_batch_size(3) == 3
    assert rows_per_call("auto") == ROWS_PER_CALL and rows_per_call(5) == 5


def test_warm_shapes_cover_a_long_scan_in_bucket_multiples():
    shapes = warm_shapes(46, 4096, 128, 8192, 256, (16, 32))
    assert shapes and len(shapes) <= MAX_WARM_SHAPES
    assert {q for _, q in shapes} == {16, 32}
    for length, question in shapes:
        assert length % 256 == 0 and length <= 8192
        assert 46 + 4096 - 128 + question <= length + 255  # a full chunk, an empty cache
    assert max(length for length, _ in shapes) >= 46 + 4096 + 32 + TYPICAL_CACHE_TOKENS
    assert len(warm_shapes(46, 8192, 128, 32768, 16, (16, 32, 48))) == MAX_WARM_SHAPES


# --------------------------------------------------------------------------- the engine
def test_the_engine_resolves_auto_and_keeps_the_setting(tiny_llama):
    model, tokenizer = tiny_llama
    engine = InfiniRetri(model, tokenizer, retrieval_layer=2)
    assert engine.settings.chunk_tokens == "auto" and engine.settings.batch_size == "auto"
    assert (engine.chunk_tokens, engine.batch_size) == (1024, 1)  # a CPU, an 8k window
    assert engine.scanner.chunk_tokens == 1024 and engine.scanner.batch_size == 1
    assert engine.answerer.batch_size == GENERATION_BATCH
    assert engine.sizing["chunk_tokens"].value == 1024
    assert "chunk_tokens" not in repr(engine)  # still the default
    explicit = engine.with_options(chunk_tokens=1024, batch_size=1)
    assert kept(engine.retrieve(TEXT, QUESTION)) == kept(explicit.retrieve(TEXT, QUESTION))


def test_a_small_window_gets_a_small_chunk_and_the_same_scan_as_that_chunk_set():
    model, tokenizer = tiny_with_window(1024)
    engine = InfiniRetri(model, tokenizer, retrieval_layer=2)
    expected = auto_chunk_tokens("cpu", 1024, engine.layout.overhead)
    assert engine.chunk_tokens == expected == 256
    assert engine.max_sentence_tokens == 128
    with pytest.raises(ValueError, match="chunk_tokens=1024 is too large"):
        engine.with_options(chunk_tokens=1024)
    explicit = engine.with_options(chunk_tokens=expected)
    assert kept(engine.retrieve(TEXT, QUESTION)) == kept(explicit.retrieve(TEXT, QUESTION))


@pytest.mark.parametrize("name", ["chunk_tokens", "batch_size"])
@pytest.mark.parametrize("value", [0, -4, 1.5, True, "Auto", "1024", None, [8]])
def test_a_bad_size_is_a_value_error_naming_it(tiny_llama, name, value):
    model, tokenizer = tiny_llama
    with pytest.raises(ValueError, match=name):
        EngineSettings(**{name: value})
    with pytest.raises(ValueError, match=name):
        InfiniRetri(model, tokenizer, **{name: value})
    with pytest.raises(ValueError, match=name):  # checked before any model is loaded
        InfiniRetri.from_pretrained("/no/such/model", **{name: value})


def test_the_cli_reads_auto_and_numbers():
    parser = build_parser()
    args = parser.parse_args(["ask", "doc.txt", "-q", "Why?", "--chunk-tokens", "auto"])
    assert setting_options(args) == {"chunk_tokens": "auto"}
    args = parser.parse_args(["ask", "doc.txt", "-q", "Why?", "--batch-size", "4"])
    assert setting_options(args) == {"batch_size": 4}


def test_batch_size_auto_gives_what_explicit_batch_sizes_give(tiny_llama):
    model, tokenizer = tiny_llama
    engine = InfiniRetri(model, tokenizer, chunk_tokens=192, top_k_tokens=40, retrieval_layer=2)
    auto = engine.retrieve_batch(PAIRS)
    for size in (1, 2, 16):
        other = engine.with_options(batch_size=size).retrieve_batch(PAIRS)
        assert [kept(r) for r in other] == [kept(r) for r in auto], size
        for a, b in zip(auto, other):
            assert [s.score for s in a.sentences] == pytest.approx(
                [s.score for s in b.sentences], rel=1e-3, abs=1e-4
            )  # padding changes float rounding, as in tests/test_batch.py
    answers = engine.answer_batch(PAIRS[:2], max_new_tokens=6)
    explicit = engine.with_options(batch_size=2).answer_batch(PAIRS[:2], max_new_tokens=6)
    assert [a.text for a in answers] == [a.text for a in explicit]


def test_warmup_runs_and_changes_no_result(tiny_llama):
    model, tokenizer = tiny_llama
    cold = InfiniRetri(model, tokenizer, chunk_tokens=256, retrieval_layer=2)
    expected = cold.answer(TEXT, QUESTION, max_new_tokens=6)
    warmed = InfiniRetri(model, tokenizer, chunk_tokens=256, retrieval_layer=2)
    seconds = warmed.warmup()
    assert isinstance(seconds, float) and seconds > 0
    got = warmed.answer(TEXT, QUESTION, max_new_tokens=6)
    assert got.text == expected.text
    assert kept(got.retrieval) == kept(expected.retrieval)
    assert [s.score for s in got.retrieval.sentences] == [
        s.score for s in expected.retrieval.sentences
    ]


@pytest.mark.parametrize("value", ["16", [0], [2.5], 8])
def test_warmup_checks_its_argument(tiny_llama, value):
    model, tokenizer = tiny_llama
    engine = InfiniRetri(model, tokenizer, retrieval_layer=2)
    with pytest.raises(ValueError, match="question_tokens"):
        engine.warmup(value)


def test_from_pretrained_checks_warmup_before_loading():
    with pytest.raises(ValueError, match="warmup"):
        InfiniRetri.from_pretrained("/no/such/model", warmup="yes")


# --------------------------------------------------------------------------- CPU threads' waiting
def test_passive_waiting_only_on_a_busy_cpu_and_never_over_the_user():
    from infiniretri.omp import choose_wait_policy

    env: dict[str, str] = {}
    assert choose_wait_policy(env, {}, lambda: 3.2) == "PASSIVE"
    assert env == {"OMP_WAIT_POLICY": "PASSIVE"}
    for load in (0.4, None):  # an idle CPU, or no load average on this platform
        env = {}
        assert choose_wait_policy(env, {}, lambda load=load: load) is None and env == {}
    for user in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "300000"}):
        env = dict(user)
        assert choose_wait_policy(env, {}, lambda: 3.2) is None and env == user
    env = {}
    assert choose_wait_policy(env, {"torch": object()}, lambda: 3.2) is None  # too late
    assert env == {}
