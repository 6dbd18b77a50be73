"""LDLM's adaptive timestep sampling: training times that follow the denoising loss curve (CDCD-style time warping,
Dieleman et al. 2022; LDLM paper §5.3)."""

import torch
from torch import nn


class AdaptiveTimestepSampler(nn.Module):
    r"""Samples training times `t` in [0, 1] so that the expected denoising loss grows linearly in the sampled quantile.

    [0, 1] is cut into `num_bins` equal bins. Bin `i` keeps an exponential moving average `l_i` of the **per-example**
    losses of the examples whose time fell in it. The loss curve `L(t)` is read as increasing from `L(0) = 0` (an
    x0-predictor at t = 0 sees the data) with `L` at the upper edge of bin `i` approximated by `l_i`; bin `i` is then
    drawn with probability proportional to the loss increase across it, `max(l_i - l_{i-1}, 0)` with `l_{-1} = 0`,
    and `t` is uniform inside the bin. That is inverse-transform sampling of the normalised loss curve
    `F(t) = L(t) / L(1)`: with `u ~ U(0, 1)` and `t = F^{-1}(u)`, `L(t) = u L(1)` grows linearly in `u`, and times
    are spent where the loss changes most. A share `uniform_mix` (1%) of the probability is spread uniformly so that
    no bin starves (our choice); until every bin has seen one example, sampling is uniform.

    The state (`bin_loss`, `bin_count`) is made of buffers: it is saved with the model's weights, so a checkpoint
    carries it and a resumed run samples exactly as an uninterrupted one.

    Args:
        num_bins: number of time bins (LDLM: 100).
        ema_decay: decay of each bin's moving average, per example that falls in the bin.
        t_min: times are at least this (the scheduler's `training_t_min`).
        uniform_mix: share of the probability spread uniformly over the bins.
    """

    def __init__(self, num_bins: int = 100, ema_decay: float = 0.95, t_min: float = 0.0, uniform_mix: float = 0.01):
        super().__init__()
        self.num_bins, self.ema_decay, self.t_min, self.uniform_mix = num_bins, ema_decay, t_min, uniform_mix
        self.register_buffer("bin_loss", torch.zeros(num_bins))
        self.register_buffer("bin_count", torch.zeros(num_bins, dtype=torch.long))

    def bin_probabilities(self) -> torch.Tensor:
        """`(num_bins,)` probabilities of drawing each bin; uniform until every bin has been seen."""
        uniform = torch.full_like(self.bin_loss, 1.0 / self.num_bins)
        if bool((self.bin_count == 0).any()):
            return uniform
        previous = torch.cat([self.bin_loss.new_zeros(1), self.bin_loss[:-1]])
        increase = (self.bin_loss - previous).clamp(min=0)
        if float(increase.sum()) <= 0:
            return uniform
        return (1 - self.uniform_mix) * increase / increase.sum() + self.uniform_mix * uniform

    def sample(self, batch_size: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """`(batch_size,)` training times drawn from `bin_probabilities`, uniform within the bin."""
        probabilities = self.bin_probabilities().float().cpu()
        bins = torch.multinomial(probabilities, batch_size, replacement=True, generator=generator)
        offsets = torch.rand(batch_size, generator=generator)
        t = ((bins.float() + offsets) / self.num_bins).clamp(min=self.t_min, max=1.0)
        return t.to(device)

    @torch.no_grad()
    def update(self, timesteps: torch.Tensor, losses: torch.Tensor) -> None:
        """Adds one loss per example to the moving average of its time bin.

        Args:
            timesteps: `(batch,)` the examples' times in [0, 1].
            losses: `(batch,)` the examples' own denoising losses (not the batch mean).
        """
        if losses.ndim != 1 or losses.shape != timesteps.shape:
            raise ValueError(
                f"`losses` must hold one loss per example, shape {tuple(timesteps.shape)} like `timesteps`, got "
                f"{tuple(losses.shape)}: the adaptive sampler needs per-example losses, not the batch mean."
            )
        bins = (timesteps.detach().float() * self.num_bins).long().clamp(0, self.num_bins - 1).to(self.bin_loss.device)
        losses = losses.detach().to(self.bin_loss)
        counts = torch.bincount(bins, minlength=self.num_bins)
        means = torch.zeros_like(self.bin_loss).index_add_(0, bins, losses) / counts.clamp(min=1)
        # k examples in one bin: the average moves by 1 - decay^k towards their mean (exact when they are equal).
        weight = 1 - self.ema_decay ** counts.to(self.bin_loss)
        weight = torch.where(self.bin_count == 0, torch.ones_like(weight), weight)  # a bin's first loss sets it
        self.bin_loss.copy_(torch.where(counts > 0, torch.lerp(self.bin_loss, means, weight), self.bin_loss))
        self.bin_count.add_(counts)


__all__ = ["AdaptiveTimestepSampler"]
