"""Capture question-to-context attention at chosen layers, without eager attention.

The model keeps its fast attention (SDPA, flash, ...). We register a thin wrapper of that
implementation in transformers' ``AttentionInterface``; it does nothing unless the forward call
carries a :class:`CaptureRequest` (a per-call keyword argument, so concurrent calls never see each
other's state). At a requested layer the wrapper computes ``softmax(q k^T)`` for the question rows
alone, memory ``O(heads x question_rows x length)``, and at the last requested layer it stops the
forward pass: layers above it never run.
"""

from __future__ import annotations

import contextlib
import contextvars
import sys
from dataclasses import dataclass, field

import torch
from transformers import AttentionInterface
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, AttentionMaskInterface
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

CAPTURE_KWARG = "infiniretri_capture"
_PREFIX = "infiniretri_"


_CAUSAL_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "infiniretri_causal_only", default=False
)


@contextlib.contextmanager
def causal_only():
    """Within this context, a forward without padding mask builds no mask tensor (SDPA only).

    Transformers materialises a ``(B, 1, T, T)`` mask while a CUDA graph is being recorded (it
    cannot check the position ids for packed sequences then), which costs memory and moves SDPA
    off its flash kernel. Capture forwards are plain causal: SDPA's ``is_causal`` is exact.
    """
    token = _CAUSAL_ONLY.set(True)
    try:
        yield
    finally:
        _CAUSAL_ONLY.reset(token)


HeadMap = tuple[tuple[int, tuple[int, ...]], ...]
"""``((layer, (head, ...)), ...)``: layers whose heads are read one by one (hashable)."""


class _StopForward(Exception):
    """Raised inside the forward pass once the last requested layer is captured."""


@dataclass
class CaptureRequest:
    """What one forward pass should capture.

    ``rows`` holds, per batch item, the absolute positions of the query (question) tokens, padded
    to a common length; ``row_valid`` marks the real ones. Inputs are right-padded, so causal
    masking alone keeps every query row off padding.
    """

    layers: tuple[int, ...]
    rows: torch.Tensor
    row_valid: torch.Tensor
    heads: dict[int, torch.Tensor] = field(default_factory=dict)
    """Per layer, indices of the heads to capture one by one, on the model's device (a layer not
    named here: all heads, summed)."""
    scores: dict[int, torch.Tensor] = field(default_factory=dict)

    @property
    def stop_layer(self) -> int:
        return max(self.layers)


def question_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    rows: torch.Tensor,
    row_valid: torch.Tensor,
    scaling: float,
    softcap: float | None = None,
    sliding_window: int | None = None,
    heads: torch.Tensor | None = None,
) -> torch.Tensor:
    """Attention probabilities of the query rows, summed over rows (and heads).

    ``query``: ``(B, H, T, D)``; ``key``: ``(B, H_kv, T, D)`` (grouped-query attention allowed).
    Returns ``(B, T)`` summed over all heads, or with ``heads`` ``(B, len(heads), T)``: those
    heads one by one (only they are computed).
    """
    b, h, t, d = query.shape
    h_kv = key.shape[1]
    groups = h // h_kv
    q_len = rows.shape[1]
    if heads is not None:
        query = query.index_select(1, heads)
        key = key.index_select(1, torch.div(heads, groups, rounding_mode="floor"))
        h, h_kv, groups = len(heads), len(heads), 1
    index = rows.to(query.device)[:, None, :, None].expand(b, h, q_len, d)
    q = torch.gather(query, 2, index).float()  # (B, H, Q, D)
    q = q.view(b, h_kv, groups * q_len, d)
    logits = torch.matmul(q, key.float().transpose(-1, -2)) * scaling  # (B, H_kv, G*Q, T)
    logits = logits.view(b, h, q_len, t)
    if softcap:
        logits = torch.tanh(logits / softcap) * softcap
    cols = torch.arange(t, device=query.device)
    pos = rows.to(query.device)[:, None, :, None]
    masked = cols > pos
    if sliding_window:
        masked = masked | (cols <= pos - sliding_window)
    logits = logits.masked_fill(masked, float("-inf"))
    probs = torch.softmax(logits, dim=-1)
    probs = probs * row_valid.to(query.device)[:, None, :, None]
    return probs.sum(dim=2) if heads is not None else probs.sum(dim=(1, 2))


def _scaling(module, query: torch.Tensor, given: float | None) -> float:
    if given is not None:
        return given
    own = getattr(module, "scaling", None)
    return own if own is not None else query.shape[-1] ** -0.5


def _base_function(module, base: str):
    if base == "eager":
        return sys.modules[type(module).__module__].eager_attention_forward
    return ALL_ATTENTION_FUNCTIONS[base]


