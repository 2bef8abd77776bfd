"""Corpus jobs: many ``(document, question)`` rows in, one result row per input id out.

This module holds everything of ``infiniretri batch`` that does not need Ray: reading the input
(JSONL, Parquet or CSV), checking rows (a bad row becomes an error row; the job goes on),
turning engine results into output rows, resuming (ids already in the output folder are
skipped), and writing the output in parts, each one atomically (a temporary file, then a
rename). ``--workers 0`` runs the whole job here, in this process; with workers, the same
:func:`process_rows` runs inside Ray actors (:mod:`infiniretri.ray`) and the rows come back to
this module's writer. Nothing here imports Ray.

Rows in: ``id``, ``question``, and either ``document`` (the text) or ``path`` (a UTF-8 file
that the worker reads). Rows out: ``id``, ``answer`` (only with ``answer=True``),
``sentences`` (a JSON list of ``{text, char_start, char_end, score, doc_index}``), ``stats``
(a JSON object: the :class:`~infiniretri.results.Stats` fields, and ``usage`` when answering)
and ``error`` (``None``, or why the row has no result). Ids are written as strings.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import dataclasses
import json
import math
import os
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from .sizing import rows_per_call

DEFAULT_MAX_DOCUMENT_BYTES = 64 << 20
"""Documents (text or file) larger than this many UTF-8 bytes give an error row."""
DEFAULT_ROWS_PER_PART = 256
"""Result rows per output part: a crash loses at most the rows not yet in a part."""
FORMATS = ("parquet", "jsonl")
INPUT_SUFFIXES = {".jsonl": "jsonl", ".ndjson": "jsonl", ".parquet": "parquet", ".csv": "csv"}
MANIFEST = "_job.json"
PART_PREFIX = "part-"
_TMP_PREFIX = ".tmp-"
_READ_BLOCK = 1 << 20


class JobError(ValueError):
    """The job cannot start: bad input file, duplicate ids, an output folder of another job."""


# ----------------------------------------------------------------------------- input
def _needs_pyarrow(what: str):
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise JobError(
            f"{what} needs pyarrow; install it with: pip install 'infiniretri[ray]'"
        ) from None
    return pa, pq


def read_input(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The rows of a JSONL, Parquet or CSV file (by its suffix), as dicts, in file order."""
    path = Path(path)
    kind = INPUT_SUFFIXES.get(path.suffix.lower())
    if kind is None:
        raise JobError(
            f"input: {path} must end in one of {', '.join(sorted(INPUT_SUFFIXES))} "
            "(JSONL, Parquet or CSV)"
        )
    if not path.is_file():
        raise JobError(f"input: {path} does not exist")
    if kind == "jsonl":
        rows = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise JobError(f"input: {path} line {number} is not JSON: {err}") from None
                if not isinstance(row, dict):
                    raise JobError(f"input: {path} line {number} is not a JSON object")
                rows.append(row)
        return rows
    if kind == "csv":
        with open(path, encoding="utf-8", newline="") as handle:
            return [dict(row) for row in csv.DictReader(handle)]
    _, pq = _needs_pyarrow("reading Parquet input")
    return pq.read_table(path).to_pylist()


def _given(value: Any) -> bool:
    """A cell holds a value: not missing, None, NaN or the empty string (an empty CSV cell)."""
    if value is None:
        return False
    if isinstance(value, float) and math.isnan(value):
        return False
    return not (isinstance(value, str) and value == "")


