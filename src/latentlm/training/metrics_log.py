"""What the training loop logs: per-step scalars averaged between logging steps, and the JSON-lines metrics file that
survives a kill and a resume (``train_log.jsonl``)."""

import json
from pathlib import Path

import torch
from accelerate import Accelerator


def scalar_metrics(output) -> dict[str, torch.Tensor]:
    """Scalar fields of a model output besides ``loss``, and the scalar entries of its ``metrics`` dict, if any."""
    values = {key: value for key, value in output.items() if key not in ("loss", "metrics")}
    values.update(getattr(output, "metrics", None) or {})
    device = output.loss.device
    return {key: torch.as_tensor(value, device=device) for key, value in values.items() if _is_scalar(value)}


def _is_scalar(value) -> bool:
    if isinstance(value, torch.Tensor):
        return value.numel() == 1
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class RunningMean:
    """Sums scalar tensors between logging steps on their device, so a training step never waits for the host.

    A NaN value means "not measured in this batch" (e.g. ELF's ``decode_loss`` on a batch without decode rows) and is
    left out of its key's mean instead of pulling it towards zero. Sums and counts are reduced over processes before
    dividing, so every process contributes by the number of batches that measured the value.
    """

    def __init__(self):
        self.sums, self.counts = {}, {}

    def add(self, values: dict[str, torch.Tensor]) -> None:
        for key, value in values.items():
            value = value.detach().float()
            measured = torch.isfinite(value)
            self.sums[key] = self.sums.get(key, 0) + torch.where(measured, value, 0.0)
            self.counts[key] = self.counts.get(key, 0) + measured.float()

    def pop(self, accelerator: Accelerator) -> dict[str, float]:
        """The means since the last `pop` over all processes; keys no batch measured are left out."""
        means = {}
        for key, total in self.sums.items():
            total, count = (accelerator.reduce(value, "sum").item() for value in (total, self.counts[key]))
            if count > 0:
                means[key] = total / count
        self.sums, self.counts = {}, {}
        return means


class MetricsLog:
    """Sends metrics to the Accelerate trackers and appends them to a JSON-lines file (main process).

    Each line is ``{"step": ..., <name>: <value>, ...}``: training lines carry ``loss``, ``lr``, ``grad_norm`` and
    the model's extra metrics; evaluation lines carry ``eval_loss``. When a run resumes at ``resume_step``, lines of
    later steps (written by the killed run after its last checkpoint) and a line cut short by the kill are dropped.
    """

    def __init__(self, accelerator: Accelerator, path: Path, resume_step: int = 0):
        self.accelerator, self.path = accelerator, path
        if accelerator.is_main_process and path.exists():
            kept = [record for record in _read_records(path) if record["step"] <= resume_step]
            path.write_text("".join(json.dumps(record) + "\n" for record in kept))

    def log(self, step: int, values: dict[str, float]) -> None:
        self.accelerator.log(values, step=step)
        if self.accelerator.is_main_process:
            with self.path.open("a") as f:
                f.write(json.dumps({"step": step, **values}) + "\n")


def _read_records(path: Path) -> list[dict]:
    """The records of a JSON-lines file, skipping a line cut short by a crash."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records
