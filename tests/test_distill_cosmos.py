"""Few-step Cosmos students by progressive distillation: the DDIM target's maths, and a round through the shared
training loop (export as a plain Cosmos pipeline that samples its distilled DDIM steps by default, kill and resume)."""

import json

import pytest
import torch
from safetensors.torch import load_file

from conftest import train_killed_after_first_checkpoint
from latentlm import CosmosLMConfig, CosmosLMForDiffusion, CosmosLMForDistillation, CosmosLMPipeline
from latentlm.models.cosmos_lm.distillation_cosmos_lm import distillation_times
from latentlm.models.distillation import progressive_distillation_target
from latentlm.schedulers import EulerMaruyamaVPScheduler
from latentlm.training import load_config, train
from test_distill_elf import MISSING_SETTINGS
from test_train_cosmos import COMMON, TINY_DENOISER, autoencoder_dir, diffusion_config, log_of  # noqa: F401


DDIM = EulerMaruyamaVPScheduler(solver="ddim")


def noisy(x0, times):
    return DDIM.add_noise(x0, torch.randn_like(x0), times[:, 0])


def test_sub_step_grids_are_equal_steps_of_one_student_step_inside_the_sampled_path():
    torch.manual_seed(0)
    times = distillation_times(512, 4, 3, t_min=0.05)
    assert times.shape == (512, 4)
    span = (1 - 0.05) / 4
    torch.testing.assert_close(times[:, 0] - times[:, -1], torch.full((512,), span))
    torch.testing.assert_close(times[:, 1:] - times[:, :-1], torch.full((512, 3), -span / 3))
    assert (times[:, 0] <= 1).all() and (times[:, -1] >= 0.05 - 1e-6).all()
    assert times[:, 0].max() > 0.99 and times[:, -1].min() < 0.06  # the whole path is trained


@pytest.mark.parametrize("teacher_steps", [1, 2, 4])
def test_an_exact_teacher_of_a_point_mass_gives_the_point_as_target_whatever_its_sub_steps(teacher_steps):
    # The exact x0-prediction of data concentrated on x* is x* everywhere, and DDIM follows its path exactly, so the
    # multi-sub-step teacher's target equals the one-step student's own exact prediction, x*.
    torch.manual_seed(0)
    point = torch.randn(1, 4, 3)
    times = distillation_times(6, 4, teacher_steps, t_min=0.05)

    def teacher(z, t, self_condition):
        return point.expand_as(z)

    target = progressive_distillation_target(teacher, noisy(point.expand(6, 4, 3), times), times, None, DDIM)
    torch.testing.assert_close(target, point.expand(6, 4, 3), rtol=0, atol=1e-4)


def test_one_ddim_step_to_the_target_lands_where_the_teacher_sub_steps_landed():
    torch.manual_seed(0)
    weight = torch.randn(3, 3)
    times = distillation_times(4, 2, 3, t_min=0.05)
    z_start = noisy(torch.randn(4, 5, 3), times)
    seen = []

    def teacher(z, t, self_condition):  # nonlinear in z and t, and reads its self-conditioning input
        seen.append(None if self_condition is None else self_condition.clone())
        extra = 0 if self_condition is None else 0.3 * self_condition
        return torch.tanh(z @ weight) * (1 - t[:, None, None]) + extra

    target = progressive_distillation_target(teacher, z_start, times, None, DDIM)

    def ddim(z, x0, t, t_next):  # the DDIM update, written out
        alpha, sigma = (v[:, None, None] for v in DDIM.alpha_sigma(t))
        alpha_next, sigma_next = (v[:, None, None] for v in DDIM.alpha_sigma(t_next))
        return alpha_next * x0 + sigma_next * (z - alpha * x0) / sigma

    z, previous = z_start, None
    for k in range(3):
        prediction = teacher(z, times[:, k], previous)
        z = ddim(z, prediction, times[:, k], times[:, k + 1])
        previous = prediction
    torch.testing.assert_close(ddim(z_start, target, times[:, 0], times[:, -1]), z, rtol=1e-4, atol=1e-4)
    assert seen[0] is None and all(s is not None for s in seen[1:3])  # the sub-steps thread self-conditioning


def distill_config(output_dir, teacher, **overrides):
    values = {**COMMON, "method": "cosmos-distill", "init_from": str(teacher), "output_dir": str(output_dir),
              "model": {"distill_teacher": str(teacher), "distill_steps": 2, "distill_teacher_steps": 2},
              "max_steps": 3}  # fmt: skip
    return load_config(None, {**values, **overrides})


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, autoencoder_dir):  # noqa: F811
    root = tmp_path_factory.mktemp("cosmos-teacher")
    train(diffusion_config(root, autoencoder_dir, max_steps=2))
    return root


