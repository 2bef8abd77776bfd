"""The forward runner (``infiniretri.forward``): every part of the CUDA-graph path a CPU runs.

Recording and replaying a CUDA graph needs CUDA (``bench/cuda_graphs_check.py`` checks graphs
against eager on a GPU). Everything around it runs here: the shape buckets, the host-side
padding, right padding changing nothing before it, layers, graphs being off on a CPU, the replay
bookkeeping (with a stand-in graph that replays eagerly into the same static buffers) and the
fallback to eager when recording fails.
"""

from __future__ import annotations

import pytest
import torch

from infiniretri import InfiniRetri, forward
from infiniretri.attention import causal_only, head_index, install_capture
from infiniretri.forward import ForwardRunner, _Graph, graph_key, host_inputs

PAD = 0
LAYERS = (1, 3)


@pytest.fixture(scope="module")
def model(tiny_llama):
    model, _ = tiny_llama  # a tiny random-weight Llama of 4 layers
    install_capture(model)  # as ModelContext does (idempotent)
    return model


def prompt_batch(lengths=(150, 90, 41), question=(12, 5, 9), seed=3):
    """Random prompts of ``lengths``; each one's question is its last ``question[i]`` tokens."""
    generator = torch.Generator().manual_seed(seed)
    prompts = [torch.randint(100, 5000, (n,), generator=generator).tolist() for n in lengths]
    rows = [range(n - q, n) for n, q in zip(lengths, question)]
    return prompts, rows


def run(runner: ForwardRunner, prompts, rows, layers=LAYERS, heads=()) -> dict[int, torch.Tensor]:
    """``runner.scores`` inside a session, copied out (a graph's outputs are reused)."""
    with runner.session():
        return {k: v.clone() for k, v in runner.scores(prompts, rows, layers, heads).items()}


def assert_close_on_prompts(got, want, prompts, rtol=1e-5, atol=1e-6):
    """Equal on every prompt's own positions (``T`` may be longer; padding is not compared)."""
    assert sorted(got) == sorted(want)
    for layer in want:
        for b, prompt in enumerate(prompts):
            n = len(prompt)
            torch.testing.assert_close(got[layer][b, :n], want[layer][b, :n], rtol=rtol, atol=atol)


class ReplayedEagerly:
    """Stands in for ``torch.cuda.CUDAGraph``: ``replay`` runs the recorded shape's forward on
    the static input buffers and writes into the static output tensors, as a replay does."""

    def __init__(self, runner, ids, rows, valid, layers, scores, heads=()):
        self.runner, self.ids, self.rows, self.valid = runner, ids, rows, valid
        self.layers, self.scores, self.heads = layers, scores, heads
        self.replays = 0

    def replay(self) -> None:
        with causal_only():  # as ``_record`` records it
            index = head_index(dict(self.heads), self.ids.device)
            out = self.runner._run(self.ids, self.rows, self.valid, self.layers, index)
        for layer in self.layers:
            self.scores[layer].copy_(out[layer])
        self.replays += 1


def cpu_recorder(runner: ForwardRunner, recorded: list, fail_on: set | None = None):
    """A ``_record`` for CPU: the real static buffers, a graph that replays eagerly."""

    def record(batch, length, n_rows, layers, heads=()):
        key = (batch, length, n_rows, layers, heads)
        if fail_on and key in fail_on:
            raise RuntimeError("operation not permitted when stream is capturing")
        recorded.append(key)
        ids = torch.full((batch, length), runner.pad_id, dtype=torch.long)
        rows = torch.zeros((batch, n_rows), dtype=torch.long)
        valid = torch.zeros((batch, n_rows), dtype=torch.float32)
        chosen = dict(heads)
        scores = {
            layer: torch.full(
                (batch, len(chosen[layer]), length) if layer in chosen else (batch, length),
                float("nan"),
            )
            for layer in layers
        }
        graph = ReplayedEagerly(runner, ids, rows, valid, layers, scores, heads)
        return _Graph(graph, ids, rows, valid, scores)

    return record


