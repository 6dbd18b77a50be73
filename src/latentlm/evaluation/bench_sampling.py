"""Loading the benchmarked models and sampling them: diffusion pipelines (seeded batches, the sampler knobs of their
schedulers, the guidance they learned) and the autoregressive baseline (KV-cache ``generate`` from one BOS token)."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Mapping

import torch

from .bench_settings import SAMPLER_KNOBS, BenchmarkSettings
from .speed import find_denoiser_config


logger = logging.getLogger(__name__)


# -------------------------------------------------------------------------------------------------------- loading


def load_diffusion_pipeline(path_or_pipeline, device, batch_slice: int | None = None):
    """A latentlm pipeline of any kind (from a folder through `AutoPipelineForTextGeneration`, or as given) on
    ``device``, every module component (the model, a codec such as Cosmos' autoencoder) in eval mode, progress bar
    off, and with ``batch_slice`` its model runs on at most that many sequences at a time
    (`enable_batch_slicing`)."""
    from ..pipelines import AutoPipelineForTextGeneration

    pipe = path_or_pipeline
    if isinstance(path_or_pipeline, (str, os.PathLike)):
        pipe = AutoPipelineForTextGeneration.from_pretrained(str(path_or_pipeline), dtype=torch.float32)
    pipe = pipe.to(device)
    for component in module_components(pipe).values():
        component.eval()
    pipe.set_progress_bar_config(disable=True)
    if batch_slice is not None:
        pipe.enable_batch_slicing(batch_slice)
    return pipe


def module_components(pipe) -> dict[str, torch.nn.Module]:
    """The pipeline's ``torch.nn.Module`` components by name (``model``, and e.g. ``autoencoder`` for Cosmos)."""
    return {name: value for name, value in pipe.components.items() if isinstance(value, torch.nn.Module)}


def load_autoregressive(path_or_pair, device):
    """``(model, tokenizer)`` of a transformers causal LM folder (or the pair as given), eval mode, on ``device``."""
    if isinstance(path_or_pair, (str, os.PathLike)):
        from transformers import AutoModelForCausalLM, AutoTokenizer

        model = AutoModelForCausalLM.from_pretrained(str(path_or_pair), dtype=torch.float32)
        tokenizer = AutoTokenizer.from_pretrained(str(path_or_pair))
    else:
        model, tokenizer = path_or_pair
    model.to(device).eval()
    return model, tokenizer


def bos_token_id_for(model, tokenizer) -> int:
    """The id an AR sample starts from: the model's BOS, else the tokenizer's BOS or ``[CLS]``."""
    for value in (model.config.bos_token_id, tokenizer.bos_token_id, tokenizer.cls_token_id):
        if value is not None:
            return int(value)
    raise ValueError("The AR baseline has no BOS token (model config, tokenizer bos or cls): cannot prompt it.")


def check_same_tokenizer(tokenizers: Mapping[str, object]) -> None:
    """Raise ``ValueError`` unless every model uses the same vocabulary (DESIGN §4: one tokenizer per table)."""
    vocabularies = {name: tokenizer.get_vocab() for name, tokenizer in tokenizers.items()}
    first_name, first = next(iter(vocabularies.items()))
    for name, vocab in vocabularies.items():
        if vocab != first:
            raise ValueError(f"{name!r} and {first_name!r} use different tokenizers; a table needs one tokenizer.")


def check_sweeps(pipes: Mapping[str, object], settings: BenchmarkSettings) -> None:
    """Raise ``ValueError`` (before any sampling) for a ``speed_reference`` that is not a benchmarked diffusion
    model or a solver a scheduler with a ``solver`` setting rejects; warn when no scheduler has one."""
    if settings.speed_reference is not None and settings.speed_reference not in pipes:
        raise ValueError(f"speed_reference {settings.speed_reference!r} is not one of the diffusion models "
                         f"{sorted(pipes)}.")  # fmt: skip
    if not settings.solvers:
        return
    with_solver = {name: pipe for name, pipe in pipes.items() if "solver" in pipe.scheduler.config}
    if not with_solver:
        logger.warning("--solvers %s: no model's scheduler has a solver setting; no solver sweep.", settings.solvers)
    for name, pipe in with_solver.items():
        for solver in settings.solvers:
            try:
                type(pipe.scheduler).from_config(pipe.scheduler.config, solver=solver)
            except ValueError as error:
                raise ValueError(f"{name}: solver {solver!r} is not valid: {error}") from error


def check_gen_length(pipes: Mapping[str, object], gen_length: int) -> None:
    """Raise ``ValueError`` (before any sampling) if a pipeline cannot generate ``gen_length`` tokens."""
    too_short = {
        name: pipe.model.max_gen_length for name, pipe in pipes.items() if gen_length > pipe.model.max_gen_length
    }
    if too_short:
        raise ValueError(
            f"gen_length={gen_length} is longer than these models support: {too_short}; pass a shorter one."
        )


def default_guidance_scale(pipe) -> float | None:
    """The learned guidance scale ``pipe`` uses when the caller passes none (its ``default_sc_guidance_scale``: 3.0
    for ELF, ``None`` for pipelines whose models learned none)."""
    return getattr(pipe, "default_sc_guidance_scale", None)


def learns_guidance(pipe) -> bool:
    """Whether the pipeline's denoiser is conditioned on a guidance scale (guidance tokens, ELF); a model without
    (Cosmos, an ELF trained without guidance) ignores ``sc_guidance_scale``."""
    return bool(getattr(find_denoiser_config(pipe.model), "num_guidance_tokens", 0))


def sampler_defaults(pipe) -> dict:
    """The pipeline's sampler knobs, :data:`SAMPLER_KNOBS` found in its scheduler config (e.g. ``{"gamma": 0.0}``
    for ELF, ``{"solver": "euler_maruyama"}`` for Cosmos)."""
    config = pipe.scheduler.config
    return {key: config[key] for key in SAMPLER_KNOBS if key in config}


def sampler_label(row: Mapping) -> str:
    """A reader's name for a row's sampler: ``flow ODE (γ=0)`` / ``flow SDE (γ=1.5)`` for a ``gamma`` knob, the
    solver's name for a ``solver`` knob, ``default`` otherwise."""
    parts = []
    if row.get("gamma") is not None:
        parts.append("flow ODE (γ=0)" if row["gamma"] == 0 else f"flow SDE (γ={row['gamma']:g})")
    if row.get("solver") is not None:
        parts.append(str(row["solver"]))
    return ", ".join(parts) or "default"


@contextlib.contextmanager
def scheduler_override(pipe, **config):
    """Temporarily replace ``pipe.scheduler`` by the same scheduler class with ``config`` overrides; a key its config
    does not have raises ``ValueError`` (``from_config`` would drop it silently)."""
    original = pipe.scheduler
    unknown = set(config) - set(original.config)
    if unknown:
        raise ValueError(f"{type(original).__name__} has no {sorted(unknown)} setting (its config: "
                         f"{sorted(k for k in original.config if not k.startswith('_'))}).")  # fmt: skip
    if config:
        pipe.scheduler = type(original).from_config(original.config, **config)
    try:
        yield pipe
    finally:
        pipe.scheduler = original


# ------------------------------------------------------------------------------------------------------- sampling


def batch_sizes(num_samples: int, batch_size: int) -> list[int]:
    """Sizes of the generation batches (the last one may be smaller); batch ``i`` is seeded with ``seed + i``."""
    return [min(batch_size, num_samples - start) for start in range(0, num_samples, batch_size)]


def sample_diffusion(pipe, *, num_samples, gen_length, num_inference_steps, guidance_scale, seed, batch_size):
    """``num_samples`` texts from ``pipe``, ``guidance_scale`` being the learned guidance (the pipeline's
    ``sc_guidance_scale``; ``None``: its default), batch ``i`` generated with ``torch.Generator().manual_seed(seed + i)``
    (CPU generator: noise and time grid do not depend on the device)."""
    kwargs = {} if guidance_scale is None else {"sc_guidance_scale": guidance_scale}
    texts = []
    for i, size in enumerate(batch_sizes(num_samples, batch_size)):
        generator = torch.Generator().manual_seed(seed + i)
        out = pipe(batch_size=size, gen_length=gen_length, num_inference_steps=num_inference_steps,
                   generator=generator, **kwargs)  # fmt: skip
        texts += out.texts
    return texts


def sample_conditioned(pipe, conditions, *, kind, length, num_inference_steps, cfg_scale, seed, batch_size):
    """Texts from ``pipe`` for each condition: ``kind="source"`` (sequence to sequence: ``pipe(source=...,
    gen_length=length)``, the texts are the targets) or ``kind="prompt"`` (``pipe(prompt=..., max_new_tokens=length)``,
    each text begins with its prompt). ``cfg_scale`` is the input classifier-free guidance (``guidance_scale``, 1 =
    off; ``None``: the pipeline's default); learned guidance and sampler are the pipeline's defaults. Conditions go in
    batches of ``batch_size``, batch ``i`` seeded with ``torch.Generator().manual_seed(seed + i)``."""
    if kind not in ("source", "prompt"):
        raise ValueError(f"kind must be 'source' or 'prompt', got {kind!r}.")
    length_argument = "gen_length" if kind == "source" else "max_new_tokens"
    kwargs = {length_argument: length, **({} if cfg_scale is None else {"guidance_scale": cfg_scale})}
    texts, start = [], 0
    for i, size in enumerate(batch_sizes(len(conditions), batch_size)):
        generator = torch.Generator().manual_seed(seed + i)
        batch = list(conditions[start : start + size])
        texts += pipe(**{kind: batch}, num_inference_steps=num_inference_steps, generator=generator, **kwargs).texts
        start += size
    return texts


def decode_rows(tokenizer, sequences: torch.Tensor, eos_token_id: int | None) -> list[str]:
    """Texts of token rows, each cut at its first ``eos_token_id``, special tokens dropped (as the pipelines do)."""
    texts = []
    for row in sequences.tolist():
        if eos_token_id is not None and eos_token_id in row:
            row = row[: row.index(eos_token_id)]
        texts.append(tokenizer.decode(row, skip_special_tokens=True).strip())
    return texts


@torch.inference_mode()
def sample_autoregressive(model, tokenizer, *, num_samples, gen_length, top_p, seed, batch_size):
    """``num_samples`` texts of ``gen_length - 1`` new tokens after one BOS token, KV-cache ``generate`` with
    temperature 1, ``top_k=0`` and ``top_p``; batch ``i`` is seeded with ``torch.manual_seed(seed + i)``."""
    from ..data import eos_token_id_for

    bos, eos = bos_token_id_for(model, tokenizer), eos_token_id_for(tokenizer)
    device = next(model.parameters()).device
    texts = []
    for i, size in enumerate(batch_sizes(num_samples, batch_size)):
        torch.manual_seed(seed + i)
        prompt = torch.full((size, 1), bos, dtype=torch.long, device=device)
        out = model.generate(
            input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=True, temperature=1.0, top_k=0,
            top_p=top_p, min_new_tokens=gen_length - 1, max_new_tokens=gen_length - 1, use_cache=True,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=eos,
        )  # fmt: skip
        texts += decode_rows(tokenizer, out[:, 1:], eos)
    return texts


def left_pad(rows: list[list[int]], pad_id: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Left-padded ``(input_ids, attention_mask)`` of token rows, the layout decoder-only ``generate`` needs."""
    width = max(len(row) for row in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            input_ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            attention_mask[i, width - len(row) :] = 1
    return input_ids.to(device), attention_mask.to(device)


@torch.inference_mode()
def generate_after(model, tokenizer, prompts: list[list[int]], *, max_new_tokens, min_new_tokens=0, top_p=None,
                   seed, batch_size) -> list[list[int]]:  # fmt: skip
    """The new tokens the AR model writes after each prompt (token rows, e.g. ``source [SEP]``), cut before
    the first EOS; KV-cache ``generate`` on left-padded batches. ``top_p=None``: greedy; else sampling at temperature
    1, ``top_k=0`` and ``top_p``, with ``torch.manual_seed(seed + i)`` before batch ``i``."""
    from ..data import eos_token_id_for

    eos, device = eos_token_id_for(tokenizer), next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos
    sampling = {"do_sample": False} if top_p is None else {"do_sample": True, "temperature": 1.0, "top_k": 0,
                                                            "top_p": top_p}  # fmt: skip
    out, start = [], 0
    for i, size in enumerate(batch_sizes(len(prompts), batch_size)):
        torch.manual_seed(seed + i)
        input_ids, attention_mask = left_pad(prompts[start : start + size], pad, device)
        generated = model.generate(
            input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=max_new_tokens,
            min_new_tokens=min_new_tokens, use_cache=True, pad_token_id=pad, eos_token_id=eos, **sampling,
        )[:, input_ids.shape[1] :]  # fmt: skip
        for row in generated.tolist():
            out.append(row[: row.index(eos)] if eos in row else row)
        start += size
    return out