def normalize_rows(rows: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with ``id`` (a string), ``question``, ``document`` and ``path`` (``None`` if absent).

    Raises :class:`JobError` up front for a row without an id and for duplicate ids: every
    input id must name exactly one output row.
    """
    out, seen, duplicates = [], set(), []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise JobError(f"rows[{i}] must be a mapping, got {type(row).__name__}")
        key = row.get("id")
        if not _given(key):
            raise JobError(f"rows[{i}] has no id; every row needs a unique id")
        key = str(key)
        if key in seen:
            duplicates.append(key)
        seen.add(key)
        out.append(
            {
                "id": key,
                "question": row.get("question"),
                "document": row.get("document") if _given(row.get("document")) else None,
                "path": row.get("path") if _given(row.get("path")) else None,
            }
        )
    if duplicates:
        shown = ", ".join(repr(d) for d in sorted(set(duplicates))[:5])
        raise JobError(f"duplicate ids in the input ({len(set(duplicates))}): {shown}")
    return out


# ----------------------------------------------------------------------------- rows
def _check_file(path: Path, max_bytes: int) -> None:
    if not path.exists():
        raise FileNotFoundError(f"path: {path} does not exist")
    if not path.is_file():
        raise ValueError(f"path: {path} is not a file")
    size = path.stat().st_size
    if size > max_bytes:
        raise ValueError(f"path: {path} has {size} bytes, over the limit of {max_bytes}")
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset = 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(_READ_BLOCK)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as err:
                raise ValueError(
                    f"path: {path} is not UTF-8 text (undecodable byte at offset "
                    f"{offset + err.start})"
                ) from None
            if not block:
                return
            offset += len(block)


def check_fields(row: dict[str, Any], max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES):
    """Check a row without reading any file: the question, and one ``document`` (text within
    the size limit) or one ``path``. Returns the text or the ``Path``; raises ``ValueError``."""
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("question must be a non-empty string")
    document, path = row.get("document"), row.get("path")
    if _given(document) and _given(path):
        raise ValueError("row has both document and path; give one")
    if _given(document):
        if not isinstance(document, str):
            raise ValueError(f"document must be a string, got {type(document).__name__}")
        size = len(document.encode("utf-8", "surrogatepass"))
        if size > max_document_bytes:
            raise ValueError(f"document has {size} bytes, over the limit of {max_document_bytes}")
        return document
    if _given(path):
        if not isinstance(path, str):
            raise ValueError(f"path must be a string, got {type(path).__name__}")
        return Path(path)
    raise ValueError("row has neither document nor path")


def check_row(row: dict[str, Any], max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES):
    """The engine source of a row (``str`` text or ``Path``), or raise ``ValueError`` /
    ``FileNotFoundError`` saying what is wrong with it (a file is checked for existence, size
    and UTF-8, by reading it)."""
    source = check_fields(row, max_document_bytes)
    if isinstance(source, Path):
        _check_file(source, max_document_bytes)
    return source


def _sentences_json(retrieval) -> str:
    return json.dumps(
        [
            {
                "text": s.text,
                "char_start": s.char_start,
                "char_end": s.char_end,
                "score": s.score,
                "doc_index": s.doc_index,
            }
            for s in retrieval.sentences
        ],
        ensure_ascii=False,
    )


def result_row(key: str, result, answer: bool) -> dict[str, Any]:
    """The output row of one :class:`Retrieval` (or :class:`Answer` when ``answer``)."""
    retrieval = result.retrieval if answer else result
    stats = dataclasses.asdict(retrieval.stats)
    if answer:
        stats["usage"] = result.usage.as_dict()
    row = {"id": key}
    if answer:
        row["answer"] = result.text
    row.update(
        sentences=_sentences_json(retrieval),
        stats=json.dumps(stats),
        error=None,
    )
    return row


def error_row(key: str, message: str, answer: bool) -> dict[str, Any]:
    """The output row of a row that has no result."""
    row = {"id": key}
    if answer:
        row["answer"] = None
    row.update(sentences=None, stats=None, error=message)
    return row


_ROW_ERRORS = (ValueError, OSError)
"""What a bad row raises (missing file, undecodable bytes, empty question ...); anything else
(out of memory, a dead device) is not the row's fault and propagates, so Ray retries the batch."""


def process_rows(
    engine,
    rows: Sequence[dict[str, Any]],
    *,
    answer: bool = False,
    max_new_tokens: int = 128,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
) -> list[dict[str, Any]]:
    """One output row per input row, in order: the valid rows go through one
    ``retrieve_batch`` / ``answer_batch`` call; a bad row becomes an error row.

    If the batch call still fails on a row (a file that vanished, bytes that stop decoding
    half way), each row is retried alone so that only that row gets the error.
    """
    out: list[dict[str, Any] | None] = [None] * len(rows)
    pairs, where = [], []
    for i, row in enumerate(rows):
        key = str(row["id"])
        try:
            pairs.append((check_row(row, max_document_bytes), row["question"]))
            where.append(i)
        except _ROW_ERRORS as err:
            out[i] = error_row(key, str(err), answer)

    def run(batch):
        if answer:
            return engine.answer_batch(batch, max_new_tokens=max_new_tokens)
        return engine.retrieve_batch(batch)

    if pairs:
        try:
            results = run(pairs)
        except _ROW_ERRORS:
            results = []
            for pair in pairs:
                try:
                    results.append(run([pair])[0])
                except _ROW_ERRORS as err:
                    results.append(_strip_label(str(err)))
        for i, result in zip(where, results):
            key = str(rows[i]["id"])
            if isinstance(result, str):
                out[i] = error_row(key, result, answer)
            else:
                out[i] = result_row(key, result, answer)
    return out  # type: ignore[return-value]


def _strip_label(message: str) -> str:
    """``pairs[0]: source: x`` -> ``source: x`` (the pair index means nothing to the user)."""
    prefix = "pairs[0]: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def doc_tokens(row: dict[str, Any]) -> int:
    """Document tokens a result row read (0 for an error row)."""
    if not row.get("stats"):
        return 0
    return int(json.loads(row["stats"]).get("tokens_read", 0))


# ----------------------------------------------------------------------------- output
def _columns(answer: bool) -> list[str]:
    return ["id", *(["answer"] if answer else []), "sentences", "stats", "error"]


def arrow_schema(answer: bool):
    """The Arrow schema of the output rows (every column a nullable string)."""
    import pyarrow as pa

    return pa.schema([(name, pa.string()) for name in _columns(answer)])


def part_files(output: str | os.PathLike) -> list[Path]:
    """The finished parts in ``output`` (temporary files of a crashed write are not parts)."""
    folder = Path(output)
    if not folder.is_dir():
        return []
    return sorted(
        p
        for p in folder.iterdir()
        if p.name.startswith(PART_PREFIX) and p.suffix in (".parquet", ".jsonl")
    )


def read_output(output: str | os.PathLike) -> list[dict[str, Any]]:
    """Every row written to ``output`` so far, part by part."""
    rows: list[dict[str, Any]] = []
    for part in part_files(output):
        if part.suffix == ".jsonl":
            with open(part, encoding="utf-8") as handle:
                rows.extend(json.loads(line) for line in handle if line.strip())
        else:
            _, pq = _needs_pyarrow("reading Parquet output")
            rows.extend(pq.read_table(part).to_pylist())
    return rows


def done_ids(output: str | os.PathLike) -> set[str]:
    """Ids that already have a row in ``output``."""
    return {str(row["id"]) for row in read_output(output)}


class PartWriter:
    """Writes result rows to ``output`` in parts of ``rows_per_part`` rows, each atomically.

    A part is written to a temporary name and renamed into place, so a reader (or a resumed
    job) sees a whole part or none of it. Rows whose id is already written are dropped, so a
    row that a retried Ray task returns twice is still written once.
    """

    def __init__(
        self,
        output: str | os.PathLike,
        fmt: str,
        answer: bool,
        rows_per_part: int = DEFAULT_ROWS_PER_PART,
        written: set[str] | None = None,
        on_part: Callable[[Path], None] | None = None,
    ):
        if fmt not in FORMATS:
            raise JobError(f"format must be one of {FORMATS}, got {fmt!r}")
        if fmt == "parquet":
            _needs_pyarrow("Parquet output")
        self.folder = Path(output)
        self.fmt, self.answer, self.rows_per_part = fmt, answer, rows_per_part
        self.written = set(written or ())
        self.on_part = on_part
        self.buffer: list[dict[str, Any]] = []
        self.rows = self.errors = self.tokens = 0

    def add(self, rows: Iterable[dict[str, Any]]) -> int:
        """Queue rows (writing full parts); returns how many were new."""
        new = 0
        for row in rows:
            key = str(row["id"])
            if key in self.written:
                continue
            self.written.add(key)
            self.buffer.append(row)
            new += 1
            self.rows += 1
            self.errors += row.get("error") is not None
            self.tokens += doc_tokens(row)
            if len(self.buffer) >= self.rows_per_part:
                self.flush()
        return new

    def flush(self) -> None:
        """Write the queued rows as one part."""
        if not self.buffer:
            return
        rows, self.buffer = self.buffer, []
        name = f"{PART_PREFIX}{time.time_ns():020d}-{uuid.uuid4().hex[:8]}.{self.fmt}"
        temp = self.folder / f"{_TMP_PREFIX}{name}"
        columns = _columns(self.answer)
        if self.fmt == "jsonl":
            with open(temp, "w", encoding="utf-8") as handle:
                for row in rows:
                    handle.write(json.dumps({c: row.get(c) for c in columns}, ensure_ascii=False))
                    handle.write("\n")
                handle.flush()
                os.fsync(handle.fileno())
        else:
            pa, pq = _needs_pyarrow("Parquet output")
            table = pa.Table.from_pylist(
                [{c: row.get(c) for c in columns} for row in rows],
                schema=arrow_schema(self.answer),
            )
            pq.write_table(table, temp)
        os.replace(temp, self.folder / name)
        if self.on_part is not None:
            self.on_part(self.folder / name)


def prepare_output(output: str | os.PathLike, fmt: str, answer: bool) -> set[str]:
    """Create ``output`` (or check that it holds the same kind of job); the ids already done.

    The folder's ``_job.json`` records the format and whether answers were asked for; a
    re-run with different ones is refused (it would mix two kinds of rows). Temporary files
    left by a crash are removed.
    """
    folder = Path(output)
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / MANIFEST
    job = {"format": fmt, "answer": bool(answer)}
    if manifest.exists():
        previous = json.loads(manifest.read_text(encoding="utf-8"))
        if {k: previous.get(k) for k in job} != job:
            raise JobError(
                f"output: {folder} holds a job with {previous}; this run asks for {job}. "
                "Use another --output folder."
            )
    else:
        temp = folder / f"{_TMP_PREFIX}{MANIFEST}"
        temp.write_text(json.dumps(job), encoding="utf-8")
        os.replace(temp, manifest)
    for stray in folder.glob(f"{_TMP_PREFIX}*"):
        with contextlib.suppress(OSError):
            stray.unlink()
    return done_ids(folder)


# ----------------------------------------------------------------------------- the job
@dataclasses.dataclass
class Summary:
    """What a job did."""

    rows: int = 0
    """Rows written by this run."""
    errors: int = 0
    """Of those, error rows."""
    skipped: int = 0
    """Input rows already in the output folder (done by an earlier run)."""
    doc_tokens: int = 0
    """Document tokens read by this run."""
    seconds: float = 0.0
    """Wall-clock time of this run, from the first row to the last part."""

    @property
    def tokens_per_second(self) -> float:
        return self.doc_tokens / self.seconds if self.seconds > 0 else 0.0

    def line(self) -> str:
        return (
            f"{self.rows} rows written ({self.errors} errors), {self.skipped} already done; "
            f"{self.doc_tokens} doc tokens in {self.seconds:.1f} s "
            f"({self.tokens_per_second:.0f} doc tokens/s)"
        )


def _chunks(rows: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def run_job(
    input: str | os.PathLike | Sequence[dict[str, Any]],
    output: str | os.PathLike,
    *,
    answer: bool = False,
    workers: int = 0,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
    address: str | None = None,
    fmt: str = "parquet",
    model: str | None = None,
    device: str | None = None,
    dtype: str | None = None,
    settings: Any = None,
    max_new_tokens: int = 128,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    rows_per_part: int = DEFAULT_ROWS_PER_PART,
    progress: bool = False,
    on_part: Callable[[Path], None] | None = None,
    fault_file: str | os.PathLike | None = None,
    engine=None,
) -> Summary:
    """Run a corpus job: every input row not yet in ``output`` gets exactly one output row.

    ``workers=0`` runs in this process (``engine`` may be given; otherwise one is loaded from
    ``model``); ``workers>=1`` runs that many Ray actors (:func:`infiniretri.ray.run_dataset`),
    on the cluster at ``address`` or on a local Ray started here. ``settings`` is an
    :class:`EngineSettings` or a dict of options; its ``batch_size`` is also the number of rows
    each call handles (``"auto"``: :data:`~infiniretri.sizing.ROWS_PER_CALL`, scanned at the
    engine's own batch size). ``on_part`` is called with the path of each part written.
    ``fault_file`` is for testing recovery (see :class:`infiniretri.ray.InfiniRetriPredictor`).
    """
    from .settings import EngineSettings

    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise JobError(f"workers must be a non-negative integer, got {workers!r}")
    if isinstance(settings, EngineSettings):
        engine_settings = settings
    else:
        engine_settings = EngineSettings.from_options(settings or {})
    raw = read_input(input) if isinstance(input, (str, os.PathLike)) else list(input)
    rows = normalize_rows(raw)
    done = prepare_output(output, fmt, answer)
    todo = [row for row in rows if row["id"] not in done]
    summary = Summary(skipped=len(rows) - len(todo))
    writer = PartWriter(output, fmt, answer, rows_per_part, done, on_part)
    bar = _progress_bar(len(todo), progress)
    start = time.perf_counter()
    try:
        if todo and workers == 0:
            if engine is None:
                from .engine import InfiniRetri

                engine = InfiniRetri.from_pretrained(
                    model, device=device, dtype=dtype, settings=engine_settings
                )
            for chunk in _chunks(todo, rows_per_call(engine_settings.batch_size)):
                bar.update(
                    writer.add(
                        process_rows(
                            engine,
                            chunk,
                            answer=answer,
                            max_new_tokens=max_new_tokens,
                            max_document_bytes=max_document_bytes,
                        )
                    )
                )
        elif todo:
            try:
                from .ray import ensure_ray, run_dataset
            except ModuleNotFoundError as err:
                if err.name not in ("ray", "pyarrow"):
                    raise
                raise JobError(
                    "workers need Ray: pip install 'infiniretri[ray]' (or run with workers=0)"
                ) from None

            ensure_ray(address=address, workers=workers)
            pending = todo
            for _ in range(3):  # a row lost by the cluster is run again (rare; each id once)
                dataset = run_dataset(
                    pending,
                    model=model,
                    device=device,
                    dtype=dtype,
                    settings=engine_settings,
                    answer=answer,
                    max_new_tokens=max_new_tokens,
                    max_document_bytes=max_document_bytes,
                    workers=workers,
                    gpus_per_worker=gpus_per_worker,
                    cpus_per_worker=cpus_per_worker,
                    fault_file=fault_file,
                )
                for batch in dataset.iter_batches(batch_format="pyarrow", batch_size=None):
                    bar.update(writer.add(batch.to_pylist()))
                pending = [row for row in todo if row["id"] not in writer.written]
                if not pending:
                    break
            if pending:
                raise RuntimeError(f"{len(pending)} rows came back from no worker")
        writer.flush()
    except KeyboardInterrupt:
        writer.flush()  # the finished rows in hand are kept; the rest run on resume
        raise
    finally:
        bar.close()
        summary.seconds = time.perf_counter() - start
        summary.rows, summary.errors, summary.doc_tokens = writer.rows, writer.errors, writer.tokens
    return summary


class _NoBar:
    def update(self, n: int = 1) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(total: int, enabled: bool):
    if not enabled or total == 0:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, unit="row", desc="rows", file=sys.stderr)