def graph_runner(model, monkeypatch, recorded, fail_on=None, **options) -> ForwardRunner:
    """A runner on the graph path (forced on, as on CUDA) with the CPU recorder."""
    runner = ForwardRunner(model, PAD, graphs=True, **options)
    runner.graphs = True
    monkeypatch.setattr(runner, "_record", cpu_recorder(runner, recorded, fail_on))
    return runner


# --------------------------------------------------------------------------- pure helpers
@pytest.mark.parametrize(
    ("longest", "most_rows", "key"),
    [
        (1, 1, (2, 256, 16, (5,))),
        (256, 16, (2, 256, 16, (5,))),
        (257, 17, (2, 512, 32, (5,))),
        (4000, 31, (2, 4096, 32, (5,))),
    ],
)
def test_graph_key_rounds_length_and_rows_up_to_their_buckets(longest, most_rows, key):
    assert graph_key(2, longest, most_rows, (5,), 256, 16) == (*key, ())


def test_graph_key_keeps_batch_and_layers_and_other_buckets():
    assert graph_key(7, 100, 3, (2, 9), 64, 4) == (7, 128, 4, (2, 9), ())
    assert graph_key(1, 129, 5, (0,), 128, 8, ((0, (1, 3)),)) == (1, 256, 8, (0,), ((0, (1, 3)),))


def test_host_inputs_right_pad_ids_rows_and_validity():
    ids, rows, valid = host_inputs([[5, 6, 7], [8]], [range(1, 3), range(0, 1)], 5, 3, 99)
    assert ids.dtype == torch.int64 and rows.dtype == torch.int64
    assert valid.dtype == torch.float32
    assert ids.tolist() == [[5, 6, 7, 99, 99], [8, 99, 99, 99, 99]]
    assert rows.tolist() == [[1, 2, 0], [0, 0, 0]]
    assert valid.tolist() == [[1.0, 1.0, 0.0], [1.0, 0.0, 0.0]]


def test_host_inputs_reject_a_prompt_longer_than_the_shape():
    with pytest.raises(ValueError):
        host_inputs([[1, 2, 3]], [range(2, 3)], 2, 1, 0)


# --------------------------------------------------------------------------- eager runner
def test_graphs_are_off_on_a_cpu(model):
    runner = ForwardRunner(model, PAD, graphs=True)
    assert runner.graphs is False
    assert runner.graph_error is None
    prompts, rows = prompt_batch()
    got = run(runner, prompts, rows)
    assert runner._graphs == {}
    want = run(ForwardRunner(model, PAD, graphs=False), prompts, rows)
    for layer in LAYERS:
        assert torch.equal(got[layer], want[layer])


def test_the_eager_result_is_as_long_as_the_longest_prompt(model):
    prompts, rows = prompt_batch()
    got = run(ForwardRunner(model, PAD, graphs=False), prompts, rows)
    assert {k: tuple(v.shape) for k, v in got.items()} == {1: (3, 150), 3: (3, 150)}
    assert all(torch.isfinite(v).all() and (v >= 0).all() for v in got.values())


def test_right_padding_changes_nothing_before_it(model):
    runner = ForwardRunner(model, PAD, graphs=False)
    prompts, rows = prompt_batch()
    batch = run(runner, prompts, rows)
    for b, (prompt, r) in enumerate(zip(prompts, rows)):
        alone = run(runner, [prompt], [r])
        for layer in LAYERS:
            assert alone[layer].shape == (1, len(prompt))
            torch.testing.assert_close(
                batch[layer][b, : len(prompt)], alone[layer][0], rtol=1e-5, atol=1e-6
            )


def test_padding_scores_are_zero_since_the_question_rows_come_before_them(model):
    prompts, rows = prompt_batch()
    batch = run(ForwardRunner(model, PAD, graphs=False), prompts, rows)
    for layer in LAYERS:
        for b, prompt in enumerate(prompts):
            assert (batch[layer][b, len(prompt) :] == 0).all()


