"""Bad input at every public entry point fails loudly: the exception type, and a message naming the argument or file.

One row per bad input: ``(id, call, exception type, regex the message must match)``. ``call(ctx)`` gets a shared
`Context` (saved models and pipelines, a scratch folder). CLI rows run ``latentlm ...`` and expect a non-zero exit
whose output names the problem.
"""

import contextlib
import io
import json
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

from conftest import NO_AUGMENTATION, TINY_COSMOS_AE, TINY_ELF, build_tiny_tokenizer
from latentlm import AutoPipelineForTextGeneration, ELFPipeline
from latentlm.cli import main
from latentlm.evaluation.benchmark import read_texts
from latentlm.models import (
    CosmosLMAutoencoder,
    CosmosLMAutoencoderConfig,
    CosmosLMConfig,
    CosmosLMModel,
    ELFConfig,
    ELFForFlowMatching,
    ELFModel,
    LDLMConfig,
    LDLMDecoder,
    LDLMDecoderConfig,
    LDLMForDiffusion,
    NFDMConfig,
    NFDMForDiffusion,
)
from latentlm.schedulers import EulerMaruyamaVPScheduler, FlowMatchEulerSDEScheduler
from latentlm.training import load_config
from latentlm.training.sources import resolve_init_from
from test_ldlm import TINY_LDLM
from test_nfdm import TINY_NFDM


NAN, INF = math.nan, math.inf
COSMOS = dict(vocab_size=40, num_latents=3, latent_dim=8, max_position_embeddings=12, hidden_size=32,
              num_hidden_layers=2, num_attention_heads=2)  # fmt: skip
COSMOS_AE = dict(TINY_COSMOS_AE, **NO_AUGMENTATION, init_lm_head_from_encoder=False)
LDLM_DECODER = LDLMConfig(**TINY_LDLM).decoder_config().to_diff_dict()


class CLIError(Exception):
    """A `latentlm` command that exited non-zero; the message is what it printed."""


@dataclass
class Row:
    id: str
    call: Callable[[Any], Any]
    exception: type | tuple
    pattern: str


class Context:
    """Saved models and a pipeline, built once; `copy(name)` gives a scratch copy a row may damage."""

    def __init__(self, root: Path):
        self.root = root
        torch.manual_seed(0)
        tokenizer = build_tiny_tokenizer()
        self.models = {
            "elf": ELFModel(ELFConfig(**TINY_ELF)),
            "elf-head": ELFForFlowMatching(ELFConfig(**TINY_ELF)),
            "cosmos": CosmosLMModel(CosmosLMConfig(**COSMOS)),
            "cosmos-ae": CosmosLMAutoencoder(CosmosLMAutoencoderConfig(**COSMOS_AE)),
            "ldlm-head": LDLMForDiffusion(LDLMConfig(**TINY_LDLM)),
            "ldlm-decoder": LDLMDecoder(LDLMDecoderConfig(**LDLM_DECODER)),
            "nfdm-head": NFDMForDiffusion(NFDMConfig(**TINY_NFDM)),
        }
        for name, model in self.models.items():
            model.save_pretrained(root / name)
        config = dict(TINY_ELF, vocab_size=len(tokenizer), max_position_embeddings=12, latent_mean=0.0, latent_std=1.0)
        self.pipe = ELFPipeline.from_model(ELFForFlowMatching(ELFConfig(**config)).eval(), tokenizer)
        self.pipe.set_progress_bar_config(disable=True)
        self.pipe.save_pretrained(root / "pipeline")
        self.scratch = root / "scratch"
        self.counter = 0

    def copy(self, name: str) -> Path:
        self.counter += 1
        target = self.scratch / f"{name}-{self.counter}"
        shutil.copytree(self.root / name, target)
        return target

    def file(self, name: str, content: bytes | str) -> Path:
        self.scratch.mkdir(exist_ok=True)
        path = self.scratch / name
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        return path

    def generate(self, **kwargs):
        call = dict(batch_size=1, gen_length=4, num_inference_steps=1, generator=torch.Generator().manual_seed(0))
        return self.pipe(**{**call, **kwargs})


