"""The package is laid out the way LlamaIndex integrations are."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import llama_index.retrievers.infiniretri as package
import pytest
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import CustomLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTION = "llama-index-retrievers-infiniretri"


def test_namespace_packages_have_no_init():
    assert not (ROOT / "llama_index" / "__init__.py").exists()
    assert not (ROOT / "llama_index" / "retrievers" / "__init__.py").exists()
    assert (ROOT / "llama_index" / "retrievers" / "infiniretri" / "__init__.py").exists()
    assert Path(package.__file__).resolve().parent == ROOT / "llama_index/retrievers/infiniretri"


def test_pyproject_follows_llamahub_conventions():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["build-system"]["build-backend"] == "hatchling.build"
    project = pyproject["project"]
    assert project["name"] == DISTRIBUTION
    assert any(d.startswith("infiniretri") for d in project["dependencies"])
    assert "llama-index-core>=0.12,<0.15" in project["dependencies"]
    llamahub = pyproject["tool"]["llamahub"]
    assert llamahub["import_path"] == package.__name__
    assert sorted(llamahub["class_authors"]) == sorted(package.__all__)
    for target in ("sdist", "wheel"):
        assert pyproject["tool"]["hatch"]["build"]["targets"][target]["include"] == ["llama_index/"]


def test_installed_distribution_exposes_the_import_path():
    dist = importlib.metadata.distribution(DISTRIBUTION)
    requires = dist.requires or []
    assert any(r.startswith("infiniretri") for r in requires)
    assert any(r.startswith("llama-index-core") for r in requires)


def test_classes_inherit_the_core_base_classes():
    assert issubclass(package.InfiniRetriQueryEngine, BaseQueryEngine)
    assert issubclass(package.InfiniRetriRetriever, BaseRetriever)
    assert issubclass(package.InfiniRetriNodePostprocessor, BaseNodePostprocessor)
    assert issubclass(package.InfiniRetriLLM, CustomLLM)
