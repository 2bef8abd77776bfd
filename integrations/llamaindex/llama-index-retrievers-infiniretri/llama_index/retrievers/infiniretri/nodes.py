"""LlamaIndex nodes in, InfiniRetri documents out, and cached sentences back as nodes.

Each text InfiniRetri reads is a :class:`SourceText`: the text plus the node (a ``Document`` or a
chunk's source document) its offsets index into. Chunks that a node parser cut from one document
and that carry ``start_char_idx`` are put back together (overlaps removed) so the model reads each
sentence once and every cached sentence maps to exact offsets in the original document.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from llama_index.core.schema import (
    BaseNode,
    Document,
    MetadataMode,
    NodeRelationship,
    NodeWithScore,
    RelatedNodeInfo,
    TextNode,
)

from infiniretri import Note, Sentence

_NODE_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "infiniretri:llama-index:sentence")


@dataclass(frozen=True)
class SourceText:
    """One document as InfiniRetri reads it, and where its text lies in a LlamaIndex node."""

    text: str
    origin: RelatedNodeInfo
    """The node (usually a ``Document``) whose text ``offset`` indexes into."""
    offset: int = 0
    """``origin``'s text from ``offset`` on starts with ``text``."""
    metadata: dict[str, Any] = field(default_factory=dict)
    excluded_embed_metadata_keys: tuple[str, ...] = ()
    excluded_llm_metadata_keys: tuple[str, ...] = ()


@dataclass
class _Chunk:
    start: int
    text: str
    node: BaseNode


def _as_node(item: object, index: int, what: str) -> BaseNode:
    if isinstance(item, BaseNode):
        return item
    if isinstance(item, str):
        return Document(text=item)
    raise ValueError(
        f"{what}[{index}] is a {type(item).__name__}; expected a LlamaIndex Document/node or a str"
    )


def _text_of(node: BaseNode) -> str:
    return node.get_content(metadata_mode=MetadataMode.NONE) or ""


def _standalone(node: BaseNode, text: str) -> SourceText:
    return SourceText(
        text=text,
        origin=node.as_related_node_info(),
        offset=0,
        metadata=dict(node.metadata),
        excluded_embed_metadata_keys=tuple(node.excluded_embed_metadata_keys),
        excluded_llm_metadata_keys=tuple(node.excluded_llm_metadata_keys),
    )


def _merge_chunks(origin: RelatedNodeInfo, chunks: list[_Chunk]) -> list[SourceText]:
    """Join the chunks of one document into runs of contiguous text with exact offsets.

    Chunks are sorted by ``start``; a chunk that overlaps or touches the current run extends it
    when the shared characters agree. A gap starts a new run; a chunk whose text disagrees with
    the run it overlaps cannot be trusted to sit where it says and is read on its own.
    """
    sources: list[SourceText] = []
    first = chunks[0].node

    def run_source(start: int, text: str) -> SourceText:
        return SourceText(
            text=text,
            origin=origin,
            offset=start,
            metadata=dict(origin.metadata),
            excluded_embed_metadata_keys=tuple(first.excluded_embed_metadata_keys),
            excluded_llm_metadata_keys=tuple(first.excluded_llm_metadata_keys),
        )

    run_start: int | None = None
    run_text = ""
    for chunk in sorted(chunks, key=lambda c: c.start):
        if run_start is None:
            run_start, run_text = chunk.start, chunk.text
            continue
        run_end = run_start + len(run_text)
        if chunk.start > run_end:
            sources.append(run_source(run_start, run_text))
            run_start, run_text = chunk.start, chunk.text
            continue
        shared = run_text[chunk.start - run_start :]
        if chunk.text.startswith(shared):
            run_text += chunk.text[len(shared) :]
        elif not shared.startswith(chunk.text):
            sources.append(_standalone(chunk.node, chunk.text))
    if run_start is not None:
        sources.append(run_source(run_start, run_text))
    return sources


