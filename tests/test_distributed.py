"""Several processes: a real 2-process CPU run (gloo) against a 1-process run, a kill and resume, and the guards.

The 2-process runs go through the documented launchers (`accelerate launch --multi_gpu --num_processes 2`, and plain
`torchrun --nproc_per_node 2` for the resume) and `latentlm train`, in `distributed_worker.py`, which records each
rank's batches and file writes.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

import latentlm.training.builders as builders
from latentlm.training import TrainingConfig, train
from latentlm.training.distributed import (
    LaunchError,
    OutputDirLock,
    check_launch,
    check_sharding,
    per_device_batch_size,
    use_cpu_backend,
)
from test_training import corpus, tiny_config, train_losses  # noqa: F401  (corpus is a fixture)


WORKER = Path(__file__).with_name("distributed_worker.py")
# Two processes of 2 sequences and one of 4 see the same 4 sequences per step; their gradients differ only by the
# order of float32 sums (all-reduce), which Adam carries into the weights (measured on a 2-core CPU: losses within
# 2.4e-7, weights within 1.2e-7).
RUN = {"total_train_batch_size": 4, "max_steps": 4, "save_steps": 2, "eval_steps": None, "warmup_steps": 1}
TOLERANCE = {"rtol": 1e-5, "atol": 1e-5}


def launch(
    launcher: list[str], record_dir: Path, config: Path, output_dir: Path, *overrides: str, kill_after=None, fsdp=False
):
    record_dir.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    kill = ["--kill-after-step", str(kill_after)] if kill_after is not None else []
    command = [
        *launcher,
        str(WORKER),
        str(record_dir),
        *(["--fsdp"] if fsdp else []),
        *kill,
        str(config),
        "--output_dir",
        str(output_dir),
        *overrides,
    ]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def read_jsonl(path: Path) -> list:
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.mark.skipif(torch.cuda.is_available(), reason="compares CPU (gloo) runs with an in-process run on the CPU")
def test_two_cpu_processes_train_like_one_and_resume_exactly(corpus, tmp_path, monkeypatch):  # noqa: F811
    # the reference: one process, 4 sequences per step, its batches recorded
    single_batches = []
    collate = builders.collate

    def recording_collate(examples):
        batch = collate(examples)
        single_batches.append(batch["input_ids"].tolist())
        return batch

    monkeypatch.setattr(builders, "collate", recording_collate)
    single = tiny_config(corpus, tmp_path / "single", **RUN)
    train(single)
    monkeypatch.undo()

    # two processes, killed right after the checkpoint of step 2, then resumed by another launcher
    config_path = tmp_path / "run.yaml"
    config_path.write_text(json.dumps({**single.to_dict(), "output_dir": None}))
    out = tmp_path / "multi"
    accelerate = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2"]
    killed = launch([*accelerate, "--main_process_port", "0"], tmp_path / "rec-a", config_path, out, kill_after=2)
    assert killed.returncode != 0, killed.stderr[-3000:]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["checkpoint-2"]
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    resumed = launch(torchrun, tmp_path / "rec-b", config_path, out, "--resume_from_checkpoint", "latest")
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    # each step's 4 sequences are split over the ranks: rank 0 the first 2, rank 1 the last 2, disjoint
    # (each run's first 2 batches: the loader fetches one batch ahead, so the killed run collated a third)
    per_rank = [
        read_jsonl(tmp_path / "rec-a" / f"batches-{rank}.jsonl")[:2]
        + read_jsonl(tmp_path / "rec-b" / f"batches-{rank}.jsonl")[:2]
        for rank in (0, 1)
    ]
    assert [len(batch) for batch in per_rank[0] + per_rank[1]] == [2] * 8
    for step in range(4):
        assert per_rank[0][step] + per_rank[1][step] == single_batches[step]
    seen = [{tuple(seq) for batch in batches for seq in batch} for batches in per_rank]
    assert len(seen[0]) == len(seen[1]) == 8 and not seen[0] & seen[1]  # disjoint shards within the epoch

    # the killed and resumed 2-process run took the same steps as the 1-process run
    losses, reference = train_losses(out), train_losses(tmp_path / "single")
    assert sorted(losses) == [1, 2, 3, 4]
    for step in range(1, 5):
        assert losses[step] == pytest.approx(reference[step], rel=TOLERANCE["rtol"], abs=TOLERANCE["atol"])
    weights = load_file(out / "model.safetensors")
    reference_weights = load_file(tmp_path / "single" / "model.safetensors")
    assert weights.keys() == reference_weights.keys()
    for name in weights:
        torch.testing.assert_close(weights[name], reference_weights[name], **TOLERANCE)
    assert yaml.safe_load((out / "training_config.yaml").read_text())["per_device_train_batch_size"] == 2

    # rank 1 wrote nothing but its own RNG state; Accelerate's `save_state` also makes the checkpoint folder on
    # every process (`makedirs(exist_ok=True)`)
    for record_dir in (tmp_path / "rec-a", tmp_path / "rec-b"):
        rank0 = read_jsonl(record_dir / "writes-0.jsonl")
        rank1 = read_jsonl(record_dir / "writes-1.jsonl")
        assert {w["path"] for w in rank0 if w["event"] == "open"} >= {"train_log.jsonl", ".latentlm.lock"}
        for write in rank1:
            if write["event"] == "os.mkdir":
                assert write["path"].startswith("checkpoints")
            else:
                assert write["event"] == "torch.save" and write["path"].endswith("/random_states_1.pkl"), write
    assert any(w["path"] == "model.safetensors" for w in read_jsonl(tmp_path / "rec-b" / "writes-0.jsonl"))


@pytest.mark.skipif(torch.cuda.is_available(), reason="compares CPU (gloo) runs with an in-process run on the CPU")
def test_fsdp_checkpoints_resume_and_export_whole_weights(corpus, tmp_path):  # noqa: F811
    """FSDP2 (full shard, as examples/accelerate_configs/fsdp.yaml) with an EMA: killed after the step-2 checkpoint,
    resumed, and exported, it matches one process with the same global batch."""
    fsdp_run = {**RUN, "ema_decay": 0.9}
    single = tiny_config(corpus, tmp_path / "single", **fsdp_run)
    train(single)
    config_path = tmp_path / "run.yaml"
    config_path.write_text(json.dumps({**single.to_dict(), "output_dir": None}))
    out = tmp_path / "fsdp"
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    killed = launch(torchrun, tmp_path / "rec-a", config_path, out, kill_after=2, fsdp=True)
    assert killed.returncode != 0, killed.stderr[-3000:]
    checkpoint = out / "checkpoints" / "checkpoint-2"
    assert (checkpoint / "pytorch_model_fsdp.bin").is_file()  # Accelerate saved through its FSDP path
    reference_checkpoint = tmp_path / "single" / "checkpoints" / "checkpoint-2"
    for name in ("model/model.safetensors", "ema.safetensors"):  # whole tensors, gathered from the shards
        saved, reference = load_file(checkpoint / name), load_file(reference_checkpoint / name)
        assert saved.keys() == reference.keys()
        for key in saved:
            torch.testing.assert_close(saved[key], reference[key], **TOLERANCE)

    resumed = launch(torchrun, tmp_path / "rec-b", config_path, out, "--resume_from_checkpoint", "latest", fsdp=True)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    losses, reference = train_losses(out), train_losses(tmp_path / "single")
    assert sorted(losses) == [1, 2, 3, 4]
    for step in range(1, 5):
        assert losses[step] == pytest.approx(reference[step], rel=TOLERANCE["rtol"], abs=TOLERANCE["atol"])
    weights, reference_weights = load_file(out / "model.safetensors"), load_file(tmp_path / "single" / "model.safetensors")
    assert weights.keys() == reference_weights.keys()  # the exported EMA weights
    for name in weights:
        torch.testing.assert_close(weights[name], reference_weights[name], **TOLERANCE)


def test_lora_under_fsdp_is_refused_by_name():
    from latentlm.training.distributed import check_lora_sharding

    with pytest.raises(LaunchError, match="`lora` under FSDP is not supported"):
        check_lora_sharding(True, "FSDP")
    check_lora_sharding(True, "MULTI_GPU")
    check_lora_sharding(False, "FSDP")


# ----------------------------------------------------------------------------------------------------------------------
# Guards
# ----------------------------------------------------------------------------------------------------------------------


def test_a_second_run_cannot_write_into_a_folder_a_live_run_holds(corpus, tmp_path):  # noqa: F811
    config = tiny_config(corpus, tmp_path / "run", max_steps=1)
    with OutputDirLock(tmp_path / "run"):  # a live run (flock locks of two open files conflict in one process too)
        with pytest.raises(LaunchError, match=r"`output_dir` .*run is in use by a live training run \(host .*pid"):
            train(config)
    assert not (tmp_path / "run" / "checkpoints").exists()
    assert train(config).step == 1  # the lock went with its holder


def test_cli_reports_launch_errors_without_a_traceback(corpus, tmp_path):  # noqa: F811
    from latentlm.cli import main

    config_path = tmp_path / "run.yaml"
    config_path.write_text(json.dumps(tiny_config(corpus, tmp_path / "run", max_steps=1).to_dict()))
    with OutputDirLock(tmp_path / "run"):
        with pytest.raises(SystemExit, match=r"^latentlm train: error: `output_dir` .* is in use by a live training"):
            main(["train", str(config_path)])


def test_world_size_must_divide_the_total_batch():
    assert per_device_batch_size(None, 8, 4, 1) == 8
    assert per_device_batch_size(12, 8, 3, 2) == 2
    with pytest.raises(ValueError, match=r"`total_train_batch_size` 6 does not split evenly over 4 processes x 1"):
        per_device_batch_size(6, 8, 4, 1)


def test_torchrun_on_a_machine_without_gpu_asks_for_cpu_processes(monkeypatch):
    for key in ("LOCAL_RANK", "WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(key, raising=False)
    assert not use_cpu_backend()  # `python` / `latentlm train`: one process, the default device
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert use_cpu_backend() == (not torch.cuda.is_available())
    with pytest.raises(LaunchError, match="started 2 processes .* Accelerate joined 1"):
        check_launch(1)
    check_launch(2)


def test_fsdp_that_accelerate_ignores_on_cpus_is_an_error(monkeypatch):
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    with pytest.raises(LaunchError, match="asked for FSDP but Accelerate runs MULTI_CPU"):
        check_sharding("MULTI_CPU")
    check_sharding("FSDP")
    monkeypatch.delenv("ACCELERATE_USE_FSDP")
    check_sharding("MULTI_CPU")


def test_accelerate_cpu_launcher_starting_one_of_several_processes_is_reported(monkeypatch):
    """`accelerate launch --cpu --num_processes 2` runs the script once; the environment it builds says so."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser
    from accelerate.utils.launch import prepare_simple_launcher_cmd_env

    for key in ("LOCAL_RANK", "WORLD_SIZE", "MASTER_PORT", "ACCELERATE_USE_CPU"):
        monkeypatch.delenv(key, raising=False)
    args = launch_command_parser().parse_args(["--cpu", "--num_processes", "2", "-m", "latentlm.cli", "train"])
    cmd, env = prepare_simple_launcher_cmd_env(_validate_launch_command(args)[0])
    assert cmd[1:3] == ["-m", "latentlm.cli"]  # one command, run once
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(LaunchError, match=r"`accelerate launch` was asked for several processes but started one"):
        check_launch(1)


