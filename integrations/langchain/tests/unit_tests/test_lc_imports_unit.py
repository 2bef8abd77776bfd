"""The public names of the package."""

from __future__ import annotations

import langchain_infiniretri

EXPECTED = {
    "ChatInfiniRetri",
    "InfiniRetriCompressor",
    "InfiniRetriLLM",
    "InfiniRetriRetriever",
    "__version__",
    "create_infiniretri_tool",
}


def test_all_names_are_exported_and_importable():
    assert set(langchain_infiniretri.__all__) == EXPECTED
    for name in EXPECTED:
        assert getattr(langchain_infiniretri, name) is not None


def test_subpackages_follow_the_partner_layout():
    from langchain_infiniretri.chat_models import ChatInfiniRetri
    from langchain_infiniretri.document_compressors import InfiniRetriCompressor
    from langchain_infiniretri.llms import InfiniRetriLLM
    from langchain_infiniretri.retrievers import InfiniRetriRetriever
    from langchain_infiniretri.tools import create_infiniretri_tool

    assert langchain_infiniretri.ChatInfiniRetri is ChatInfiniRetri
    assert langchain_infiniretri.InfiniRetriCompressor is InfiniRetriCompressor
    assert langchain_infiniretri.InfiniRetriLLM is InfiniRetriLLM
    assert langchain_infiniretri.InfiniRetriRetriever is InfiniRetriRetriever
    assert langchain_infiniretri.create_infiniretri_tool is create_infiniretri_tool


def test_version_comes_from_the_installed_distribution():
    assert langchain_infiniretri.__version__ == "0.1.0"
