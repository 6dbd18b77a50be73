"""Several processes: which launcher started this one, how the batch splits, and who owns the output folder.

Accelerate is the distributed engine; this module only fills the gaps between its launchers and a training run:

* **CPU processes.** `accelerate launch --cpu --num_processes N` starts *one* process: Accelerate starts several
  CPU processes only through MPI (``--mpirun_hostfile``), and otherwise expects each process to be started by hand.
  Its torchrun-based launcher (``accelerate launch --multi_gpu --num_processes N``, or plain ``torchrun
  --nproc_per_node N``) does start N processes, but on a machine without a GPU Accelerate then makes each of them
  rank 0 of 1, unless ``ACCELERATE_USE_CPU=1`` is set. `use_cpu_backend` closes that gap: under a torchrun-style
  launcher on a machine without an accelerator, the run asks Accelerate for the CPU (gloo) backend, so every process
  joins one process group. `check_launch` turns the remaining mismatches into errors that name the launcher.
* **Global batch.** ``total_train_batch_size`` (optional) fixes the sequences per optimizer step whatever the
  number of processes; `per_device_batch_size` splits it and refuses a world size that does not divide it.
* **Output folder.** `OutputDirLock` keeps a second live run from writing into a folder a running job holds.
* **Sharding.** `check_sharding` refuses FSDP where Accelerate would silently drop it (CPU processes), and the
  `check_*_sharding` functions refuse what does not work sharded. Under FSDP, checkpoints and the export gather the
  shards (`latentlm.training.checkpointing.full_state_dict`) and the EMA averages each process's shards.
"""

import fcntl
import os
from pathlib import Path

import torch


LOCK_NAME = ".latentlm.lock"
# Environment variables through which launchers announce the number of processes (torchrun, MPI implementations).
_WORLD_SIZE_KEYS = ("WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE")
_MULTI_CPU_HELP = (
    "To run N processes on CPUs use Accelerate's torchrun launcher, `accelerate launch --multi_gpu --num_processes N "
    "-m latentlm.cli train ...` (or `torchrun --nproc_per_node N -m latentlm.cli train ...`): without a GPU, latentlm "
    "selects the CPU (gloo) backend itself; on a GPU machine set ACCELERATE_USE_CPU=1 to stay on the CPUs."
)


class LaunchError(RuntimeError):
    """The processes or the output folder of a run are not what the launch asked for (the CLI prints the message
    without a traceback)."""


def launched_world_size() -> int:
    """The number of processes the launcher announced in the environment (1 when none did)."""
    for key in _WORLD_SIZE_KEYS:
        if os.environ.get(key):
            return int(os.environ[key])
    return 1


def use_cpu_backend() -> bool:
    """Whether to ask Accelerate for CPU processes: a torchrun-style launch on a machine without an accelerator.

    Without it, Accelerate (1.x) makes each process of ``torchrun --nproc_per_node N`` on such a machine a separate
    single-process run: N copies of the same run, writing the same files.
    """
    launched = os.environ.get("LOCAL_RANK") is not None or launched_world_size() > 1
    return launched and not _has_accelerator()


def _has_accelerator() -> bool:
    accelerator_api = getattr(torch, "accelerator", None)
    if accelerator_api is not None:
        return accelerator_api.is_available()
    return torch.cuda.is_available()


def check_launch(num_processes: int) -> None:
    """Raises when the processes that joined (``num_processes``) are not those the launcher was asked for.

    Raises:
        LaunchError: when the launcher announced another world size, or when ``accelerate launch`` was asked for
            several processes but started one (its CPU launcher without MPI does that).
    """
    announced = launched_world_size()
    if announced != num_processes:
        raise LaunchError(
            f"The launcher started {announced} processes (WORLD_SIZE) but Accelerate joined {num_processes}: each "
            f"process would train alone and write the same files. {_MULTI_CPU_HELP}"
        )
    if num_processes == 1 and _single_process_accelerate_launch_of_several():
        raise LaunchError(
            "`accelerate launch` was asked for several processes but started one: its CPU launcher (`--cpu`, or a "
            f"config with `distributed_type: MULTI_CPU` or `NO`) runs several processes only through MPI "
            f"(`--mpirun_hostfile`). {_MULTI_CPU_HELP}"
        )


