"""Aggregate questions, generated in code: "list every X that Y" over a long haystack.

Each document hides N *gold* items (ships that docked at one port, minerals one survey found,
guests of one hotel, compounds made in one laboratory: one *scenario* per document) and M
*distractors*: items of the same class in a sibling context (ships that docked at another port
...), written with the same templates. Every item is mentioned once, in one sentence of its
own inserted at a sentence end of the haystack, at seeded depths spread through the document
(one depth per item in as many equal slices, shuffled). The question asks for every gold item.

No single sentence answers it, and N is larger than the sentences the answer step shows (8 by
default), so retrieval alone cannot list them all: the task needs the whole document.

- Item names are invented (pronounceable surnames, ship names, mineral names ending in -ite,
  compound codes such as ``RK-2291``), checked absent from the haystack, pairwise distinct and
  never a whole word of another name or of the scenario's places.
- Sentences come from six templates per scenario that differ in structure (subject first, place
  first, passive, cleft, relative clause, a log entry), dealt round-robin from a shuffled order,
  with seeded fillers (dates, cargoes, rooms ...), so no one pattern gathers them; distractors use
  the same templates with the sibling context, so listing every name is wrong.
- N grows with the length (:func:`gold_count`: 10 at 8k, 20 at 32k, 40 at 128k), M is half of N.

Scores (:func:`score_answer`): *recall* is the fraction of gold names the answer names (a
case-insensitive whole-name match), *precision* is gold named over gold and distractors named
(``None`` when the answer names none of them), *F1* their harmonic mean (0 when either is 0 or
undefined). Haystacks: the Paul Graham essays or the Wikipedia prose the project ships, read as
``bench.multineedle_data`` reads them (``HaystackSource``).
"""

from __future__ import annotations

import functools
import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .multineedle_data import HAYSTACKS, HaystackSource, insert_at, load_source

__all__ = [
    "HAYSTACKS",
    "LENGTHS",
    "SCENARIOS",
    "AggregateCase",
    "Item",
    "Scenario",
    "gold_count",
    "load_source",
    "make_case",
    "make_needle_case",
    "name_in",
    "score_answer",
]

LENGTHS = (32_000, 128_000)
DISTRACTOR_SHARE = 0.5
"""Distractors per gold item."""


# =========================================================================== names
_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "k", "kr", "l", "m", "n", "p", "pr", "r", "s")
_ONSETS += ("st", "t", "tr", "v", "z", "h", "th", "w", "c", "sh")
_VOWELS = ("a", "e", "i", "o", "u", "a", "e", "o")
_INNER = ("", "", "", "n", "r", "l", "s")
_CODAS = ("n", "r", "l", "s", "m", "nd", "rk", "st", "d", "t")


def _stem(rng: random.Random, syllables: int, codas: Sequence[str] = _CODAS) -> str:
    """Pronounceable syllables; no letter doubled where two syllables meet."""
    out = ""
    for i in range(syllables):
        onset = rng.choice(_ONSETS)
        while out and onset[0] == out[-1]:
            onset = rng.choice(_ONSETS)
        coda = rng.choice(_INNER) if i < syllables - 1 else rng.choice(codas)
        out += onset + rng.choice(_VOWELS) + coda
    return out


def _ship(rng: random.Random) -> str:
    """A ship's name: "Sorentia", "Vardo"."""
    stem = _stem(rng, 2, ("n", "r", "l", "s", "nt", "d", "v"))
    return (stem + rng.choice(("a", "ia", "o", "a", "ine"))).capitalize()


def _mineral(rng: random.Random) -> str:
    """A mineral's name: "Koramite", "Velorite"."""
    return _stem(rng, 2, ("n", "r", "l", "s", "m", "d", "t", "v")).capitalize() + "ite"


def _surname(rng: random.Random) -> str:
    """A surname: "Broxley", "Vellard"."""
    stem = _stem(rng, rng.choice((1, 1, 2)), ("", "n", "r", "l", "s", "x"))
    return (stem + rng.choice(("berg", "ley", "ford", "ovic", "ard", "mann", "ini", "sby"))).title()