def test_several_layers_equal_single_layer_calls(model):
    runner = ForwardRunner(model, PAD, graphs=False)
    prompts, rows = prompt_batch()
    together = run(runner, prompts, rows, layers=(3, 1, 3))  # unsorted, repeated
    assert sorted(together) == [1, 3]
    for layer in (1, 3):
        alone = run(runner, prompts, rows, layers=(layer,))
        assert list(alone) == [layer]
        torch.testing.assert_close(together[layer], alone[layer], rtol=1e-6, atol=1e-7)


def test_the_engine_on_a_cpu_runs_eagerly_with_cuda_graphs_on(tiny_llama):
    model, tokenizer = tiny_llama
    on = InfiniRetri(model, tokenizer, chunk_tokens=128, cuda_graphs=True)
    off = on.with_options(cuda_graphs=False)
    assert on.context.runner(True).graphs is False
    assert on.cuda_graph_error is None and off.cuda_graph_error is None
    text = " ".join(f"Box {i} holds {i * 3} red marbles and a note." for i in range(30))
    question = "How many marbles does box 21 hold?"
    a, b = on.retrieve(text, question), off.retrieve(text, question)
    assert [(s.text, s.char_start, s.score) for s in a.sentences] == [
        (s.text, s.char_start, s.score) for s in b.sentences
    ]


# --------------------------------------------------------------------------- the graph path
def test_replays_pad_to_the_bucket_and_equal_eager(model, monkeypatch):
    recorded: list = []
    runner = graph_runner(model, monkeypatch, recorded)
    eager = ForwardRunner(model, PAD, graphs=False)
    prompts, rows = prompt_batch()
    with runner.session():
        got = runner.scores(prompts, rows, LAYERS)
        assert recorded == [(3, 256, 16, LAYERS, ())]
        assert {k: tuple(v.shape) for k, v in got.items()} == {1: (3, 256), 3: (3, 256)}
        graph = runner._graphs[recorded[0]]
        assert got is graph.scores  # the graph's static outputs, not a copy
        assert graph.graph.replays == 1
        assert graph.input_ids[2, :41].tolist() == prompts[2]
        assert (graph.input_ids[2, 41:] == PAD).all()
        assert_close_on_prompts(got, run(eager, prompts, rows), prompts)
    assert runner.graphs is True and runner.graph_error is None


def test_one_graph_serves_every_shape_in_its_bucket(model, monkeypatch):
    recorded: list = []
    runner = graph_runner(model, monkeypatch, recorded)
    eager = ForwardRunner(model, PAD, graphs=False)
    # 150 and 130 tokens round up to 256; 3 to 12 question rows to 16.
    first = prompt_batch(lengths=(150, 60), question=(12, 3), seed=4)
    second = prompt_batch(lengths=(130, 40), question=(3, 7), seed=5)
    got_first = run(runner, *first)
    got_second = run(runner, *second)  # shorter: stale buffer contents must be overwritten
    assert recorded == [(2, 256, 16, LAYERS, ())]
    assert runner._graphs[recorded[0]].graph.replays == 2
    assert_close_on_prompts(got_first, run(eager, *first), first[0])
    assert_close_on_prompts(got_second, run(eager, *second), second[0])


def test_a_new_shape_records_a_new_graph(model, monkeypatch):
    recorded: list = []
    runner = graph_runner(model, monkeypatch, recorded, length_bucket=128, rows_bucket=8)
    run(runner, *prompt_batch(lengths=(100, 50), question=(5, 5)))
    run(runner, *prompt_batch(lengths=(200, 50), question=(5, 5)))  # longer bucket
    run(runner, *prompt_batch(lengths=(100, 50), question=(5, 12)))  # more rows
    run(runner, *prompt_batch(lengths=(100,), question=(5,)))  # another batch size
    run(runner, *prompt_batch(lengths=(100, 50), question=(5, 5)), layers=(1,))
    run(runner, *prompt_batch(lengths=(128, 10), question=(2, 8)))  # the first shape again
    assert recorded == [
        (2, 128, 8, LAYERS, ()),
        (2, 256, 8, LAYERS, ()),
        (2, 128, 16, LAYERS, ()),
        (1, 128, 8, LAYERS, ()),
        (2, 128, 8, (1,), ()),
    ]


