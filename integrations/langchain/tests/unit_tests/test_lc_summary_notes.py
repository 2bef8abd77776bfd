"""Summary-track notes come back as generated Documents, apart from the source sentences."""

from __future__ import annotations

from langchain_infiniretri import InfiniRetriRetriever


def test_notes_are_documents_of_kind_summary_with_their_range(engine, needle_text):
    summary = engine.with_options(
        chunk_tokens=128, answer_mode="summary", summary_notes=2, summary_note_tokens=12
    )
    retriever = InfiniRetriRetriever.from_texts([needle_text.text], engine=summary)
    documents = retriever.invoke(needle_text.question)
    notes = [d for d in documents if d.metadata.get("kind") == "summary"]
    sentences = [d for d in documents if "kind" not in d.metadata]
    assert notes and sentences
    for note in notes:
        start, end = note.metadata["char_start"], note.metadata["char_end"]
        assert note.metadata["doc_index"] == note.metadata["end_doc_index"] == 0
        assert 0 <= start < end <= len(needle_text.text)
        assert "score" not in note.metadata  # generated: no attention score
    for sentence in sentences:
        m = sentence.metadata
        assert needle_text.text[m["char_start"] : m["char_end"]] == sentence.page_content
