"""The reader: the engine's own answer prompt, decoded greedily, many prompts at a time.

Every method's selection is answered through exactly the prompt ``engine.answer_from`` builds
(``engine.layout`` around the selected sentences' token ids and the question), so only the
selection differs between methods. Prompts are decoded in left-padded batches; greedy decoding
gives what ``engine.answer_from`` gives, one prompt at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from transformers import DynamicCache

from infiniretri.generation import end_token_ids


def question_ids(engine, question: str) -> list[int]:
    """The question's ids as the engine reads them."""
    text = engine.layout.question_lead + question.strip()
    return list(engine.tokenizer(text, add_special_tokens=False)["input_ids"])


def unit_ids(engine, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of sentences as the engine reads them mid-document (a leading space)."""
    if not texts:
        return []
    enc = engine.tokenizer([" " + t for t in texts], add_special_tokens=False)
    return [list(ids) for ids in enc["input_ids"]]


def selection_prompt(engine, sentence_ids: Sequence[Sequence[int]], question: str) -> list[int]:
    """The answer prompt over selected sentences (what ``answer_from`` reads)."""
    context = [i for ids in sentence_ids for i in ids]
    return engine.layout.build(context, question_ids(engine, question)).ids


def full_context_prompt(
    engine, document: str, question: str, max_new_tokens: int
) -> tuple[list[int], int, bool]:
    """The answer prompt over the whole document, cut to the window the way LongBench does.

    When the document does not fit, its middle is dropped: the first and last halves of the
    room are kept. Returns ``(prompt ids, document tokens kept, truncated?)``.
    """
    doc = list(engine.tokenizer(document, add_special_tokens=False)["input_ids"])
    q = question_ids(engine, question)
    room = engine.context_window - engine.layout.overhead - len(q) - max_new_tokens
    truncated = len(doc) > room
    if truncated:
        half = room // 2
        doc = doc[:half] + doc[len(doc) - (room - half) :]
    return engine.layout.build(doc, q).ids, len(doc), truncated


@torch.inference_mode()
def _greedy(model, prompts: list[list[int]], max_new_tokens: int, end_ids: set[int], pad_id: int):
    device = next(model.parameters()).device
    width = max(len(p) for p in prompts)
    n = len(prompts)
    ids = torch.full((n, width), pad_id, dtype=torch.long)
    mask = torch.zeros((n, width), dtype=torch.long)
    for i, p in enumerate(prompts):
        ids[i, width - len(p) :] = torch.tensor(p)
        mask[i, width - len(p) :] = 1
    ids, mask = ids.to(device), mask.to(device)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    past = DynamicCache(config=model.config)
    ends = torch.tensor(sorted(end_ids), device=device)
    out = [[] for _ in range(n)]
    done = torch.zeros(n, dtype=torch.bool, device=device)
    step_ids = ids
    for _ in range(max_new_tokens):
        logits = model(
            input_ids=step_ids,
            attention_mask=mask,
            position_ids=positions,
            past_key_values=past,
            use_cache=True,
            logits_to_keep=1,
        ).logits[:, -1]
        token = logits.argmax(-1)
        done = done | torch.isin(token, ends)
        token = torch.where(done, torch.full_like(token, pad_id), token)
        for i, t in enumerate(token.tolist()):
            if not done[i]:
                out[i].append(t)
        if bool(done.all()):
            break
        step_ids = token[:, None]
        mask = torch.cat([mask, torch.ones((n, 1), dtype=mask.dtype, device=device)], dim=1)
        positions = positions[:, -1:] + 1
    return out


def read_batch(
    engine,
    prompts: Sequence[Sequence[int]],
    max_new_tokens: int = 32,
    batch_size: int = 16,
) -> list[str]:
    """Greedy answers to many prompts (batched by length, returned in the input order)."""
    model, tokenizer = engine.model, engine.tokenizer
    end_ids = end_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id
    if pad_id is None:
        pad_id = min(end_ids)
    answers: list[str] = [""] * len(prompts)
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    for start in range(0, len(order), batch_size):
        group = order[start : start + batch_size]
        room = engine.context_window - max(len(prompts[i]) for i in group)
        new = max(1, min(max_new_tokens, room))
        outs = _greedy(model, [list(prompts[i]) for i in group], new, end_ids, pad_id)
        for i, ids in zip(group, outs):
            answers[i] = tokenizer.decode(ids, skip_special_tokens=True).strip()
    return answers