def _code(rng: random.Random) -> str:
    """A compound's code: "RK-2291"."""
    letters = "".join(rng.choice("BCDFGHKLMNPRSTVXZ") for _ in range(2))
    return f"{letters}-{rng.randint(1000, 9999)}"


# =========================================================================== scenarios
@dataclass(frozen=True)
class Scenario:
    """One kind of aggregate question: the item class, the gold and sibling contexts, the
    templates (each with one ``{name}`` and one ``{place}``) and their fillers."""

    name: str
    noun: str
    """The item class, plural ("ships")."""
    place: str
    """The gold context, as the templates write it."""
    other_place: str
    """The distractors' context."""
    question: str
    """The question, with ``{place}``."""
    templates: tuple[str, ...]
    fillers: dict[str, tuple[str, ...]] = field(default_factory=dict)
    style: str = "word"
    """How names are made: ``ship``, ``mineral``, ``surname`` or ``code``."""

    def new_name(self, rng: random.Random) -> str:
        return {"ship": _ship, "mineral": _mineral, "surname": _surname, "code": _code}[self.style](
            rng
        )

    def sentence(self, template: int, name: str, place: str, rng: random.Random) -> str:
        slots = {k: rng.choice(v) for k, v in self.fillers.items()}
        return self.templates[template].format(name=name, place=place, **slots)


_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August")
_MONTHS += ("September", "October", "November", "December")
_FIRST = ("Ada", "Tomas", "Ines", "Marek", "Lena", "Otto", "Clara", "Hugo", "Elsa", "Pavel")
_FIRST += ("Nora", "Felix", "Ruth", "Anton", "Vera", "Jonas", "Ida", "Emil", "Greta", "Leon")

SCENARIOS = (
    Scenario(
        name="port",
        noun="ships",
        place="Halvik",
        other_place="Dunmarrow",
        question=(
            "List every ship that docked at the port of {place}. Give only the ships' names, "
            "separated by commas."
        ),
        templates=(
            "In {month}, the {vessel} {name} docked at {place} with a cargo of {cargo}.",
            "At {place}, the harbour master logged the arrival of a {vessel} called the {name}.",
            "It was the {name} that docked at {place} after a {weeks}-week crossing.",
            "Dockworkers in {place} spent a whole day unloading {cargo} from the {name}.",
            "The {name}, a {vessel} out of the northern yards, tied up at the quay of {place}.",
            "Harbour log, {place}, {month}: the {name} made fast at berth {berth}.",
        ),
        fillers={
            "month": _MONTHS,
            "vessel": ("freighter", "schooner", "steamer", "trawler", "barque", "coaster"),
            "cargo": ("timber", "salt cod", "coal", "wool", "copper ore", "grain", "tea"),
            "weeks": ("two", "three", "four", "five", "six"),
            "berth": tuple(str(i) for i in range(2, 19)),
        },
        style="ship",
    ),
    Scenario(
        name="survey",
        noun="minerals",
        place="the Ostrander survey",
        other_place="the Kellaway survey",
        question="List every mineral that {place} found. Give only the minerals' names, "
        "separated by commas.",
        templates=(
            "Geologists of {place} found {name} in a {terrain} near the river.",
            "In a {terrain} east of the camp, {place} came upon traces of {name}.",
            "Among the samples {place} brought back was a vein of {name}.",
            "{name} was identified by {place} in {month}, embedded in {rock}.",
            "It was {place} that first found {name}, a {colour} crystal, in the {terrain}.",
            "Field notes of {place}, {month}: a pocket of {name} found in {rock}.",
        ),
        fillers={
            "month": _MONTHS,
            "terrain": ("ravine", "dry creek bed", "limestone cave", "quarry", "moraine"),
            "rock": ("basalt", "granite", "shale", "schist", "quartzite", "sandstone"),
            "colour": ("pale green", "dark red", "smoky grey", "violet", "amber", "blue"),
        },
        style="mineral",
    ),
    Scenario(
        name="hotel",
        noun="guests",
        place="the Hotel Aurel",
        other_place="the Larchmont Inn",
        question="List every guest who stayed at {place}. Give only their surnames, separated "
        "by commas.",
        templates=(
            "{first} {name} checked into {place} on a rainy {weekday} in {month}.",
            "At {place}, room {room} was taken for a week by {first} {name}.",
            "The register of {place} shows that {first} {name} stayed three nights.",
            "It was {first} {name} who stayed at {place} and left without paying for breakfast.",
            "Among those staying at {place} that {season} was a {job} named {first} {name}.",
            "Guest book, {place}, {month}: {first} {name}, room {room}.",
        ),
        fillers={
            "month": _MONTHS,
            "weekday": ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"),
            "room": tuple(str(i) for i in range(101, 130)),
            "season": ("spring", "summer", "autumn", "winter"),
            "job": ("teacher", "surveyor", "violinist", "lawyer", "botanist", "clockmaker"),
            "first": _FIRST,
        },
        style="surname",
    ),
    Scenario(
        name="lab",
        noun="compounds",
        place="the Varga laboratory",
        other_place="the Telford laboratory",
        question="List every compound that was synthesised at {place}. Give only the "
        "compounds' codes, separated by commas.",
        templates=(
            "Compound {name} was first synthesised at {place} in {year}.",
            "At {place}, chemists synthesised {name} from {precursor} precursor.",
            "It was {place} that synthesised {name}, which later failed its {trial} trial.",
            "A batch of {name}, synthesised at {place}, was shipped out in {month}.",
            "The chemists at {place} needed {weeks} weeks to synthesise {name}.",
            "Lab record, {place}, {month} {year}: {name} synthesised, yield {yield_} percent.",
        ),
        fillers={
            "year": tuple(str(y) for y in range(1961, 1999)),
            "month": _MONTHS,
            "precursor": ("a sulphur", "a nitrile", "a boron", "a phosphate", "an amine"),
            "trial": ("toxicity", "stability", "solubility", "field"),
            "weeks": ("two", "three", "five", "eight", "eleven"),
            "yield_": tuple(str(i) for i in range(12, 95)),
        },
        style="code",
    ),
)
SCENARIO_NAMES = tuple(s.name for s in SCENARIOS)
_BY_NAME = {s.name: s for s in SCENARIOS}


