"""The command line: answers, cited sentences, JSON, stdin, errors."""

from __future__ import annotations

import io
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


# -- reliability (issue 7): every bad input is one line on stderr and exit status 2 -----------


def tiny_args(tiny_model_dir, *extra):
    return ["--model", tiny_model_dir, "--retrieval-layer", "1", "--max-new-tokens", "2", *extra]


def assert_clean_error(code, err, message):
    assert code == 2
    assert message in err
    assert "Traceback" not in err


BAD_DOCUMENTS = [
    (b"", "empty or whitespace"),
    (b" \r\n\t\n" * 500, "empty or whitespace"),
    (b"\x00" * 4096, "NUL"),
    (b"fine text. " * 10 + b"\xc3\x28 broken", "undecodable byte at offset 110"),
]


@pytest.mark.parametrize(("content", "message"), BAD_DOCUMENTS)
def test_bad_document_files_and_stdin(
    tiny_model_dir, tmp_path, capsys, monkeypatch, content, message
):
    path = tmp_path / "doc.txt"
    path.write_bytes(content)
    code, _, err = run_cli(["ask", path, "-q", "Why?", *tiny_args(tiny_model_dir)], capsys)
    assert_clean_error(code, err, message)
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(content)))
    code, _, err = run_cli(["ask", "-", "-q", "Why?", *tiny_args(tiny_model_dir)], capsys)
    assert_clean_error(code, err, message)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--top-k-tokens", "-1", "top_k_tokens must be a positive integer"),
        ("--phrase-tokens", "0", "phrase_tokens must be a positive integer"),
        ("--max-cache-tokens", "0", "max_cache_tokens must be a positive integer"),
        ("--chunk-tokens", "100000", "chunk_tokens=100000 is too large"),
        ("--max-new-tokens", "0", "max_new_tokens must be a positive integer"),
        ("--retrieval-layer", "99", "retrieval_layer=99 is out of range"),
        ("--dtype", "float99", "dtype must be a torch.dtype"),
    ],
)
def test_bad_numbers_and_settings(tiny_model_dir, doc_file, capsys, flag, value, message):
    args = ["ask", doc_file, "-q", "Why?", *tiny_args(tiny_model_dir), flag, value]
    code, _, err = run_cli(args, capsys)
    assert_clean_error(code, err, message)


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--chunk-tokens", "abc", "must be an integer or 'auto', got 'abc'"),
        ("--batch-size", "many", "must be an integer or 'auto', got 'many'"),
        ("--top-k-tokens", "abc", "must be an integer or 'auto', got 'abc'"),
        ("--retrieval-layer", "last", "must be an integer or 'auto', got 'last'"),
    ],
)
def test_unparsable_numbers_are_usage_errors(doc_file, capsys, flag, value, message):
    with pytest.raises(SystemExit) as exited:
        main(["ask", str(doc_file), "-q", "Why?", flag, value])
    assert exited.value.code == 2
    assert message in capsys.readouterr().err


def test_model_folder_without_safe_weights(tmp_path, doc_file, capsys):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    code, _, err = run_cli(["ask", doc_file, "-q", "Why?", "--model", empty], capsys)
    assert_clean_error(code, err, "holds no model weights")
    pickled = tmp_path / "pickled-model"
    pickled.mkdir()
    (pickled / "config.json").write_text("{}")
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    code, _, err = run_cli(["ask", doc_file, "-q", "Why?", "--model", pickled], capsys)
    assert_clean_error(code, err, "pickle weights")


def test_model_path_that_is_a_text_file(doc_file, capsys):
    code, _, err = run_cli(["ask", doc_file, "-q", "Why?", "--model", doc_file], capsys)
    assert_clean_error(code, err, "model")


def test_unknown_device(tiny_model_dir, doc_file, capsys):
    args = ["ask", doc_file, "-q", "Why?", *tiny_args(tiny_model_dir), "--device", "tpu"]
    code, _, err = run_cli(args, capsys)
    assert_clean_error(code, err, "device")


def test_document_text_is_never_a_path_nor_evaluated(tiny_model_dir, tmp_path, capsys, monkeypatch):
    """A document naming a file, or holding template and shell syntax, is read as plain text."""
    monkeypatch.chdir(tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("The vault code is 8812.", encoding="utf-8")
    tricky = (
        f"{secret}\n\n"
        "Total {{ 7*7 }} and {context} then {question}. "
        "Run $(touch pwned1) and `touch pwned2` now. "
        "Format %s %(x)s {0} ${HOME} __import__('os').system('touch pwned3')."
    )
    doc = tmp_path / "doc.txt"
    doc.write_text(tricky, encoding="utf-8")
    args = ["ask", doc, "-q", "What is the vault code?", "--json", *tiny_args(tiny_model_dir)]
    code, out, _ = run_cli([*args, "--chunk-tokens", "64"], capsys)
    assert code == 0
    result = json.loads(out)
    texts = [s["text"] for s in result["sentences"]]
    assert str(secret) in texts  # the path is a sentence of the document, never opened
    assert "8812" not in out
    for s in result["sentences"]:
        assert tricky[s["char_start"] : s["char_end"]] == s["text"]
    assert not list(tmp_path.glob("pwned*"))
    assert "49" not in " ".join(texts)
