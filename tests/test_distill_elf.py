"""Few-step ELF students by progressive distillation: the target's maths, and a round through the shared training
loop (export as a plain ELF pipeline that samples its distilled steps by default, kill and resume)."""

import json
import math

import pytest
import torch
from safetensors.torch import load_file

from conftest import train_killed_after_first_checkpoint
from latentlm import ELFForFlowMatching, ELFPipeline, FlowMatchEulerSDEScheduler
from latentlm.models.distillation import progressive_distillation_target
from latentlm.models.elf.distillation_elf import distillation_sigmas, sampling_grid_sigmas
from latentlm.models.encoders import default_encoder_path
from latentlm.training import train
from test_train_elf import elf_config, log_of


SCHEDULER = FlowMatchEulerSDEScheduler(noise_scale=2.0, sigma_clamp=0.05)


def noisy(x0, sigmas):
    return SCHEDULER.scale_noise(x0, sigmas[:, 0], torch.randn_like(x0))


@pytest.mark.parametrize("schedule", ["logit_normal", "uniform"])
def test_sub_step_grids_start_in_the_path_and_span_one_student_step(schedule):
    torch.manual_seed(0)
    sigmas = distillation_sigmas(256, 4, 3, student_schedule=schedule, teacher_schedule=schedule)
    assert sigmas.shape == (256, 4)
    assert (sigmas[:, 0] <= 1).all() and (sigmas[:, 0] >= 0.25 - 1e-6).all()
    torch.testing.assert_close(sigmas[:, 0] - sigmas[:, -1], torch.full((256,), 0.25))
    assert (sigmas[:, 1:] <= sigmas[:, :-1]).all()


@pytest.mark.parametrize("teacher_steps", [1, 2, 4])
def test_an_exact_teacher_of_a_point_mass_gives_the_point_as_target_whatever_its_sub_steps(teacher_steps):
    # The exact x-prediction of data concentrated on x* is x* everywhere; its flow is a straight line that Euler follows
    # exactly, so the 2- (or 4-) sub-step teacher's target equals the 1-step student's own exact prediction, x*.
    torch.manual_seed(0)
    point = torch.randn(1, 5, 3)
    sigmas = distillation_sigmas(6, 4, teacher_steps)

    def teacher(z, sigma, self_condition):
        return point.expand_as(z)

    target = progressive_distillation_target(teacher, noisy(point.expand(6, 5, 3), sigmas), sigmas, None, SCHEDULER)
    torch.testing.assert_close(target, point.expand(6, 5, 3), rtol=0, atol=1e-5)


def test_one_student_step_to_the_target_lands_where_the_teacher_sub_steps_landed():
    torch.manual_seed(0)
    weight = torch.randn(3, 3)
    sigmas = distillation_sigmas(4, 2, 3)  # student steps span 0.5: every start sigma >= sigma_clamp
    z_start = noisy(torch.randn(4, 5, 3), sigmas)
    seen = []

    def teacher(z, sigma, self_condition):  # nonlinear in z and sigma, and reads its self-conditioning input
        seen.append(None if self_condition is None else self_condition.clone())
        extra = 0 if self_condition is None else 0.3 * self_condition
        return torch.tanh(z @ weight) * (1 - sigma[:, None, None]) + extra

    target = progressive_distillation_target(teacher, z_start, sigmas, None, SCHEDULER)

    z, previous = z_start, None
    for k in range(3):  # the teacher's Euler sub-steps, written out
        prediction = teacher(z, sigmas[:, k], previous)
        z = z + (sigmas[:, k + 1] - sigmas[:, k])[:, None, None] * (z - prediction) / sigmas[:, k, None, None]
        previous = prediction
    student_step = z_start + (sigmas[:, -1] - sigmas[:, 0])[:, None, None] * SCHEDULER.get_velocity(
        target, z_start, sigmas[:, 0]
    )
    torch.testing.assert_close(student_step, z, rtol=1e-5, atol=1e-5)
    assert seen[0] is None and all(s is not None for s in seen[1:3])  # the sub-steps thread self-conditioning


