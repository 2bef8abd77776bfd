"""The scan's forward pass: right-padded prompts in, question-to-context attention out.

On a CPU (or with graphs off) each call runs the model up to the retrieval layer (``capture``).
On CUDA, with graphs on, the forward of each padded shape is recorded once as a CUDA graph and
replayed: at these model sizes a forward costs more in kernel launches and Python than in
arithmetic. Shapes are bucketed (lengths rounded up to ``length_bucket``, question rows to
``rows_bucket``) so that few graphs serve all steps; right padding changes nothing before it
(causal attention), so the result is that of the unpadded batch. All graphs share one memory
pool, sized by the largest shape, so memory does not grow with the number of graphs.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from .attention import CaptureRequest, HeadMap, capture, causal_only, head_index, run_request
from .compiling import LayerCompiler, layer_modules

MAX_GRAPHS = 96
"""Graphs kept per runner; further shapes run without a graph."""


@dataclass
class _Graph:
    graph: torch.cuda.CUDAGraph
    input_ids: torch.Tensor
    rows: torch.Tensor
    row_valid: torch.Tensor
    scores: dict[int, torch.Tensor]
    heads: dict[int, torch.Tensor] = field(default_factory=dict)
    """The head index tensors the graph reads (kept alive: a replay reads their memory)."""


def _round_up(n: int, step: int) -> int:
    return -(-n // step) * step


GraphKey = tuple[int, int, int, tuple[int, ...], HeadMap]
"""``(batch, padded length, padded question rows, layers, heads)``: what one graph serves."""


def graph_key(
    batch: int,
    longest: int,
    most_rows: int,
    layers: tuple[int, ...],
    length_bucket: int,
    rows_bucket: int,
    heads: HeadMap = (),
) -> GraphKey:
    """The recorded shape that serves a batch: lengths and rows rounded up to their buckets."""
    length, rows = _round_up(longest, length_bucket), _round_up(most_rows, rows_bucket)
    return (batch, length, rows, layers, heads)


def host_inputs(
    prompts: Sequence[Sequence[int]],
    rows: Sequence[range],
    length: int,
    n_rows: int,
    pad_id: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(input_ids, rows, row_valid)`` on the host, right-padded to ``length`` and ``n_rows``.

    ``input_ids`` ``(B, length)`` is padded with ``pad_id``; ``rows`` ``(B, n_rows)`` holds each
    prompt's question positions, padded with 0; ``row_valid`` (float) is 1 on the real rows.
    """
    ids = np.full((len(prompts), length), pad_id, dtype=np.int64)
    row_ids = np.zeros((len(prompts), n_rows), dtype=np.int64)
    valid = np.zeros((len(prompts), n_rows), dtype=np.float32)
    for b, (prompt, r) in enumerate(zip(prompts, rows)):
        ids[b, : len(prompt)] = prompt  # numpy copies a list ~10x faster than torch.tensor
        row_ids[b, : len(r)] = r
        valid[b, : len(r)] = 1.0
    return torch.from_numpy(ids), torch.from_numpy(row_ids), torch.from_numpy(valid)


