"""The optimizers of the training loop: AdamW, Muon for matrices with AdamW for the rest (ELF's official recipe), or
Adafactor (a state a fraction of the parameters' size, for small LoRA checkpoints).

``optimizer: adamw`` (the default) is one `torch.optim.AdamW` over every trainable parameter, weight decay on matrices
only. ``optimizer: muon`` follows ELF's official PyTorch training (``lillian039/ELF@pytorch_elf``,
``src/utils/muon_utils.py``, ``optimizer: muon`` in ``train_owt_ELF-B.yml``): `torch.optim.Muon` for the 2-D
parameters and AdamW for the others, in one `MuonWithAuxAdamW` so that Accelerate, the LR scheduler and checkpoints
see a single optimizer.

``optimizer: adafactor`` is transformers' `Adafactor` driven like AdamW by ``learning_rate`` and the LR scheduler
(``relative_step=False``, ``scale_parameter=False``, so the step does not shrink with the parameter's RMS: a LoRA
``B`` starts at zero), without a first moment (``beta1=None``) and with the second moment of every matrix factored
into a row and a column vector. Its state is therefore a few percent of the trained parameters' size, where AdamW's
two moments are twice it: what keeps a resumable LoRA checkpoint (adapter + optimizer state) under twice the
adapter's size.

Which parameter goes where (`split_muon_parameters`), as the official code: **every trainable 2-D parameter goes to
Muon** (``p.ndim == 2``) — hidden projections, the time/guidance MLPs, the input and bottleneck projections *and the
unembedding head* (official ``unembed_kernel``, a 2-D kernel, is a Muon parameter); everything else — norms, biases,
the learned control tokens (3-D, as official ``t_emb_tokens``), Perceiver queries and positions — goes to AdamW
(``muon_output_head: false`` sends the vocabulary projection to AdamW too, as Muon's authors advise). The
one addition: weights of ``nn.Embedding`` tables (and heads tied to them) go to AdamW, as Muon's authors and
`torch.optim.Muon`'s documentation advise; ELF's denoiser has no embedding table (its input is the frozen encoder's
output), so for ELF the split is exactly the official one. With LoRA only the trainable adapter matrices are split
(they are 2-D, so Muon trains them).

Differences from the official optimizer, all inside `torch.optim.Muon`: its Nesterov momentum has no bias correction
(the official patch adds optax's), and it orthogonalises in bfloat16 with eps 1e-7 (the official patch uses float32,
1e-8); the official AdamW side is Nesterov-Adam, here plain AdamW. The step size scaling is the same,
``lr * sqrt(max(1, fan_out / fan_in))`` (``adjust_lr_fn="original"``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn


if TYPE_CHECKING:
    from .config import TrainingConfig


__all__ = ["MuonWithAuxAdamW", "build_optimizer", "split_muon_parameters"]


def build_optimizer(model: nn.Module, config: TrainingConfig) -> torch.optim.Optimizer:
    """The optimizer ``config.optimizer`` names, over the trainable parameters of ``model``.

    ``"adamw"``: AdamW (``learning_rate``, ``adam_*``), weight decay on matrices only (not on norms and biases).
    ``"muon"``: `MuonWithAuxAdamW` — Muon (``muon_*``; ``muon_learning_rate`` defaults to ``learning_rate``, one
    rate for both sides as the official code) on `split_muon_parameters`' matrices, AdamW as above on the rest.
    ``"adafactor"``: transformers' `Adafactor` at ``learning_rate`` (factored second moments, no first moment; see the
    module docstring), weight decay on matrices only.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    adamw = {"lr": config.learning_rate, "betas": (config.adam_beta1, config.adam_beta2), "eps": config.adam_epsilon}
    if config.optimizer == "adamw":
        return torch.optim.AdamW(_decay_groups(params, config.weight_decay), **adamw)
    if config.optimizer == "adafactor":
        from transformers.optimization import Adafactor

        return Adafactor(
            _decay_groups(params, config.weight_decay),
            lr=config.learning_rate,
            relative_step=False,
            scale_parameter=False,
            warmup_init=False,
            beta1=None,
        )
    muon_params, other = split_muon_parameters(model, output_head=config.muon_output_head)
    muon = {
        "lr": config.muon_learning_rate if config.muon_learning_rate is not None else config.learning_rate,
        "momentum": config.muon_momentum,
        "weight_decay": config.muon_weight_decay,
        "nesterov": config.muon_nesterov,
        "ns_steps": config.muon_ns_steps,
        "adjust_lr_fn": config.muon_adjust_lr_fn,
    }
    return MuonWithAuxAdamW(
        muon_params, _decay_groups(other, config.weight_decay), muon_kwargs=muon, adamw_kwargs=adamw
    )


