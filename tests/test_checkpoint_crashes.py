"""Checkpoints under kills, damaged files and planted pickles: resume uses only intact, trusted state.

A real (tiny Llama) checkpoint pair is written once with Accelerate; each test damages a copy.
"""

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch
from accelerate import Accelerator
from transformers import LlamaConfig, LlamaForCausalLM

import latentlm.training.checkpointing as checkpointing
from latentlm.training import EMA, TrainState, list_checkpoints, resolve_checkpoint, save_checkpoint
from latentlm.training.checkpointing import CheckpointError, load_checkpoint, register_model_hooks, verify_checkpoint


TINY = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
CHECKPOINT_FILES = [
    "model/model.safetensors",
    "model/config.json",
    "optimizer.bin",
    "scheduler.bin",
    "random_states_0.pkl",
    "train_state.json",
    "ema.safetensors",
    "ema.json",
    "manifest.json",
]


def _setup(nan=False):
    torch.manual_seed(0)
    model = LlamaForCausalLM(TINY)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    accelerator = Accelerator(cpu=True)
    model, optimizer, scheduler = accelerator.prepare(model, optimizer, scheduler)
    register_model_hooks(accelerator)
    ema = EMA(model, 0.9)
    if nan:
        with torch.no_grad():
            next(model.parameters()).fill_(float("nan"))
    return accelerator, model, ema


def _save(output_dir, step, nan=False, total_limit=None):
    accelerator, model, ema = _setup(nan)
    state = TrainState(step=step, epoch=1, batches_in_epoch=step)
    return save_checkpoint(accelerator, output_dir, step, total_limit, state, ema)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    _save(out, 1)
    _save(out, 2)
    return out