def gold_count(length: int) -> int:
    """Gold items of a document of ``length`` tokens: 20 at 32k, growing with its square root
    (10 at 8k, 40 at 128k), within 6..48."""
    return max(6, min(48, round(20 * math.sqrt(length / 32_000))))


# =========================================================================== matching and scores
def _pattern(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)


def name_in(text: str, name: str) -> bool:
    """``name`` occurs in ``text`` as a whole name, any case (``RK-2291`` is not in
    ``RK-22910``, ``Halberg`` not in ``Halbergs``)."""
    return _pattern(name).search(text) is not None


def count_name(text: str, name: str) -> int:
    """Whole-name occurrences of ``name`` in ``text`` (any case)."""
    return len(_pattern(name).findall(text))


def score_answer(answer: str, gold: Sequence[str], distractors: Sequence[str]) -> dict[str, Any]:
    """Item recall, precision and F1 of ``answer`` (see the module's doc)."""
    gold_named = [g for g in gold if name_in(answer, g)]
    other_named = [d for d in distractors if name_in(answer, d)]
    recall = len(gold_named) / len(gold) if gold else 0.0
    named = len(gold_named) + len(other_named)
    precision = len(gold_named) / named if named else None
    f1 = 2 * precision * recall / (precision + recall) if precision and recall else 0.0
    return {
        "recall": round(recall, 4),
        "precision": None if precision is None else round(precision, 4),
        "f1": round(f1, 4),
        "gold_named": gold_named,
        "distractors_named": other_named,
    }


# =========================================================================== insertion
@functools.lru_cache(maxsize=1)
def _splitter():
    from infiniretri.sentences import SentenceSplitter

    return SentenceSplitter()


def sentence_ends(text: str) -> list[int]:
    """Where the engine's sentence splitter ends a sentence on a full stop, question or
    exclamation mark (maybe closed by a quote or bracket) followed by whitespace: there an
    inserted sentence stays a sentence of its own ("6 m." in the middle of a sentence is no
    end, as it would be for a plain full-stop rule)."""
    ends = []
    for _, end in _splitter().split(text):
        if text[end - 1] in ".!?\"')]" and (end == len(text) or text[end].isspace()):
            ends.append(end)
    return ends


