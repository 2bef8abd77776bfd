"""A clean terminal: no library warnings and no progress bars but the scan's own "reading" bar.

The CLI runs as a new process on the real embedded model, so import-time and first-use warnings
(model conversion, weight loading, the first generation step) are all seen.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import pytest

from infiniretri.generation import cache_kwarg, end_token_ids, greedy_batch, stream_greedy
from infiniretri.loading import load_model

DOCUMENT = (
    "The lighthouse stands on a rocky cape. Its keeper is Ana Duarte. "
    "The keeper has a cat named Biscuit. Ships pass the cape every night."
)
QUESTION = "What is the keeper's cat named?"
CONVERTING = "infiniretri: converting the embedded model once"
BAR = re.compile(r"\[\d+:\d\d")  # tqdm's "[elapsed<remaining, rate]" part of every bar


@pytest.fixture
def short_doc(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text(DOCUMENT, encoding="utf-8")
    return path


def run_ask(doc, *extra):
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "infiniretri", "ask", str(doc), "--question", QUESTION, *extra],
        capture_output=True,
        text=True,
        env=env,
        timeout=900,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout, done.stderr


def stderr_pieces(err: str) -> list[str]:
    """Every line of stderr, and every redraw of a bar (tqdm redraws with a carriage return)."""
    return [piece.strip() for piece in re.split(r"[\r\n]", err) if piece.strip()]


def test_no_warnings_nor_loading_bars_from_a_fresh_cache(short_doc, isolated_cache):
    """First use: the GGUF is converted and the model loaded twice, and nothing else is printed."""
    out, err = run_ask(short_doc, "--no-progress", "--max-new-tokens", "16")
    assert "biscuit" in out.lower()
    assert "Warning" not in err
    assert "Loading" not in err
    assert "de-quantizing" not in err
    assert (isolated_cache / "models").is_dir()  # the conversion did run in this process
    assert [p for p in stderr_pieces(err) if not p.startswith(CONVERTING)] == []


def test_progress_shows_only_the_reading_bar(short_doc):
    out, err = run_ask(short_doc, "--show-sentences", "--max-new-tokens", "16")
    assert "biscuit" in out.lower()
    assert "The keeper has a cat named Biscuit." in out
    assert "Warning" not in err
    bars = [p for p in stderr_pieces(err) if BAR.search(p)]
    assert bars, err
    assert all(p.startswith("reading:") for p in bars), err
    others = [p for p in stderr_pieces(err) if not BAR.search(p) and not p.startswith(CONVERTING)]
    assert others == []


# -- in process: the bars are off only for our loads, and the cache keyword is the current one ---


@pytest.fixture(scope="module")
def tiny_dir(tiny_llama, tmp_path_factory):
    model, tokenizer = tiny_llama
    path = tmp_path_factory.mktemp("tiny-model")
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def test_loading_bars_are_off_only_during_our_load(tiny_dir, capsys):
    from transformers import AutoModelForCausalLM
    from transformers.utils import logging as hf_logging

    if not hasattr(hf_logging, "set_tqdm_hook"):
        pytest.skip("this transformers has no tqdm hooks")

    def user_hook(factory, args, kwargs):
        return factory(*args, **kwargs)

    previous = hf_logging.set_tqdm_hook(user_hook)
    try:
        load_model(tiny_dir)
        assert "Loading weights" not in capsys.readouterr().err
        assert hf_logging.set_tqdm_hook(user_hook) is user_hook  # the user's hook is back
    finally:
        hf_logging.set_tqdm_hook(previous)
    AutoModelForCausalLM.from_pretrained(tiny_dir)  # the user's own loads keep their bar
    assert "Loading weights" in capsys.readouterr().err


def test_loading_errors_are_unchanged_and_the_bars_come_back(tmp_path):
    import transformers.modeling_gguf_pytorch_utils as gguf_utils
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"not a gguf file")
    with pytest.raises(Exception) as direct:
        AutoTokenizer.from_pretrained(
            tmp_path, gguf_file=broken.name, trust_remote_code=False, local_files_only=True
        )
    bar, enabled = gguf_utils.tqdm, hf_logging.is_progress_bar_enabled()
    hook = getattr(hf_logging, "_tqdm_hook", None)
    with pytest.raises(type(direct.value)) as ours:
        load_model(broken)
    assert str(ours.value) == str(direct.value)
    assert gguf_utils.tqdm is bar
    assert hf_logging.is_progress_bar_enabled() == enabled
    assert getattr(hf_logging, "_tqdm_hook", None) is hook


class _OldStyleModel:
    def forward(self, input_ids=None, past_key_values=None, use_cache=None):
        pass


def test_cache_keyword_follows_the_model_signature(tiny_llama):
    model, _ = tiny_llama
    assert cache_kwarg(model) == "cache"
    assert cache_kwarg(_OldStyleModel()) == "past_key_values"


def test_generation_raises_no_deprecation_warnings(tiny_llama):
    model, tokenizer = tiny_llama
    prompt = tokenizer.encode("The keeper has a cat named")
    ends = end_token_ids(model, tokenizer)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        streamed = "".join(stream_greedy(model, tokenizer, prompt, 6, ends))
        batched = greedy_batch(model, tokenizer, [prompt, prompt[:3]], [6, 6], ends)
    assert len(batched) == 2
    assert isinstance(streamed, str)
