"""The command line: answers, cited sentences, JSON, stdin, errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest

from infiniretri.cli import main
from infiniretri.testing import tiny_model

FACT = "The lighthouse keeper's cat is named Biscuit."


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    """A tiny random-weight model saved as safetensors, loadable with --model."""
    model, tokenizer = tiny_model("llama")
    path = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


@pytest.fixture
def doc_file(tmp_path):
    text = " ".join(f"Boat number {i} left the harbour at dawn." for i in range(60))
    path = tmp_path / "doc.txt"
    path.write_text(text + " " + FACT, encoding="utf-8")
    return path


def run_cli(args, capsys):
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_json_output_lists_sentences_with_exact_offsets(tiny_model_dir, doc_file, capsys):
    code, out, _ = run_cli(
        [
            "ask",
            doc_file,
            "-q",
            "What is the cat called?",
            "--json",
            "--model",
            tiny_model_dir,
            "--chunk-tokens",
            "128",
            "--retrieval-layer",
            "2",
            "--max-new-tokens",
            "3",
        ],
        capsys,
    )
    assert code == 0
    result = json.loads(out)
    text = doc_file.read_text(encoding="utf-8")
    assert result["question"] == "What is the cat called?"
    assert result["sentences"]
    for s in result["sentences"]:
        assert text[s["char_start"] : s["char_end"]] == s["text"]
    assert result["stats"]["tokens_read"] > 500
    assert result["stats"]["retrieval_layer"] == 2


def test_show_sentences_prints_scores(tiny_model_dir, doc_file, capsys):
    code, out, err = run_cli(
        [
            "ask",
            doc_file,
            "-q",
            "Which boat left?",
            "--show-sentences",
            "--model",
            tiny_model_dir,
            "--retrieval-layer",
            "1",
            "--max-new-tokens",
            "2",
        ],
        capsys,
    )
    assert code == 0
    assert "Cited sentences" in out
    assert "chars " in out and "left the harbour" in out
    assert "reading" in err  # the progress bar


@pytest.mark.parametrize(
    ("path_kind", "message"),
    [("missing", "no such file"), ("dir", "is a directory"), ("binary", "not UTF-8 text")],
)
def test_errors_exit_2_with_a_message(tiny_model_dir, tmp_path, capsys, path_kind, message):
    target = {"missing": tmp_path / "nope.txt", "dir": tmp_path}.get(path_kind)
    if path_kind == "binary":
        target = tmp_path / "blob.bin"
        target.write_bytes(b"\xff\xfe\xfd" * 100)
    code, _, err = run_cli(["ask", target, "-q", "Why?", "--model", tiny_model_dir], capsys)
    assert code == 2
    assert message in err
    assert "Traceback" not in err


def test_empty_question_and_bad_numbers(tiny_model_dir, doc_file, capsys):
    code, _, err = run_cli(["ask", doc_file, "-q", " ", "--model", tiny_model_dir], capsys)
    assert code == 2 and "question must be a non-empty string" in err
    code, _, err = run_cli(
        ["ask", doc_file, "-q", "Why?", "--chunk-tokens", "0", "--model", tiny_model_dir], capsys
    )
    assert code == 2 and "chunk_tokens must be a positive integer" in err


def test_console_script_reads_stdin_with_the_embedded_model(doc_file):
    exe = shutil.which("infiniretri", path=os.path.dirname(sys.executable)) or shutil.which(
        "infiniretri"
    )
    assert exe, "the infiniretri console script is installed"
    done = subprocess.run(
        [
            exe,
            "ask",
            "-",
            "-q",
            "What is the lighthouse keeper's cat named?",
            "--json",
            "--max-new-tokens",
            "16",
            "--no-progress",
        ],
        input=doc_file.read_bytes(),
        capture_output=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(done.stdout)
    assert FACT in [s["text"] for s in result["sentences"]]
    assert "biscuit" in result["answer"].lower()
