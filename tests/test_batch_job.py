"""Corpus jobs without Ray (infiniretri.batch, ``infiniretri batch --workers 0``): input formats,
error rows, exactly-once output across interrupts and re-runs. Tiny random-weight models."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

from infiniretri import EngineSettings, InfiniRetri
from infiniretri.batch import (
    JobError,
    normalize_rows,
    process_rows,
    read_input,
    read_output,
    run_job,
)
from infiniretri.cli import main
from infiniretri.testing import tiny_model

SETTINGS = dict(retrieval_layer=1, chunk_tokens=64, top_k_tokens=16, batch_size=3)


@pytest.fixture(scope="module")
def tiny_engine():
    model, tokenizer = tiny_model("llama", seed=1)
    return InfiniRetri(model, tokenizer, EngineSettings(**SETTINGS))


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    """The tiny model saved as a local model directory (safetensors), as actors load it."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    model, tokenizer = tiny_model("llama", seed=1)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def corpus(tmp_path, n=7):
    """``n`` good rows (text and file documents) and one row of each kind of bad row."""
    rows = []
    for i in range(n):
        text = f"Report {i} begins. The valve in room {i} was replaced on Monday. " * 3
        if i % 2:
            path = tmp_path / f"doc{i}.txt"
            path.write_text(text, encoding="utf-8")
            rows.append({"id": f"r{i}", "question": "Which valve was replaced?", "path": str(path)})
        else:
            rows.append({"id": f"r{i}", "question": "Which valve was replaced?", "document": text})
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"ok text \xff\xfe then bad bytes")
    big = tmp_path / "big.txt"
    big.write_text("x" * 5000, encoding="utf-8")
    rows += [
        {"id": "empty-question", "question": "  ", "document": "Some text."},
        {"id": "missing-file", "question": "What?", "path": str(tmp_path / "nope.txt")},
        {"id": "undecodable", "question": "What?", "path": str(binary)},
        {"id": "big-text", "question": "What?", "document": "y" * 5000},
        {"id": "big-file", "question": "What?", "path": str(big)},
        {"id": "no-document", "question": "What?"},
    ]
    return rows


BAD = {
    "empty-question": "question must be a non-empty string",
    "missing-file": "does not exist",
    "undecodable": "not UTF-8",
    "big-text": "over the limit of 4096",
    "big-file": "over the limit of 4096",
    "no-document": "neither document nor path",
}


def by_id(rows):
    out = {}
    for row in rows:
        assert row["id"] not in out, f"id {row['id']} twice"
        out[row["id"]] = row
    return out


def comparable(row):
    """A row without the timing (``stats.seconds`` differs from run to run), its sentence
    scores rounded: a row scanned beside other rows (a right-padded batch) gets the same
    sentences, with standardised scores that differ in the last digits."""
    row = dict(row)
    if row.get("stats"):
        stats = json.loads(row["stats"])
        stats.pop("seconds")
        row["stats"] = stats
    if row.get("sentences"):
        sentences = json.loads(row["sentences"])
        for sentence in sentences:
            sentence["score"] = round(sentence["score"], 2)
        row["sentences"] = sentences
    return row


def test_error_rows_and_results_match_the_engine(tmp_path, tiny_engine):
    rows = normalize_rows(corpus(tmp_path))
    out = process_rows(tiny_engine, rows, max_document_bytes=4096)
    assert [r["id"] for r in out] == [r["id"] for r in rows]
    results = by_id(out)
    for key, message in BAD.items():
        assert results[key]["sentences"] is None
        assert message in results[key]["error"], results[key]["error"]
    good = [r for r in rows if r["id"] not in BAD]
    pairs = [(r["document"] if r["document"] else Path(r["path"]), r["question"]) for r in good]
    for row, retrieval in zip(good, tiny_engine.retrieve_batch(pairs)):
        result = results[row["id"]]
        assert result["error"] is None
        sentences = json.loads(result["sentences"])
        assert [s["text"] for s in sentences] == [s.text for s in retrieval.sentences]
        assert [(s["char_start"], s["char_end"]) for s in sentences] == [
            (s.char_start, s.char_end) for s in retrieval.sentences
        ]
        assert [s["score"] for s in sentences] == pytest.approx(
            [s.score for s in retrieval.sentences], abs=1e-5
        )
        assert json.loads(result["stats"])["tokens_read"] == retrieval.stats.tokens_read


def test_a_failing_batch_call_falls_back_to_rows(tmp_path, tiny_engine):
    """A file that passes the checks but fails in the engine spoils only its own row."""
    text = tmp_path / "nul.txt"
    text.write_text("text with a NUL \x00 inside", encoding="utf-8")
    rows = normalize_rows(
        [
            {"id": 1, "question": "What?", "document": "A fine document. It is short."},
            {"id": 2, "question": "What?", "path": str(text)},
        ]
    )
    first, second = process_rows(tiny_engine, rows)
    assert first["error"] is None and first["sentences"]
    assert "NUL" in second["error"] and not second["error"].startswith("pairs[")


