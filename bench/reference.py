"""Run the reference package ``infini-retri==0.0.3`` (the paper authors') on the same model.

It is installed with ``--no-deps``; it imports ``tiktoken``, ``scipy``, ``matplotlib`` and
``seaborn`` (the last two only for plots it draws when asked to). When seaborn is absent a
stand-in module is registered so the import succeeds; no plot is ever drawn here. The package
needs eager attention, so it gets its own copy of the model loaded with
``attn_implementation="eager"``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from dataclasses import dataclass

import torch

REFERENCE_WHEEL = "infini-retri==0.0.3"
REFERENCE_PROMPT = (
    "Read the book and answer the question. Be very concise in your answer.\n\n{context}\n\n"
    "Question:\n\n{question}\n\nAnswer:"
)
"""The package's default prompt (its ``InfiniRetri.generate`` uses this one)."""


def _import_reference():
    os.environ.setdefault("TQDM_DISABLE", "1")
    if importlib.util.find_spec("seaborn") is None and "seaborn" not in sys.modules:
        sys.modules["seaborn"] = types.ModuleType("seaborn")  # used only by plotting code
    try:
        from infini_retri.pipline import Pipline
    except ImportError as err:
        raise ImportError(
            f"the reference package is missing: pip install --no-deps {REFERENCE_WHEEL} ({err})"
        ) from err
    return Pipline


def load_eager_model(path, device: str = "cpu", dtype: torch.dtype = torch.float32):
    """``(model, tokenizer)`` of a local model directory with eager attention."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="eager")
    return model.to(device).eval(), tokenizer


@dataclass
class ReferenceResult:
    answer: str
    final_prompt: str
    prompt_tokens: int
    document_tokens: int
    tokens_processed: int
    forward_passes: int


class ReferenceRunner:
    """One reference pipeline over an eager model (settings named as in our engine)."""

    def __init__(
        self,
        model,
        tokenizer,
        chunk_tokens: int = 1024,
        phrase_tokens: int = 8,
        top_k_tokens: int = 300,
    ) -> None:
        pipline_cls = _import_reference()
        config = {
            "topk": top_k_tokens,
            "phrase_token_num": phrase_tokens,
            "chunk_size": chunk_tokens,
        }
        self.pipeline = pipline_cls(model=model, tokenizer=tokenizer, config=config)
        self.model = model
        self._lengths: list[int] | None = None
        model.register_forward_pre_hook(self._count, with_kwargs=True)

    def _count(self, module, args, kwargs):
        if self._lengths is not None:
            ids = kwargs.get("input_ids", args[0] if args else None)
            if ids is not None:
                self._lengths.append(int(ids.shape[-1]))

    def run(self, context: str, question: str, max_new_tokens: int = 32) -> ReferenceResult:
        """Scan ``context`` and answer ``question`` the way the package's ``generate`` does."""
        self._lengths = []
        try:
            response, info = self.pipeline.generate2(
                data_dict={"context": context, "question": question},
                prompt=REFERENCE_PROMPT,
                gen_name="InfiniRetri",
                temperature=0.5,
                max_new_tokens=max_new_tokens,
            )
            lengths = self._lengths
        finally:
            self._lengths = None
        prompt_tokens = int(info["input_token_length"])
        # Forward passes of the scan: all calls before generation's prefill and its 1-token steps.
        scan = lengths[: max(0, len(lengths) - _generation_calls(lengths, prompt_tokens))]
        return ReferenceResult(
            answer=response.strip(),
            final_prompt=info["input_text"],
            prompt_tokens=prompt_tokens,
            document_tokens=int(info["origin_token_length"]),
            tokens_processed=sum(scan),
            forward_passes=len(scan),
        )


def _generation_calls(lengths: list[int], prompt_tokens: int) -> int:
    """How many trailing forward calls belong to ``model.generate`` (prefill, then 1-token)."""
    for n, length in enumerate(reversed(lengths), start=1):
        if length == prompt_tokens:
            return n
        if length != 1:
            break
    return 0
