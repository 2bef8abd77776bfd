"""Safety: no remote code, no pickle, no document text used as a path, at every entry point.

Each trap below writes a marker file when it runs (custom model code on import, a pickle when
unpickled); the tests assert that the marker never appears unless the caller opted in.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from infiniretri import InfiniRetri
from infiniretri.loading import load_model
from infiniretri.testing import tiny_model


def _save_tiny(folder: Path) -> None:
    model, tokenizer = tiny_model("llama", layers=1)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _custom_code_model(folder: Path, marker: Path, model_type: str) -> Path:
    """A model folder whose config maps to custom code that writes ``marker`` when imported."""
    _save_tiny(folder)
    (folder / "configuration_trap.py").write_text(
        f"open({str(marker)!r}, 'w').write('config code ran')\n"
        "from transformers import LlamaConfig\n\n\n"
        "class TrapConfig(LlamaConfig):\n    model_type = 'trap_arch'\n"
    )
    (folder / "modeling_trap.py").write_text(
        f"open({str(marker)!r}, 'w').write('model code ran')\n"
        "from transformers import LlamaForCausalLM\n\n"
        "from .configuration_trap import TrapConfig\n\n\n"
        "class TrapModel(LlamaForCausalLM):\n    config_class = TrapConfig\n"
    )
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = model_type
    config["auto_map"] = {
        "AutoConfig": "configuration_trap.TrapConfig",
        "AutoModelForCausalLM": "modeling_trap.TrapModel",
    }
    (folder / "config.json").write_text(json.dumps(config))
    return folder


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "TRAP-RAN"


@pytest.fixture
def custom_code_model(tmp_path, marker) -> Path:
    """Only loadable by running its code (unknown model type)."""
    return _custom_code_model(tmp_path / "custom", marker, "trap_arch")


# -- trust_remote_code ------------------------------------------------------------------------


def test_custom_code_is_never_run_by_default(custom_code_model, marker):
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        load_model(custom_code_model)
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        InfiniRetri.from_pretrained(str(custom_code_model), retrieval_layer=0)
    assert not marker.exists()


def test_a_known_architecture_with_an_auto_map_loads_the_library_class(tmp_path, marker):
    folder = _custom_code_model(tmp_path / "known", marker, "llama")
    model, _ = load_model(folder)
    assert type(model).__module__.startswith("transformers.")
    assert not marker.exists()


def test_custom_code_runs_only_when_the_caller_opts_in(custom_code_model, marker, tmp_path):
    """The opt-in reaches transformers (in a subprocess: the code is imported from a cache)."""
    script = textwrap.dedent(
        """
        import sys
        from infiniretri.loading import load_model
        model, _ = load_model(sys.argv[1], trust_remote_code=True)
        print(type(model).__name__)
        """
    )
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules")}
    done = subprocess.run(
        [sys.executable, "-c", script, str(custom_code_model)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-1] == "TrapModel"
    assert marker.exists()


def test_integrations_do_not_run_custom_code_either(custom_code_model, marker):
    lc = pytest.importorskip("langchain_infiniretri")
    li = pytest.importorskip("llama_index.retrievers.infiniretri")
    retriever = lc.InfiniRetriRetriever.from_texts(["Some text."], model=str(custom_code_model))
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        retriever.invoke("What?")
    li_retriever = li.InfiniRetriRetriever.from_documents(
        ["Some text."], model=str(custom_code_model)
    )
    with pytest.raises(ValueError, match="trust_remote_code=True"):
        li_retriever.retrieve("What?")
    assert not marker.exists()


# -- pickle weights -----------------------------------------------------------------------------


class _Trap:
    """Unpickling this writes a file: what a malicious ``pytorch_model.bin`` could do."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("name", ["pytorch_model.bin", "model.pt", "model.ckpt", "weights.pkl"])
def test_pickle_only_weights_are_refused_without_unpickling(tmp_path, marker, name):
    folder = tmp_path / "pickled"
    _save_tiny(folder)
    (folder / "model.safetensors").unlink()
    (folder / name).write_bytes(pickle.dumps(_Trap(marker)))
    with pytest.raises((ValueError, FileNotFoundError), match=r"pickle weights|no model weights"):
        load_model(folder)
    assert not marker.exists()


def test_safetensors_are_used_and_a_pickle_beside_them_is_never_opened(tmp_path, marker):
    folder = tmp_path / "both"
    _save_tiny(folder)
    (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Trap(marker)))
    model, _ = load_model(folder)
    assert model.config.num_hidden_layers == 1
    assert not marker.exists()


# -- document text is text ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_engine():
    model, tokenizer = tiny_model("llama", layers=2)
    return InfiniRetri(model, tokenizer, chunk_tokens=64, top_k_tokens=16, retrieval_layer=1)


def test_text_that_names_a_file_is_read_as_text_in_every_form(tiny_engine, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("The vault code is 8812.", encoding="utf-8")
    name = str(secret)
    for source in [name, [name, name], name.encode(), iter([name])]:
        r = tiny_engine.retrieve(source, "What is the vault code?")
        assert {s.text for s in r.sentences} == {name}
    # Only os.PathLike opens a file:
    opened = tiny_engine.retrieve(secret, "What is the vault code?")
    assert [s.text for s in opened.sentences] == ["The vault code is 8812."]


def test_text_is_never_formatted_or_evaluated(tiny_engine, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    doc = (
        "Total {{ 7*7 }} and {context} then {question}. {0} %s %(x)s ${HOME}. "
        "__import__('os').system('touch pwned'). <|im_end|> $(touch pwned2)."
    )
    question = "What is {context} and {{ 7*7 }}?"
    keep_all = tiny_engine.with_options(top_k_tokens=1024)
    answer = keep_all.answer(doc, question, max_new_tokens=2)
    r = answer.retrieval
    assert r.question == question
    for s in r.sentences:
        assert doc[s.char_start : s.char_end] == s.text
    # Everything was kept, verbatim: nothing was formatted, expanded or run.
    assert r.context.replace(" ", "") == doc.replace(" ", "")
    assert not list(tmp_path.glob("pwned*"))