def test_chosen_heads_replay_like_eager_and_get_their_own_graph(model, monkeypatch):
    recorded: list = []
    runner = graph_runner(model, monkeypatch, recorded, length_bucket=128, rows_bucket=8)
    eager = ForwardRunner(model, PAD, graphs=False)
    heads = ((1, (0, 3)), (3, (2,)))
    prompts, rows = prompt_batch(lengths=(100, 50), question=(5, 5))
    got = run(runner, prompts, rows, LAYERS, heads)
    assert got[1].shape[:2] == (2, 2) and got[3].shape[:2] == (2, 1)
    want = run(eager, prompts, rows, LAYERS, heads)
    for layer in LAYERS:
        for b, prompt in enumerate(prompts):
            n = len(prompt)
            torch.testing.assert_close(got[layer][b, ..., :n], want[layer][b, ..., :n])
    run(runner, prompts, rows, LAYERS)  # all heads summed: another graph
    assert recorded == [(2, 128, 8, LAYERS, heads), (2, 128, 8, LAYERS, ())]


def test_beyond_max_graphs_shapes_run_eagerly(model, monkeypatch):
    monkeypatch.setattr(forward, "MAX_GRAPHS", 1)
    recorded: list = []
    runner = graph_runner(model, monkeypatch, recorded, length_bucket=128)
    eager = ForwardRunner(model, PAD, graphs=False)
    run(runner, *prompt_batch(lengths=(100, 50), question=(5, 5)))
    prompts, rows = prompt_batch(lengths=(200, 50), question=(5, 5))
    got = run(runner, prompts, rows)
    assert recorded == [(2, 128, 16, LAYERS, ())]
    assert runner.graphs is True
    assert got[1].shape == (2, 200)  # the eager result, unpadded
    assert_close_on_prompts(got, run(eager, prompts, rows), prompts)


def test_a_failed_recording_turns_graphs_off_and_returns_the_eager_result(model, monkeypatch):
    runner = ForwardRunner(model, PAD, graphs=True)
    runner.graphs = True  # as on CUDA
    calls = []

    def record(*key):
        calls.append(key)
        raise RuntimeError("operation not permitted when stream is capturing")

    monkeypatch.setattr(runner, "_record", record)
    prompts, rows = prompt_batch()
    got = run(runner, prompts, rows)
    assert calls == [(3, 256, 16, LAYERS, ())]
    assert runner.graphs is False
    assert runner.graph_error == "RuntimeError: operation not permitted when stream is capturing"
    assert runner._graphs == {}
    want = run(ForwardRunner(model, PAD, graphs=False), prompts, rows)
    for layer in LAYERS:
        assert torch.equal(got[layer], want[layer])
    run(runner, prompts, rows)  # graphs stay off: no second recording
    assert len(calls) == 1


def test_a_failed_recording_drops_the_graphs_recorded_before(model, monkeypatch):
    recorded: list = []
    failing = {(2, 256, 16, LAYERS, ())}
    runner = graph_runner(model, monkeypatch, recorded, failing, length_bucket=128)
    run(runner, *prompt_batch(lengths=(100, 50), question=(5, 5)))
    assert len(runner._graphs) == 1
    prompts, rows = prompt_batch(lengths=(200, 50), question=(5, 5))
    got = run(runner, prompts, rows)
    assert runner.graphs is False and runner._graphs == {}
    assert runner.graph_error.startswith("RuntimeError: ")
    assert got[1].shape == (2, 200)
    assert_close_on_prompts(
        got, run(ForwardRunner(model, PAD, graphs=False), prompts, rows), prompts
    )


def test_errors_other_than_runtime_errors_are_not_swallowed(model, monkeypatch):
    runner = ForwardRunner(model, PAD, graphs=False)
    runner.graphs = True

    def record(*key):
        raise TypeError("a bug, not a capture failure")

    monkeypatch.setattr(runner, "_record", record)
    with pytest.raises(TypeError, match="a bug"):
        run(runner, *prompt_batch())
    assert runner.graphs is True and runner.graph_error is None
