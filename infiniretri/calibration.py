"""Choose the retrieval layer, or the retrieval heads, by a short calibration on synthetic data.

The haystack and the planted facts are generated here from small word lists (no benchmark data).
For every layer (or every head of every layer) we rank the needle sentence by its attention
score; the layer with the best mean reciprocal rank wins (ties go to the lower layer: the scan
stops there, so it is cheaper), and the best few heads form the head set. Choices are cached on
disk per model; known models ship their value.
"""

from __future__ import annotations

import json
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .loading import EMBEDDED_MODEL_ID, MODEL_ID_ATTR, cache_dir

SHIPPED_LAYERS: dict[str, int] = {
    # Measured by bench/calibrate_layer.py (bench/results/layer_calibration.json).
    EMBEDDED_MODEL_ID: 18,
}

SHIPPED_HEADS: dict[str, tuple[tuple[int, int], ...]] = {
    # Picked by bench/retrieval_heads.py on the HotpotQA dev split (disjoint from the report
    # split): the 8 heads of layers 10..18 with the best supporting-sentence recall
    # (bench/results/retrieval_heads.json).
    EMBEDDED_MODEL_ID: ((17, 3), (18, 6), (17, 4), (14, 3), (18, 7), (15, 6), (17, 0), (18, 8)),
}

HEAD_COUNT = 8
"""Heads that ``retrieval_heads="auto"`` keeps (few heads retrieve; adding many hurts)."""

_SUBJECTS = (
    "the old farmer",
    "a young teacher",
    "the town council",
    "my neighbour",
    "the small bakery",
    "a quiet student",
    "the river guide",
    "the night nurse",
    "a travelling painter",
    "the museum keeper",
    "the ship captain",
    "a local poet",
    "the harbour master",
)
_VERBS = (
    "repaired",
    "painted",
    "visited",
    "described",
    "carried",
    "measured",
    "watched",
    "cleaned",
    "ordered",
    "borrowed",
    "photographed",
    "discussed",
    "planted",
)
_OBJECTS = (
    "the wooden fence",
    "a basket of apples",
    "the stone bridge",
    "an empty barn",
    "the bell tower",
    "a pile of letters",
    "the garden wall",
    "a narrow boat",
    "the iron gate",
    "a box of candles",
    "the village well",
    "a stack of maps",
    "the morning train",
)
_TAILS = (
    "before the rain started",
    "after a long lunch",
    "early on Tuesday",
    "during the fair",
    "without saying a word",
    "near the market square",
    "for the third time this year",
    "while the radio played",
    "under a grey sky",
    "as the sun went down",
)
_NAMES = ("Marta", "Jonas", "Ingrid", "Tomasz", "Leila", "Oskar", "Priya", "Henrik", "Amara")
_COLORS = ("red", "green", "yellow", "purple", "orange", "silver", "blue", "brown")
_THINGS = ("door", "suitcase", "notebook", "bicycle", "cabinet", "umbrella", "lantern")
_CITIES = ("Lisbon", "Nairobi", "Quito", "Tallinn", "Osaka", "Perth", "Bergen", "Seville")
_CONTAINERS = ("teapot", "flower pot", "music box", "boot", "biscuit tin", "birdhouse")


@dataclass(frozen=True)
class NeedleTrial:
    """A synthetic haystack with one planted fact."""

    sentences: list[str]
    needle_index: int
    question: str


def _fact(kind: int, rng: random.Random) -> tuple[str, str]:
    """A planted fact of ``kind`` and the question it answers."""
    name, color = rng.choice(_NAMES), rng.choice(_COLORS)
    if kind == 0:
        thing, code = rng.choice(_THINGS), rng.randrange(1000, 9999)
        return (
            f"The secret code for the {color} {thing} is {code}.",
            f"What is the secret code for the {color} {thing}?",
        )
    if kind == 1:
        container = rng.choice(_CONTAINERS)
        return (
            f"{name} keeps the spare key inside the {color} {container}.",
            f"Where does {name} keep the spare key?",
        )
    city = rng.choice(_CITIES)
    return (
        f"The meeting with {name} is scheduled in the city of {city}.",
        f"In which city is the meeting with {name} scheduled?",
    )


def make_trial(rng: random.Random, filler_sentences: int = 40, distractors: int = 2) -> NeedleTrial:
    """Filler sentences, ``distractors`` facts of the same kind, and the needle at a random depth.

    Distractors share the needle's wording but not its subject, so only a layer that matches the
    question's specifics ranks the needle first.
    """
    sentences = [
        f"{rng.choice(_SUBJECTS).capitalize()} {rng.choice(_VERBS)} {rng.choice(_OBJECTS)} "
        f"{rng.choice(_TAILS)}."
        for _ in range(filler_sentences)
    ]
    kind = rng.randrange(3)
    needle, question = _fact(kind, rng)
    others: list[str] = []
    while len(others) < distractors:
        fact, other_question = _fact(kind, rng)
        if other_question != question and fact not in others:
            others.append(fact)
    for fact in others:
        sentences.insert(rng.randrange(len(sentences) + 1), fact)
    index = rng.randrange(len(sentences) + 1)
    sentences.insert(index, needle)
    return NeedleTrial(sentences, index, question)