def grid_of(time_grid, steps):
    scheduler = FlowMatchEulerSDEScheduler(noise_scale=2.0, sigma_clamp=0.05, time_grid=time_grid)
    scheduler.set_timesteps(steps)
    return scheduler.sigmas


@pytest.mark.parametrize("time_grid", ["logit_normal", "uniform"])
def test_sampling_grid_examples_start_on_the_students_grid_and_the_teacher_steps_on_its_finer_grid(time_grid):
    torch.manual_seed(0)
    scheduler = FlowMatchEulerSDEScheduler(noise_scale=2.0, sigma_clamp=0.05, time_grid=time_grid)
    sigmas = sampling_grid_sigmas(256, scheduler, 4, 3)
    student_grid, teacher_grid = grid_of(time_grid, 4), grid_of(time_grid, 12)
    assert sigmas.shape == (256, 4)
    intervals = [int((student_grid - row[0]).abs().argmin()) for row in sigmas]
    assert set(intervals) == {0, 1, 2, 3}  # every interval of the student's grid is drawn
    for row, i in zip(sigmas, intervals):
        torch.testing.assert_close(row, teacher_grid[3 * i : 3 * i + 4])
        torch.testing.assert_close(row[[0, -1]], student_grid[i : i + 2])


def test_a_student_that_predicts_its_sampling_grid_targets_samples_the_teachers_finer_grid_result():
    # What `sampling_grid` buys: a perfect student's N Euler steps ARE the teacher's N x K Euler steps on the same
    # logit-normal grid (the bench's "teacher at 32 steps" for an 8 x 4 student), not an approximation of its ODE.
    torch.manual_seed(0)
    weight = torch.randn(3, 3)

    def teacher(z, sigma, self_condition):
        return torch.tanh(z @ weight) * (1 - sigma[:, None, None])

    noise = 2.0 * torch.randn(2, 5, 3)
    fine = FlowMatchEulerSDEScheduler(noise_scale=2.0, sigma_clamp=0.05, gamma=0.0)
    fine.set_timesteps(8)
    z = noise
    for sigma in fine.timesteps:
        z = fine.step(teacher(z, sigma.expand(2), None), sigma, z).prev_sample

    coarse = FlowMatchEulerSDEScheduler(noise_scale=2.0, sigma_clamp=0.05, gamma=0.0)
    coarse.set_timesteps(2)
    student_z, teacher_grid = noise, grid_of("logit_normal", 8)
    for i, sigma in enumerate(coarse.timesteps):
        times = teacher_grid[4 * i : 4 * i + 5].expand(2, 5)
        target = progressive_distillation_target(teacher, student_z, times, None, fine)
        student_z = coarse.step(target, sigma, student_z).prev_sample
    torch.testing.assert_close(student_z, z, rtol=1e-4, atol=1e-4)


def test_sampling_grid_needs_a_deterministic_grid():
    with pytest.raises(ValueError, match="logit_normal_random"):
        sampling_grid_sigmas(4, FlowMatchEulerSDEScheduler(time_grid="logit_normal_random"), 2, 2)


def distill_config(output_dir, teacher, **overrides):
    values = dict(
        method="elf-distill",
        init_from=str(teacher),
        model={"distill_teacher": str(teacher), "distill_steps": 2, "distill_teacher_steps": 2},
        tokenizer_name_or_path=default_encoder_path(),  # the teacher's run tokenised the data with it: cached
        learning_rate=1e-2,
        max_steps=3,
    )
    return elf_config(output_dir, **{**values, **overrides})


@pytest.fixture(scope="module")
def teacher(tmp_path_factory):
    root = tmp_path_factory.mktemp("teacher")
    train(elf_config(root, max_steps=2))
    return root


