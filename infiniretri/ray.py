"""Ray Data batch inference with InfiniRetri: one engine per actor, rows in, result rows out.

Needs the extra: ``pip install 'infiniretri[ray]'``. ``import infiniretri`` never imports Ray;
only this module does.

Use it as any Ray Data callable class::

    import ray
    from infiniretri.ray import InfiniRetriPredictor

    ds = ray.data.read_json("rows.jsonl")               # id, question, document or path
    out = ds.map_batches(
        InfiniRetriPredictor,
        fn_constructor_kwargs={"settings": {"chunk_tokens": 1024}, "answer": True},
        concurrency=4, num_gpus=0.25, batch_size=16, batch_format="pyarrow",
    )
    out.write_parquet("results/")

or through :func:`run_dataset`, which does the same with the right defaults. Rows and error
rows are those of :mod:`infiniretri.batch` (the in-process ``--workers 0`` path runs the same
:func:`~infiniretri.batch.process_rows`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Sequence
from typing import Any

import ray

from .batch import (
    DEFAULT_MAX_DOCUMENT_BYTES,
    INPUT_SUFFIXES,
    arrow_schema,
    check_fields,
    error_row,
    normalize_rows,
    process_rows,
)
from .settings import EngineSettings
from .sizing import rows_per_call

_INPUT_COLUMNS = ("id", "question", "document", "path")


def _settings(settings: Any) -> EngineSettings:
    if isinstance(settings, EngineSettings):
        return settings
    return EngineSettings.from_options(settings or {})


class InfiniRetriPredictor:
    """A callable class for ``Dataset.map_batches``: loads the engine once per actor.

    ``model`` is a local model directory (or ``.gguf`` file); ``None`` is the embedded
    SmolLM2-135M. ``settings`` is an :class:`EngineSettings` or a dict of its options.
    ``answer`` adds an ``answer`` column (``answer_batch`` instead of ``retrieve_batch``).

    ``fault_file`` is a fault-injection option for testing recovery: when that file exists,
    the first actor that removes it exits abruptly (``os._exit``) in the middle of a batch,
    as a crashed or preempted worker would. Leave it ``None`` in real jobs.
    """

    def __init__(
        self,
        model: str | os.PathLike | None = None,
        *,
        device: str | None = None,
        dtype: str | None = None,
        settings: Any = None,
        answer: bool = False,
        max_new_tokens: int = 128,
        max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
        fault_file: str | os.PathLike | None = None,
    ):
        from .engine import InfiniRetri

        self.engine = InfiniRetri.from_pretrained(
            None if model is None else str(model),
            device=device,
            dtype=dtype,
            settings=_settings(settings),
        )
        self.answer = bool(answer)
        self.max_new_tokens = max_new_tokens
        self.max_document_bytes = max_document_bytes
        self.fault_file = None if fault_file is None else str(fault_file)

    def __call__(self, batch) -> Any:
        """A batch (pyarrow Table, pandas DataFrame or dict of arrays) -> a pyarrow Table."""
        import pyarrow as pa

        rows = _batch_rows(batch)
        if self.fault_file is not None:
            try:
                os.remove(self.fault_file)
            except FileNotFoundError:
                pass
            else:
                os._exit(1)
        out = process_rows(
            self.engine,
            rows,
            answer=self.answer,
            max_new_tokens=self.max_new_tokens,
            max_document_bytes=self.max_document_bytes,
        )
        return pa.Table.from_pylist(out, schema=arrow_schema(self.answer))


def _batch_rows(batch) -> list[dict[str, Any]]:
    import pyarrow as pa

    if isinstance(batch, pa.Table):
        rows = batch.to_pylist()
    elif hasattr(batch, "to_dict") and hasattr(batch, "columns"):  # pandas
        rows = batch.to_dict("records")
    else:  # dict of numpy arrays
        columns = {name: list(values) for name, values in batch.items()}
        count = len(next(iter(columns.values()))) if columns else 0
        rows = [{name: values[i] for name, values in columns.items()} for i in range(count)]
    for row in rows:
        if "id" not in row or row["id"] is None:
            raise ValueError("every input row needs an id column")
        row["id"] = str(row["id"])
        for name in ("question", "document", "path"):
            value = row.get(name)
            if hasattr(value, "item") and not isinstance(value, (str, bytes)):
                row[name] = value.item()  # a numpy scalar
    return rows


def ensure_ray(address: str | None = None, workers: int = 1, num_cpus: int | None = None) -> None:
    """Connect to the Ray cluster at ``address`` (or ``$RAY_ADDRESS``, as in a ``ray job
    submit`` job), or start a quiet local one (no dashboard, no worker logs, no progress bars)
    with enough CPUs for ``workers`` actors. Does nothing if Ray is already initialized."""
    quiet_ray_data()
    if ray.is_initialized():
        return
    # Ray's C++ core logs (warnings about actor restarts ...) go to the terminal otherwise.
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    options: dict[str, Any] = dict(
        include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR
    )
    address = address or os.environ.get("RAY_ADDRESS")  # set by `ray job submit`
    if address:
        options["address"] = address
    else:
        options["num_cpus"] = num_cpus or max(os.cpu_count() or 1, workers + 1)
    with warnings.catch_warnings(), _stderr_muted():
        warnings.simplefilter("ignore")
        ray.init(**options)


@contextlib.contextmanager
def _stderr_muted():
    """Send file descriptor 2 to /dev/null meanwhile: Ray's C++ side writes there directly."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def quiet_ray_data() -> None:
    """No Ray Data progress bars, execution logs or Python warnings from Ray's modules on the
    terminal (the CLI draws its own progress bar)."""
    from ray.data import DataContext

    context = DataContext.get_current()
    context.enable_progress_bars = False
    if hasattr(context, "print_on_execution_start"):
        context.print_on_execution_start = False
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"ray(\.|$)")


