"""Command line: ``infiniretri ask PATH -q "..."`` and ``infiniretri batch INPUT -o DIR``."""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path


def _layer(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer or 'auto', got {value!r}") from None


def _optional_int(value: str) -> int | None:
    if value.lower() == "none":
        return None
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be an integer or 'none', got {value!r}") from None


def _heads(value: str) -> str | list[tuple[int, int]]:
    if value in ("all", "auto"):
        return value
    try:
        pairs = [tuple(int(x) for x in pair.split(":")) for pair in value.split(",")]
    except ValueError:
        pairs = []
    if not pairs or any(len(pair) != 2 for pair in pairs):
        raise argparse.ArgumentTypeError(
            f"must be 'all', 'auto' or LAYER:HEAD pairs such as 17:3,18:6, got {value!r}"
        )
    return pairs


def _on_off_auto(value: str) -> bool | str:
    words = {"auto": "auto", "true": True, "on": True, "false": False, "off": False}
    if value.lower() not in words:
        raise argparse.ArgumentTypeError(f"must be true, false or 'auto', got {value!r}")
    return words[value.lower()]


def _number(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None


_PARSERS = {
    "int": int,
    "int | None": _optional_int,
    "int | str": _layer,
    "str": str,
    "float": _number,
    "str | tuple[tuple[int, int], ...]": _heads,
    "bool | str": _on_off_auto,
}
"""How a flag's text becomes a setting's value, by the setting's annotation."""


def add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """One flag per :class:`EngineSettings` field (``--chunk-tokens`` ...), doc and default.

    Flags left out keep the setting's default (they parse to nothing).
    """
    from .settings import EngineSettings

    group = parser.add_argument_group("engine settings")
    docs, defaults = EngineSettings.docs(), EngineSettings.defaults()
    for field in dataclasses.fields(EngineSettings):
        flag = "--" + field.name.replace("_", "-")
        shown = defaults[field.name]
        text = f"{docs[field.name]} (default: {shown!r})".replace("%", "%%")
        if field.type == "bool":
            group.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS, help=text
            )
        else:
            group.add_argument(
                flag, type=_PARSERS[field.type], default=argparse.SUPPRESS, help=text
            )


def setting_options(args: argparse.Namespace) -> dict:
    """The engine settings given on the command line."""
    from .settings import EngineSettings

    return {name: getattr(args, name) for name in EngineSettings.names() if hasattr(args, name)}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="infiniretri",
        description="Answer questions over text of any length with the model's own attention.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    ask = commands.add_parser("ask", help="answer a question over a document")
    ask.add_argument("path", help="a UTF-8 text file, or - for standard input")
    ask.add_argument("-q", "--question", required=True, help="the question")
    ask.add_argument("--show-sentences", action="store_true", help="print the cited sentences")
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.add_argument("--model", default=None, help="local model path (default: embedded model)")
    ask.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 or auto")
    ask.add_argument("--dtype", default=None, help="float32, bfloat16, ...")
    ask.add_argument("--max-new-tokens", type=int, default=128, help="answer length limit")
    ask.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_setting_flags(ask)
    _add_batch(commands)
    return parser


def _add_batch(commands) -> None:
    from .batch import DEFAULT_MAX_DOCUMENT_BYTES, DEFAULT_ROWS_PER_PART, FORMATS

    batch = commands.add_parser(
        "batch",
        help="run a corpus job: one result row per input row, on Ray or in this process",
        description=(
            "Read rows (id, question, and document or path) from a JSONL, Parquet or CSV file "
            "and write one result row per id to --output, in parts. Re-running skips ids "
            "already there. --batch-size is the number of rows each call runs together."
        ),
    )
    batch.add_argument("input", help="rows: a .jsonl, .parquet or .csv file")
    batch.add_argument("-o", "--output", required=True, help="output folder (created; resumable)")
    batch.add_argument("--answer", action="store_true", help="also generate an answer per row")
    batch.add_argument(
        "--workers",
        type=int,
        default=1,
        help="Ray actors, one engine each; 0 runs in this process without Ray (default: 1)",
    )
    batch.add_argument(
        "--gpus-per-worker",
        type=float,
        default=0.0,
        help="GPUs per actor; a fraction shares a GPU between actors (default: 0, CPU)",
    )
    batch.add_argument(
        "--cpus-per-worker",
        type=float,
        default=1.0,
        help="CPUs per actor (its torch threads and tokenizing prep workers; default: 1)",
    )
    batch.add_argument(
        "--address",
        default=None,
        help="Ray cluster address (default: $RAY_ADDRESS, else start a local Ray)",
    )
    batch.add_argument(
        "--format", choices=FORMATS, default="parquet", help="output format (default: parquet)"
    )
    batch.add_argument("--model", default=None, help="local model path (default: embedded model)")
    batch.add_argument(
        "--device", default=None, help="cpu, cuda ... (default: cuda with GPUs, else cpu)"
    )
    batch.add_argument("--dtype", default=None, help="float32, bfloat16, ...")
    batch.add_argument("--max-new-tokens", type=int, default=128, help="answer length limit")
    batch.add_argument(
        "--max-document-bytes",
        type=int,
        default=DEFAULT_MAX_DOCUMENT_BYTES,
        help=f"larger documents give error rows (default: {DEFAULT_MAX_DOCUMENT_BYTES})",
    )
    batch.add_argument(
        "--rows-per-part",
        type=int,
        default=DEFAULT_ROWS_PER_PART,
        help=f"rows per output part file (default: {DEFAULT_ROWS_PER_PART})",
    )
    batch.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    add_setting_flags(batch)


def _batch(args: argparse.Namespace) -> int:
    from .batch import run_job
    from .settings import EngineSettings

    if args.workers < 0:
        raise ValueError(f"--workers must be 0 or more, got {args.workers}")
    if args.rows_per_part < 1:
        raise ValueError(f"--rows-per-part must be positive, got {args.rows_per_part}")
    if args.max_document_bytes < 1:
        raise ValueError(f"--max-document-bytes must be positive, got {args.max_document_bytes}")
    settings = EngineSettings.from_options(setting_options(args))
    summary = run_job(
        args.input,
        args.output,
        answer=args.answer,
        workers=args.workers,
        gpus_per_worker=args.gpus_per_worker,
        cpus_per_worker=args.cpus_per_worker,
        address=args.address,
        fmt=args.format,
        model=args.model,
        device=args.device,
        dtype=args.dtype,
        settings=settings,
        max_new_tokens=args.max_new_tokens,
        max_document_bytes=args.max_document_bytes,
        rows_per_part=args.rows_per_part,
        progress=not args.no_progress,
    )
    print(summary.line(), file=sys.stderr)
    return 0


def _source(path: str):
    if path == "-":
        return _StdinDocument()
    return Path(path)


class _StdinDocument:
    """Standard input as one document, decoded incrementally."""

    def read(self, size: int = -1):
        stream = sys.stdin.buffer if hasattr(sys.stdin, "buffer") else sys.stdin
        return stream.read(size)


def _ask(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .engine import InfiniRetri
    from .settings import EngineSettings

    source = _source(args.path)
    if isinstance(source, Path):
        if not source.exists():
            raise FileNotFoundError(f"{args.path}: no such file")
        if source.is_dir():
            raise ValueError(f"{args.path} is a directory, not a text file")
    settings = EngineSettings.from_options(setting_options(args))
    engine = InfiniRetri.from_pretrained(  # one call per process: a warm-up would not pay
        args.model, device=args.device, dtype=args.dtype, warmup=False, settings=settings
    )
    bar = tqdm(unit="tok", desc="reading", file=sys.stderr, disable=args.no_progress)
    seen = 0

    def progress(tokens: int) -> None:
        nonlocal seen
        bar.update(tokens - seen)
        seen = tokens

    try:
        answer = engine.answer(
            source, args.question, max_new_tokens=args.max_new_tokens, progress=progress
        )
    finally:
        bar.close()
    retrieval = answer.retrieval
    if args.json:
        stats = retrieval.stats
        print(
            json.dumps(
                {
                    "question": retrieval.question,
                    "answer": answer.text,
                    "sentences": [s.__dict__ for s in retrieval.sentences],
                    "stats": stats.__dict__,
                    "model": engine.model_name,
                },
                ensure_ascii=False,
                indent=2,
            )
        )
        return 0
    print(answer.text.strip())
    if args.show_sentences:
        stats = retrieval.stats
        print(
            f"\nCited sentences ({len(retrieval.sentences)} kept of {stats.sentences_read}, "
            f"{stats.cache_tokens} of {stats.tokens_read} tokens, layer {stats.retrieval_layer}, "
            f"{stats.seconds:.1f} s):"
        )
        for sentence in retrieval.top(len(retrieval.sentences)):
            print(
                f"  [{sentence.score:.3f}] chars {sentence.char_start}-{sentence.char_end}: "
                f"{sentence.text}"
            )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return _batch(args) if args.command == "batch" else _ask(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"infiniretri: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("infiniretri: interrupted", file=sys.stderr)
        return 130
