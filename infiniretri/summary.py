"""The summary track: notes on what the sentence cache leaves out (``answer_mode``).

The cache keeps the few sentences the question's attention points at, which answers a needle
question but not one that needs the whole document ("List every supplier the contract
names"). The summary track keeps, beside the cache, a bounded and ordered list of *stretches*:
the source read so far, cut into consecutive stretches, each holding its best-scored sentences
that the cache left out (at most ``summary_source_tokens`` tokens of them).

* Every step adds a stretch for the chunk it read. The chunk's sentences that the cache did not
  keep go to it; sentences the cache drops later go to the stretch they were read in. A
  sentence's score is its standardised score at the step that left it out.
* Beyond ``summary_notes`` stretches, the two neighbours that cover the fewest document tokens
  merge, keeping the best sentences of both: coverage stays even and memory flat in length.
* After the scan, the model writes one note per stretch (at most ``summary_note_tokens``
  tokens, copying from the stretch's sentences), all stretches in one batch. A note carries its
  stretch's character range; it is generated text, marked ``kind="summary"``.

The notes are written once, at the end, rather than at every step: their cost is then bounded
by ``summary_notes`` whatever the length (a generate per step would double a 1M-token scan),
and ``answer_mode="auto"`` decides with the whole scan seen whether to write them at all.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from .copying import CopyBias
from .generation import greedy_batch
from .model_context import ModelContext
from .prompt import PromptLayout
from .results import Note
from .segments import Unit

ANSWER_MODES = ("retrieval", "summary", "auto")
"""How the answer step reads a document: the cache; notes and cache; or the engine decides."""

NOTE_PROMPT = (
    "{context}\n\nCopy the one sentence above that best helps answer the question. If none "
    "does, write: nothing.\nQuestion: {question}"
)
"""The user turn a note is written after (the stretch's sentences, then the question)."""

EMPTY_NOTE = "nothing"
"""What a note says when its stretch holds nothing on the question (such notes are dropped)."""


@dataclass
class Stretch:
    """Consecutive source read in one or more steps, and its best left-out sentences."""

    start: tuple[int, int]
    """(document, character) where the stretch begins."""
    end: tuple[int, int]
    """(document, character) where it ends."""
    tokens: int
    """Document tokens it covers."""
    picks: list[tuple[float, Unit]] = field(default_factory=list)
    """Its best left-out sentences and their scores, best first."""

    def trim(self, budget: int) -> None:
        """Keep the best picks that fit ``budget`` tokens (a long one may be skipped)."""
        self.picks.sort(key=lambda p: (-p[0], p[1].doc_index, p[1].char_start))
        kept, used = [], 0
        for score, unit in self.picks:
            if used + len(unit.ids) <= budget:
                kept.append((score, unit))
                used += len(unit.ids)
        self.picks = kept

    def sentences(self) -> list[Unit]:
        """The picks in document order."""
        return sorted((u for _, u in self.picks), key=lambda u: (u.doc_index, u.char_start))


class Drafts:
    """The stretches of one scan: at most ``notes`` of them, each with ``source_tokens``."""

    def __init__(self, notes: int, source_tokens: int) -> None:
        self.notes = notes
        self.source_tokens = source_tokens
        self.stretches: list[Stretch] = []

    def read(self, chunk: Sequence[Unit], left_out: Sequence[tuple[Unit, float]]) -> None:
        """Add the stretch of ``chunk``; file the units the cache left out at this step.

        Only the step's best left-out units that fit ``source_tokens`` are filed: no stretch
        could keep more of them.
        """
        if chunk:
            first, last = chunk[0], chunk[-1]
            self.stretches.append(
                Stretch(
                    (first.doc_index, first.char_start),
                    (last.doc_index, last.char_end),
                    sum(len(u.ids) for u in chunk),
                )
            )
        if not self.stretches:
            return
        starts = [s.start for s in self.stretches]
        touched: set[int] = set()
        used = 0
        for unit, score in sorted(left_out, key=lambda p: -p[1]):
            if used + len(unit.ids) > self.source_tokens:
                continue
            used += len(unit.ids)
            at = max(bisect.bisect_right(starts, (unit.doc_index, unit.char_start)) - 1, 0)
            self.stretches[at].picks.append((score, unit))
            touched.add(at)
        for at in touched:
            self.stretches[at].trim(self.source_tokens)
        while len(self.stretches) > self.notes:
            self._merge()

    def _merge(self) -> None:
        """Merge the neighbours that cover the fewest tokens together."""
        pairs = range(len(self.stretches) - 1)
        i = min(pairs, key=lambda i: self.stretches[i].tokens + self.stretches[i + 1].tokens)
        a, b = self.stretches[i], self.stretches[i + 1]
        merged = Stretch(a.start, b.end, a.tokens + b.tokens, a.picks + b.picks)
        merged.trim(self.source_tokens)
        self.stretches[i : i + 2] = [merged]

    def with_sentences(self) -> list[Stretch]:
        """The stretches that hold left-out sentences, in document order."""
        return [s for s in self.stretches if s.picks]


def note_text(written: str) -> str:
    """A written note, cleaned; ``""`` when it says its stretch holds nothing."""
    text = " ".join(written.split()).strip()
    bare = text.lower().strip(" .!\"'")
    if not bare or bare == EMPTY_NOTE or bare.startswith(EMPTY_NOTE + " "):
        return ""
    return text


@dataclass(frozen=True)
class WrittenNotes:
    """The notes of one scan and what writing them cost."""

    notes: list[Note]
    tokens: int
    """Note prompts read plus notes written."""
    seconds: float


class NoteWriter:
    """Writes the notes of many scans' stretches in batches (greedy, copying from the source)."""

    def __init__(
        self, context: ModelContext, note_tokens: int, copy_bonus: float, batch_size: int
    ) -> None:
        self.context = context
        self.layout = PromptLayout.from_tokenizer(context.tokenizer, NOTE_PROMPT)
        self.note_tokens = note_tokens
        self.copy_bonus = copy_bonus
        self.batch_size = batch_size

    def write(self, jobs: Sequence[tuple[Sequence[Stretch], str]]) -> list[WrittenNotes]:
        """For each (stretches, question) job, one note per stretch, in document order."""
        started = time.perf_counter()
        flat = [(j, s) for j, (stretches, _) in enumerate(jobs) for s in stretches]
        questions = [self.context.encode(self.layout.question_lead + q) for _, q in jobs]
        prompts = [self._prompt(s, questions[j]) for j, s in flat]
        written: list[tuple[str, int]] = []
        for at in range(0, len(prompts), self.batch_size):
            group = prompts[at : at + self.batch_size]
            written += greedy_batch(
                self.context.model,
                self.context.tokenizer,
                [ids for ids, _ in group],
                [self.note_tokens] * len(group),
                self.context.end_ids,
                ("\n",),
                self.context.pad_id,
                [self._copy(spans) for _, spans in group],
            )
        seconds = time.perf_counter() - started
        notes: list[list[Note]] = [[] for _ in jobs]
        tokens = [0] * len(jobs)
        for (j, stretch), (ids, _), (text, count) in zip(flat, prompts, written):
            tokens[j] += len(ids) + count
            clean = note_text(text)
            if clean:
                (d0, c0), (d1, c1) = stretch.start, stretch.end
                sources = tuple(
                    (u.doc_index, u.char_start, u.char_end) for u in stretch.sentences()
                )
                notes[j].append(Note(clean, d0, c0, d1, c1, sources=sources))
        share = seconds / max(len(jobs), 1)
        return [WrittenNotes(n, t, share) for n, t in zip(notes, tokens)]

    def _prompt(self, stretch: Stretch, question_ids: list[int]):
        units = stretch.sentences()
        context = [i for u in units for i in u.ids]
        ids = self.layout.build(context, question_ids).ids
        return ids, [tuple(u.ids) for u in units]

    def _copy(self, spans: list[tuple[int, ...]]) -> CopyBias | None:
        if not self.copy_bonus or not spans:
            return None
        return CopyBias(spans, self.copy_bonus, self.context.word_tokens)
