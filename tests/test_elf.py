"""ELF's training objective, checked piece by piece against the paper's equations."""

import pytest
import torch
import torch.nn.functional as F

import latentlm.models.elf.modeling_elf as modeling_elf
from conftest import TINY_ELF
from latentlm import AutoModelForTextDiffusion, ELFConfig, ELFForFlowMatching
from latentlm.models.backbone import DenoiserOutput


def tiny_elf(**overrides):
    return ELFForFlowMatching(
        ELFConfig(**{**TINY_ELF, "latent_mean": 0.0, "latent_std": 1.0, "eos_token_id": 3, **overrides})
    )


class FakeDenoiser(torch.nn.Module):
    """Predicts `x0 + offset`; the offset depends on whether a self-condition was given."""

    def __init__(self, x0, unconditional_offset, conditional_offset, hidden_size=32):
        super().__init__()
        self.x0, self.offsets, self.hidden_size = x0, (unconditional_offset, conditional_offset), hidden_size
        self.calls = []

    def forward(self, hidden_states, timestep, attention_mask=None, self_condition=None, **kwargs):
        self.calls.append(kwargs)
        offset = self.offsets[0] if self_condition is None or not self_condition.any() else self.offsets[1]
        hidden = torch.zeros(*hidden_states.shape[:2], self.hidden_size)
        return DenoiserOutput(sample=self.x0 + offset, last_hidden_state=hidden)


@pytest.fixture
def fixed_sigma(monkeypatch):
    monkeypatch.setattr(modeling_elf, "sample_training_sigmas", lambda batch, **kw: torch.full((batch,), 0.5))


def test_denoise_loss_is_the_velocity_mse(fixed_sigma):
    # L = E || v(x_hat) - v(x) ||^2 = E || x_hat - x ||^2 / sigma^2 (paper Eq. 1, sigma = 1 - t).
    model = tiny_elf(decoder_prob=0.0, self_cond_prob=0.0, self_conditioning=False)
    x0 = torch.randn(2, 6, 16)
    model.model = FakeDenoiser(x0, 0.1, 0.1)
    out = model(torch.zeros(2, 6, dtype=torch.long), latents=x0)
    torch.testing.assert_close(out.loss, torch.tensor((0.1 / 0.5) ** 2))


def test_velocity_clamp_bounds_the_weight_near_data(monkeypatch):
    monkeypatch.setattr(modeling_elf, "sample_training_sigmas", lambda batch, **kw: torch.full((batch,), 0.01))
    model = tiny_elf(decoder_prob=0.0, self_conditioning=False)
    x0 = torch.randn(2, 6, 16)
    model.model = FakeDenoiser(x0, 0.1, 0.1)
    out = model(torch.zeros(2, 6, dtype=torch.long), latents=x0)
    torch.testing.assert_close(out.loss, torch.tensor((0.1 / model.config.sigma_clamp) ** 2))


def test_decode_loss_is_token_cross_entropy_of_the_shared_network():
    model = tiny_elf(decoder_prob=1.0)
    ids = torch.randint(5, 32, (2, 6))
    out = model(ids, latents=torch.randn(2, 6, 16))
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits.reshape(-1, 32), ids.reshape(-1)))
    assert out.metrics["denoise_loss"].isnan()  # no denoise row in the batch: not measured, not zero


def test_decode_rows_run_in_decode_mode_at_the_data_end():
    model = tiny_elf(decoder_prob=1.0, self_conditioning=False)
    x0 = torch.randn(2, 6, 16)
    seen = {}

    def spy(hidden_states, timestep, **kwargs):
        seen.update(timestep=timestep, mode=kwargs["mode"])
        return DenoiserOutput(sample=x0, last_hidden_state=torch.zeros(2, 6, 32))

    model.model.forward = spy
    model(torch.zeros(2, 6, dtype=torch.long), latents=x0)
    assert torch.equal(seen["mode"], torch.ones(2))
    assert torch.equal(seen["timestep"], torch.zeros(2))


def test_learned_guidance_shifts_the_target_by_the_self_conditioning_difference(fixed_sigma, monkeypatch):
    # Paper Eq. 3: v_target = v + (1 - 1/omega) (v(z | x_sc) - v(z | 0)) for self-conditioned examples.
    omega = 2.0
    monkeypatch.setattr(ELFForFlowMatching, "_sample_guidance_scales", lambda self, b, d: torch.full((b,), omega))
    model = tiny_elf(decoder_prob=0.0, self_cond_prob=1.0)
    x0 = torch.randn(2, 6, 16)
    a, b = 0.2, 0.1  # offsets of the unconditional and the self-conditioned prediction
    model.model = FakeDenoiser(x0, a, b)
    out = model(torch.zeros(2, 6, dtype=torch.long), latents=x0)
    # v(x0 + d) - v(x0) = -d / sigma, so the residual is (-b - (1 - 1/omega) (a - b)) / sigma.
    expected = ((b + (1 - 1 / omega) * (a - b)) / 0.5) ** 2
    torch.testing.assert_close(out.loss, torch.tensor(expected))
    assert all(call["guidance_scale"] is not None for call in model.model.calls)


