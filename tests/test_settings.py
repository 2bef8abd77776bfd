"""One settings object: every option defined once, checked, the same however an engine is made."""

from __future__ import annotations

import dataclasses

import pytest

from infiniretri import EngineSettings, InfiniRetri
from infiniretri.cli import build_parser, setting_options

TEXT = " ".join(
    f"Sentence {i} tells that the {c} box number {i} holds {i * 7} marbles."
    for i, c in enumerate(["red", "blue", "green", "grey"] * 12)
)
QUESTION = "How many marbles does the green box number 30 hold?"

# A value other than the default for every setting (each still valid for the tiny model).
OTHER_VALUES = {
    "chunk_tokens": 96,
    "phrase_tokens": 3,
    "top_k_tokens": 17,
    "retrieval_layer": 1,
    "retrieval_heads": ((1, 0), (2, 1)),
    "lexical_weight": 0.0,
    "question_rows": "end",
    "answer_quote_coverage": False,
    "lexical_feedback": 0.25,
    "score_baseline": True,
    "score_position": True,
    "max_cache_tokens": 200,
    "prompt_template": "Context:\n{context}\n\nAnswer this: {question}",
    "max_sentence_tokens": 12,
    "prep_workers": 0,
    "cuda_graphs": False,
    "compile_layers": True,
    "summary_answer": "read",
    "batch_size": 3,
    "answer_sentences": None,
    "answer_rescore": False,
    "answer_quote": 2,
    "answer_quote_margin": 0.25,
    "answer_copy": 0.0,
    "answer_gather": False,
    "answer_mode": "summary",
    "summary_notes": 3,
    "summary_note_tokens": 12,
    "summary_source_tokens": 64,
}

# A bad value for every setting.
BAD_VALUES = {
    "chunk_tokens": 0,
    "phrase_tokens": -1,
    "top_k_tokens": 1.5,
    "retrieval_layer": "top",
    "retrieval_heads": [(1, 0), (1, 0)],
    "lexical_weight": -0.5,
    "question_rows": "first",
    "answer_quote_coverage": "yes",
    "lexical_feedback": -1.0,
    "score_baseline": "yes",
    "score_position": 2,
    "max_cache_tokens": 0,
    "prompt_template": "{question} before {context}",
    "max_sentence_tokens": True,
    "prep_workers": -2,
    "cuda_graphs": "yes",
    "compile_layers": "sometimes",
    "summary_answer": "reduce",
    "batch_size": "8",
    "answer_sentences": 0,
    "answer_rescore": 1,
    "answer_quote": -1,
    "answer_quote_margin": "wide",
    "answer_copy": float("inf"),
    "answer_gather": "yes",
    "answer_mode": "notes",
    "summary_notes": 0,
    "summary_note_tokens": -3,
    "summary_source_tokens": "many",
}


@pytest.fixture(scope="module")
def base(tiny_llama):
    model, tokenizer = tiny_llama
    return InfiniRetri(model, tokenizer, chunk_tokens=64, retrieval_layer=2)


def sentences(engine: InfiniRetri) -> list[tuple[str, int, int, float]]:
    retrieval = engine.retrieve(TEXT, QUESTION)
    return [(s.text, s.char_start, s.char_end, s.score) for s in retrieval.sentences]


def test_the_tables_cover_every_setting():
    assert set(OTHER_VALUES) == set(EngineSettings.names()) == set(BAD_VALUES)
    defaults = EngineSettings.defaults()
    assert all(OTHER_VALUES[k] != defaults[k] for k in OTHER_VALUES)


def test_every_setting_has_a_one_line_doc():
    for name, doc in EngineSettings.docs().items():
        assert doc and "\n" not in doc and len(doc) < 200, name