def check_sharding(distributed_type: str) -> None:
    """Raises when the launcher asked for FSDP but Accelerate chose another strategy.

    Accelerate (1.x) turns FSDP on only for GPU-like devices; on CPU processes it silently falls back to plain data
    parallelism, so a config meant to shard would train with a full copy of the model per process.
    """
    if os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true" and distributed_type != "FSDP":
        raise LaunchError(
            f"The launcher asked for FSDP but Accelerate runs {distributed_type}: FSDP needs GPUs (Accelerate ignores "
            "it on CPU processes). Use examples/accelerate_configs/cpu.yaml on CPUs."
        )


def check_optimizer_sharding(optimizer: str, distributed_type: str) -> None:
    """Raises for ``optimizer: muon`` under FSDP or DeepSpeed: they hand the optimizer flattened shards of the
    matrices, and Muon orthogonalises whole matrices (`torch.optim.Muon` takes 2-D parameters only). Data parallel
    (DDP) is fine: every process steps the same all-reduced gradients."""
    if optimizer == "muon" and distributed_type in ("FSDP", "DEEPSPEED"):
        raise LaunchError(
            f"`optimizer: muon` needs whole weight matrices, but {distributed_type} shards them; "
            "use DDP (examples/accelerate_configs/ddp.yaml) or `optimizer: adamw`."
        )


def check_lora_sharding(uses_lora: bool, distributed_type: str) -> None:
    """Raises for LoRA under FSDP: a run's adapter checkpoints and its merged export read whole PEFT layers, which
    latentlm does not gather from FSDP shards yet. DDP and DeepSpeed ZeRO-2 (whole weights on every process) work."""
    if uses_lora and distributed_type == "FSDP":
        raise LaunchError(
            "`lora` under FSDP is not supported: a LoRA fine-tune fits in one process's memory, so use DDP "
            "(examples/accelerate_configs/ddp.yaml)."
        )


def _single_process_accelerate_launch_of_several() -> bool:
    """Accelerate's simple launcher sets ``ACCELERATE_USE_CPU``, and ``MASTER_PORT`` only for ``num_processes > 1``;
    it sets no rank (torchrun sets ``LOCAL_RANK``, MPI its own variables)."""
    return (
        "ACCELERATE_USE_CPU" in os.environ
        and "MASTER_PORT" in os.environ
        and os.environ.get("LOCAL_RANK") is None
        and launched_world_size() == 1
    )


def per_device_batch_size(
    total_train_batch_size: int | None, per_device_train_batch_size: int, num_processes: int, accumulation: int
) -> int:
    """Sequences per process and micro-batch.

    ``total_train_batch_size`` (sequences per optimizer step, over all processes and accumulated micro-batches),
    when set, is split evenly; otherwise ``per_device_train_batch_size`` is used as is.

    Raises:
        ValueError: when ``num_processes * accumulation`` does not divide ``total_train_batch_size``.
    """
    if total_train_batch_size is None:
        return per_device_train_batch_size
    shards = num_processes * accumulation
    if total_train_batch_size % shards:
        raise ValueError(
            f"`total_train_batch_size` {total_train_batch_size} does not split evenly over {num_processes} processes "
            f"x {accumulation} `gradient_accumulation_steps`: choose a multiple of {shards}, or another number of "
            "processes."
        )
    return total_train_batch_size // shards


class OutputDirLock:
    """An exclusive lock on ``output_dir`` held by the main process for the whole run.

    The lock is an ``flock`` on ``output_dir/.latentlm.lock``: the kernel drops it when the holder exits, killed or
    not, so a crashed run never leaves a stale lock behind, and a resumed run takes it again. The file records the
    holder's host and process id for the error message. (``flock`` is advisory and may not be honoured across
    machines on some network file systems.)
    """

    def __init__(self, output_dir: str | Path):
        self.path = Path(output_dir) / LOCK_NAME
        self._file = None

    def acquire(self) -> "OutputDirLock":
        """Takes the lock.

        Raises:
            LaunchError: when another live run holds it.
        """
        self.path.parent.mkdir(parents=True, exist_ok=True)
        file = self.path.open("a+")
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise LaunchError(
                f"`output_dir` {self.path.parent} is in use by a live training run ({holder}). Wait for it to end, "
                "stop it, or choose another `output_dir`."
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"host {os.uname().nodename}, pid {os.getpid()}\n")
        file.flush()
        self._file = file
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None

    def __enter__(self) -> "OutputDirLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
