"""Each LlamaIndex example runs offline, end to end, on a small document."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


def run_example(name: str, *args: str) -> str:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("OPENAI_API_KEY", None)
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture
def small_document(tmp_path, needle) -> Path:
    path = tmp_path / "valley.txt"
    path.write_text(needle.text(sentences=24, at=15), encoding="utf-8")
    return path


def test_query_engine_example(small_document, needle):
    out = run_example(
        "llamaindex_query_engine.py",
        "--document",
        str(small_document),
        "--question",
        needle.question,
        "--chunk-tokens",
        "256",
        "--top-k-tokens",
        "60",
        "--max-new-tokens",
        "12",
    )
    assert f"Question: {needle.question}" in out
    answer = re.search(r"^Answer: +(.*)$", out, re.MULTILINE)
    assert answer is not None and needle.key in answer.group(1)
    sources = re.findall(r"^ +(-?\d+\.\d{3}) +\[ *(\d+):(\d+) *\] (.*)$", out, re.MULTILINE)
    assert sources, out
    text = small_document.read_text(encoding="utf-8")
    for _, start, end, shown in sources:
        assert text[int(start) : int(end)].startswith(shown.removesuffix(" ...")[:40])
    assert any(shown == needle.sentence for *_, shown in sources)


def test_postprocessor_example(small_document, needle):
    out = run_example(
        "llamaindex_postprocessor.py",
        "--document",
        str(small_document),
        "--question",
        needle.question,
        "--chunk-size",
        "64",
        "--similarity-top-k",
        "3",
        "--top-n",
        "2",
        "--llm",
        "mock",
    )
    counts = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) prompt tokens reached", out)]
    assert len(counts) == 2, out
    before, after = counts
    assert 0 < after < before
    assert needle.sentence in out.split("InfiniRetriNodePostprocessor(top_n=2)")[1]