def test_duplicate_and_missing_ids_fail_up_front(tmp_path):
    with pytest.raises(JobError, match="duplicate ids"):
        normalize_rows([{"id": 1, "question": "q", "document": "d"}, {"id": "1"}])
    with pytest.raises(JobError, match="no id"):
        normalize_rows([{"question": "q", "document": "d"}])
    source = tmp_path / "rows.jsonl"
    source.write_text('{"id": 1, "question": "q", "document": "d"}\n{"id": 1}\n')
    assert main(["batch", str(source), "-o", str(tmp_path / "out"), "--workers", "0"]) == 2


def test_input_formats_agree(tmp_path):
    rows = [
        {"id": "a", "question": "Q one?", "document": "Text, with a comma.\nAnd a line."},
        {"id": "b", "question": "Q two?", "path": str(tmp_path / "b.txt")},
    ]
    (tmp_path / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with open(tmp_path / "rows.csv", "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, ["id", "question", "document", "path"])
        writer.writeheader()
        writer.writerows(rows)
    expected = normalize_rows(rows)
    assert normalize_rows(read_input(tmp_path / "rows.jsonl")) == expected
    assert normalize_rows(read_input(tmp_path / "rows.csv")) == expected
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.Table.from_pylist(expected), tmp_path / "rows.parquet")
    assert normalize_rows(read_input(tmp_path / "rows.parquet")) == expected
    with pytest.raises(JobError, match="must end in"):
        read_input(tmp_path / "rows.txt")


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_interrupt_and_resume_write_every_id_once(tmp_path, tiny_engine, fmt):
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    rows = corpus(tmp_path, n=9)
    whole = by_id(
        comparable(r)
        for r in process_rows(tiny_engine, normalize_rows(rows), max_document_bytes=4096)
    )
    out = tmp_path / "out"
    parts = []

    def interrupt(path):
        parts.append(path)
        if len(parts) == 2:
            raise KeyboardInterrupt

    job = dict(fmt=fmt, engine=tiny_engine, settings=SETTINGS, max_document_bytes=4096)
    with pytest.raises(KeyboardInterrupt):
        run_job(rows, out, rows_per_part=4, on_part=interrupt, **job)
    first = by_id(read_output(out))
    assert 0 < len(first) < len(rows)
    (out / ".tmp-part-crashed.jsonl").write_text('{"id": "r0"}\n')  # a write cut short
    summary = run_job(rows, out, rows_per_part=4, **job)
    assert summary.skipped == len(first)
    assert summary.rows == len(rows) - len(first)
    assert summary.errors == len(BAD) - sum(1 for k in first if k in BAD)
    final = by_id(read_output(out))  # raises on a duplicate id
    assert set(final) == {r["id"] for r in rows}
    assert {k: comparable(v) for k, v in final.items()} == whole
    assert not list(out.glob(".tmp-*"))
    again = run_job(rows, out, **job)
    assert (again.rows, again.skipped) == (0, len(rows))


def test_output_folder_of_another_job_is_refused(tmp_path, tiny_engine):
    rows = [{"id": 1, "question": "What?", "document": "A short text. Two sentences."}]
    run_job(rows, tmp_path / "out", fmt="jsonl", engine=tiny_engine, settings=SETTINGS)
    with pytest.raises(JobError, match="another --output"):
        run_job(rows, tmp_path / "out", fmt="jsonl", answer=True, engine=tiny_engine)


def test_answers_and_usage(tmp_path, tiny_engine):
    rows = [
        {"id": 1, "question": "What?", "document": "A short text. Two sentences."},
        {"id": 2, "question": "", "document": "x"},
    ]
    run_job(rows, tmp_path / "out", fmt="jsonl", answer=True, engine=tiny_engine, max_new_tokens=3)
    good, bad = sorted(read_output(tmp_path / "out"), key=lambda r: r["id"])
    assert isinstance(good["answer"], str) and good["error"] is None
    assert json.loads(good["stats"])["usage"]["completion_tokens"] <= 3
    assert bad["answer"] is None and bad["error"]


def test_cli_batch_in_process(tmp_path, tiny_dir, capsys):
    rows = corpus(tmp_path, n=3)
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "out"
    args = ["batch", str(source), "-o", str(out), "--workers", "0", "--model", str(tiny_dir)]
    args += ["--format", "jsonl", "--retrieval-layer", "1", "--chunk-tokens", "64"]
    args += ["--max-document-bytes", "4096", "--no-progress"]
    assert main(args) == 0
    summary = capsys.readouterr().err
    assert f"{len(rows)} rows written ({len(BAD)} errors)" in summary
    assert "doc tokens/s" in summary
    assert len(by_id(read_output(out))) == len(rows)
    assert main(args) == 0
    assert f"0 rows written (0 errors), {len(rows)} already done" in capsys.readouterr().err


def test_importing_infiniretri_does_not_import_ray():
    code = (
        "import sys, infiniretri, infiniretri.batch, infiniretri.cli; "
        "infiniretri.cli.build_parser(); assert 'ray' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