def _decay_groups(params: list[nn.Parameter], weight_decay: float) -> list[dict]:
    """Two parameter groups: matrices (and higher) with ``weight_decay``, vectors and scalars without."""
    return [
        {"params": [p for p in params if p.ndim >= 2], "weight_decay": weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]


def split_muon_parameters(model: nn.Module, output_head: bool = True) -> tuple[list[nn.Parameter], list[nn.Parameter]]:
    """``(muon, other)``: the trainable 2-D parameters that are not embedding tables, and every other trainable one.

    See the module docstring for why (ELF's official split, plus embedding tables to AdamW). ``output_head=False``
    also sends the vocabulary projection (``model.get_output_embeddings()``) to AdamW, as Muon's authors advise.
    """
    tables = {id(module.weight) for module in model.modules() if isinstance(module, nn.Embedding)}
    head = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if not output_head and head is not None:
        tables.add(id(head.weight))
    muon, other = [], []
    for param in model.parameters():  # each shared (tied) parameter once
        if param.requires_grad:
            (muon if param.ndim == 2 and id(param) not in tables else other).append(param)
    return muon, other


class MuonWithAuxAdamW(torch.optim.Optimizer):
    """`torch.optim.Muon` on some parameters and `torch.optim.AdamW` on the others, as one optimizer.

    The parameter groups are those of the two inner optimizers (the same dicts, so an LR scheduler or Accelerate
    changing ``lr`` changes theirs), each flagged ``use_muon``; the state is one mapping shared with both (the
    parameter sets are disjoint). So ``state_dict`` / ``load_state_dict`` are `torch.optim.Optimizer`'s own and a
    checkpoint round-trips exactly.

    Args:
        muon_params: 2-D parameters for Muon.
        adamw_groups: parameter groups for AdamW (dicts with ``"params"`` and optionally ``"weight_decay"``).
        muon_kwargs: keyword arguments of `torch.optim.Muon` (``lr``, ``momentum``, ``weight_decay``, ...).
        adamw_kwargs: keyword arguments of `torch.optim.AdamW` (``lr``, ``betas``, ``eps``).
    """

    def __init__(self, muon_params, adamw_groups, *, muon_kwargs: dict, adamw_kwargs: dict):
        muon_params = list(muon_params)
        adamw_groups = [{**group, "use_muon": False} for group in adamw_groups if len(group["params"])]
        inner = []
        if muon_params:
            inner.append(torch.optim.Muon([{"params": muon_params, "use_muon": True}], **muon_kwargs))
        if adamw_groups:
            inner.append(torch.optim.AdamW(adamw_groups, **adamw_kwargs))
        if not inner:
            raise ValueError("`MuonWithAuxAdamW` got no parameter to optimize.")
        self._muon = inner[0] if muon_params else None
        self._adamw = inner[-1] if adamw_groups else None
        super().__init__([group for optimizer in inner for group in optimizer.param_groups], defaults={})
        self._link()

    def _link(self) -> None:
        """Points the inner optimizers at this optimizer's groups and state (again after `load_state_dict`, which
        replaces both)."""
        for optimizer, use_muon in ((self._muon, True), (self._adamw, False)):
            if optimizer is not None:
                optimizer.param_groups = [group for group in self.param_groups if group["use_muon"] == use_muon]
                optimizer.state = self.state

    def __setstate__(self, state: dict) -> None:
        super().__setstate__(state)
        if "_muon" in self.__dict__:
            self._link()

    @torch.no_grad()
    def step(self, closure=None):
        """One step of both inner optimizers; returns ``closure()`` when given."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in (self._muon, self._adamw):
            if optimizer is not None:
                optimizer.step()
        return loss
