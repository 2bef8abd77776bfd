"""Fused scan layers: the decoder layers, compiled while the scan's CUDA graphs are recorded.

On a big model a scan step is bound by arithmetic, and eager PyTorch runs the elementwise work
between the matmuls (norms, rotary embedding, activation, residual adds) one kernel at a time:
on a 7B-shaped model about a sixth of the step's kernel time. ``torch.compile`` fuses it.

Compiled code runs only while :class:`~infiniretri.forward.ForwardRunner` records a graph: the
replays then run the fused kernels, and every other call of the model (the answer, calibration,
the user's own) runs it as before. The capture attention is kept out of the compiled code
(``torch.compiler.disable`` in :mod:`~infiniretri.attention`), so one compiled program serves
every layer. ``compile_layers="auto"`` compiles on CUDA with CUDA graphs for models of at least
:data:`MIN_PARAMETERS` (the compile is paid once per process, in the warm-up or the first call);
smaller models stay eager.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Iterator

import torch
from torch import nn

from .attention import decoder_layers
from .sizing import Choice

MIN_PARAMETERS = 1_000_000_000
"""Parameters from which ``compile_layers="auto"`` compiles."""


def layer_modules(model) -> nn.ModuleList | None:
    """The model's list of decoder layers, or ``None`` where none is found."""
    n = decoder_layers(model)
    for module in model.modules():
        if (
            isinstance(module, nn.ModuleList)
            and len(module) == n
            and all(any(hasattr(m, "layer_idx") for m in layer.modules()) for layer in module)
        ):
            return module
    return None


def choose_compile(setting: bool | str, model, graphs: bool) -> Choice:
    """Whether the scan's layers are compiled, and why (``compile_layers``)."""
    device = next(model.parameters()).device
    if setting is False:
        return Choice(False, "set explicitly")
    if not graphs or device.type != "cuda":
        return Choice(False, "only on CUDA with cuda_graphs (compiled layers run in graphs)")
    if importlib.util.find_spec("triton") is None:
        return Choice(False, "triton is not installed")
    if layer_modules(model) is None:
        return Choice(False, f"no list of decoder layers found in {type(model).__name__}")
    if setting is True:
        return Choice(True, "set explicitly")
    size = sum(p.numel() for p in model.parameters())
    if size < MIN_PARAMETERS:
        return Choice(False, f"auto: {size / 1e9:.2f}B parameters, below {MIN_PARAMETERS:.0e}")
    return Choice(True, f"auto: {size / 1e9:.1f}B parameters on CUDA")


class LayerCompiler:
    """Compiled versions of a model's decoder layers, swapped in only inside :meth:`active`.

    Layers the user already compiled (``module.compile()``) are left as they are.
    """

    def __init__(self, layers: nn.ModuleList) -> None:
        self.layers = list(layers)
        self._compiled = [torch.compile(layer._call_impl, dynamic=True) for layer in self.layers]

    @contextlib.contextmanager
    def active(self) -> Iterator[None]:
        """While open, calls of the layers run their compiled versions."""
        swapped = []
        try:
            for layer, compiled in zip(self.layers, self._compiled):
                if getattr(layer, "_compiled_call_impl", None) is None:
                    layer._compiled_call_impl = compiled
                    swapped.append(layer)
            yield
        finally:
            for layer in swapped:
                layer._compiled_call_impl = None