def insertion_points(text: str) -> list[int]:
    """Where a sentence may go: the start, and every :func:`sentence_ends` end, moved to the
    start of the next paragraph where a paragraph ends there (a sentence appended to a
    paragraph's last one would join it where Punkt took that one's end for an abbreviation)."""
    points = [0]
    for end in sentence_ends(text):
        at = end
        while at < len(text) and text[at].isspace():
            at += 1
        if "\n" in text[end:at]:
            end = at
        if end > points[-1]:
            points.append(end)
    return points


def insert(hay: str, sentences: Sequence[str], depths: Sequence[float]) -> tuple[str, list[int]]:
    """Insert ``sentences`` at the points (:func:`insertion_points`) nearest before ``depths``
    (fractions, any order; distinct points). Returns the text and each sentence's start, in the
    order given."""
    return insert_at(
        hay, insertion_points(hay), sentences, depths, "items", space_after_blank=False
    )


# =========================================================================== cases
@dataclass(frozen=True)
class Item:
    """One inserted item sentence."""

    name: str
    gold: bool
    text: str
    template: int
    char_start: int = -1

    @property
    def char_end(self) -> int:
        return self.char_start + len(self.text)

    def in_sentences(self, sentences: Iterable[Any], doc_index: int = 0) -> bool:
        """A cached sentence (``doc_index``, ``char_start``, ``char_end``, ``text``) of this
        document overlaps the item's sentence and names the item."""
        return any(
            s.doc_index == doc_index
            and s.char_start < self.char_end
            and s.char_end > self.char_start
            and name_in(s.text, self.name)
            for s in sentences
        )

    def in_note_range(self, notes: Iterable[Any], doc_index: int = 0) -> bool:
        """A note's source range (from ``doc_index, char_start`` to ``end_doc_index,
        char_end``) holds the start of the item's sentence."""
        here = (doc_index, self.char_start)
        return any(
            (n.doc_index, n.char_start) <= here < (n.end_doc_index, n.char_end) for n in notes
        )


@dataclass(frozen=True)
class AggregateCase:
    """One document and its aggregate question."""

    scenario: str
    haystack: str
    length: int
    """Requested length in tokens."""
    sample: int
    seed: int
    question: str
    items: tuple[Item, ...]
    """In document order."""
    text: str = field(repr=False)

    @property
    def id(self) -> str:
        return f"{self.scenario}/{self.haystack}/{self.length}/{self.sample}"

    @property
    def gold(self) -> list[str]:
        return [i.name for i in self.items if i.gold]

    @property
    def distractors(self) -> list[str]:
        return [i.name for i in self.items if not i.gold]

    def score(self, answer: str) -> dict[str, Any]:
        """:func:`score_answer` against this case's items."""
        return score_answer(answer, self.gold, self.distractors)

    def describe(self) -> dict[str, Any]:
        """What a result record keeps of the case (no haystack text)."""
        size = max(1, len(self.text))
        return {
            "id": self.id,
            "scenario": self.scenario,
            "haystack": self.haystack,
            "length": self.length,
            "sample": self.sample,
            "seed": self.seed,
            "question": self.question,
            "n_gold": len(self.gold),
            "n_distractors": len(self.distractors),
            "items": [
                {
                    "name": i.name,
                    "gold": i.gold,
                    "template": i.template,
                    "depth": round(100 * i.char_start / size, 2),
                    "text": i.text,
                }
                for i in self.items
            ],
            "doc_chars": len(self.text),
        }


def _rng(*parts: Any) -> random.Random:
    return random.Random(":".join(["aggregate", *map(str, parts)]))


def scenario_for(sample: int, seed: int = 0) -> Scenario:
    """The scenario of a sample: the scenarios in a seeded order, one per sample in turn."""
    order = _rng(seed, "order").sample(SCENARIOS, len(SCENARIOS))
    return order[sample % len(order)]