@pytest.fixture
def run_dir(pristine, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(pristine, out)
    return out


def _damage(file: Path, how: str) -> None:
    data = file.read_bytes()
    if how == "truncate":
        file.write_bytes(data[: len(data) // 2])
    elif how == "flip":
        middle = len(data) // 2
        file.write_bytes(data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :])
    elif how == "delete":
        file.unlink()


def test_checkpoint_layout_has_no_pickle_of_latentlm_own(pristine):
    checkpoint = list_checkpoints(pristine)[-1]
    files = {p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file()}
    assert set(CHECKPOINT_FILES) <= files
    assert not any("custom_checkpoint" in name for name in files)
    verify_checkpoint(checkpoint)


@pytest.mark.parametrize("how", ["truncate", "flip", "delete"])
@pytest.mark.parametrize("name", CHECKPOINT_FILES)
def test_damaged_file_falls_back_to_the_newest_intact_checkpoint(run_dir, name, how, caplog):
    newest = list_checkpoints(run_dir)[-1]
    _damage(newest / name, how)
    with pytest.raises(CheckpointError):
        verify_checkpoint(newest)
    with caplog.at_level(logging.WARNING):
        assert resolve_checkpoint(run_dir, "latest") == list_checkpoints(run_dir)[0]
    assert "damaged checkpoint" in caplog.text and str(newest) in caplog.text
    with pytest.raises(CheckpointError, match=str(newest)):
        resolve_checkpoint(run_dir, str(newest))  # an explicit path is never swapped for another


def test_every_checkpoint_damaged_is_an_error(run_dir):
    for checkpoint in list_checkpoints(run_dir):
        _damage(checkpoint / "optimizer.bin", "flip")
    with pytest.raises(CheckpointError, match="Every checkpoint"):
        resolve_checkpoint(run_dir, "latest")


def test_nan_weights_are_refused(tmp_path, caplog):
    _save(tmp_path, 1)
    _save(tmp_path, 2, nan=True)
    with pytest.raises(CheckpointError, match="NaN"):
        verify_checkpoint(list_checkpoints(tmp_path)[-1])
    with caplog.at_level(logging.WARNING):
        assert resolve_checkpoint(tmp_path, "latest").name == "checkpoint-1"


def test_resume_restores_train_state_and_ema(run_dir):
    accelerator, model, ema = _setup()
    state = TrainState()
    with torch.no_grad():
        for shadow in ema.shadow.values():
            shadow.zero_()
    load_checkpoint(accelerator, list_checkpoints(run_dir)[-1], state, ema)
    assert (state.step, state.epoch, state.batches_in_epoch) == (2, 1, 2)
    torch.manual_seed(0)
    reference = dict(LlamaForCausalLM(TINY).named_parameters())  # seed 0: the weights the EMA was built from
    for name, shadow in ema.shadow.items():
        assert torch.equal(shadow, reference[name.removeprefix("module.")].detach()), name


def _lora_setup(seed):
    """A tiny Llama with a LoRA adapter (PEFT), prepared like a LoRA training run; ``seed`` sets the adapter."""
    from peft import LoraConfig, get_peft_model

    torch.manual_seed(0)
    base = LlamaForCausalLM(TINY)
    torch.manual_seed(seed)
    model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    accelerator = Accelerator(cpu=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    register_model_hooks(accelerator)
    return accelerator, model


def _lora_weights(model):
    return {name: p.detach().clone() for name, p in model.named_parameters() if "lora_" in name}


def test_lora_checkpoint_holds_the_adapter_only_under_the_manifest(tmp_path):
    accelerator, model = _lora_setup(seed=1)
    saved = _lora_weights(model)
    checkpoint = save_checkpoint(accelerator, tmp_path, 1, None, TrainState(step=1))
    files = {p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file()}
    assert {"model/adapter_model.safetensors", "model/adapter_config.json", "model/config.json"} <= files
    assert "model/model.safetensors" not in files and "model.safetensors" not in files  # no full weights
    assert not any("custom_checkpoint" in name for name in files)
    assert {"model/adapter_model.safetensors", "model/adapter_config.json"} <= json.loads(
        (checkpoint / "manifest.json").read_text()
    )["files"].keys()
    assert resolve_checkpoint(tmp_path, "latest") == checkpoint

    accelerator, fresh = _lora_setup(seed=2)  # same base, another adapter: resuming must restore the saved one
    state = TrainState()
    load_checkpoint(accelerator, checkpoint, state)
    assert state.step == 1
    restored = _lora_weights(fresh)
    assert restored.keys() == saved.keys()
    for name, weight in saved.items():
        assert torch.equal(restored[name], weight), name


@pytest.mark.parametrize("damage", ["flip", "nan"])
def test_damaged_lora_adapter_is_refused(tmp_path, damage):
    from safetensors.torch import load_file, save_file

    accelerator, _ = _lora_setup(seed=1)
    checkpoint = save_checkpoint(accelerator, tmp_path, 1, None, TrainState(step=1))
    adapter = checkpoint / "model" / "adapter_model.safetensors"
    if damage == "flip":
        _damage(adapter, "flip")
    else:  # NaN weights with a manifest rewritten to match: still refused
        save_file({name: torch.full_like(t, float("nan")) for name, t in load_file(adapter).items()}, adapter)
        (checkpoint / "manifest.json").unlink()
        checkpointing._write_manifest(checkpoint)
    with pytest.raises(CheckpointError, match="adapter_model.safetensors"):
        verify_checkpoint(checkpoint)


class _Payload:
    """Unpickling this runs `open(marker, "w")`: what a planted checkpoint would do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.mark.parametrize("name", ["optimizer.bin", "scheduler.bin", "random_states_0.pkl", "custom_checkpoint_0.pkl"])
@pytest.mark.parametrize("forge_manifest", [False, True])
def test_planted_pickle_payload_never_runs(run_dir, tmp_path, name, forge_manifest):
    checkpoint = list_checkpoints(run_dir)[-1]
    marker = tmp_path / "pwned"
    torch.save({"state": _Payload(marker)}, checkpoint / name)
    if forge_manifest:  # an attacker who can write the checkpoint can also rewrite its manifest
        (checkpoint / "manifest.json").unlink()
        checkpointing._write_manifest(checkpoint)
        verify_checkpoint(checkpoint)
        accelerator, _, ema = _setup()
        with pytest.raises(Exception):  # noqa: B017  (torch's weights_only refusal or Accelerate's count check)
            load_checkpoint(accelerator, checkpoint, TrainState(), ema)
    else:
        assert resolve_checkpoint(run_dir, "latest") == list_checkpoints(run_dir)[0]
    assert not marker.exists()


# ---------------------------------------------------------------------------------------------------- kills


class _Killed(BaseException):
    pass


@pytest.mark.parametrize("stage", ["_write_own_state", "_write_manifest", "_fsync_tree", "_replace_dir"])
def test_a_kill_at_any_stage_of_a_save_leaves_the_previous_checkpoints(run_dir, monkeypatch, stage):
    def killed(*args, **kwargs):
        raise _Killed

    monkeypatch.setattr(checkpointing, stage, killed)
    with pytest.raises(_Killed):
        _save(run_dir, 3)
    assert [p.name for p in list_checkpoints(run_dir)] == ["checkpoint-1", "checkpoint-2"]
    assert resolve_checkpoint(run_dir, "latest").name == "checkpoint-2"
    monkeypatch.undo()
    _save(run_dir, 3)  # the next save clears the leftovers
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == [
        "checkpoint-1",
        "checkpoint-2",
        "checkpoint-3",
    ]


def test_a_kill_mid_rotation_never_leaves_a_half_deleted_checkpoint(run_dir, monkeypatch):
    real_rmtree = shutil.rmtree

    def rmtree_killed_half_way(path, *args, **kwargs):
        victims = sorted(Path(path).rglob("*.safetensors"))
        if victims:
            victims[0].unlink()  # some files are gone, then the kill
        raise _Killed

    monkeypatch.setattr(checkpointing.shutil, "rmtree", rmtree_killed_half_way)
    with pytest.raises(_Killed):
        _save(run_dir, 3, total_limit=2)
    monkeypatch.setattr(checkpointing.shutil, "rmtree", real_rmtree)
    names = [p.name for p in list_checkpoints(run_dir)]
    assert names == ["checkpoint-2", "checkpoint-3"]  # checkpoint-1 was renamed away before the deletion began
    for checkpoint in list_checkpoints(run_dir):
        verify_checkpoint(checkpoint)
    _save(run_dir, 4, total_limit=2)
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["checkpoint-3", "checkpoint-4"]


_SAVER = textwrap.dedent(
    """
    import sys, torch
    from accelerate import Accelerator
    from transformers import LlamaConfig, LlamaForCausalLM
    from latentlm.training import EMA, TrainState, save_checkpoint
    from latentlm.training.checkpointing import register_model_hooks

    config = LlamaConfig(vocab_size=32, hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2)
    model = LlamaForCausalLM(config)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    accelerator = Accelerator(cpu=True)
    model, optimizer = accelerator.prepare(model, optimizer)
    register_model_hooks(accelerator)
    ema = EMA(model, 0.9)
    for step in range(1, 10_000):
        save_checkpoint(accelerator, sys.argv[1], step, 2, TrainState(step=step), ema)
        print(step, flush=True)
    """
)


def test_sigkill_during_checkpoint_writes_leaves_an_intact_latest(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(checkpointing.__file__).parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", _SAVER, str(tmp_path)], stdout=subprocess.PIPE, text=True, env=env)
    try:
        for _ in range(3):  # a few checkpoints written: saving and rotating are in full swing
            assert proc.stdout.readline(), "the saver died"
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    latest = resolve_checkpoint(tmp_path, "latest")
    verify_checkpoint(latest)
    assert json.loads((latest / "train_state.json").read_text())["step"] == int(latest.name.split("-")[1])
