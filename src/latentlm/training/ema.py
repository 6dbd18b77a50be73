"""Exponential moving average of a model's trainable parameters."""

import torch


class EMA:
    """Keeps ``shadow = decay * shadow + (1 - decay) * param`` for every trainable parameter of a model.

    The effective decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates, so that the average is
    not dominated by the random initialisation in short runs. Parameters are matched by name, so the same `EMA`
    works with any model that has the same trainable parameters (e.g. a freshly built copy for export). It has
    ``state_dict``/``load_state_dict`` and can be registered with `accelerate.Accelerator.register_for_checkpointing`.

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
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.shadow}

    def load_state_dict(self, state_dict: dict) -> None:
        self.decay = state_dict["decay"]
        self.num_updates = state_dict["num_updates"]
        mismatched = self.shadow.keys() ^ state_dict["shadow"].keys()
        if mismatched:
            raise ValueError(f"EMA state does not match the model's trainable parameters: {sorted(mismatched)}")
        for name, value in state_dict["shadow"].items():
            self.shadow[name].copy_(value)


def _trainable(model: torch.nn.Module):
    return ((name, p) for name, p in model.named_parameters() if p.requires_grad)