def _names(scenario: Scenario, rng: random.Random, n: int, hay: str) -> list[str]:
    """``n`` new names, absent from ``hay`` and the places, no one a word of another."""
    taken = {w.lower() for w in re.findall(r"[\w-]+", scenario.place + " " + scenario.other_place)}
    names: list[str] = []
    while len(names) < n:
        name = scenario.new_name(rng)
        low = name.lower()
        if low in taken or any(low in o.lower() or o.lower() in low for o in names):
            continue
        if name_in(hay, name):
            continue
        names.append(name)
    return names


def make_case(
    source: HaystackSource,
    length: int,
    sample: int = 0,
    seed: int = 0,
    scenario: str | None = None,
    n_gold: int | None = None,
) -> AggregateCase:
    """The document and question of one ``(haystack, length, sample)``, seeded.

    ``scenario`` (a name of :data:`SCENARIOS`) overrides the sample's; ``n_gold`` overrides
    :func:`gold_count`."""
    if length < 1_000:
        raise ValueError(f"length must be at least 1000 tokens, got {length}")
    spec = _by_name(scenario) if scenario else scenario_for(sample, seed)
    n = n_gold or gold_count(length)
    m = max(1, round(DISTRACTOR_SHARE * n))
    rng = _rng(seed, spec.name, source.name, length, sample)
    sizing = _rng(seed, "sizing")
    tok = source.tokenizer
    probe = [
        spec.sentence(i % len(spec.templates), spec.new_name(sizing), spec.place, sizing)
        for i in range(n + m)
    ]
    item_tokens = sum(len(tok(" " + s, add_special_tokens=False)["input_ids"]) for s in probe)
    hay = source.window(max(256, length - item_tokens), rng)

    names = _names(spec, rng, n + m, hay)
    gold = [True] * n + [False] * m
    order = rng.sample(range(len(spec.templates)), len(spec.templates))
    texts, templates = [], []
    for k, (name, is_gold) in enumerate(zip(names, gold)):
        t = order[k % len(order)] if is_gold else order[(k - n) % len(order)]
        templates.append(t)
        texts.append(spec.sentence(t, name, spec.place if is_gold else spec.other_place, rng))
    slots = list(range(n + m))
    rng.shuffle(slots)
    depths = [(slot + rng.random()) / (n + m) for slot in slots]
    text, starts = insert(hay, texts, depths)
    items = sorted(
        (Item(nm, g, t, tp, s) for nm, g, t, tp, s in zip(names, gold, texts, templates, starts)),
        key=lambda i: i.char_start,
    )
    return AggregateCase(
        scenario=spec.name,
        haystack=source.name,
        length=length,
        sample=sample,
        seed=seed,
        question=spec.question.format(place=spec.place),
        items=tuple(items),
        text=text,
    )


def _by_name(name: str) -> Scenario:
    if name not in _BY_NAME:
        raise ValueError(f"scenario must be one of {SCENARIO_NAMES}, got {name!r}")
    return _BY_NAME[name]


# =========================================================================== needle control
@dataclass(frozen=True)
class NeedleCase:
    """The control: the same kind of haystack with ``bench.haystack``'s single needle."""

    haystack: str
    length: int
    sample: int
    seed: int
    question: str
    needle: str
    char_start: int
    text: str = field(repr=False)

    @property
    def id(self) -> str:
        return f"needle/{self.haystack}/{self.length}/{self.sample}"

    def describe(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "haystack": self.haystack,
            "length": self.length,
            "sample": self.sample,
            "seed": self.seed,
            "question": self.question,
            "depth": round(100 * self.char_start / max(1, len(self.text)), 2),
            "doc_chars": len(self.text),
        }


def make_needle_case(
    source: HaystackSource, length: int, sample: int = 0, seed: int = 0
) -> NeedleCase:
    """A document of about ``length`` tokens with the San Francisco needle at a seeded depth."""
    from .haystack import NEEDLE, QUESTION

    rng = _rng(seed, "needle", source.name, length, sample)
    needle_tokens = len(source.tokenizer(" " + NEEDLE, add_special_tokens=False)["input_ids"])
    hay = source.window(max(256, length - needle_tokens), rng)
    text, (start,) = insert(hay, [NEEDLE], [rng.uniform(0.05, 0.95)])
    return NeedleCase(source.name, length, sample, seed, QUESTION, NEEDLE, start, text)