def test_ar_without_model_sizes_gets_the_small_documented_llama_not_llamaconfigs_billions(tmp_path):
    from conftest import build_tiny_tokenizer
    from latentlm.models.registry import AR_MODEL_DEFAULTS, get_method
    from latentlm.training.builders import build_model

    tokenizer = build_tiny_tokenizer()
    model = build_model(get_method("ar"), TrainingConfig(method="ar", output_dir=str(tmp_path)), tokenizer)
    assert {key: getattr(model.config, key) for key in AR_MODEL_DEFAULTS} == AR_MODEL_DEFAULTS
    assert sum(p.numel() for p in model.parameters()) < 5_000_000
    sized = {"hidden_size": 64, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 128}
    model = build_model(
        get_method("ar"), TrainingConfig(method="ar", output_dir=str(tmp_path), model=sized), tokenizer
    )
    assert {key: getattr(model.config, key) for key in sized} == sized and not model.config.tie_word_embeddings


def test_accelerate_configs_load_and_fsdp_wraps_each_models_backbone_block():
    from accelerate.commands.config.config_args import load_config_from_file

    from latentlm.models.registry import get_method, list_methods

    folder = Path(__file__).parents[1] / "examples" / "accelerate_configs"
    configs = {path.stem: load_config_from_file(str(path)) for path in folder.glob("*.yaml")}
    assert {name: c.distributed_type.value for name, c in configs.items()} == {
        "cpu": "MULTI_GPU",  # Accelerate's torchrun launcher; the processes run on the CPUs without a GPU
        "ddp": "MULTI_GPU",
        "fsdp": "FSDP",
        "zero2": "DEEPSPEED",
    }
    fsdp = configs["fsdp"].fsdp_config
    assert (
        fsdp["fsdp_auto_wrap_policy"] == "TRANSFORMER_BASED_WRAP" and "fsdp_transformer_layer_cls_to_wrap" not in fsdp
    )
    for method in list_methods():  # what Accelerate wraps when the config names no class
        assert get_method(method).model_class._no_split_modules, method