@pytest.mark.parametrize("name", sorted(OTHER_VALUES))
def test_with_options_equals_a_fresh_engine(base, tiny_llama, name):
    model, tokenizer = tiny_llama
    options = {"chunk_tokens": 64, "retrieval_layer": 2, name: OTHER_VALUES[name]}
    fresh = InfiniRetri(model, tokenizer, **options)
    derived = base.with_options(**{name: OTHER_VALUES[name]})
    assert derived.settings == fresh.settings
    assert getattr(derived.settings, name) == OTHER_VALUES[name]
    # The engine's attribute is the value in use; for max_sentence_tokens that is the cap,
    # min(value, chunk_tokens): 12 here, below the chunk of 64.
    assert getattr(derived, name) == OTHER_VALUES[name]
    assert derived.max_sentence_tokens == fresh.max_sentence_tokens
    assert derived.retrieval_layer_index == fresh.retrieval_layer_index
    assert repr(derived) == repr(fresh)
    assert sentences(derived) == sentences(fresh)


def test_with_options_re_derives_the_sentence_cap(tiny_llama):
    model, tokenizer = tiny_llama
    small = InfiniRetri(model, tokenizer, chunk_tokens=64)
    assert small.max_sentence_tokens == 64
    bigger = small.with_options(chunk_tokens=1024)
    assert bigger.max_sentence_tokens == 128
    assert (
        bigger.max_sentence_tokens
        == InfiniRetri(model, tokenizer, chunk_tokens=1024).max_sentence_tokens
    )


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_value_is_a_value_error_naming_the_setting(base, name):
    with pytest.raises(ValueError, match=name):
        EngineSettings(**{name: BAD_VALUES[name]})
    with pytest.raises(ValueError, match=name):
        base.with_options(**{name: BAD_VALUES[name]})


def test_model_checks_name_the_setting(base):
    with pytest.raises(ValueError, match="retrieval_layer=9 is out of range"):
        base.with_options(retrieval_layer=9)
    with pytest.raises(ValueError, match="chunk_tokens=9000 is too large"):
        base.with_options(chunk_tokens=9000)


def test_an_unknown_option_is_named(base):
    with pytest.raises(ValueError, match="chunk_size"):
        base.with_options(chunk_size=10)
    with pytest.raises(ValueError, match="chunk_size"):
        EngineSettings.from_options({"chunk_size": 10})


def test_settings_are_frozen_and_replace_checks():
    settings = EngineSettings()
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.chunk_tokens = 5  # type: ignore[misc]
    assert settings.replace(top_k_tokens=5).top_k_tokens == 5
    with pytest.raises(ValueError, match="top_k_tokens"):
        settings.replace(top_k_tokens=0)


def test_repr_lists_the_changed_settings(base):
    assert "chunk_tokens=64" in repr(base) and "retrieval_layer=2" in repr(base)
    assert "phrase_tokens" not in repr(base)
    assert "phrase_tokens=3" in repr(base.with_options(phrase_tokens=3))


def test_the_cli_has_one_flag_per_setting():
    ask = build_parser()._subparsers._group_actions[0].choices["ask"]
    flags = {a.dest for a in ask._actions if a.option_strings}
    assert set(EngineSettings.names()) <= flags


def test_cli_flags_parse_to_the_settings():
    argv = ["ask", "doc.txt", "-q", "x"]
    for name, value in OTHER_VALUES.items():
        flag = "--" + name.replace("_", "-")
        if name == "compile_layers":  # True, False or "auto": a flag with a value
            argv += [flag, "on" if value is True else str(value).lower()]
        elif isinstance(value, bool):
            argv.append(flag if value else "--no-" + flag[2:])
        elif name == "retrieval_heads":
            argv += [flag, ",".join(f"{layer}:{head}" for layer, head in value)]
        else:
            argv += [flag, str(value)]
    args = build_parser().parse_args(argv)
    assert EngineSettings.from_options(setting_options(args)) == EngineSettings(**OTHER_VALUES)
    untouched = build_parser().parse_args(["ask", "doc.txt", "-q", "x"])
    assert setting_options(untouched) == {}
