"""Exponential moving average of a model's trainable parameters."""

import torch
from torch.distributed.tensor import DTensor, distribute_tensor


class EMA:
    """Keeps ``shadow = decay * shadow + (1 - decay) * param`` for every trainable parameter of a model.

    The effective decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so that the average is
    not dominated by the random initialisation in short runs. Parameters are matched by name, so the same `EMA`
    works with any model that has the same trainable parameters (e.g. a freshly built copy for export). It has
    ``state_dict``/``load_state_dict`` and can be registered with `accelerate.Accelerator.register_for_checkpointing`.

    Under FSDP, build it from the prepared (sharded) model: each process then averages its own shards.

    Args:
        model: the model whose ``requires_grad`` parameters are averaged (pass the unwrapped model).
        decay: the target decay, in [0, 1).
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.num_updates = 0
        self.shadow = {name: p.detach().clone() for name, p in _trainable(model)}

    def current_decay(self) -> float:
        """The decay the next `update` applies."""
        n = self.num_updates
        return min(self.decay, (1 + n) / (10 + n))

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Moves the average towards the model's current parameters (call after each optimizer step)."""
        weight = 1 - self.current_decay()
        for name, param in _trainable(model):
            self.shadow[name].lerp_(param.detach().to(self.shadow[name].dtype), weight)
        self.num_updates += 1

    @torch.no_grad()
    def copy_to(self, model: torch.nn.Module) -> None:
        """Overwrites the model's trainable parameters with the averages."""
        for name, param in _trainable(model):
            param.copy_(self.shadow[name])

    def state_dict(self) -> dict:
        """The decay, the update count and whole shadow tensors: the shards of a sharded (FSDP) model are gathered,
        so every process must call it."""
        shadow = {name: _whole(value) for name, value in self.shadow.items()}
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": shadow}

    def load_state_dict(self, state_dict: dict) -> None:
        """Loads whole shadow tensors; a sharded model's process keeps its own shard (call on every process)."""
        self.decay = state_dict["decay"]
        self.num_updates = state_dict["num_updates"]
        mismatched = self.shadow.keys() ^ state_dict["shadow"].keys()
        if mismatched:
            raise ValueError(f"EMA state does not match the model's trainable parameters: {sorted(mismatched)}")
        for name, value in state_dict["shadow"].items():
            target = self.shadow[name]
            if isinstance(target, DTensor):
                value = distribute_tensor(value.to(target.device, target.dtype), target.device_mesh, target.placements)
            target.copy_(value)


def _whole(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def _trainable(model: torch.nn.Module):
    return ((name, p) for name, p in model.named_parameters() if p.requires_grad)