def rank_layers(
    score_units: Callable[[NeedleTrial, tuple[int, ...]], dict[int, list[float]]],
    num_layers: int,
    trials: int = 12,
    seed: int = 0,
) -> dict[int, float]:
    """Mean reciprocal rank of the needle sentence for each layer.

    ``score_units(trial, layers)`` returns, per layer, one score per sentence of the trial.
    """
    layers = tuple(range(num_layers))

    def per_group(trial: NeedleTrial) -> list[list[float]]:
        per_layer = score_units(trial, layers)
        return [per_layer[layer] for layer in layers]

    return dict(zip(layers, rank_groups(per_group, num_layers, trials=trials, seed=seed)))


def rank_groups(
    score_units: Callable[[NeedleTrial], list[list[float]]],
    groups: int,
    trials: int = 12,
    seed: int = 0,
) -> list[float]:
    """Mean reciprocal rank of the needle sentence for each of ``groups`` scorings.

    ``score_units(trial)`` returns, per group, one score per sentence of the trial.
    """
    rng = random.Random(seed)
    totals = [0.0] * groups
    for _ in range(trials):
        trial = make_trial(rng)
        for g, scores in enumerate(score_units(trial)):
            needle = scores[trial.needle_index]
            totals[g] += 1.0 / (1 + sum(1 for s in scores if s > needle))
    return [total / trials for total in totals]


def best_heads(
    mrr: dict[tuple[int, int], float], count: int = HEAD_COUNT
) -> tuple[tuple[int, int], ...]:
    """The ``count`` heads that rank the needle best (ties: lower layer, then lower head)."""
    order = sorted(mrr, key=lambda pair: (-mrr[pair], pair))
    return tuple(sorted(order[:count]))


def best_layer(mrr: dict[int, float]) -> int:
    """The layer whose neighbourhood (itself and the layers beside it) ranks the needle best.

    Averaging with neighbours prefers the middle of a plateau of good layers over a lone spike,
    which transfers better to real text. Ties go to the lowest layer (the scan stops there).
    """
    layers = sorted(mrr)
    smooth = {}
    for i, layer in enumerate(layers):
        around = [mrr[x] for x in layers[max(0, i - 1) : i + 2]]
        smooth[layer] = sum(around) / len(around)
    top = max(smooth.values())
    return min(layer for layer, value in smooth.items() if value >= top - 1e-9)


def model_key(model) -> str | None:
    """A key naming this model on disk, or ``None`` for an unnamed in-memory model."""
    config = model.config
    known = getattr(config, MODEL_ID_ATTR, None)
    if known:
        return str(known)
    name = getattr(model, "name_or_path", "") or getattr(config, "_name_or_path", "")
    if not name:
        return None
    if os.path.exists(name):
        name = os.path.abspath(name)
    return (
        f"{name}|{config.model_type}|{getattr(config, 'num_hidden_layers', '?')}|"
        f"{getattr(config, 'hidden_size', '?')}|{getattr(config, 'vocab_size', '?')}"
    )


def _store_path(name: str = "retrieval_layers") -> Path:
    return cache_dir() / f"{name}.json"


def _stored(key: str | None, name: str):
    if key is None:
        return None
    try:
        return json.loads(_store_path(name).read_text()).get(key)
    except (OSError, ValueError):
        return None


def stored_layer(key: str | None) -> int | None:
    """A shipped or previously calibrated layer for ``key``."""
    if key in SHIPPED_LAYERS:
        return SHIPPED_LAYERS[key]
    value = _stored(key, "retrieval_layers")
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def stored_heads(key: str | None) -> tuple[tuple[int, int], ...] | None:
    """Shipped or previously calibrated heads for ``key``."""
    if key in SHIPPED_HEADS:
        return SHIPPED_HEADS[key]
    value = _stored(key, "retrieval_heads")
    try:
        heads = tuple((int(layer), int(head)) for layer, head in value)
    except (TypeError, ValueError):
        return None
    return heads or None


def store_layer(key: str | None, layer: int) -> None:
    """Remember a calibrated layer (atomic write; a failure to write is not an error)."""
    _store(key, "retrieval_layers", layer)


def store_heads(key: str | None, heads: tuple[tuple[int, int], ...]) -> None:
    """Remember calibrated heads (atomic write; a failure to write is not an error)."""
    _store(key, "retrieval_heads", [list(pair) for pair in heads])


def _store(key: str | None, name: str, value) -> None:
    if key is None:
        return
    path = _store_path(name)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            data = {}
        data[key] = value
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{name}-")
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except OSError:
        pass
