"""The packages are laid out the way LlamaIndex integrations are: one distribution per namespace."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import sys
from pathlib import Path

import pytest
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.base.base_retriever import BaseRetriever
from llama_index.core.llms import CustomLLM
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

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


def pyproject_of(distribution: str) -> dict:
    return tomllib.loads((ROOT / distribution / "pyproject.toml").read_text())


def declared(distribution: str) -> list[Requirement]:
    """The distribution's runtime requirements, as its pyproject declares them."""
    return [Requirement(d) for d in pyproject_of(distribution)["project"]["dependencies"]]


def distribution_of(module: str) -> str | None:
    """The distribution that provides an absolutely imported module; None for the stdlib."""
    parts = module.split(".")
    if parts[0] in sys.stdlib_module_names:
        return None
    if parts[0] == "llama_index":  # one namespace, one distribution per llama_index.<kind>.<name>
        name = "llama-index-core" if parts[1] == "core" else f"llama-index-{parts[1]}-{parts[2]}"
        return canonicalize_name(name)
    providers = importlib.metadata.packages_distributions().get(parts[0])
    if providers:
        return canonicalize_name(providers[0])
    # An editable install (infiniretri here) records no files: its name is the package's.
    return canonicalize_name(importlib.metadata.distribution(parts[0]).name)


def imported_distributions(distribution: str) -> set[str]:
    """Every other distribution the package's code imports (read from its source)."""
    kind, _ = PACKAGES[distribution]
    found = set()
    for path in (ROOT / distribution / "llama_index" / kind / "infiniretri").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(distribution_of(alias.name) for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                found.add(distribution_of(node.module))
    return found - {None, canonicalize_name(distribution)}


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
    pyproject = pyproject_of(distribution)
    assert pyproject["build-system"]["build-backend"] == "hatchling.build"
    project = pyproject["project"]
    assert project["name"] == distribution
    assert (ROOT / distribution / project["readme"]).is_file()
    llamahub = pyproject["tool"]["llamahub"]
    assert llamahub["import_path"] == f"llama_index.{kind}.infiniretri"
    assert sorted(llamahub["class_authors"]) == sorted(classes)
    for target in ("sdist", "wheel"):
        assert pyproject["tool"]["hatch"]["build"]["targets"][target]["include"] == ["llama_index/"]


@pytest.mark.parametrize("distribution", sorted(PACKAGES))
def test_the_declared_dependencies_are_what_the_code_imports(distribution):
    names = [canonicalize_name(r.name) for r in declared(distribution)]
    assert len(names) == len(set(names)), names
    # Nothing imported goes undeclared (it would be missing from a fresh install), and nothing
    # declared goes unused.
    assert set(names) == imported_distributions(distribution)


@pytest.mark.parametrize("distribution", sorted(PACKAGES))
def test_the_installed_versions_satisfy_the_declared_requirements(distribution):
    for requirement in declared(distribution):
        assert requirement.marker is None or requirement.marker.evaluate(), requirement
        installed = importlib.metadata.version(requirement.name)
        assert requirement.specifier.contains(installed, prereleases=True), (
            f"{distribution} requires {requirement}, but {installed} is installed"
        )


def test_the_distributions_agree_on_llama_index_core():
    # They are installed side by side, so the range that works is the one all of them allow.
    ranges = {
        distribution: next(
            r.specifier for r in declared(distribution) if r.name == "llama-index-core"
        )
        for distribution in PACKAGES
    }
    assert len(set(ranges.values())) == 1, ranges


@pytest.mark.parametrize("distribution", sorted(PACKAGES))
def test_installed_distribution_exposes_its_import_path(distribution):
    kind, _ = PACKAGES[distribution]
    dist = importlib.metadata.distribution(distribution)
    # The installed metadata is the pyproject's (an install made before an edit is stale).
    runtime = [Requirement(r) for r in dist.requires or []]
    runtime = [r for r in runtime if r.marker is None or "extra" not in str(r.marker)]
    assert sorted(map(str, runtime)) == sorted(map(str, declared(distribution)))
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