def build_sources(items: Iterable[BaseNode | str], what: str = "documents") -> list[SourceText]:
    """Turn documents or nodes into the texts InfiniRetri reads, in first-seen order.

    ``what`` names the argument in error messages. Strings become ``Document``\\ s; nodes with no
    text are skipped. A node with a ``SOURCE`` relationship and ``start_char_idx`` (what node
    parsers produce) is mapped into its source document; any other node is read as it is.
    """
    if isinstance(items, (str, bytes, BaseNode)):
        raise ValueError(f"{what} must be a sequence of documents or nodes, not a single one")
    if items is None or not isinstance(items, Iterable):
        raise ValueError(f"{what} must be a sequence of documents or nodes")
    nodes = [_as_node(item, i, what) for i, item in enumerate(items)]
    if not nodes:
        raise ValueError(f"{what} is empty; give at least one document with text")

    order: list[object] = []
    singles: dict[int, SourceText] = {}
    groups: dict[str, tuple[RelatedNodeInfo, list[_Chunk]]] = {}
    for i, node in enumerate(nodes):
        text = _text_of(node)
        if not text.strip():
            continue
        source = node.source_node
        start = getattr(node, "start_char_idx", None)
        if source is not None and start is not None and source.node_id != node.node_id:
            if source.node_id not in groups:
                groups[source.node_id] = (source, [])
                order.append(source.node_id)
            groups[source.node_id][1].append(_Chunk(start, text, node))
        else:
            singles[i] = _standalone(node, text)
            order.append(i)
    if not order:
        raise ValueError(f"{what}: no document has any text; give at least one non-empty document")

    sources: list[SourceText] = []
    for key in order:
        if isinstance(key, int):
            sources.append(singles[key])
        else:
            origin, chunks = groups[key]
            sources.extend(_merge_chunks(origin, chunks))
    return sources


def sentence_node(sentence: Sentence, source: SourceText) -> NodeWithScore:
    """One cached sentence as a ``TextNode`` pointing into its source, with its attention score."""
    start = source.offset + sentence.char_start
    end = source.offset + sentence.char_end
    node_id = uuid.uuid5(_NODE_ID_NAMESPACE, f"{source.origin.node_id}:{start}:{end}")
    node = TextNode(
        id_=str(node_id),
        text=sentence.text,
        start_char_idx=start,
        end_char_idx=end,
        metadata=dict(source.metadata),
        excluded_embed_metadata_keys=list(source.excluded_embed_metadata_keys),
        excluded_llm_metadata_keys=list(source.excluded_llm_metadata_keys),
        relationships={NodeRelationship.SOURCE: source.origin},
    )
    return NodeWithScore(node=node, score=float(sentence.score))


def sentence_nodes(
    sentences: Sequence[Sentence], sources: Sequence[SourceText]
) -> list[NodeWithScore]:
    """Cached sentences as nodes, in the order given."""
    return [sentence_node(s, sources[s.doc_index]) for s in sentences]


def note_node(note: Note, sources: Sequence[SourceText]) -> NodeWithScore:
    """A summary-track note as a node: generated text, ``metadata["kind"] == "summary"``, with
    the range it covers (offsets into the source texts, like a sentence node's)."""
    first, last = sources[note.doc_index], sources[note.end_doc_index]
    start, end = first.offset + note.char_start, last.offset + note.char_end
    key = f"summary:{first.origin.node_id}:{start}:{last.origin.node_id}:{end}:{note.text}"
    metadata = {
        **first.metadata,
        "kind": note.kind,
        "doc_index": note.doc_index,
        "end_doc_index": note.end_doc_index,
        "char_start": start,
        "char_end": end,
    }
    node = TextNode(
        id_=str(uuid.uuid5(_NODE_ID_NAMESPACE, key)),
        text=note.text,
        metadata=metadata,
        relationships={NodeRelationship.SOURCE: first.origin},
    )
    return NodeWithScore(node=node, score=None)