class ForwardRunner:
    """Runs capture forwards for one model; holds its CUDA graphs.

    Use :meth:`session`: while a session is open the tensors it returned stay valid (a graph's
    outputs are overwritten by its next replay, so sessions over graphs are serialized).
    """

    def __init__(
        self,
        model,
        pad_id: int,
        *,
        graphs: bool = True,
        length_bucket: int = 256,
        rows_bucket: int = 16,
        compiled: bool = False,
    ) -> None:
        self.model = model
        self.pad_id = int(pad_id)
        self.device = next(model.parameters()).device
        self.graphs = bool(graphs) and self.device.type == "cuda"
        self.length_bucket = length_bucket
        self.rows_bucket = rows_bucket
        self._graphs: dict[GraphKey, _Graph] = {}
        self._pool = None
        self._lock = threading.Lock()
        self.graph_error: str | None = None
        """Why graphs were turned off, if recording one failed (the runner then runs eagerly)."""
        layers = layer_modules(model) if compiled and self.graphs else None
        self.compiler = LayerCompiler(layers) if layers is not None else None
        """Compiles the layers while a graph is recorded (``compile_layers``), or ``None``."""
        self.compile_error: str | None = None
        """Why compiling was given up, if it failed (graphs are then recorded eagerly)."""

    @contextlib.contextmanager
    def session(self) -> Iterator[ForwardRunner]:
        if not self.graphs:
            yield self
            return
        with self._lock:
            yield self

    @torch.inference_mode()
    def scores(
        self,
        prompts: Sequence[Sequence[int]],
        rows: Sequence[range],
        layers: tuple[int, ...],
        heads: HeadMap = (),
    ) -> dict[int, torch.Tensor]:
        """``{layer: (B, T)}``: attention each position receives from its prompt's ``rows``.

        Summed over heads and rows; a layer named in ``heads`` gives ``(B, h, T)``, its chosen
        heads one by one. ``T`` is at least the longest prompt (padding scores are
        meaningless). The forward stops at the highest of ``layers``. Call inside
        :meth:`session`.
        """
        layers = tuple(sorted(set(layers)))
        longest = max(len(p) for p in prompts)
        most_rows = max(len(r) for r in rows)
        if self.graphs:
            key = graph_key(
                len(prompts),
                longest,
                most_rows,
                layers,
                self.length_bucket,
                self.rows_bucket,
                heads,
            )
            graph = self._graphs.get(key)
            if graph is None and len(self._graphs) < MAX_GRAPHS:
                try:
                    graph = self._graphs[key] = self._record(*key)
                except RuntimeError as err:  # a model whose forward cannot be captured
                    self.graphs = False
                    self.graph_error = f"{type(err).__name__}: {err}"
                    self._graphs.clear()
            if graph is not None:
                ids, row_ids, valid = host_inputs(prompts, rows, key[1], key[2], self.pad_id)
                graph.input_ids.copy_(ids)
                graph.rows.copy_(row_ids)
                graph.row_valid.copy_(valid)
                graph.graph.replay()
                return graph.scores
        ids, row_ids, valid = host_inputs(prompts, rows, longest, most_rows, self.pad_id)
        dev = self.device
        return capture(self.model, ids.to(dev), row_ids.to(dev), valid.to(dev), layers, dict(heads))

    def _run(self, ids, rows, valid, layers, index) -> dict[int, torch.Tensor]:
        request = CaptureRequest(layers=layers, rows=rows, row_valid=valid, heads=index)
        run_request(self.model, ids, request)
        return request.scores

    def _record(self, *key) -> _Graph:
        """The graph of one shape, recorded through the compiled layers where asked for."""
        if self.compiler is not None:
            try:
                with self.compiler.active():
                    return self._record_graph(*key)
            except Exception as err:  # any failure to compile or record compiled: go eager
                self.compile_error = f"{type(err).__name__}: {err}"
                self.compiler = None
        return self._record_graph(*key)

    def _record_graph(
        self, batch: int, length: int, n_rows: int, layers: tuple[int, ...], heads: HeadMap
    ) -> _Graph:
        dev = self.device
        index = head_index(dict(heads), dev)
        ids = torch.full((batch, length), self.pad_id, dtype=torch.long, device=dev)
        rows = torch.zeros((batch, n_rows), dtype=torch.long, device=dev)
        valid = torch.zeros((batch, n_rows), dtype=torch.float32, device=dev)
        side = torch.cuda.Stream(device=dev)
        side.wait_stream(torch.cuda.current_stream(dev))
        with torch.cuda.stream(side), causal_only():
            for _ in range(2):  # warm-up: lazy initialisation stays out of the graph
                self._run(ids, rows, valid, layers, index)
        torch.cuda.current_stream(dev).wait_stream(side)
        if self._pool is None:
            self._pool = torch.cuda.graph_pool_handle()
        graph = torch.cuda.CUDAGraph()
        request = CaptureRequest(layers=layers, rows=rows, row_valid=valid, heads=index)
        with causal_only(), torch.cuda.graph(graph, pool=self._pool):
            run_request(self.model, ids, request)
        return _Graph(graph, ids, rows, valid, request.scores, index)