def _blocks(rows: list[dict[str, Any]], size: int):
    """One Arrow block per ``size`` rows, so that batches spread over the actors."""
    import pyarrow as pa

    schema = pa.schema([(name, pa.string()) for name in _INPUT_COLUMNS])
    tables = [
        pa.Table.from_pylist(
            [{name: row.get(name) for name in _INPUT_COLUMNS} for row in rows[i : i + size]],
            schema=schema,
        )
        for i in range(0, len(rows), size)
    ]
    return ray.data.from_arrow(tables)


def _read(path: str | os.PathLike):
    path = str(path)
    suffix = os.path.splitext(path)[1].lower()
    kind = INPUT_SUFFIXES.get(suffix)
    if kind == "parquet":
        return ray.data.read_parquet(path)
    if kind == "csv":
        return ray.data.read_csv(path)
    if kind == "jsonl":
        return ray.data.read_json(path, lines=True)
    raise ValueError(f"input: {path} must end in one of {', '.join(sorted(INPUT_SUFFIXES))}")


def run_dataset(
    data: Any,
    *,
    model: str | os.PathLike | None = None,
    device: str | None = None,
    dtype: str | None = None,
    settings: Any = None,
    answer: bool = False,
    max_new_tokens: int = 128,
    max_document_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    cpus_per_worker: float = 1.0,
    fault_file: str | os.PathLike | None = None,
) -> ray.data.Dataset:
    """A lazy ``Dataset`` of result rows for ``data``: a Ray ``Dataset``, a path to a JSONL,
    Parquet or CSV file (read by Ray), or a list of row dicts.

    ``workers`` actors each load one engine (on ``device``; ``cuda`` when ``gpus_per_worker``
    is set and ``device`` is not); several actors may share a GPU (``gpus_per_worker=0.25``).
    Each call gets ``settings.batch_size`` rows (``"auto"``: see
    :func:`~infiniretri.sizing.rows_per_call`). A list of rows is checked on the driver first
    (no file is read there): rows with a bad question or document become error rows at once.
    Actors that die are restarted and their batches run again (Ray Data's actor pools default
    to ``max_restarts=-1`` and ``max_task_retries=-1``); :func:`infiniretri.batch.run_job`
    adds exactly-once output on top.
    """
    engine_settings = _settings(settings)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if device is None:
        device = "cuda" if gpus_per_worker else "cpu"
    early: list[dict[str, Any]] = []
    size = rows_per_call(engine_settings.batch_size)
    if isinstance(data, ray.data.Dataset):
        dataset = data
    elif isinstance(data, (str, os.PathLike)):
        dataset = _read(data)
    elif isinstance(data, Sequence):
        rows = []
        for row in normalize_rows(data):
            try:
                check_fields(row, max_document_bytes)
            except ValueError as err:
                early.append(error_row(row["id"], str(err), answer))
            else:
                rows.append(row)
        # Blocks small enough that every actor gets one, at most batch_size rows each.
        size = max(1, min(rows_per_call(engine_settings.batch_size), -(-len(rows) // workers)))
        blocks = -(-len(rows) // size)
        workers = max(1, min(workers, blocks))  # no idle actors (Ray Data warns about them)
        dataset = _blocks(rows, size) if rows else None
    else:
        raise ValueError(
            f"data must be a ray.data.Dataset, a path or a list of rows, got {type(data).__name__}"
        )
    results = None
    if dataset is not None:
        results = dataset.map_batches(
            InfiniRetriPredictor,
            fn_constructor_kwargs=dict(
                model=None if model is None else str(model),
                device=device,
                dtype=dtype,
                settings=engine_settings,
                answer=answer,
                max_new_tokens=max_new_tokens,
                max_document_bytes=max_document_bytes,
                fault_file=None if fault_file is None else str(fault_file),
            ),
            concurrency=workers,
            num_gpus=gpus_per_worker or None,
            num_cpus=cpus_per_worker,
            batch_size=size,
            batch_format="pyarrow",
        )
    if early:
        import pyarrow as pa

        errors = ray.data.from_arrow(pa.Table.from_pylist(early, schema=arrow_schema(answer)))
        results = errors if results is None else errors.union(results)
    if results is None:
        import pyarrow as pa

        results = ray.data.from_arrow(pa.Table.from_pylist([], schema=arrow_schema(answer)))
    return results
