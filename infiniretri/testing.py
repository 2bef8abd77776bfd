"""Helpers for tests: the shared embedded engine and tiny random-weight models (no download)."""

from __future__ import annotations

import functools

import torch

from .engine import InfiniRetri
from .loading import embedded_model_dir

TINY_ARCHS = ("llama", "qwen2", "mistral", "gemma", "gemma2")


@functools.lru_cache(maxsize=1)
def embedded_engine() -> InfiniRetri:
    """One engine over the real embedded model per process (loading it once)."""
    return InfiniRetri.from_pretrained()


@functools.lru_cache(maxsize=1)
def embedded_tokenizer():
    """The embedded model's tokenizer (it has a chat template); tiny models share it."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_model_dir())


def tiny_config(arch: str = "llama", layers: int = 4, vocab_size: int | None = None):
    """A tiny config of ``arch``: 64 hidden units, 4 heads, 2 key/value heads."""
    from transformers import AutoConfig

    if arch not in TINY_ARCHS:
        raise ValueError(f"arch must be one of {TINY_ARCHS}, got {arch!r}")
    vocab = vocab_size or len(embedded_tokenizer())
    options = dict(
        vocab_size=vocab,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=16,
        max_position_embeddings=8192,
        tie_word_embeddings=True,
    )
    if arch == "mistral":
        options["sliding_window"] = 4096
    if arch == "gemma2":
        options["sliding_window"] = 128
        options["attn_logit_softcapping"] = 50.0
        options["query_pre_attn_scalar"] = 16
    return AutoConfig.for_model(arch, **options)


def tiny_model(
    arch: str = "llama", seed: int = 0, layers: int = 4, attn_implementation: str | None = None
):
    """``(model, tokenizer)``: a tiny random-weight ``arch`` model and the embedded tokenizer.

    The attention implementation defaults to SDPA (eager for Gemma 2, which has no SDPA path).
    """
    if attn_implementation is None:
        attn_implementation = "eager" if arch == "gemma2" else "sdpa"
    from transformers import AutoModelForCausalLM

    tokenizer = embedded_tokenizer()
    config = tiny_config(arch, layers)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config, attn_implementation=attn_implementation)
    model.eval()
    return model, tokenizer


def silent_engine(engine: InfiniRetri) -> InfiniRetri:
    """A copy of ``engine`` (a Llama-style model) whose model only ever writes token 0 (end of
    text): every answer is empty, for tests of empty answers. Free decoding and no quote (a copy
    bonus would lift the evidence's tokens above token 0; a reader that ends at once after its
    quote answers with the quote)."""
    import copy

    model = copy.deepcopy(engine.model)
    with torch.no_grad():
        model.model.norm.weight.zero_()  # all logits 0: token 0 wins
    return InfiniRetri(model, engine.tokenizer, engine.settings, answer_copy=0.0, answer_quote=0)