def test_a_distillation_round_exports_an_elf_pipeline_that_samples_its_distilled_steps(tmp_path, teacher):
    result = train(distill_config(tmp_path / "student", teacher))
    assert result.step == 3
    logged = [r for r in log_of(tmp_path / "student") if "loss" in r]
    assert {"distill_loss", "decode_loss"} <= set().union(*logged)  # a step without decode rows omits decode_loss

    pipe = ELFPipeline.from_pretrained(tmp_path / "student")
    assert type(pipe.model) is ELFForFlowMatching  # saved and loaded like any ELF model
    assert pipe.model.config.distill_steps == 2 and pipe.model.config.distill_teacher == str(teacher)
    assert pipe.scheduler.config.default_num_inference_steps == pipe.default_num_inference_steps == 2
    index = json.loads((tmp_path / "student" / "model_index.json").read_text())
    assert index["model"][1] == "ELFForFlowMatching"

    student_weights = load_file(tmp_path / "student" / "model" / "model.safetensors")
    teacher_weights = load_file(teacher / "model" / "model.safetensors")
    assert student_weights.keys() == teacher_weights.keys()  # no teacher inside the student
    assert any(not torch.equal(student_weights[k], teacher_weights[k]) for k in student_weights)

    pipe.set_progress_bar_config(disable=True)
    out = pipe(batch_size=2, gen_length=8, generator=torch.Generator().manual_seed(0))
    assert pipe.num_timesteps == 2 and len(out.texts) == 2
    assert ELFPipeline.from_pretrained(teacher).default_num_inference_steps == 32  # teachers keep the old default


def test_a_sampling_grid_round_trains_and_exports_a_student_of_its_steps(tmp_path, teacher):
    model = {"distill_teacher": str(teacher), "distill_steps": 2, "distill_teacher_steps": 2}
    train(distill_config(tmp_path / "student", teacher, model={**model, "distill_time_schedule": "sampling_grid"}))
    losses = [r["distill_loss"] for r in log_of(tmp_path / "student") if "distill_loss" in r]
    assert losses and all(math.isfinite(loss) and loss >= 0 for loss in losses)
    pipe = ELFPipeline.from_pretrained(tmp_path / "student")
    assert pipe.model.config.distill_time_schedule == "sampling_grid"
    assert pipe.default_num_inference_steps == 2 and pipe.scheduler.config.time_grid == "logit_normal"


def test_a_killed_distillation_round_resumes_with_the_same_losses(tmp_path, teacher, monkeypatch):
    train(distill_config(tmp_path / "a", teacher, max_steps=4))

    run_b = distill_config(tmp_path / "b", teacher, max_steps=4, save_steps=2)
    train_killed_after_first_checkpoint(run_b, monkeypatch)
    run_b.resume_from_checkpoint = "latest"
    train(run_b)
    assert log_of(tmp_path / "b") == log_of(tmp_path / "a")


# Settings a distillation round cannot run without, and the name its error gives (shared with test_distill_cosmos).
MISSING_SETTINGS = [
    ({"distill_steps": 2}, "distill_teacher"),
    ({"distill_steps": 2, "distill_teacher": "pretrained:no-such-model"}, "no-such-model"),
    ({"distill_teacher": "TEACHER"}, "distill_steps"),
]


@pytest.mark.parametrize(("model", "pattern"), MISSING_SETTINGS)
def test_a_distillation_round_without_steps_or_teacher_fails_by_name(tmp_path, teacher, model, pattern):
    model = {key: str(teacher) if value == "TEACHER" else value for key, value in model.items()}
    with pytest.raises(ValueError, match=pattern):
        train(distill_config(tmp_path / "run", teacher, model=model))


def test_the_student_class_trains_against_an_attached_teacher_and_exports_as_plain_elf():
    from conftest import TINY_ELF
    from latentlm.models.elf import ELFConfig
    from latentlm.models.elf.distillation_elf import ELFForDistillation

    config = ELFConfig(**{**TINY_ELF, "latent_mean": 0.0, "latent_std": 1.0, "eos_token_id": 3, "distill_steps": 2})
    student = ELFForDistillation(config)
    with pytest.raises(ValueError, match="`distill_teacher` is not set"):
        student.load_teacher()
    student.set_teacher(ELFForFlowMatching(config))
    ids = torch.randint(5, 32, (2, 6))
    out = student(ids, latents=torch.randn(2, 6, config.latent_dim))
    assert out.loss.isfinite() and out.loss.requires_grad
    exported = student.model_for_export()
    assert type(exported) is ELFForFlowMatching
    assert exported.state_dict().keys() == student.state_dict().keys()
    torch.testing.assert_close(exported.state_dict(), student.state_dict())
