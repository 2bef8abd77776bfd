"""An agent tool that answers questions over a long document: ``create_infiniretri_tool``.

The tool reads the whole document with the model's attention and answers from the sentences it
keeps. It returns ``content_and_artifact``: the answer becomes the ``ToolMessage`` content the
agent reads, the cited sentences (``Document``s with offsets and scores) ride along as the
artifact for the application. Hand it to any tool-calling agent, e.g. LangChain's
``create_agent(model, tools=[tool])``; here the tool call an agent would make is run directly,
as the agent runtime runs it. Runs offline with the embedded SmolLM2-135M model:

    python examples/langchain_agent_tool.py
    python examples/langchain_agent_tool.py --document notes.txt --question "Who signed it?"

Without ``--document`` it reads ``examples/data/wikipedia_steam_oxygen_amazon.txt`` (about 17,000
tokens, twice the model's window), or a generated document when that file is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import textwrap
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from langchain_core.documents import Document
from langchain_core.messages import AIMessage, ToolMessage
from langchain_infiniretri import create_infiniretri_tool

from infiniretri import InfiniRetri

BUNDLED = Path(__file__).resolve().parent / "data" / "wikipedia_steam_oxygen_amazon.txt"
BUNDLED_QUESTION = (
    "Between 1991 and 2000, to how many square kilometres did the total area of forest lost "
    "in the Amazon rise?"
)
BUNDLED_DESCRIPTION = (
    "Answers questions about three encyclopedia articles: the steam engine, oxygen and the "
    "Amazon rainforest. Input: one self-contained question."
)
GENERATED_FACT = "The harbour master keeps the spare lighthouse key in the blue tin box."
GENERATED_QUESTION = "Where does the harbour master keep the spare lighthouse key?"


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


def load_document(path: Path | None) -> tuple[Document, str, str]:
    """The document, a question that suits it (when none is given), a tool description."""
    if path is None and BUNDLED.exists():
        document = Document(page_content=BUNDLED.read_text(encoding="utf-8"))
        document.metadata["source"] = BUNDLED.name
        return document, BUNDLED_QUESTION, BUNDLED_DESCRIPTION
    if path is None:
        document = Document(page_content=generated_text(), metadata={"source": "generated"})
        return document, GENERATED_QUESTION, "Answers questions about the harbour town's records."
    if not path.is_file():
        raise SystemExit(f"--document: {path} is not a readable file")
    document = Document(page_content=path.read_text(encoding="utf-8"))
    document.metadata["source"] = path.name
    return document, "", f"Answers questions about the document {path.name}."


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--document", type=Path, help="a UTF-8 text file to read")
    parser.add_argument("--question", help="the question (a default suits the default document)")
    parser.add_argument("--k", type=int, default=3, help="cited sentences in the artifact")
    parser.add_argument("--chunk-tokens", type=int, default=1024, help="tokens read per step")
    parser.add_argument("--max-new-tokens", type=int, default=48, help="longest answer")
    parser.add_argument("--width", type=int, default=100, help="characters shown per sentence")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    document, default_question, description = load_document(args.document)
    question = args.question or default_question
    if not question:
        raise SystemExit("--question is required with --document")

    engine = InfiniRetri.from_pretrained(chunk_tokens=args.chunk_tokens)
    tool = create_infiniretri_tool(
        [document],
        engine=engine,
        name="document_qa",
        description=description,
        max_tokens=args.max_new_tokens,
        k=args.k,
    )
    print(
        f"Document: {document.metadata['source']}, "
        f"{engine.count_tokens(document.page_content):,} tokens"
    )
    print(f"Tool:     {tool.name}: {tool.description}")
    print(f"Schema:   {json.dumps(tool.tool_call_schema.model_json_schema()['properties'])}\n")

    # What a tool-calling model emits, and what the agent runtime does with it.
    request = AIMessage(
        content="",
        tool_calls=[{"name": tool.name, "args": {"question": question}, "id": "call_1"}],
    )
    (call,) = request.tool_calls
    print(f"Agent calls {call['name']}({json.dumps(call['args'])})")
    message: ToolMessage = tool.invoke({**call, "type": "tool_call"})

    print(f"\nToolMessage content (what the agent reads):\n  {message.content.strip()}")
    print("\nToolMessage artifact (cited sentences, for the application):")
    for doc in message.artifact:
        meta = doc.metadata
        text = textwrap.shorten(doc.page_content, args.width, placeholder=" ...")
        print(
            f"  - [score {meta['score']:.3f}, chars {meta['char_start']}-{meta['char_end']} "
            f"of {meta['source']}] {text}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
