"""The two LangChain examples run end to end on a small document (real models, offline)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

EXAMPLES = Path(__file__).resolve().parents[4] / "examples"


def load_example(name: str) -> ModuleType:
    path = EXAMPLES / f"{name}.py"
    if not path.is_file():
        pytest.skip(f"{path} is not here (the package is tested outside its repository)")
    spec = importlib.util.spec_from_file_location(f"example_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def small_document(tmp_path, needle_text) -> Path:
    path = tmp_path / "millbrook.txt"
    path.write_text(needle_text.text, encoding="utf-8")
    return path


def test_rag_swap_example(small_document, needle_text, capsys):
    example = load_example("langchain_rag_swap")
    code = example.main(
        [
            "--document",
            str(small_document),
            "--question",
            needle_text.question,
            "--k",
            "3",
            "--chunk-chars",
            "400",
            "--chunk-tokens",
            "512",
            "--max-new-tokens",
            "12",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    vector_part, infini_part = out.split("== InfiniRetriRetriever")
    assert "== Vector store (all-MiniLM-L6-v2)" in vector_part
    assert vector_part.count("  - [chunk at char") == 3
    assert "Answer: " in vector_part and "Answer: " in infini_part
    # The attention retriever cites the planted sentence with its exact offsets.
    start = needle_text.needle_start
    assert f"chars {start}-{start + len(needle_text.needle)}] {needle_text.needle}" in infini_part


def test_agent_tool_example(small_document, needle_text, capsys):
    example = load_example("langchain_agent_tool")
    code = example.main(
        [
            "--document",
            str(small_document),
            "--question",
            needle_text.question,
            "--k",
            "2",
            "--chunk-tokens",
            "512",
            "--max-new-tokens",
            "16",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "Agent calls document_qa(" in out
    content = out.split("ToolMessage content (what the agent reads):\n")[1].split("\n")[0]
    assert needle_text.answer in content
    artifact = out.split("ToolMessage artifact")[1]
    assert needle_text.needle in artifact
    assert artifact.count("  - [score") == 2
