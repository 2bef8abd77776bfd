"""Summary-track notes among the retriever's nodes: generated, kind="summary", with a range."""

from __future__ import annotations

from llama_index.retrievers.infiniretri import InfiniRetriRetriever


def test_notes_are_nodes_of_kind_summary(engine, needle_document):
    summary = engine.with_options(
        chunk_tokens=128, answer_mode="summary", summary_notes=2, summary_note_tokens=12
    )
    retriever = InfiniRetriRetriever.from_documents([needle_document], engine=summary)
    nodes = retriever.retrieve("Where did the expedition find the lost city?")
    notes = [n for n in nodes if n.node.metadata.get("kind") == "summary"]
    assert notes and len(notes) <= 2
    text = needle_document.text
    for note in notes:
        meta = note.node.metadata
        assert note.score is None and meta["file_name"] == "valley.txt"
        assert 0 <= meta["char_start"] < meta["char_end"] <= len(text)
    sentences = [n for n in nodes if "kind" not in n.node.metadata]
    assert all(
        text[n.node.start_char_idx : n.node.end_char_idx] == n.node.get_content() for n in sentences
    )
