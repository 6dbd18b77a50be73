"""One process of `test_distributed.py`'s multi-process runs: ``latentlm train`` with what the test inspects recorded.

    accelerate launch --multi_gpu --num_processes 2 tests/distributed_worker.py RECORD_DIR [--fsdp] \
        [--kill-after-step K] CONFIG.yaml [--key value ...]

Records, per rank, in RECORD_DIR: ``batches-<rank>.jsonl`` (the ``input_ids`` of every training batch the rank
collated) and ``writes-<rank>.jsonl`` (every file opened for writing, directory made, renamed or removed under the
run's ``output_dir``, seen through Python's audit hooks, `torch.save` and safetensors). With ``--kill-after-step K`` every rank dies (``os._exit``)
right after the checkpoint of step K is complete, as a killed job would. With ``--fsdp`` the run's Accelerator is an
FSDP2 one as `examples/accelerate_configs/fsdp.yaml` configures it (full shard, the model's `_no_split_modules` as the
wrap unit, full state dicts): Accelerate enables FSDP only on GPU-like devices, but torch's FSDP2 itself runs on CPU
processes (gloo), so the test sets Accelerate's state to FSDP after it chose MULTI_CPU.
"""

import json
import os
import sys
from pathlib import Path


def main(argv: list[str]) -> None:
    record_dir, argv = Path(argv[0]), argv[1:]
    kill_after = None
    if argv[0] == "--fsdp":
        _run_accelerate_fsdp_on_cpu_processes()
        argv = argv[1:]
    if argv[0] == "--kill-after-step":
        kill_after, argv = int(argv[1]), argv[2:]
    rank = int(os.environ.get("RANK", 0))
    output_dir = os.path.realpath(argv[argv.index("--output_dir") + 1])
    writes = (record_dir / f"writes-{rank}.jsonl").open("a", buffering=1)
    record = _write_recorder(output_dir, writes)
    sys.addaudithook(record)
    _record_native_writers(record)

    import latentlm.training.builders as builders
    import latentlm.training.trainer as trainer
    from latentlm.cli import main as cli_main

    batches = (record_dir / f"batches-{rank}.jsonl").open("a", buffering=1)
    collate = builders.collate

    def recording_collate(examples):
        batch = collate(examples)
        batches.write(json.dumps(batch["input_ids"].tolist()) + "\n")
        return batch

    builders.collate = recording_collate
    if kill_after is not None:
        save_checkpoint = trainer.save_checkpoint

        def save_then_die(accelerator, output_dir, step, *args, **kwargs):
            path = save_checkpoint(accelerator, output_dir, step, *args, **kwargs)
            if step == kill_after:
                os._exit(17)
            return path

        trainer.save_checkpoint = save_then_die
    cli_main(["train", *argv])


def _run_accelerate_fsdp_on_cpu_processes() -> None:
    import accelerate
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    init = accelerate.Accelerator.__init__

    def fsdp_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        plugin = accelerate.FullyShardedDataParallelPlugin(
            fsdp_version=2,
            auto_wrap_policy="transformer_based_wrap",
            reshard_after_forward=True,
            state_dict_type="FULL_STATE_DICT",
        )
        for state in (PartialState, AcceleratorState):
            state._shared_state["distributed_type"] = DistributedType.FSDP
        AcceleratorState._shared_state["fsdp_plugin"] = plugin

    accelerate.Accelerator.__init__ = fsdp_init


def _record_native_writers(record) -> None:
    """`torch.save` and safetensors write files from C++ / Rust, unseen by audit hooks: report their paths too."""
    import safetensors.torch
    import torch.serialization

    open_zipfile_writer, serialize_file = torch.serialization._open_zipfile_writer, safetensors.torch.serialize_file

    def recording_zipfile_writer(name_or_buffer):
        record("torch.save", (name_or_buffer,))
        return open_zipfile_writer(name_or_buffer)

    def recording_serialize_file(tensors, filename, *args, **kwargs):
        record("safetensors.save_file", (filename,))
        return serialize_file(tensors, filename, *args, **kwargs)

    torch.serialization._open_zipfile_writer = recording_zipfile_writer
    safetensors.torch.serialize_file = recording_serialize_file


def _write_recorder(output_dir: str, log):
    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in mode for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
            )
            paths = [path] if writing else []
        elif event in ("os.mkdir", "os.remove", "os.rmdir", "shutil.rmtree", "torch.save", "safetensors.save_file"):
            paths = [args[0]]
        elif event in ("os.rename", "os.replace"):
            paths = [args[0], args[1]]
        else:
            return
        for path in paths:
            if isinstance(path, (str, bytes, os.PathLike)) and not isinstance(path, int):
                path = os.fsdecode(path)
                if os.path.realpath(path).startswith(output_dir):
                    log.write(
                        json.dumps({"event": event, "path": os.path.relpath(os.path.realpath(path), output_dir)})
                    )
                    log.write("\n")

    return hook


if __name__ == "__main__":
    main(sys.argv[1:])
