"""NFDM for text: Neural Flow Diffusion Models with a learned forward process ("Towards Latent Diffusion Suitable
For Text", arXiv 2601.16220; official code ``Nesta-gitU/discrete_diffusion``, which builds on Bartosh et al.'s NFDM).

Everything is trained end to end on one variational bound of the token likelihood:

* codec: learned token embeddings ``x = E[tokens]`` and a tied output head ``logits = z E^T``;
* path: a Gaussian forward process ``q(z_t | x) = N(mean(x, t), std(x, t)^2)`` whose two fields come from a small
  AdaLN transformer ``F_phi`` (`NFDMForwardProcess`; maths in `LearnedGaussianSDEScheduler`), with a learned
  volatility ``g(t)``;
* predictor: the shared `DenoiserTransformer` with the stabilised ``x_hat = (1 - t) z + (t + 0.01) NN(z, t)``;
* objective (nats, per sequence, summed over tokens and dimensions)::

      L = E_q(z_0|x)[-log p(tokens | z_0)]                                    reconstruction, z_0 ~ N(x, delta^2)
        + int_0^1 E_eps [ || f_B(z_t, t, x) - f_B(z_t, t, x_hat) ||^2 / (2 g(t)^2) ] dt      diffusion
        + KL(q(z_1 | x) || N(0, I))                                                   prior (0 by construction)

  where ``f_B`` is the backward drift of the conditional forward SDE, whose time derivatives of ``F_phi`` (at ``x``
  and at ``x_hat``, with ``x_hat`` held fixed) are taken by forward-mode autodiff (`torch.func.jvp`). The time
  integral is estimated with the learned importance sampler (`ImportanceTimeSampler`), each sample divided by its
  own density.

The training loss is this bound divided by the number of tokens in the batch (nats per token), i.e. the true bound up
to the constant token count, not the official code's mean over (tokens, dimensions), which weighs the diffusion term
``1 / latent_dim`` against the reconstruction. ``metrics["elbo_bits_per_token"]`` reports the same bound in bits.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from transformers import PreTrainedModel  # noqa: F401  (diffusers' pipeline loader looks the base class up by name)
from transformers import initialization as init
from transformers.utils import ModelOutput, can_return_tuple

from ...schedulers import LearnedGaussianSDEScheduler
from ..backbone import DenoiserOutput, DenoiserPreTrainedModel, DenoiserTransformer
from ..modeling_utils import LatentDiffusionMixin
from .components import AdaLNBlock, ImportanceTimeSampler, LearnedVolatility, NFDMForwardProcess
from .configuration_nfdm import NFDMConfig


LN2 = 0.6931471805599453


@dataclass
class NFDMBoundTerms(ModelOutput):
    """
    The terms of the variational bound for each sequence of a batch, in nats (see the module docstring).

    Args:
        reconstruction (`torch.FloatTensor` of shape `(batch,)`): ``-log p(tokens | z_0)`` at one ``z_0``.
        diffusion_integrand (`torch.FloatTensor` of shape `(batch,)`): the diffusion term's integrand ``L(t)`` at
            the sequence's time (one noise draw), not divided by the density.
        prior (`torch.FloatTensor` of shape `(batch,)`): ``KL(q(z_1 | x) || N(0, I))``.
        timesteps (`torch.FloatTensor` of shape `(batch,)`): the times ``t``.
        density (`torch.FloatTensor` of shape `(batch,)`): ``p(t)`` of the time sampler (1 for uniform or given
            times), differentiable in the sampler's logits.
        num_tokens (`torch.FloatTensor` of shape `(batch,)`): tokens the bound covers in each sequence.
    """

    reconstruction: torch.FloatTensor | None = None
    diffusion_integrand: torch.FloatTensor | None = None
    prior: torch.FloatTensor | None = None
    timesteps: torch.FloatTensor | None = None
    density: torch.FloatTensor | None = None
    num_tokens: torch.FloatTensor | None = None

    @property
    def diffusion(self) -> torch.FloatTensor:
        """The importance-weighted diffusion term ``L(t) / p(t)`` `(batch,)`, unbiased for ``int_0^1 L dt``."""
        return self.diffusion_integrand / self.density.detach()

    @property
    def total(self) -> torch.FloatTensor:
        """One unbiased Monte Carlo estimate of the bound per sequence `(batch,)`, nats."""
        return self.reconstruction + self.diffusion + self.prior


@dataclass
class NFDMOutput(ModelOutput):
    """
    Args:
        loss (`torch.FloatTensor` of shape `()`): the bound in nats per token (its value; its gradient also trains the
            importance sampler, see `NFDMForDiffusion.forward`).
        metrics (`dict[str, torch.FloatTensor]`): ``elbo_bits_per_token`` and the three terms in nats per token
            (``reconstruction_loss``, ``diffusion_loss``, ``prior_loss``), detached, for logging.
        terms (`NFDMBoundTerms`): the per-sequence terms.
    """

    loss: torch.FloatTensor | None = None
    metrics: dict | None = None
    terms: NFDMBoundTerms | None = None


class NFDMPreTrainedModel(DenoiserPreTrainedModel):
    config_class = NFDMConfig
    config: NFDMConfig

    @torch.no_grad()
    def _init_weights(self, module):
        super()._init_weights(module)
        if isinstance(module, nn.Embedding):
            init.normal_(module.weight, mean=0.0, std=self.config.embedding_init_std)
        elif isinstance(module, AdaLNBlock):
            init.zeros_(module.modulation.weight)
            init.zeros_(module.modulation.bias)
        elif isinstance(module, NFDMForwardProcess):
            # Zero output and output modulation: an untrained F_phi gives the fixed process.
            for linear in (module.proj_out, module.modulation_out):
                init.zeros_(linear.weight)
                init.zeros_(linear.bias)
            cos, sin = module.rotary.compute_cos_sin()
            init.copy_(module.rotary.cos, cos)
            init.copy_(module.rotary.sin, sin)
        elif isinstance(module, ImportanceTimeSampler):
            init.zeros_(module.logits)


class NFDMModel(NFDMPreTrainedModel):
    """The bare NFDM predictor network ``NN(z, t)``: `DenoiserTransformer` configured by `NFDMConfig`."""

    main_input_name = "hidden_states"

    def __init__(self, config: NFDMConfig):
        super().__init__(config)
        self.transformer = DenoiserTransformer(config)
        self.post_init()

    def forward(self, hidden_states, timestep, attention_mask=None, **kwargs) -> DenoiserOutput:
        """See `DenoiserTransformer.forward`."""
        return self.transformer(hidden_states, timestep, attention_mask=attention_mask, **kwargs)


class NFDMForDiffusion(NFDMPreTrainedModel, LatentDiffusionMixin):
    """NFDM with its variational objective and the sampling interface of `LatentDiffusionMixin`.

    `denoise` hands the scheduler (`LearnedGaussianSDEScheduler`) what its solvers need, packed into one tensor:
    ``x_hat``, the forward network's fields at ``(x_hat, t)`` and their time derivatives, and ``g(t)``.
    """

    def __init__(self, config: NFDMConfig):
        super().__init__(config)
        self.embed_tokens = nn.Embedding(config.vocab_size, config.latent_dim)
        self.model = NFDMModel(config)
        self.forward_process = NFDMForwardProcess(config) if config.learned_forward_process else None
        self.volatility = LearnedVolatility(config.volatility_hidden_size)
        self.time_sampler = ImportanceTimeSampler(config.num_time_buckets) if config.num_time_buckets else None
        self.noise_scheduler = self.get_default_scheduler()
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embed_tokens = value

    # ----------------------------------------------------------------------------------------------------------
    # The parts of the bound
    # ----------------------------------------------------------------------------------------------------------

    def token_logits(self, latents: torch.Tensor) -> torch.Tensor:
        """The tied output head: `(batch, seq_len, latent_dim)` -> `(batch, seq_len, vocab_size)`, ``z E^T``."""
        return F.linear(latents, self.embed_tokens.weight)

    def predict_clean(self, latents: torch.Tensor, timestep: torch.Tensor, attention_mask=None) -> torch.Tensor:
        """``x_hat = (1 - t) z + (t + predictor_offset) NN(z, t)``, `(batch, seq_len, latent_dim)`; t `(batch,)`."""
        t = timestep[:, None, None].to(latents.dtype)
        nn_out = self.model(latents, timestep, attention_mask=attention_mask).sample
        return (1 - t) * latents + (t + self.config.predictor_offset) * nn_out

    def forward_fields(self, sample: torch.Tensor, timestep: torch.Tensor, attention_mask=None):
        """The forward network's fields at ``(sample, t)`` and their derivatives in ``t`` (``sample`` held fixed),
        by one forward-mode `torch.func.jvp`: ``(mean_bar, log_std_bar, mean_bar_dt, log_std_bar_dt)``, each shaped
        like `sample`; zeros for the fixed process.

        Forward-mode AD is not implemented for the fused attention kernels, so the JVP runs with the math kernel
        (the official code does the same); the predictor, which needs no JVP, keeps the fast kernels.
        """
        if self.forward_process is None:
            zeros = torch.zeros_like(sample)
            return zeros, zeros, zeros, zeros

        def fields(t):
            return self.forward_process(sample, t, attention_mask)

        timestep = timestep.clone()  # an expanded time cannot carry a tangent
        with sdpa_kernel(SDPBackend.MATH):
            (mean_bar, log_std_bar), (mean_bar_dt, log_std_bar_dt) = torch.func.jvp(
                fields, (timestep,), (torch.ones_like(timestep),)
            )
        return mean_bar, log_std_bar, mean_bar_dt, log_std_bar_dt

    def sample_timesteps(self, batch_size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
        """Training times and their proposal density: the learned importance sampler, or U(0, 1) (density 1)."""
        if self.time_sampler is None:
            return torch.rand(batch_size, device=device), torch.ones(batch_size, device=device)
        return self.time_sampler.sample(batch_size, device)

    def compute_bound_terms(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        timesteps: torch.Tensor | None = None,
        noise: torch.Tensor | None = None,
    ) -> NFDMBoundTerms:
        """One Monte Carlo draw of each term of the bound, per sequence.

        Args:
            input_ids: `(batch, seq_len)` tokens.
            attention_mask: `(batch, seq_len)`, 0 on padding (not attended to, not in the bound).
            labels: `(batch, seq_len)`; positions with -100 are left out of the bound. Defaults to `input_ids`.
            timesteps: `(batch,)` times to evaluate the diffusion integrand at (density 1); default: drawn from the
                time sampler.
            noise: `(batch, seq_len, latent_dim)` the ``eps`` of ``z_t = mean + std eps``; default: fresh.
        """
        sched = self.noise_scheduler
        x = self.embed_tokens(input_ids)
        batch, _, _ = x.shape
        labels = input_ids if labels is None else labels
        token_mask = labels != -100
        if attention_mask is not None:
            token_mask = token_mask & attention_mask.bool()
        token_mask = token_mask.to(x.dtype)

        if timesteps is None:
            timesteps, density = self.sample_timesteps(batch, x.device)
        else:
            timesteps = torch.as_tensor(timesteps, device=x.device, dtype=x.dtype).expand(batch)
            density = torch.ones(batch, device=x.device)
        t = timesteps.to(x.dtype)

        # Diffusion: the backward drifts at the true x and at the prediction, at the same z_t.
        mean, std, mean_dt, std_dt = sched.moments(x, t, *self.forward_fields(x, t, attention_mask))
        eps = _float32_randn_like(x) if noise is None else noise.to(x)
        z = mean + std * eps
        x_hat = self.predict_clean(z, t, attention_mask)
        pred_mean, pred_std, pred_mean_dt, pred_std_dt = sched.moments(
            x_hat, t, *self.forward_fields(x_hat, t, attention_mask)
        )
        g = self.volatility(t)[:, None, None]
        drift = sched.drift(z, mean, std, mean_dt, std_dt, g)
        pred_drift = sched.drift(z, pred_mean, pred_std, pred_mean_dt, pred_std_dt, g)
        per_token = 0.5 * _upcast(drift - pred_drift).pow(2).sum(-1) / _upcast(g).squeeze(-1) ** 2
        diffusion_integrand = (per_token * token_mask).sum(-1)

        reconstruction = self._reconstruction(x, labels, token_mask)

        # Prior: KL(q(z_1 | x) || N(0, I)); 0 by construction (the network's fields enter times t (1 - t) = 0 at t = 1,
        # hence the zeros), computed so that the bound is complete.
        mean_1, std_1 = sched.moments(x, 1.0, torch.zeros_like(x), torch.zeros_like(x))
        kl = 0.5 * (mean_1.pow(2) + std_1.pow(2) - 1) - std_1.log()
        prior = (_upcast(kl).sum(-1) * token_mask).sum(-1)

        return NFDMBoundTerms(
            reconstruction=reconstruction,
            diffusion_integrand=diffusion_integrand,
            prior=prior,
            timesteps=timesteps,
            density=density,
            num_tokens=_upcast(token_mask).sum(-1),
        )

    def _reconstruction(self, x: torch.Tensor, labels: torch.Tensor, token_mask: torch.Tensor) -> torch.Tensor:
        """``-log p(tokens | z_0)`` per sequence `(batch,)`, ``z_0 ~ q(z_0 | x) = N(x, delta^2)``, through the tied head.

        In training with ``reconstruction_token_fraction`` < 1 the sum over tokens is estimated from a Bernoulli
        subset of the tokens, each weighted by ``1 / fraction`` (unbiased; the vocabulary projection is the costliest
        matmul of a small model). In evaluation every token is scored.
        """
        fraction = self.config.reconstruction_token_fraction if self.training else 1.0
        weight = token_mask
        if fraction < 1.0:
            weight = token_mask * (torch.rand_like(token_mask) < fraction).to(token_mask.dtype) / fraction
        chosen = weight > 0
        z0 = x[chosen] + self.config.delta * _float32_randn_like(x[chosen])
        nll = F.cross_entropy(_upcast(self.token_logits(z0)), labels[chosen], reduction="none")
        per_token = torch.zeros_like(weight, dtype=nll.dtype).masked_scatter(chosen, nll)
        return (per_token * weight).sum(-1)

    # ----------------------------------------------------------------------------------------------------------
    # Training objective
    # ----------------------------------------------------------------------------------------------------------

    @can_return_tuple
    def forward(
        self,
        input_ids: torch.LongTensor,
        attention_mask: torch.Tensor | None = None,
        labels: torch.LongTensor | None = None,
        token_type_ids: torch.Tensor | None = None,
    ) -> NFDMOutput:
        """The bound in nats per token for one batch (training loss and evaluation number at once).

        ``token_type_ids`` is accepted so that ``model(**tokenizer(texts))`` works, and ignored (one text per row).

        In training mode with the importance sampler, the loss also carries the sampler's variance objective as
        ``v - v.detach()``: it changes the gradient (the logits learn to lower the variance of ``L / p``) and not the
        value, so ``loss`` stays the bound.
        """
        terms = self.compute_bound_terms(input_ids, attention_mask, labels)
        num_tokens = terms.num_tokens.sum().clamp(min=1)
        loss = terms.total.sum() / num_tokens
        if self.training and self.time_sampler is not None:
            # Second moment of the estimator with L fixed; divided by its detached squared mean so that its scale
            # (and gradient clipping) does not depend on the size of the bound.
            weighted = terms.diffusion_integrand.detach() / terms.density
            variance_objective = weighted.pow(2).mean() / weighted.detach().mean().pow(2).clamp(min=1e-12)
            loss = loss + variance_objective - variance_objective.detach()
        metrics = {
            "elbo_bits_per_token": (terms.total.sum() / num_tokens / LN2).detach(),
            "reconstruction_loss": (terms.reconstruction.sum() / num_tokens).detach(),
            "diffusion_loss": (terms.diffusion.sum() / num_tokens).detach(),
            "prior_loss": (terms.prior.sum() / num_tokens).detach(),
        }
        return NFDMOutput(loss=loss, metrics=metrics, terms=terms)

    # ----------------------------------------------------------------------------------------------------------
    # Sampling interface (LatentDiffusionMixin)
    # ----------------------------------------------------------------------------------------------------------

    def get_default_scheduler(self) -> LearnedGaussianSDEScheduler:
        """The reverse SDE of the learned process; ``solver="ode"`` / ``"ancestral"`` are one config change away."""
        return LearnedGaussianSDEScheduler(delta=self.config.delta)

    def latent_shape(self, gen_length: int) -> tuple[int, int]:
        return (gen_length, self.config.latent_dim)

    def encode_condition(self, input_ids, attention_mask=None):
        """DESIGN §5's conditioning hook. NFDM is trained unconditionally so far: there is no condition to encode."""
        raise ValueError("NFDM models are unconditional: `encode_condition` / `condition` are not supported yet.")

    @torch.no_grad()
    def denoise(
        self, latents, timestep, *, self_condition=None, sc_guidance_scale=None, condition=None
    ) -> torch.Tensor:
        """What `LearnedGaussianSDEScheduler.step` needs at ``(latents, t)``, packed `(batch, seq_len, latent_dim,
        6)` (see `LearnedGaussianSDEScheduler.pack_model_output`). ``self_condition`` and ``sc_guidance_scale`` are
        ignored (NFDM has neither); the pipeline's classifier-free guidance needs a condition, which NFDM has not."""
        if condition is not None:
            self.encode_condition(None)
        t = torch.as_tensor(timestep, device=latents.device, dtype=torch.float32)
        t = t.expand(latents.shape[0]) if t.ndim == 0 else t
        x_hat = self.predict_clean(latents, t.to(latents.dtype), None)
        fields = self.forward_fields(x_hat, t.to(latents.dtype), None)
        return self.noise_scheduler.pack_model_output(x_hat, *fields, self.volatility(t).to(latents.dtype))

    def decode_latents(self, latents, *, sc_guidance_scale=None, condition=None) -> torch.Tensor:
        """Token logits through the tied head (the official code's rounding: argmax of ``z_0 E^T``)."""
        return self.token_logits(latents)


def _float32_randn_like(tensor: torch.Tensor) -> torch.Tensor:
    """Standard normal noise shaped like `tensor`, drawn in float32 and cast to its dtype: torch's CPU generator
    draws different numbers for float32 and float64, and one seed should give one bound in every precision."""
    return torch.randn(tensor.shape, device=tensor.device).to(tensor.dtype)


def _upcast(tensor: torch.Tensor) -> torch.Tensor:
    """Half-precision tensors to float32 for the bound's sums; float32 and float64 unchanged."""
    return tensor.float() if tensor.dtype in (torch.float16, torch.bfloat16) else tensor


__all__ = ["NFDMBoundTerms", "NFDMForDiffusion", "NFDMModel", "NFDMOutput", "NFDMPreTrainedModel"]