def _make_wrapper(base: str):
    def attention(module, query, key, value, attention_mask, **kwargs):
        request: CaptureRequest | None = kwargs.pop(CAPTURE_KWARG, None)
        if request is not None:
            layer = module.layer_idx
            if layer in request.layers:
                request.scores[layer] = question_attention(
                    query,
                    key,
                    request.rows,
                    request.row_valid,
                    _scaling(module, query, kwargs.get("scaling")),
                    softcap=kwargs.get("softcap"),
                    sliding_window=kwargs.get("sliding_window"),
                    heads=request.heads.get(layer),
                )
                if layer == request.stop_layer:
                    raise _StopForward
        return _base_function(module, base)(module, query, key, value, attention_mask, **kwargs)

    attention.__name__ = f"{_PREFIX}{base}"
    # Compiled layers (``compile_layers``) call it as it is: one compiled program for all layers.
    return torch.compiler.disable(attention)


def _make_mask(function, sdpa: bool):
    def mask(*args, **kwargs):
        if (
            sdpa
            and _CAUSAL_ONLY.get()
            and kwargs.get("attention_mask") is None
            and kwargs.get("q_length") == kwargs.get("kv_length")
            and not kwargs.get("q_offset")
            and not kwargs.get("kv_offset")
            and (kwargs.get("local_size") is None or kwargs["kv_length"] <= kwargs["local_size"])
        ):
            return None  # plain causal: SDPA's is_causal
        return function(*args, **kwargs)

    mask.__name__ = f"{_PREFIX}mask"
    return mask


def install_capture(model) -> str:
    """Route ``model``'s attention through the capturing wrapper of its current implementation.

    Idempotent; the model computes exactly what it did before for any call without a request.
    Returns the base implementation name (``"sdpa"``, ``"eager"``, ...).
    """
    current = model.config._attn_implementation or "eager"
    base = current.removeprefix(_PREFIX)
    name = f"{_PREFIX}{base}"
    if name not in ALL_ATTENTION_FUNCTIONS:
        AttentionInterface.register(name, _make_wrapper(base))
    if name not in ALL_MASK_ATTENTION_FUNCTIONS:
        mask_base = base if base in ALL_MASK_ATTENTION_FUNCTIONS else "sdpa"
        AttentionMaskInterface.register(
            name, _make_mask(ALL_MASK_ATTENTION_FUNCTIONS[mask_base], base == "sdpa")
        )
    if current != name:
        model.set_attn_implementation(name)
    return base


def text_config(model):
    """The language model's config (the text part of a multimodal config)."""
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def decoder_layers(model) -> int:
    """Number of decoder layers of a causal LM."""
    config = text_config(model)
    n = getattr(config, "num_hidden_layers", None)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"cannot find the number of decoder layers of {type(model).__name__}")
    return n


def head_index(
    heads: dict[int, tuple[int, ...]] | None, device: torch.device
) -> dict[int, torch.Tensor]:
    """``{layer: head indices}`` as the index tensors a :class:`CaptureRequest` holds."""
    return {
        layer: torch.tensor(chosen, dtype=torch.long, device=device)
        for layer, chosen in (heads or {}).items()
    }


def run_request(model, input_ids: torch.Tensor, request: CaptureRequest) -> None:
    """One forward pass that carries ``request`` and stops after its last layer."""
    with contextlib.suppress(_StopForward):
        model(input_ids=input_ids, use_cache=False, **{CAPTURE_KWARG: request})


@torch.inference_mode()
def capture(
    model,
    input_ids: torch.Tensor,
    rows: torch.Tensor,
    row_valid: torch.Tensor,
    layers: tuple[int, ...],
    heads: dict[int, tuple[int, ...]] | None = None,
) -> dict[int, torch.Tensor]:
    """Run right-padded ``input_ids`` up to ``max(layers)``; return ``{layer: (B, T)}``.

    Each value sums, over heads and valid query rows, the attention each position receives;
    a layer named in ``heads`` gives ``(B, len(heads[layer]), T)``, those heads one by one.
    """
    request = CaptureRequest(
        layers=tuple(sorted(set(layers))),
        rows=rows,
        row_valid=row_valid,
        heads=head_index(heads, input_ids.device),
    )
    run_request(model, input_ids, request)
    missing = [layer for layer in request.layers if layer not in request.scores]
    if missing:
        raise ValueError(
            f"{type(model).__name__} did not route attention through transformers' "
            f"AttentionInterface at layers {missing}; InfiniRetri supports models that do "
            "(Llama, Qwen2/3, Mistral, Gemma, Phi-3, ...)"
        )
    return request.scores
