"""How much one scan step reads: ``chunk_tokens="auto"`` and ``batch_size="auto"``, resolved.

The engine resolves both settings here, from the device and the model, once per engine.

**Chunk** (``chunk_tokens="auto"``). Every step reads ``cache + chunk + question`` through the
model, so the share of document tokens in a forward grows with the chunk.

* On an accelerator (CUDA, ...): the largest multiple of :data:`CHUNK_STEP` that fits the
  model's window next to the prompt layout, a cache of :data:`TYPICAL_CACHE_TOKENS` and a
  question of :data:`TYPICAL_QUESTION_TOKENS`, at most :data:`ACCELERATOR_MAX_CHUNK` (a power
  of two below one step). An 8k window gives 6144: one 1M-token document takes 157 steps and
  1.19 tokens through the model per document token, against 236 steps and 1.31 at 4096 (the
  largest power of two) and 2.4 at 1024; the scan is GPU-bound, so fewer, fuller steps are
  faster (``bench/results/speed_defaults.json``), and the needle is kept in the whole NIAH grid
  (``bench/results/niah_answer_e0d2077.json``). A 32k window gives 16384. Larger windows, larger
  chunks: on a large model the cache and question are then a small share of every forward
  even when the cache holds several thousand tokens.
* On a CPU: :data:`CPU_CHUNK` (1024), or less where the window is small. Measured on the demo
  document (2-core Xeon, bf16, ``bench/results/speed_defaults.json``): 2048 reads it 10% faster
  but keeps 19 of the 21 sentences kept at 1024, and 4096 changes the answer, so the CPU keeps
  1024.

A window too small for the typical cache reserves at most half of what is left for it.

**Batch** (``batch_size="auto"``): how many (document, question) pairs share a forward.

* On a CPU: 1. One window of a thousand tokens already uses every core; padding only adds work.
* On an accelerator: :data:`LAUNCH_BOUND_BATCH`. Measured side by side on one H200
  (``bench/results/speed_defaults.json``, SmolLM2-135M, CUDA graphs on, 16 x 128k-token
  documents): batches of 16 read 259,694 document tokens/s against 190,624 one by one at chunk
  1024 (1.36x), and 443,328 against 393,070 at chunk 6144 (1.13x). Batching pays, less so with
  larger chunks, which fill the device on their own; it is never slower.

Answers are generated :func:`generation_batch_size` at a time: a decoding step costs about the
same for one sequence as for sixteen, so batched generation pays on every device.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

AUTO = "auto"
"""The value of a setting that the engine resolves from the device and the model."""

CHUNK_STEP = 1024
"""``"auto"`` chunks on an accelerator are multiples of this (where the window allows one)."""

ACCELERATOR_MAX_CHUNK = 16384
"""The largest chunk ``"auto"`` picks on an accelerator (attention grows with the view)."""

CPU_CHUNK = 1024
"""The chunk ``"auto"`` picks on a CPU (where the window allows)."""

TYPICAL_CACHE_TOKENS = 1536
"""Room left for the cache: at ``top_k_tokens=300`` it held 1,100-1,400 tokens on 1M tokens."""

TYPICAL_QUESTION_TOKENS = 64
"""Room left for the question."""

MIN_AUTO_CHUNK = 16
"""The least chunk ``"auto"`` picks (a window smaller than that is refused by the engine)."""

LAUNCH_BOUND_BATCH = 16
"""Pairs per forward where each forward pays kernel launches (no CUDA graphs)."""

GENERATION_BATCH = 16
"""Answers generated together when ``batch_size`` is ``"auto"``."""

ROWS_PER_CALL = 16
"""Rows a batch job hands to one engine call when ``batch_size`` is ``"auto"``."""


class Choice(NamedTuple):
    """A resolved size and why it was chosen."""

    value: int
    reason: str


def _largest_power_of_two(n: int) -> int:
    return 1 << (n.bit_length() - 1) if n >= 1 else 0


def _largest_step_multiple(n: int) -> int:
    """The largest multiple of :data:`CHUNK_STEP` up to ``n``, or below one step the largest
    power of two."""
    return n // CHUNK_STEP * CHUNK_STEP if n >= CHUNK_STEP else _largest_power_of_two(n)


def auto_chunk_tokens(
    device_type: str,
    context_window: int,
    overhead: int,
    *,
    cache_tokens: int = TYPICAL_CACHE_TOKENS,
    question_tokens: int = TYPICAL_QUESTION_TOKENS,
) -> int:
    """The chunk ``chunk_tokens="auto"`` gives for this device type (``"cuda"``, ``"cpu"``, ...)
    and window (``overhead``: the prompt layout's fixed tokens). See the module doc."""
    left = context_window - overhead - question_tokens
    fit = left - min(cache_tokens, left // 2)
    if device_type == "cpu":
        return max(MIN_AUTO_CHUNK, min(CPU_CHUNK, _largest_power_of_two(fit)))
    return max(MIN_AUTO_CHUNK, min(ACCELERATOR_MAX_CHUNK, _largest_step_multiple(fit)))


def choose_chunk_tokens(
    setting: int | str, device_type: str, context_window: int, overhead: int
) -> Choice:
    """``chunk_tokens`` as an int: the setting itself, or the ``"auto"`` rule's pick."""
    if setting != AUTO:
        return Choice(int(setting), "set explicitly")
    value = auto_chunk_tokens(device_type, context_window, overhead)
    where = "CPU" if device_type == "cpu" else device_type
    return Choice(
        value,
        f"auto: {where}, {context_window}-token window, room for a {TYPICAL_CACHE_TOKENS}-token "
        f"cache and a {TYPICAL_QUESTION_TOKENS}-token question",
    )


def auto_batch_size(device_type: str) -> int:
    """The pairs per forward ``batch_size="auto"`` gives (see the module doc). Batching paid on
    the H200 with CUDA graphs on; without them every forward pays its launches, which a batch
    shares, so CUDA graphs do not change the pick."""
    if device_type == "cpu":
        return 1
    return LAUNCH_BOUND_BATCH


def choose_batch_size(setting: int | str, device_type: str) -> Choice:
    """``batch_size`` as an int: the setting itself, or the ``"auto"`` rule's pick."""
    if setting != AUTO:
        return Choice(int(setting), "set explicitly")
    value = auto_batch_size(device_type)
    if value == 1:
        why = "one pair per forward: a window already fills the device, padding only adds work"
    else:
        why = "a batch shares each forward's launches and fills the device (measured 1.1-1.4x)"
    return Choice(value, f"auto: {device_type}, {why}")


def generation_batch_size(setting: int | str) -> int:
    """Answers generated together: ``batch_size``, or :data:`GENERATION_BATCH` for ``"auto"``."""
    return GENERATION_BATCH if setting == AUTO else int(setting)


def rows_per_call(setting: int | str) -> int:
    """Rows a batch job gives one engine call: ``batch_size``, or :data:`ROWS_PER_CALL` for
    ``"auto"`` (the engine then scans them at its own batch size)."""
    return ROWS_PER_CALL if setting == AUTO else int(setting)


def check_auto_or_positive_int(name: str, value: Any) -> None:
    """Raise ``ValueError`` naming ``name`` unless ``value`` is ``"auto"`` or an int >= 1."""
    if value == AUTO and isinstance(value, str):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer or 'auto', got {value!r}")


WARMUP_QUESTION_TOKENS = (16, 32)
"""Question lengths whose window shapes :meth:`InfiniRetri.warmup` records (rows buckets)."""

MAX_WARM_SHAPES = 48
"""The most shapes one warm-up records (half of the graphs a runner keeps)."""


def warm_shapes(
    overhead: int,
    chunk_tokens: int,
    max_sentence_tokens: int,
    context_window: int,
    length_bucket: int,
    question_tokens: Sequence[int] = WARMUP_QUESTION_TOKENS,
) -> list[tuple[int, int]]:
    """``(prompt length, question tokens)`` pairs a long document's scan goes through.

    A step reads ``overhead + cache + chunk + question`` tokens; a full chunk holds at least
    ``chunk_tokens - max_sentence_tokens`` (whole sentences) and the cache up to about twice
    :data:`TYPICAL_CACHE_TOKENS`. Lengths are multiples of ``length_bucket`` (the graphs'
    buckets), at most the window, at most :data:`MAX_WARM_SHAPES` pairs in all.
    """
    shapes: list[tuple[int, int]] = []
    for question in question_tokens:
        low = overhead + max(1, chunk_tokens - max_sentence_tokens) + question
        high = min(context_window, overhead + chunk_tokens + question + 2 * TYPICAL_CACHE_TOKENS)
        length = -(-low // length_bucket) * length_bucket
        while length <= high and len(shapes) < MAX_WARM_SHAPES:
            if length - overhead - question >= 1:
                shapes.append((length, question))
            length += length_bucket
    return shapes