@pytest.mark.skipif(torch.cuda.is_available(), reason="compares CPU (gloo) runs with an in-process run on the CPU")
def test_two_cpu_processes_train_like_one_with_muon(corpus, tmp_path):  # noqa: F811
    # Muon steps on the all-reduced gradients, so every rank takes the same step. It orthogonalises in bfloat16,
    # where the processes' float32 sum-order differences can round an element differently: a looser tolerance.
    single = tiny_config(corpus, tmp_path / "single", optimizer="muon", **RUN)
    train(single)
    config_path = tmp_path / "run.yaml"
    config_path.write_text(json.dumps({**single.to_dict(), "output_dir": None}))
    torchrun = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2"]
    run = launch(torchrun, tmp_path / "rec", config_path, tmp_path / "multi")
    assert run.returncode == 0, run.stderr[-3000:]

    losses, reference = train_losses(tmp_path / "multi"), train_losses(tmp_path / "single")
    assert sorted(losses) == [1, 2, 3, 4] and losses[4] == pytest.approx(reference[4], rel=1e-3)
    weights = load_file(tmp_path / "multi" / "model.safetensors")
    reference_weights = load_file(tmp_path / "single" / "model.safetensors")
    for name in weights:
        torch.testing.assert_close(weights[name], reference_weights[name], rtol=1e-3, atol=1e-3)