def cli(*argv):
    """Runs ``latentlm *argv``; raises `CLIError` with everything printed when it exits non-zero."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in argv])
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                message = exit_.code if isinstance(exit_.code, str) else ""
                raise CLIError(f"{out.getvalue()}{err.getvalue()}{message}") from None
            return
    raise AssertionError(f"`latentlm {' '.join(map(str, argv))}` succeeded")


# ---------------------------------------------------------------------------------------------------- helpers


def _edit_json(path: Path, **changes) -> Path:
    data = json.loads(path.read_text())
    for key, value in changes.items():
        if value is ...:
            data.pop(key)
        else:
            data[key] = value
    path.write_text(json.dumps(data))
    return path


def _streaming():
    import datasets

    return datasets.Dataset.from_dict({"text": ["a", "b"]}).to_iterable_dataset()


def _rename_key(path: Path, old: str, new: str) -> Path:
    data = json.loads(path.read_text())
    data[new] = data.pop(old)
    path.write_text(json.dumps(data))
    return path


def _corrupt(path: Path) -> Path:
    path.write_bytes(b"\x00garbage" * 8)
    return path


def _corrupt_copy(ctx, name, relative):
    folder = ctx.copy(name)
    _corrupt(folder / relative)
    return folder


def _config_rows(config_class, base, table):
    return [
        Row(f"{config_class.__name__}-{name}={value!r}", lambda ctx, n=name, v=value: config_class(**{**base, n: v}),
            ValueError, re.escape(pattern or name))
        for name, value, pattern in table
    ]  # fmt: skip


def _from_pretrained_rows(key, model_class):
    def load(ctx, path=None, **kwargs):
        return model_class.from_pretrained(path if path is not None else ctx.root / key, **kwargs)

    return [
        Row(f"{key}-missing-relative-path", lambda ctx: load(ctx, "./no/such/model"), FileNotFoundError, "no/such/model"),
        Row(f"{key}-missing-absolute-path", lambda ctx: load(ctx, str(ctx.root / "absent")), FileNotFoundError, "absent"),
        Row(f"{key}-corrupt-safetensors", lambda ctx: load(ctx, _corrupt_copy(ctx, key, "model.safetensors")), OSError,
            key),
        Row(f"{key}-corrupt-config-json", lambda ctx: load(ctx, _corrupt_copy(ctx, key, "config.json")), OSError,
            "config.json|" + key),
        Row(f"{key}-other-model-type", lambda ctx: load(ctx, _edit_json_copy(ctx, key, model_type="bert")), ValueError,
            "model_type"),
        Row(f"{key}-misspelt-size-key", lambda ctx: load(ctx, _rename_copy(ctx, key, "hidden_size", "hiden_size")),
            ValueError, "hiden_size"),
        Row(f"{key}-string-size", lambda ctx: load(ctx, _edit_json_copy(ctx, key, hidden_size="64")), ValueError,
            "hidden_size"),
        Row(f"{key}-missing-weights", lambda ctx: load(ctx, _drop_weight_copy(ctx, key)), ValueError, "no stored weights"),
        Row(f"{key}-size-key-dropped", lambda ctx: load(ctx, _edit_json_copy(ctx, key, hidden_size=...)),
            ValueError, "other shapes than its config.json"),
        Row(f"{key}-size-key-edited", lambda ctx: load(ctx, _edit_json_copy(ctx, key, hidden_size=64)), ValueError,
            "other shapes than its config.json"),
        Row(f"{key}-eager-attention", lambda ctx: load(ctx, attn_implementation="eager"), ValueError,
            "attn_implementation"),
        Row(f"{key}-not-a-path", lambda ctx: load(ctx, 42), TypeError, "pretrained_model_name_or_path"),
    ]  # fmt: skip


def _edit_json_copy(ctx, key, **changes):
    folder = ctx.copy(key)
    _edit_json(folder / "config.json", **changes)
    return folder


def _rename_copy(ctx, key, old, new):
    folder = ctx.copy(key)
    _rename_key(folder / "config.json", old, new)
    return folder


def _drop_weight_copy(ctx, key):
    from safetensors.torch import load_file, save_file

    folder = ctx.copy(key)
    weights = load_file(folder / "model.safetensors")
    weights.pop(sorted(weights)[-1])
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    return folder


def _stepped(scheduler, skip_scale=False, generator=None, batch=2):
    scheduler.set_timesteps(3)
    t = scheduler.timesteps[0]
    sample = torch.zeros(batch, 4, 2)
    model_input = sample if skip_scale else scheduler.scale_model_input(sample, t, generator=generator)
    return scheduler.step(sample, t, model_input, generator=generator)


def _train_config(ctx, **values):
    return load_config(None, {"method": "ar", "output_dir": str(ctx.scratch / "run"), **values})


def _yaml(ctx, name, text):
    if isinstance(text, str):  # runs that got further than they should must not write into the working directory
        text = text.replace("{out}", str(ctx.scratch / "out"))
    return ctx.file(name, text)


# ---------------------------------------------------------------------------------------------------- the table


ROWS: list[Row] = []

# Configs: types, finiteness, ranges, misspelt keys.
ROWS += _config_rows(ELFConfig, TINY_ELF, [
    ("hidden_size", "64", None), ("hidden_size", 64.0, None), ("hidden_size", 1.5, None), ("hidden_size", -8, None),
    ("hidden_size", 0, None), ("hidden_size", True, None), ("num_hidden_layers", 1.5, None),
    ("num_hidden_layers", 0, None), ("num_hidden_layers", -1, None), ("num_attention_heads", 0, None),
    ("num_attention_heads", 3, "num_attention_heads"), ("intermediate_size", -3, None), ("intermediate_size", 0, None),
    ("bottleneck_dim", 0, None), ("bottleneck_dim", -1, None), ("latent_dim", 0, None), ("latent_dim", "16", None),
    ("vocab_size", 0, None), ("max_position_embeddings", 0, None), ("latent_std", NAN, None),
    ("latent_std", 0.0, None), ("latent_std", -1.0, None), ("latent_std", INF, None), ("latent_mean", NAN, None),
    ("latent_mean", INF, None), ("noise_scale", NAN, None), ("noise_scale", 0.0, None), ("noise_scale", -2.0, None),
    ("sigma_clamp", -1.0, None), ("sigma_clamp", NAN, None), ("sigma_clamp", 0.0, None), ("time_std", 0.0, None),
    ("time_std", NAN, None), ("time_mean", INF, None), ("decoder_prob", 1.5, None), ("decoder_prob", -0.1, None),
    ("self_cond_prob", 2.0, None), ("guidance_min", 0.0, None), ("guidance_max", 0.25, "guidance_max"),
    ("hidden_dropout", 1.0, None), ("hidden_dropout", -0.1, None), ("rope_theta", 0.0, None),
    ("rms_norm_eps", 0.0, None), ("initializer_range", -0.1, None), ("self_conditioning", "yes", None),
    ("num_time_tokens", 0, None), ("num_guidance_tokens", -1, None), ("decoder_noise_scale", NAN, None),
    ("encoder_name_or_path", 5, None), ("hiden_size", 64, "hiden_size"),
    ("block_type", "post_norm", None), ("block_type", 1, None), ("layer_norm_eps", 0.0, None),
    ("init_denoiser_from", 5, None), ("init_denoiser_from", "some/encoder", "init_denoiser_from"),
    ("distill_steps", 0, None), ("distill_steps", 2.5, None), ("distill_teacher_steps", 0, None),
    ("distill_time_schedule", "cosine", None), ("distill_teacher_time_schedule", "linear", None),
    ("distill_teacher_time_schedule", "sampling_grid", None), ("distill_teacher", 3, None),
    ("distil_steps", 8, "distil_steps"),
])  # fmt: skip
ROWS += _config_rows(CosmosLMConfig, COSMOS, [
    ("schedule_d", 0.0, None), ("schedule_d", NAN, None), ("t_min", 0.0, None), ("t_min", 1.0, None),
    ("t_min", NAN, None), ("training_t_min", NAN, None), ("num_guidance_tokens", 2, None), ("num_mode_tokens", 1, None),
    ("num_latents", 0, None), ("latent_dim", -1, None), ("hidden_size", 31, "num_attention_heads"),
    ("use_long_skips", "no", None), ("self_cond_prob", -1.0, None), ("bottleneck_dim", 0, None),
    ("num_latent", 3, "num_latent"), ("intermediate_size", 2.5, None),
    ("time_injection", "film", None), ("time_injection", None, None), ("self_conditioning_injection", "cross", None),
    ("long_skip_merge", "mul", None), ("output_head", "linear", None), ("time_embedding_max_period", 0.0, None),
    ("time_embedding_max_period", NAN, None), ("time_embedding_max_period", -10.0, None),
    ("num_time_tokens", 4, None), ("num_time_tokens", -1, None), ("self_cond_per_batch", "yes", None),
    ("distill_steps", 0, None), ("distill_steps", 2.5, None), ("distill_teacher_steps", 0, None),
    ("distill_teacher", 3, None),
])  # fmt: skip
ROWS += _config_rows(CosmosLMAutoencoderConfig, COSMOS_AE, [
    ("encoder_dim", 0, None), ("num_latents", 0, None), ("activation_mask_fraction", 1.5, None),
    ("latent_dropout", 1.5, None), ("activation_noise_delta", 2.0, None), ("lm_head_dim", 0, None),
    ("num_compressor_layers", 0, None), ("chunk_shortcut", 1, None), ("init_lm_head_from_encoder", "true", None),
    ("encoder_dims", 16, "encoder_dims"), ("activation_mask_prob", NAN, None), ("hidden_dropout", NAN, None),
    ("codec_version", 3, None), ("feed_forward", "relu", None), ("lm_head", "tied", None), ("mask_token_id", 40, None),
    ("couple_heads", "yes", None), ("mask_token_slots", 1, None), ("normalized_latent", "no", None),
    ("decoder_final_norm", 0, None), ("locality_bias", "on", None), ("hidden_dropout", 1.0, None),
])  # fmt: skip

ROWS += _config_rows(LDLMConfig, TINY_LDLM, [
    ("encoder_dim", 0, None), ("codec_hidden_size", "32", None), ("codec_hidden_size", 33, "codec_num_attention_heads"),
    ("num_encoder_layers", 1.5, None), ("encoder_layer", 1.5, None), ("decoder_noise_std", -1.0, None),
    ("decoder_noise_std", NAN, None), ("schedule_d", 0.0, None), ("t_min", 1.0, None), ("self_cond_prob", 2.0, None),
    ("encoder_warmup_gamma_min", NAN, None), ("timestep_loss_ema_decay", 1.0, None), ("num_timestep_bins", 0, None),
    ("mse_decoder_loss", "yes", None), ("num_guidance_tokens", 1, None), ("num_latents", 5, "chunk_shortcut"),
    ("encoder_warmup_step", 3, "encoder_warmup_step"),
])  # fmt: skip
ROWS += _config_rows(LDLMDecoderConfig, LDLM_DECODER, [
    ("num_token_decoder_layers", -1, None), ("lm_head_dim", 0, None), ("hidden_size", 31, "num_attention_heads"),
    ("chunk_shortcut", 1, None), ("num_latents", 5, "chunk_shortcut"), ("latent_dims", 8, "latent_dims"),
])  # fmt: skip
ROWS += _config_rows(NFDMConfig, TINY_NFDM, [
    ("delta", 0.0, None), ("delta", 1.0, None), ("delta", NAN, None), ("embedding_init_std", 0.0, None),
    ("forward_time_scale", -1.0, None), ("forward_log_std_bound", 0.0, None), ("forward_log_std_bound", INF, None),
    ("forward_hidden_size", 15, "forward_num_heads"), ("reconstruction_token_fraction", 0.0, None),
    ("predictor_offset", -0.1, None), ("num_time_buckets", -1, None), ("num_time_buckets", 2.5, None),
    ("self_conditioning", True, None), ("learned_forward_process", "yes", None), ("volatility_hidden_size", 0, None),
    ("forward_num_layer", 2, "forward_num_layer"),
])  # fmt: skip

# from_pretrained of every model class.
ROWS += _from_pretrained_rows("elf", ELFModel)
ROWS += _from_pretrained_rows("elf-head", ELFForFlowMatching)
ROWS += _from_pretrained_rows("cosmos", CosmosLMModel)
ROWS += _from_pretrained_rows("cosmos-ae", CosmosLMAutoencoder)
ROWS += _from_pretrained_rows("ldlm-head", LDLMForDiffusion)
ROWS += _from_pretrained_rows("ldlm-decoder", LDLMDecoder)
ROWS += _from_pretrained_rows("nfdm-head", NFDMForDiffusion)

# Pipelines: loading.
ROWS += [
    Row("pipeline-missing-path", lambda ctx: AutoPipelineForTextGeneration.from_pretrained("./no/pipeline"),
        FileNotFoundError, "no/pipeline"),
    Row("pipeline-a-file", lambda ctx: AutoPipelineForTextGeneration.from_pretrained(str(ctx.file("f.txt", "x"))),
        ValueError, "f.txt"),
    Row("pipeline-no-model-index", lambda ctx: AutoPipelineForTextGeneration.from_pretrained(str(ctx.root / "elf")),
        ValueError, "model_index.json"),
    Row("pipeline-corrupt-model-index",
        lambda ctx: AutoPipelineForTextGeneration.from_pretrained(_corrupt_copy(ctx, "pipeline", "model_index.json")),
        ValueError, "model_index.json"),
    Row("pipeline-unknown-class",
        lambda ctx: AutoPipelineForTextGeneration.from_pretrained(
            _edit_json(ctx.copy("pipeline") / "model_index.json", _class_name="BertPipeline").parent),
        ValueError, "BertPipeline"),
    Row("pipeline-corrupt-weights",
        lambda ctx: AutoPipelineForTextGeneration.from_pretrained(
            _corrupt_copy(ctx, "pipeline", "model/model.safetensors")),
        OSError, "pipeline"),
]  # fmt: skip

# Pipelines: the existing __call__ arguments.
ROWS += [
    Row(f"pipeline-call-{name}={value!r}", lambda ctx, n=name, v=value: ctx.generate(**{n: v}), exc, pattern)
    for name, value, exc, pattern in [
        ("batch_size", 0, ValueError, "batch_size"), ("batch_size", -1, ValueError, "batch_size"),
        ("batch_size", 1.5, ValueError, "batch_size"), ("batch_size", True, ValueError, "batch_size"),
        ("gen_length", 0, ValueError, "gen_length"), ("gen_length", 100, ValueError, "gen_length"),
        ("gen_length", "4", ValueError, "gen_length"), ("num_inference_steps", 0, ValueError, "num_inference_steps"),
        ("num_inference_steps", 2.5, ValueError, "num_inference_steps"),
        ("guidance_scale", NAN, ValueError, "guidance_scale"), ("guidance_scale", INF, ValueError, "guidance_scale"),
        ("guidance_scale", -1.0, ValueError, "guidance_scale"), ("guidance_scale", "high", ValueError, "guidance_scale"),
        ("guidance_scale", 2.0, ValueError, "guidance_scale"),  # classifier-free guidance needs a prompt or source
        ("sc_guidance_scale", NAN, ValueError, "sc_guidance_scale"), ("sc_guidance_scale", -1, ValueError, "sc_guidance_scale"),
        ("num_return_sequences", 0, ValueError, "num_return_sequences"), ("max_new_tokens", 0, ValueError, "max_new_tokens"),
        ("prompt", "the cat", ValueError, "prompt"), ("source", ["a"], ValueError, "source"),  # unconditional model
        ("negative_prompt", "a dog", ValueError, "negative_prompt"), ("prompt", 7, ValueError, "prompt"),
        ("generator", 42, TypeError, "generator"), ("generator", "seed", TypeError, "generator"),
        ("generator", [torch.Generator(), torch.Generator()], ValueError, "generator"),
        ("latents", torch.zeros(1, 3, 16), ValueError, "latents"), ("latents", [[0.0]], ValueError, "latents"),
        ("latents", torch.full((1, 4, 16), NAN), ValueError, "latents"), ("output_type", "pil", ValueError, "output_type"),
        ("callback_on_step_end_tensor_inputs", ["noise"], ValueError, "callback_on_step_end_tensor_inputs"),
    ]
]  # fmt: skip

# Schedulers: configs, set_timesteps, the loop's contract, generators.
ROWS += [
    Row(f"FlowMatchEulerSDEScheduler-{name}={value!r}", lambda ctx, n=name, v=value: FlowMatchEulerSDEScheduler(**{n: v}),
        ValueError, name)
    for name, value in [
        ("noise_scale", NAN), ("noise_scale", 0.0), ("noise_scale", -1.0), ("sigma_clamp", 0.0), ("sigma_clamp", -1.0),
        ("sigma_clamp", NAN), ("sigma_clamp", 2.0), ("gamma", -1.0), ("gamma", NAN), ("time_grid", "cosine"),
        ("prediction_type", "epsilon"), ("time_grid_std", 0.0), ("time_grid_mean", INF), ("num_train_timesteps", 0),
        ("num_train_timesteps", 1.5), ("default_num_inference_steps", 0), ("default_num_inference_steps", 2.5),
    ]
]  # fmt: skip
ROWS += [
    Row(f"EulerMaruyamaVPScheduler-{name}={value!r}", lambda ctx, n=name, v=value: EulerMaruyamaVPScheduler(**{n: v}),
        ValueError, name)
    for name, value in [
        ("schedule_d", 0.0), ("schedule_d", NAN), ("t_min", 0.0), ("t_min", 1.0), ("t_max", 1.5), ("beta_clip_t", 1.0),
        ("solver", "heun"), ("prediction_type", "epsilon"), ("training_t_min", 1.0), ("num_train_timesteps", 0),
        ("training_t_min", NAN), ("default_num_inference_steps", 0), ("default_num_inference_steps", 2.5),
    ]
]  # fmt: skip
_FM, _VP = FlowMatchEulerSDEScheduler, EulerMaruyamaVPScheduler
ROWS += [
    Row(f"{cls.__name__}-set_timesteps-{label}", lambda ctx, c=cls, k=kwargs: c().set_timesteps(**k), exc, pattern)
    for cls, label, kwargs, exc, pattern in [
        (_FM, "zero-steps", {"num_inference_steps": 0}, ValueError, "num_inference_steps"),
        (_FM, "negative-steps", {"num_inference_steps": -1}, ValueError, "num_inference_steps"),
        (_FM, "float-steps", {"num_inference_steps": 2.5}, ValueError, "num_inference_steps"),
        (_FM, "no-steps", {}, ValueError, "num_inference_steps"),
        (_FM, "increasing-sigmas", {"sigmas": [1.0, 0.2, 0.5]}, ValueError, "sigmas"),
        (_FM, "sigmas-not-from-1", {"sigmas": [0.9, 0.5]}, ValueError, "sigmas"),
        (_FM, "nan-sigmas", {"sigmas": [1.0, NAN, 0.0]}, ValueError, "sigmas"),
        (_FM, "sigmas-and-timesteps", {"sigmas": [1.0, 0.5], "timesteps": [1.0, 0.5]}, ValueError, "sigmas"),
        (_FM, "steps-mismatch", {"num_inference_steps": 5, "sigmas": [1.0, 0.5]}, ValueError, "num_inference_steps"),
        (_FM, "generator-int", {"num_inference_steps": 3, "generator": 42}, TypeError, "generator"),
        (_VP, "zero-steps", {"num_inference_steps": 0}, ValueError, "num_inference_steps"),
        (_VP, "no-steps", {}, ValueError, "num_inference_steps"),
        (_VP, "increasing-timesteps", {"timesteps": [0.5, 0.9]}, ValueError, "timesteps"),
        (_VP, "timesteps-below-t_min", {"timesteps": [0.9, 0.01]}, ValueError, "timesteps"),
        (_VP, "sigmas-above-1", {"sigmas": [1.5, 0.5]}, ValueError, "sigmas"),
        (_VP, "generator-str", {"num_inference_steps": 3, "generator": "seed"}, TypeError, "generator"),
    ]
]  # fmt: skip
ROWS += [
    Row("FlowMatch-random-grid-without-generator",
        lambda ctx: _FM(time_grid="logit_normal_random").set_timesteps(4), ValueError, "generator"),
    Row("FlowMatch-random-grid-with-per-sample-generators",
        lambda ctx: _FM(time_grid="logit_normal_random").set_timesteps(4, generator=[torch.Generator()] * 2),
        ValueError, "generator"),
    Row("FlowMatch-step-without-scale_model_input", lambda ctx: _stepped(_FM(gamma=1.5), skip_scale=True), ValueError,
        "scale_model_input"),
    Row("FlowMatch-integer-timestep", lambda ctx: _FM().step(torch.zeros(1), 0, torch.zeros(1)), ValueError, "integer"),
    Row("FlowMatch-generator-list-too-short",
        lambda ctx: _stepped(_FM(gamma=1.5), generator=[torch.Generator()]*3), ValueError, "generator"),
    Row("VP-generator-list-too-short", lambda ctx: _stepped(_VP(), generator=[torch.Generator()]*3), ValueError,
        "generator"),
    Row("VP-timestep-not-in-grid", lambda ctx: (s := _VP(), s.set_timesteps(3), s.step(torch.zeros(1), 0.123,
        torch.zeros(1))), ValueError, "timestep"),
    Row("VP-training-batch-0", lambda ctx: _VP().sample_training_timesteps(0), ValueError, "batch_size"),
    Row("VP-sample-more-dims-than-time", lambda ctx: _VP().add_noise(torch.zeros(2), torch.zeros(2), torch.zeros(2, 2)),
        ValueError, "timesteps"),
]  # fmt: skip

# Data and text files.
ROWS += [
    Row("read_texts-empty", lambda ctx: read_texts(ctx.file("empty.txt", "")), ValueError, "empty.txt"),
    Row("read_texts-blank", lambda ctx: read_texts(ctx.file("blank.txt", "\n  \n")), ValueError, "blank.txt"),
    Row("read_texts-latin1", lambda ctx: read_texts(ctx.file("latin.txt", "caf\xe9\n".encode("latin-1"))), ValueError,
        "latin.txt.*UTF-8"),
    Row("read_texts-bad-json-list", lambda ctx: read_texts(ctx.file("bad.json", "[1, 2")), ValueError, "bad.json"),
    Row("read_texts-json-of-ints", lambda ctx: read_texts(ctx.file("ints.json", "[1, 2]")), ValueError, "ints.json"),
    Row("read_texts-jsonl-bad-line", lambda ctx: read_texts(ctx.file("s.jsonl", '{"text": "a"}\n{"text": ')), ValueError,
        "s.jsonl, line 2"),
    Row("read_texts-jsonl-without-text", lambda ctx: read_texts(ctx.file("t.jsonl", '{"txt": "a"}\n')), ValueError,
        "t.jsonl, line 1"),
    Row("read_texts-missing", lambda ctx: read_texts(ctx.root / "nothing.txt"), FileNotFoundError, "nothing.txt"),
    Row("dataset-empty-file", lambda ctx: _train_config(ctx, dataset=str(ctx.file("d0.txt", ""))), ValueError, "d0.txt"),
    Row("dataset-latin1-file", lambda ctx: _train_config(ctx, dataset=str(ctx.file("d1.txt", b"caf\xe9\n"))),
        ValueError, "d1.txt.*UTF-8"),
    Row("dataset-missing-file", lambda ctx: _train_config(ctx, dataset="./no/data.txt"), FileNotFoundError,
        "no/data.txt"),
    Row("dataset-missing-txt", lambda ctx: _train_config(ctx, dataset="data.txt"), FileNotFoundError, "data.txt"),
    Row("dataset-a-number", lambda ctx: _train_config(ctx, dataset=5), ValueError, "`dataset`"),
    Row("dataset-empty-list", lambda ctx: _train_config(ctx, dataset=[]), ValueError, "`dataset`.*empty"),
    Row("dataset-list-of-non-texts", lambda ctx: _train_config(ctx, dataset=["a", 3]), ValueError, "`dataset`.*int"),
    Row("dataset-streaming", lambda ctx: _train_config(ctx, dataset=_streaming()), ValueError, "`dataset`.*streaming"),
]  # fmt: skip

# What a fine-tune starts from (`init_from`, resolved when the model is built).
ROWS += [
    Row("init_from-unknown-bundled", lambda ctx: resolve_init_from("pretrained:gpt-17"), ValueError,
        "`init_from`.*gpt-17"),
    Row("init_from-folder-without-config", lambda ctx: resolve_init_from(str(ctx.file("i.txt", "x").parent)),
        ValueError, "`init_from`.*neither"),
    Row("init_from-unreachable-hub-id", lambda ctx: resolve_init_from("nobody/nothing-here"), ValueError,
        "`init_from`.*nobody/nothing-here"),
]  # fmt: skip

# Training configs.
ROWS += [
    Row(f"training-{name}={value!r}", lambda ctx, n=name, v=value: _train_config(ctx, **{n: v}), ValueError, name)
    for name, value in [
        ("max_steps", 0), ("max_steps", "ten"), ("learning_rate", NAN), ("learning_rate", "fast"),
        ("learning_rate", -1.0), ("per_device_train_batch_size", 0), ("validation_split", 1.5),
        ("mixed_precision", "fp8"), ("lr_scheduler_type", "bogus"), ("ema_decay", 1.0), ("warmup_steps", -1),
        ("seq_len", 1.5), ("max_step", 3), ("method", "gpt"), ("max_grad_norm", INF),
        ("optimizer", "sgd"), ("optimizer", None), ("muon_learning_rate", 0.0), ("muon_learning_rate", NAN),
        ("muon_momentum", 1.0), ("muon_momentum", -0.1), ("muon_weight_decay", -0.1), ("muon_ns_steps", 0),
        ("muon_ns_steps", 100), ("muon_ns_steps", 2.5), ("muon_nesterov", "yes"), ("muon_adjust_lr_fn", "rms"),
        ("framing", "framed"), ("framing", 1), ("muon_output_head", "no"),
    ]
]  # fmt: skip
ROWS += [
    Row("yaml-missing", lambda ctx: load_config(ctx.root / "none.yaml"), FileNotFoundError, "none.yaml"),
    Row("yaml-syntax", lambda ctx: load_config(_yaml(ctx, "bad.yaml", "max_steps: [1,\n")), ValueError, "bad.yaml"),
    Row("yaml-not-mapping", lambda ctx: load_config(_yaml(ctx, "list.yaml", "- 1\n- 2\n")), ValueError, "list.yaml"),
    Row("yaml-latin1", lambda ctx: load_config(_yaml(ctx, "l1.yaml", b"output_dir: caf\xe9\n")), ValueError, "l1.yaml"),
]  # fmt: skip

# Every CLI command.
ROWS += [
    Row(f"cli-{label}", lambda ctx, a=args: cli(*(arg(ctx) if callable(arg) else arg for arg in a)), CLIError, pattern)
    for label, args, pattern in [
        ("no-command", [], "COMMAND|required"),
        ("unknown-command", ["serve"], "serve"),
        ("sample-missing-path", ["sample", "./no/pipeline"], "no/pipeline"),
        ("sample-not-a-pipeline", ["sample", lambda ctx: ctx.root / "elf"], "model_index.json"),
        ("sample-path-and-pretrained", ["sample", "x", "--pretrained", "elf-tiny-prose"], "either PATH or --pretrained"),
        ("sample-neither", ["sample"], "either PATH or --pretrained"),
        ("sample-unknown-pretrained", ["sample", "--pretrained", "gpt-17"], "gpt-17"),
        ("sample-num-samples-0", ["sample", "--pretrained", "elf-tiny-prose", "--num_samples", "0"], "--num_samples"),
        ("sample-num-samples-neg", ["sample", "--pretrained", "elf-tiny-prose", "--num_samples", "-2"], "--num_samples"),
        ("sample-num-samples-text", ["sample", "--pretrained", "elf-tiny-prose", "--num_samples", "a"], "--num_samples"),
        ("sample-steps-0", ["sample", "--pretrained", "elf-tiny-prose", "--num_inference_steps", "0"],
         "--num_inference_steps"),
        ("sample-gen-length-0", ["sample", "--pretrained", "elf-tiny-prose", "--gen_length", "0"], "--gen_length"),
        ("sample-time-grid", ["sample", "--pretrained", "elf-tiny-prose", "--time_grid", "cosine"], "--time_grid"),
        ("sample-solver-on-elf", ["sample", "--pretrained", "elf-tiny-prose", "--solver", "ddim"], "--solver"),
        ("sample-nan-guidance", ["sample", "--pretrained", "elf-tiny-prose", "--guidance_scale", "nan",
                                 "--num_inference_steps", "1", "--num_samples", "1"], "guidance_scale"),
        ("sample-guidance-text", ["sample", "--pretrained", "elf-tiny-prose", "--guidance_scale", "lots"],
         "--guidance_scale"),
        ("sample-corrupt-model", ["sample", lambda ctx: _corrupt_copy(ctx, "pipeline", "model/model.safetensors")],
         "pipeline"),
        ("train-missing-config", ["train", "./no/config.yaml"], "no/config.yaml"),
        ("train-bad-yaml", ["train", lambda ctx: _yaml(ctx, "c1.yaml", "method: [ar\n")], "c1.yaml"),
        ("train-unknown-key", ["train", lambda ctx: _yaml(ctx, "c2.yaml", "method: ar\noutput_dir: {out}\n"), "--max_step",
                               "2"], "max_step"),
        ("train-max-steps-0", ["train", lambda ctx: _yaml(ctx, "c3.yaml", "method: ar\noutput_dir: {out}\n"), "--max_steps",
                               "0"], "max_steps"),
        ("train-nan-lr", ["train", lambda ctx: _yaml(ctx, "c4.yaml", "method: ar\noutput_dir: {out}\n"), "--learning_rate",
                          "nan"], "learning_rate"),
        ("train-latin1-data", ["train", lambda ctx: _yaml(ctx, "c5.yaml", "method: ar\noutput_dir: {out}\n"), "--dataset",
                               lambda ctx: ctx.file("d5.txt", b"\xe9t\xe9\n")], "d5.txt"),
        ("train-empty-data", ["train", lambda ctx: _yaml(ctx, "c6.yaml", "method: ar\noutput_dir: {out}\n"), "--dataset",
                              lambda ctx: ctx.file("d6.txt", "")], "d6.txt"),
        ("train-bad-override", ["train", lambda ctx: _yaml(ctx, "c7.yaml", "method: ar\noutput_dir: {out}\n"), "max_steps"],
         "max_steps"),
        ("evaluate-missing-file", ["evaluate", "./no/samples.txt", "--no-mauve"], "no/samples.txt"),
        ("evaluate-empty-file", ["evaluate", lambda ctx: ctx.file("e.txt", ""), "--no-mauve"], "e.txt"),
        ("evaluate-latin1-file", ["evaluate", lambda ctx: ctx.file("e1.txt", b"\xe9\n"), "--no-mauve"], "e1.txt"),
        ("evaluate-bad-jsonl", ["evaluate", lambda ctx: ctx.file("e2.jsonl", '{"text": 1}\n'), "--no-mauve"],
         "e2.jsonl"),
        ("evaluate-num-samples-0", ["evaluate", lambda ctx: ctx.root / "pipeline", "--num-samples", "0"],
         "--num-samples"),
        ("evaluate-steps-0", ["evaluate", lambda ctx: ctx.root / "pipeline", "--steps", "0"], "--steps"),
        ("bench-nothing-to-bench", ["bench"], "--model"),
        ("bench-num-samples-0", ["bench", "--num-samples", "0"], "--num-samples"),
        ("bench-unreachable-model", ["bench", "--model", "noequals", "--quick"], "noequals"),
        ("bench-missing-model-folder", ["bench", "--model", "elf=./no/elf"], "--model.*no/elf"),
        ("reconstruct-missing-autoencoder", ["reconstruct", "--autoencoder", "ae=./no/ae"], "no/ae"),
        ("push-missing-folder", ["push", "./no/run", "me/x"], "no/run"),
        ("push-not-a-model-folder", ["push", lambda ctx: ctx.file("p.txt", "x").parent, "me/x"],
         "holds no saved pipeline"),
        ("push-adapter-only-without-adapter", ["push", lambda ctx: ctx.root / "pipeline", "me/x", "--adapter-only"],
         "--adapter-only.*no LoRA adapter"),
        ("push-no-repo", ["push", lambda ctx: ctx.root / "pipeline"], "repo_id"),
    ]
]  # fmt: skip


def test_the_table_is_large_and_ids_are_unique():
    assert len(ROWS) >= 150
    assert len({row.id for row in ROWS}) == len(ROWS)


@pytest.fixture(scope="module")
def ctx(tmp_path_factory):
    return Context(tmp_path_factory.mktemp("bad-inputs"))


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_bad_input_fails_loudly_and_names_it(ctx, row):
    with pytest.raises(row.exception) as info:
        row.call(ctx)
    assert re.search(row.pattern, str(info.value)), f"{type(info.value).__name__}: {info.value}"


def test_guidance_outside_the_trained_range_warns(ctx):
    with pytest.warns(UserWarning, match="sc_guidance_scale=50"):
        ctx.generate(sc_guidance_scale=50.0)


@pytest.mark.parametrize("callback", [42, lambda pipe, i, t, kwargs: None], ids=["not-callable", "returns-None"])
def test_bad_callback_is_named(ctx, callback):
    with pytest.raises((TypeError, ValueError), match="callback_on_step_end"):
        ctx.generate(callback_on_step_end=callback)
