"""Node bookkeeping, checked without running the model."""

from __future__ import annotations

from llama_index.core import Document
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.schema import NodeRelationship, TextNode
from llama_index.retrievers.infiniretri.nodes import build_sources, sentence_node

from infiniretri import Sentence

# -- sources --------------------------------------------------------------------------------


def test_documents_are_read_whole_with_their_metadata():
    doc = Document(text="First sentence. Second one.", metadata={"file_name": "a.txt"})
    (source,) = build_sources([doc, Document(text="")])
    assert source.text == doc.text
    assert source.offset == 0
    assert source.origin.node_id == doc.doc_id
    assert source.metadata == {"file_name": "a.txt"}


def test_strings_become_documents():
    sources = build_sources(["One.", "Two."])
    assert [s.text for s in sources] == ["One.", "Two."]
    assert sources[0].origin.node_id != sources[1].origin.node_id


def test_overlapping_chunks_are_joined_back_into_exact_document_spans(needle):
    docs = [Document(text=needle.text(), doc_id="doc-a"), Document(text=needle.filler(25))]
    nodes = SentenceSplitter(chunk_size=64, chunk_overlap=24).get_nodes_from_documents(docs)
    assert len(nodes) > 6
    shuffled = nodes[1::2] + nodes[::2]  # order of arrival must not matter
    sources = build_sources(shuffled, "nodes")
    assert len(sources) < len(nodes)
    by_id = {d.doc_id: d for d in docs}
    covered = {d.doc_id: 0 for d in docs}
    for source in sources:
        doc = by_id[source.origin.node_id]
        assert doc.text[source.offset : source.offset + len(source.text)] == source.text
        covered[doc.doc_id] += len(source.text)
    for doc in docs:
        # Every character is read at most once: overlaps were removed.
        assert covered[doc.doc_id] <= len(doc.text)
    for node in nodes:
        doc = by_id[node.ref_doc_id]
        assert any(
            s.origin.node_id == doc.doc_id
            and s.offset <= node.start_char_idx
            and node.end_char_idx <= s.offset + len(s.text)
            for s in sources
        )


def test_chunk_that_disagrees_with_its_document_is_read_on_its_own():
    doc = Document(text="Alpha beta gamma. Delta epsilon zeta. Eta theta iota.", doc_id="d")
    first = TextNode(text="Alpha beta gamma. Delta epsilon", start_char_idx=0, end_char_idx=31)
    edited = TextNode(text="Delta EPSILON zeta.", start_char_idx=18, end_char_idx=37)
    for node in (first, edited):
        node.relationships[NodeRelationship.SOURCE] = doc.as_related_node_info()
    sources = build_sources([first, edited], "nodes")
    assert [(s.origin.node_id, s.offset, s.text) for s in sources] == [
        (edited.node_id, 0, edited.text),
        ("d", 0, first.text),
    ]


def test_nodes_without_offsets_are_read_as_they_are():
    node = TextNode(text="Standalone text.")
    (source,) = build_sources([node], "nodes")
    assert source.origin.node_id == node.node_id
    assert source.offset == 0


def test_sentence_node_points_into_its_source_with_a_stable_id():
    doc = Document(text="Intro text here. The key fact is 42. Outro.", metadata={"k": "v"})
    (source,) = build_sources([doc])
    start = doc.text.index("The key")
    sentence = Sentence("The key fact is 42.", 0.75, 0, start, start + 19)
    first, second = sentence_node(sentence, source), sentence_node(sentence, source)
    assert first.node.node_id == second.node.node_id
    assert first.score == 0.75
    node = first.node
    assert doc.text[node.start_char_idx : node.end_char_idx] == node.text
    assert node.ref_doc_id == doc.doc_id
    assert node.metadata == {"k": "v"}
