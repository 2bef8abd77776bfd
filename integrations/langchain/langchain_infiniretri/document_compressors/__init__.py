"""InfiniRetri document compressor."""

from langchain_infiniretri.document_compressors.infiniretri import InfiniRetriCompressor

__all__ = ["InfiniRetriCompressor"]
