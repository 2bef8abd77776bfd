"""Ask a long document a question through LlamaIndex; the sources are InfiniRetri's sentence cache.

The document can be longer than the model's own window: InfiniRetri reads it chunk by chunk and
keeps only the sentences the model's attention selects, then answers from those. Runs offline
with the embedded SmolLM2-135M model (set up as the repository README says):

    python examples/llamaindex_query_engine.py
    python examples/llamaindex_query_engine.py --document notes.txt --question "Who signed it?"

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

from llama_index.core import Document, SimpleDirectoryReader
from llama_index.retrievers.infiniretri import InfiniRetriQueryEngine

from infiniretri import InfiniRetri

BUNDLED = Path(__file__).resolve().parent / "data" / "wikipedia_steam_oxygen_amazon.txt"
BUNDLED_QUESTION = "What year did James Watt patent his rotary steam engine?"
GENERATED_FACT = "The harbour master keeps the spare lighthouse key in the blue tin box."
GENERATED_QUESTION = "Where does the harbour master keep the spare lighthouse key?"


def generated_document(sentences: int = 1200, seed: int = 0) -> Document:
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
    return Document(text=" ".join(parts), metadata={"file_name": "generated.txt"})


def load_document(path: Path | None) -> tuple[Document, str]:
    """The document to read and a question that suits it when none is given."""
    if path is None and BUNDLED.exists():
        path, question = BUNDLED, BUNDLED_QUESTION
    elif path is None:
        return generated_document(), GENERATED_QUESTION
    else:
        question = ""
    if not path.is_file():
        raise SystemExit(f"--document: {path} is not a readable file")
    (document,) = SimpleDirectoryReader(input_files=[str(path)]).load_data()
    return document, question


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--document", type=Path, help="a UTF-8 text file to read")
    parser.add_argument("--question", help="the question (a default suits the default document)")
    parser.add_argument("--chunk-tokens", type=int, default=1024, help="tokens read per step")
    parser.add_argument(
        "--top-k-tokens",
        type=int,
        default=100,
        help="phrases kept per step (a small cache suits the small embedded model)",
    )
    parser.add_argument("--max-new-tokens", type=int, default=48, help="longest answer")
    parser.add_argument("--sources", type=int, default=10, help="source nodes to print")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    document, default_question = load_document(args.document)
    question = args.question or default_question
    if not question:
        raise SystemExit("--question is required with --document")

    engine = InfiniRetri.from_pretrained(
        chunk_tokens=args.chunk_tokens, top_k_tokens=args.top_k_tokens
    )
    name = document.metadata.get("file_name", "document")
    print(f"Document: {name}, {engine.count_tokens(document.text):,} tokens")
    print(f"Model:    {engine.model_name} (window {engine.context_window:,} tokens)")
    print(f"Question: {question}\n")

    query_engine = InfiniRetriQueryEngine.from_documents(
        [document], engine=engine, streaming=True, max_new_tokens=args.max_new_tokens
    )
    response = query_engine.query(question)  # the scan runs here; the answer streams below
    print("Answer:   ", end="", flush=True)
    response.print_response_stream()
    print("\n")

    stats = response.metadata["infiniretri"]
    print(
        f"Read {stats['tokens_read']:,} tokens in {stats['forward_passes']} steps "
        f"({stats['seconds']:.1f} s); the answer was written from {stats['cache_tokens']} "
        f"cached tokens in {len(response.source_nodes)} sentences."
    )
    best = sorted(response.source_nodes, key=lambda n: n.score or 0.0, reverse=True)
    print(f"\nTop {min(args.sources, len(best))} source nodes (attention score, characters):")
    for n in best[: args.sources]:
        node = n.node
        text = textwrap.shorten(node.get_content(), width=90, placeholder=" ...")
        print(f"  {n.score:7.3f}  [{node.start_char_idx:>6}:{node.end_char_idx:<6}] {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
