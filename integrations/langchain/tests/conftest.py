"""Shared fixtures: one real embedded engine per process, one tiny random-weight engine, texts."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from infiniretri import InfiniRetri
from infiniretri.testing import embedded_engine, tiny_model

# Varied prose (not one repeated sentence) so that attention has something to choose between.
FILLER = [
    "The harbour town of Millbrook was founded by fishermen in the early eighteenth century.",
    "Its narrow streets climb from the quay to a chapel built of grey local stone.",
    "Every spring the river floods the lower meadows, leaving the soil dark and rich.",
    "Farmers in the valley grow barley, potatoes and a hardy variety of winter cabbage.",
    "The old mill, which gave the town its name, stopped turning in the year of the great frost.",
    "A railway line reached Millbrook late, and the station still has its original clock.",
    "Children walk to the school on the hill, where lessons begin when the bell rings at eight.",
    "On market days the square fills with stalls selling cheese, wool and smoked fish.",
    "The lighthouse keeper's cottage is now a small museum of nautical instruments.",
    "Storms in autumn can close the harbour for a week, and the ferries wait at anchor.",
    "Local historians argue about whether the chapel bell was cast in Bristol or in Leeds.",
    "The town band practises on Thursday evenings in the hall behind the post office.",
    "Gulls nest on the cliffs to the north, and their cries carry across the bay at dawn.",
    "A stone bridge with three arches crosses the river just above the tidal reach.",
    "The bakery on Quay Street has used the same sourdough starter for ninety years.",
    "In winter the hills behind the town are often white with frost until midday.",
    "Walkers follow the coastal path to a ruined watchtower that once guarded the bay.",
    "The parish records list every wedding and christening since the chapel opened.",
    "Fishing boats return in the late afternoon, and the auction starts at five o'clock.",
    "A small library in the former customs house lends books and nautical charts.",
    "The annual regatta draws sailors from all along the coast in the last week of July.",
    "Blackberries grow thick along the lanes, and families pick them in September.",
    "The town council meets in a timber hall that smells faintly of tar and rope.",
    "At low tide the sands stretch far out, and cockle pickers work the flats.",
]

NEEDLE = "The vault beneath the old customs house is opened with the code word Marigold-47."
NEEDLE_QUESTION = "What is the code word that opens the vault beneath the old customs house?"
NEEDLE_ANSWER = "Marigold"


@dataclass(frozen=True)
class NeedleText:
    """Filler prose with one distinctive fact sentence planted in it."""

    text: str
    needle: str
    question: str
    answer: str

    @property
    def needle_start(self) -> int:
        return self.text.index(self.needle)


def make_needle_text(sentences: int = len(FILLER), position: float = 0.5) -> NeedleText:
    """``sentences`` filler sentences (cycled) with the needle at ``position`` (0..1)."""
    body = [FILLER[i % len(FILLER)] for i in range(sentences)]
    body.insert(round(position * len(body)), NEEDLE)
    return NeedleText(" ".join(body), NEEDLE, NEEDLE_QUESTION, NEEDLE_ANSWER)


@pytest.fixture(scope="session")
def engine() -> InfiniRetri:
    """The real embedded model, loaded once per process and shared by every test."""
    return embedded_engine().with_options(chunk_tokens=512)


@pytest.fixture(scope="session")
def tiny_engine() -> InfiniRetri:
    """A tiny random-weight engine for plumbing tests (fast; its answers are noise)."""
    model, tokenizer = tiny_model("llama", seed=0)
    return InfiniRetri(model, tokenizer, chunk_tokens=64, top_k_tokens=64, retrieval_layer=-1)


@pytest.fixture(scope="session")
def needle_text() -> NeedleText:
    """About 600 tokens of prose with the needle in the middle."""
    return make_needle_text()


@pytest.fixture(scope="session")
def short_text() -> NeedleText:
    """About 200 tokens: eight filler sentences and the needle (cheap to scan)."""
    return make_needle_text(sentences=8)