def test_guidance_scale_one_is_plain_flow_matching(fixed_sigma, monkeypatch):
    monkeypatch.setattr(ELFForFlowMatching, "_sample_guidance_scales", lambda self, b, d: torch.ones(b))
    model = tiny_elf(decoder_prob=0.0, self_cond_prob=1.0)
    x0 = torch.randn(2, 6, 16)
    model.model = FakeDenoiser(x0, 0.2, 0.1)
    out = model(torch.zeros(2, 6, dtype=torch.long), latents=x0)
    torch.testing.assert_close(out.loss, torch.tensor((0.1 / 0.5) ** 2))


def test_guidance_scales_are_log_uniform_in_one_plus_omega():
    model = tiny_elf(guidance_min=0.5, guidance_max=5.0)
    omega = model._sample_guidance_scales(20000, torch.device("cpu"))
    assert omega.min() >= 0.5 and omega.max() <= 5.0
    # log(1 + omega) is uniform on [log 1.5, log 6]: its median is their midpoint.
    torch.testing.assert_close(torch.log1p(omega).median(), torch.tensor((1.5 * 6.0) ** 0.5).log(), atol=0.02, rtol=0)


def test_padding_and_ignored_labels_are_left_out_of_the_loss():
    model = tiny_elf(decoder_prob=1.0)
    ids = torch.randint(5, 32, (2, 6))
    mask = torch.tensor([[1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 1]])
    labels = ids.clone()
    labels[1, 0] = -100
    out = model(ids, attention_mask=mask, labels=labels, latents=torch.randn(2, 6, 16))
    keep = mask.bool() & (labels != -100)
    torch.testing.assert_close(out.loss, F.cross_entropy(out.logits[keep], ids[keep]))


class FakeEncoder(torch.nn.Module):
    def __init__(self, hidden_size=16):
        super().__init__()
        self.config = type("Config", (), {"hidden_size": hidden_size})()
        self.weight = torch.nn.Parameter(torch.ones(1))

    def forward(self, input_ids, attention_mask=None):
        hidden = input_ids[..., None].float().expand(*input_ids.shape, self.config.hidden_size)
        return type("Out", (), {"last_hidden_state": hidden})()


def test_latent_statistics_are_fitted_on_real_tokens_and_normalise_the_data():
    model = tiny_elf(latent_mean=None, latent_std=None)
    model.set_text_encoder(FakeEncoder())
    batch = {"input_ids": torch.tensor([[1, 3, 99]]), "attention_mask": torch.tensor([[1, 1, 0]])}
    mean, std = model.fit_latent_statistics([batch])
    assert (mean, std) == pytest.approx((2.0, 1.0))
    x = model.encode_text(torch.tensor([[1, 3]]))
    torch.testing.assert_close(x[0, :, 0], torch.tensor([-1.0, 1.0]))


def test_the_frozen_encoder_is_never_saved_nor_trained(tmp_path):
    model = tiny_elf()
    encoder = FakeEncoder()
    model.set_text_encoder(encoder)
    assert not any("encoder" in name for name in model.state_dict())
    assert all(p is not encoder.weight for p in model.parameters())
    assert not encoder.weight.requires_grad
    model.save_pretrained(tmp_path)
    reloaded = AutoModelForTextDiffusion.from_pretrained(tmp_path)
    assert isinstance(reloaded, ELFForFlowMatching) and reloaded.text_encoder is None
    for key, value in model.state_dict().items():
        assert torch.equal(value, reloaded.state_dict()[key])


def test_encoder_width_must_match_the_latent_width():
    with pytest.raises(ValueError, match="latent_dim"):
        tiny_elf().set_text_encoder(FakeEncoder(hidden_size=8))


def test_training_without_an_encoder_loads_the_configured_one_on_first_use(caplog):
    # The default encoder (all-MiniLM-L6-v2, 384-d) is loaded, logged, and refused by a 16-d model.
    with (
        caplog.at_level("INFO"),
        pytest.raises(ValueError, match="hidden size 384 but the model's `latent_dim` is 16"),
    ):
        tiny_elf()(torch.zeros(1, 4, dtype=torch.long))
    assert "loading its frozen encoder sentence-transformers/all-MiniLM-L6-v2 on first use" in caplog.text


def test_a_few_steps_of_training_reduce_the_loss():
    torch.manual_seed(0)
    model = tiny_elf()
    ids = torch.randint(5, 32, (8, 8))
    latents = torch.randn(8, 8, 16)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        torch.manual_seed(1)  # the same noise every step: the loss must go down
        loss = model(ids, latents=latents).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


@pytest.mark.parametrize(
    "field, value", [("decoder_prob", 1.5), ("hidden_size", 0), ("guidance_min", 0.0), ("latent_std", -1.0)]
)
def test_config_rejects_bad_values_by_name(field, value):
    with pytest.raises(ValueError, match=field):
        ELFConfig(**{field: value})


def test_the_decode_head_gets_gradients_even_in_a_batch_without_decode_rows():
    # DistributedDataParallel needs every parameter in the graph at every step.
    model = tiny_elf(decoder_prob=0.0)
    model(torch.randint(5, 32, (2, 6)), latents=torch.randn(2, 6, 16)).loss.backward()
    assert model.lm_head.unembed.weight.grad is not None
