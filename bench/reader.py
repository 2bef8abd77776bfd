"""The reader: the engine's own answer prompt, decoded greedily, many prompts at a time.

Every method's selection is answered through exactly the prompt ``engine.answer_from`` builds
(``engine.layout`` around the selected sentences' token ids and the question), so only the
selection differs between methods. Prompts are decoded in left-padded batches by the engine's own
``greedy_batch``, which gives what ``engine.answer_from`` gives, one prompt at a time.
"""

from __future__ import annotations

from collections.abc import Sequence

from infiniretri.generation import end_token_ids, greedy_batch


def question_ids(engine, question: str) -> list[int]:
    """The question's ids as the engine reads them."""
    return engine.question_ids(question)


def unit_ids(engine, texts: Sequence[str]) -> list[list[int]]:
    """Token ids of sentences as the engine reads them mid-document (a leading space)."""
    return engine.segmenter.encode(list(texts))


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
        outs = greedy_batch(
            model,
            tokenizer,
            [list(prompts[i]) for i in group],
            [new] * len(group),
            end_ids,
            pad_id=pad_id,
        )
        for i, (text, _) in zip(group, outs):
            answers[i] = text.strip()
    return answers