def test_a_distillation_round_exports_a_cosmos_pipeline_that_samples_its_distilled_ddim_steps(tmp_path, teacher):
    result = train(distill_config(tmp_path / "student", teacher))
    assert result.step == 3
    assert all(record["loss"] >= 0 for record in log_of(tmp_path / "student") if "loss" in record)

    pipe = CosmosLMPipeline.from_pretrained(tmp_path / "student")
    assert type(pipe.model) is CosmosLMForDiffusion  # saved and loaded like any Cosmos model
    assert pipe.model.config.distill_steps == 2 and pipe.model.config.distill_teacher == str(teacher)
    assert pipe.scheduler.config.solver == "ddim"
    assert pipe.scheduler.config.default_num_inference_steps == pipe.default_num_inference_steps == 2
    index = json.loads((tmp_path / "student" / "model_index.json").read_text())
    assert index["model"][1] == "CosmosLMForDiffusion" and index["autoencoder"][1] == "CosmosLMAutoencoder"

    student_weights = load_file(tmp_path / "student" / "model" / "model.safetensors")
    teacher_weights = load_file(teacher / "model" / "model.safetensors")
    assert student_weights.keys() == teacher_weights.keys()  # no teacher inside the student
    assert any(not torch.equal(student_weights[k], teacher_weights[k]) for k in student_weights)

    pipe.set_progress_bar_config(disable=True)
    out = pipe(batch_size=2, gen_length=10, generator=torch.Generator().manual_seed(0), output_type="seq")
    assert pipe.num_timesteps == 2 and out.sequences.shape == (2, 10)
    teacher_pipe = CosmosLMPipeline.from_pretrained(teacher)  # teachers keep Cosmos' sampler
    assert teacher_pipe.default_num_inference_steps == 200 and teacher_pipe.scheduler.config.solver == "euler_maruyama"


def test_a_killed_distillation_round_resumes_with_the_same_losses(tmp_path, teacher, monkeypatch):
    train(distill_config(tmp_path / "a", teacher, max_steps=4))

    run_b = distill_config(tmp_path / "b", teacher, max_steps=4, save_steps=2)
    train_killed_after_first_checkpoint(run_b, monkeypatch)
    run_b.resume_from_checkpoint = "latest"
    train(run_b)
    assert log_of(tmp_path / "b") == log_of(tmp_path / "a")


@pytest.mark.parametrize(("model", "pattern"), MISSING_SETTINGS)
def test_a_distillation_round_without_steps_or_teacher_fails_by_name(tmp_path, teacher, model, pattern):
    model = {key: str(teacher) if value == "TEACHER" else value for key, value in model.items()}
    with pytest.raises(ValueError, match=pattern):
        train(distill_config(tmp_path / "run", teacher, model=model))


def test_a_teacher_of_other_latents_is_refused_by_name():
    config = CosmosLMConfig(**TINY_DENOISER, num_latents=4, latent_dim=16, distill_steps=2)
    student = CosmosLMForDistillation(config)
    with pytest.raises(ValueError, match="`num_latents`"):
        student.set_teacher(CosmosLMForDiffusion(CosmosLMConfig(**TINY_DENOISER, num_latents=8, latent_dim=16)))
    student.set_teacher(CosmosLMForDiffusion(CosmosLMConfig(**TINY_DENOISER, num_latents=4, latent_dim=16)))
    assert student.teacher is not None and not any(p.requires_grad for p in student.teacher.parameters())
    assert "teacher" not in "".join(student.state_dict())  # attached, never a submodule
    assert student.noise_scheduler.config.solver == "ddim"  # the student learns DDIM steps


def test_the_student_loss_trains_against_an_attached_teacher_on_given_latents():
    config = CosmosLMConfig(**TINY_DENOISER, num_latents=4, latent_dim=16, distill_steps=2)
    student = CosmosLMForDistillation(config)
    student.set_teacher(CosmosLMForDiffusion(config))
    out = student(torch.zeros(2, 8, dtype=torch.long), latents=torch.randn(2, 4, 16))
    assert out.loss.isfinite() and out.loss.requires_grad
    exported = CosmosLMForDiffusion(CosmosLMConfig(**TINY_DENOISER, num_latents=4, latent_dim=16))
    exported.load_state_dict(student.state_dict())  # the student's weights are a plain denoiser's
