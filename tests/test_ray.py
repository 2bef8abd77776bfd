"""Corpus jobs on a real local Ray cluster (``ray.init(num_cpus=2)``, no mock).

Tiny random-weight models for the mechanics (a killed actor, an interrupted and resumed job,
error rows); the embedded model only for the one equality check against the local engine.
"""

from __future__ import annotations

import json

import pytest

ray = pytest.importorskip("ray")

from test_batch_job import BAD, SETTINGS, by_id, comparable, corpus  # noqa: E402

from infiniretri.batch import normalize_rows, read_output, run_job  # noqa: E402
from infiniretri.ray import InfiniRetriPredictor, quiet_ray_data, run_dataset  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.filterwarnings("ignore::DeprecationWarning:ray")]


@pytest.fixture(scope="module", autouse=True)
def local_ray():
    """One local Ray for the module, shut down after it."""
    if ray.is_initialized():
        ray.shutdown()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    quiet_ray_data()
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    from infiniretri.testing import tiny_model

    folder = tmp_path_factory.mktemp("tiny-llama")
    model, tokenizer = tiny_model("llama", seed=1)
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


def test_killed_actor_still_every_id_once_and_bad_rows_are_error_rows(tmp_path, tiny_dir):
    rows = corpus(tmp_path, n=10)
    job = dict(model=str(tiny_dir), settings=SETTINGS, max_document_bytes=4096)
    run_job(rows, tmp_path / "local", workers=0, **job)
    local = by_id(read_output(tmp_path / "local"))
    fault = tmp_path / "kill-one-actor"
    fault.touch()
    summary = run_job(rows, tmp_path / "ray", workers=2, fault_file=fault, **job)
    assert not fault.exists(), "no actor was killed"
    result = by_id(read_output(tmp_path / "ray"))  # raises on a duplicate id
    assert set(result) == {r["id"] for r in rows}
    assert (summary.rows, summary.errors) == (len(rows), len(BAD))
    for key, message in BAD.items():
        assert message in result[key]["error"]
    # --workers 0 and Ray give the same rows (the timing aside).
    assert {k: comparable(v) for k, v in result.items()} == {
        k: comparable(v) for k, v in local.items()
    }


def test_interrupt_and_resume_on_ray(tmp_path, tiny_dir):
    rows = corpus(tmp_path, n=12)
    job = dict(model=str(tiny_dir), settings=SETTINGS, max_document_bytes=4096, workers=2)
    out = tmp_path / "out"
    parts = []

    def interrupt(path):
        parts.append(path)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_job(rows, out, rows_per_part=3, on_part=interrupt, fmt="jsonl", **job)
    first = by_id(read_output(out))
    assert 0 < len(first) < len(rows)
    summary = run_job(rows, out, rows_per_part=3, fmt="jsonl", **job)
    assert (summary.skipped, summary.rows) == (len(first), len(rows) - len(first))
    final = by_id(read_output(out))
    assert set(final) == {r["id"] for r in rows}


def test_ray_results_equal_the_local_engine(engine):
    """The embedded model: Ray Data map_batches rows == engine.retrieve for each pair."""
    texts = [
        "The lighthouse at Cape Wrath was built in 1828. Its keeper was Robert Stevenson. "
        "Fog horns were added later.",
        "Oxygen was isolated by Carl Wilhelm Scheele. Joseph Priestley published first. "
        "Lavoisier named it.",
        "The Amazon basin receives dust from the Sahara. A NASA satellite measured it. "
        "The dust carries phosphorus.",
    ]
    questions = ["Who was the keeper?", "Who named oxygen?", "What does the dust carry?"]
    rows = [
        {"id": str(i), "question": q, "document": t}
        for i, (t, q) in enumerate(zip(texts, questions))
    ]
    dataset = ray.data.from_items(normalize_rows(rows))
    out = run_dataset(dataset, settings=engine.settings, workers=1).take_all()
    result = by_id(out)
    for row in rows:
        expected = engine.retrieve(row["document"], row["question"])
        got = result[row["id"]]
        assert got["error"] is None
        sentences = json.loads(got["sentences"])
        assert [(s["text"], s["char_start"], s["char_end"], s["doc_index"]) for s in sentences] == [
            (s.text, s.char_start, s.char_end, s.doc_index) for s in expected.sentences
        ]
        assert [s["score"] for s in sentences] == pytest.approx(
            [s.score for s in expected.sentences], abs=1e-5
        )
        stats = json.loads(got["stats"])
        assert stats["tokens_read"] == expected.stats.tokens_read
        assert stats["retrieval_layer"] == expected.stats.retrieval_layer


def test_predictor_is_a_plain_map_batches_class(tmp_path, tiny_dir):
    """The documented user path: ds.map_batches(InfiniRetriPredictor, ...)."""
    rows = normalize_rows(corpus(tmp_path, n=2))
    out = (
        ray.data.from_items(rows)
        .map_batches(
            InfiniRetriPredictor,
            fn_constructor_kwargs={
                "model": str(tiny_dir),
                "settings": SETTINGS,
                "max_document_bytes": 4096,
            },
            concurrency=1,
            batch_size=4,
            batch_format="pyarrow",
        )
        .take_all()
    )
    result = by_id(out)
    assert set(result) == {r["id"] for r in rows}
    assert all(result[k]["error"] for k in BAD)


def test_cli_on_a_fresh_local_ray_is_quiet(tmp_path, tiny_dir):
    """`infiniretri batch --workers 1` starts its own Ray: only the bar and the summary show."""
    import os
    import subprocess
    import sys

    rows = corpus(tmp_path, n=2)
    source = tmp_path / "rows.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    command = [sys.executable, "-m", "infiniretri", "batch", str(source), "-o"]
    command += [str(tmp_path / "out"), "--workers", "1", "--model", str(tiny_dir)]
    command += ["--retrieval-layer", "1", "--max-document-bytes", "4096", "--no-progress"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"{len(rows)} rows written ({len(BAD)} errors)")
    assert len(by_id(read_output(tmp_path / "out"))) == len(rows)
