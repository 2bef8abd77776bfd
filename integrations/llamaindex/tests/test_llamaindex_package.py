"""The packages are laid out the way LlamaIndex integrations are: one distribution per namespace."""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import pytest
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import CustomLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]

# distribution -> (kind, public classes and their LlamaIndex base)
PACKAGES = {
    "llama-index-llms-infiniretri": ("llms", {"InfiniRetriLLM": CustomLLM}),
    "llama-index-postprocessor-infiniretri": (
        "postprocessor",
        {"InfiniRetriNodePostprocessor": BaseNodePostprocessor},
    ),
    "llama-index-retrievers-infiniretri": (
        "retrievers",
        {"InfiniRetriQueryEngine": BaseQueryEngine, "InfiniRetriRetriever": BaseRetriever},
    ),
}


@pytest.mark.parametrize("distribution", sorted(PACKAGES))
def test_each_namespace_is_its_own_distribution(distribution):
    kind, classes = PACKAGES[distribution]
    folder = ROOT / distribution
    # Implicit namespace packages: no __init__.py above the integration's own package.
    assert not (folder / "llama_index" / "__init__.py").exists()
    assert not (folder / "llama_index" / kind / "__init__.py").exists()
    assert (folder / "llama_index" / kind / "infiniretri" / "__init__.py").exists()
    package = importlib.import_module(f"llama_index.{kind}.infiniretri")
    assert Path(package.__file__).resolve().parent == folder / "llama_index" / kind / "infiniretri"
    assert sorted(package.__all__) == sorted(classes)
    for name, base in classes.items():
        assert issubclass(getattr(package, name), base)


@pytest.mark.parametrize("distribution", sorted(PACKAGES))
def test_pyproject_follows_llamahub_conventions(distribution):
    kind, classes = PACKAGES[distribution]
    pyproject = tomllib.loads((ROOT / distribution / "pyproject.toml").read_text())
    assert pyproject["build-system"]["build-backend"] == "hatchling.build"
    project = pyproject["project"]
    assert project["name"] == distribution
    assert (ROOT / distribution / project["readme"]).is_file()
    assert any(d.startswith("infiniretri") for d in project["dependencies"])
    assert "llama-index-core>=0.12,<0.15" in project["dependencies"]
    llamahub = pyproject["tool"]["llamahub"]
    assert llamahub["import_path"] == f"llama_index.{kind}.infiniretri"
    assert sorted(llamahub["class_authors"]) == sorted(classes)
    for target in ("sdist", "wheel"):
        assert pyproject["tool"]["hatch"]["build"]["targets"][target]["include"] == ["llama_index/"]


@pytest.mark.parametrize("distribution", sorted(PACKAGES))
def test_installed_distribution_exposes_its_import_path(distribution):
    kind, _ = PACKAGES[distribution]
    dist = importlib.metadata.distribution(distribution)
    requires = dist.requires or []
    assert any(r.startswith("infiniretri") for r in requires)
    assert any(r.startswith("llama-index-core") for r in requires)
    files = [str(f) for f in dist.files or []]
    # An editable install records a .pth file; a wheel records the package's files.
    assert any(f.endswith(".pth") or f"llama_index/{kind}/infiniretri/" in f for f in files)


def test_the_old_import_paths_are_gone():
    retrievers = importlib.import_module("llama_index.retrievers.infiniretri")
    assert not hasattr(retrievers, "InfiniRetriLLM")
    assert not hasattr(retrievers, "InfiniRetriNodePostprocessor")
    for old in ("llm", "postprocessor", "retriever"):
        with pytest.raises(ModuleNotFoundError):
            importlib.import_module(f"llama_index.retrievers.infiniretri.{old}")
