"""The conditional half of the benchmark: paired tasks (BLEU / ROUGE against the AR peer, input-CFG sweep, speed
ratios) and prompt continuation (judge perplexity of the continuation given the prompt, entropy), on a tiny ELF behind
a stub with the issue-8 call signature, a tiny Llama peer and a tiny paired DatasetDict."""

import argparse
import inspect
import json
import shlex

import pytest
import torch
from datasets import Dataset, DatasetDict

from conftest import WORDS, build_tiny_tokenizer
from latentlm import ELFForFlowMatching, ELFPipeline
from latentlm.evaluation import continuation_nll, task_scores
from latentlm.evaluation.bench_conditional import (
    ar_task_prompts,
    conditional_settings,
    continuation_examples,
)
from latentlm.evaluation.bench_sampling import default_guidance_scale, sample_diffusion
from latentlm.evaluation.bench_settings import resolve_settings
from latentlm.evaluation.benchmark import add_bench_arguments, run_benchmark
from latentlm.pipelines import TextPipelineOutput
from test_benchmark import _tiny_corpus, _tiny_llama, tiny_elf_config


class StubConditionalPipeline(ELFPipeline):
    """The issue-8 call signature on an unconditional tiny ELF: ``source=`` gives targets only, ``prompt=`` texts
    that begin with their prompt; the condition itself is ignored. Records the keyword arguments of every call."""

    calls: list

    def __call__(self, prompt=None, source=None, negative_prompt=None, batch_size=None, num_return_sequences=1,
                 max_new_tokens=None, gen_length=None, num_inference_steps=32, guidance_scale=1.0,
                 sc_guidance_scale=3.0, generator=None, latents=None, output_type="text", return_dict=True):  # fmt: skip
        arguments = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.calls.append(arguments)
        conditions = prompt if prompt is not None else source
        size = len(conditions) if conditions is not None else batch_size
        # the tiny ELF predates the rename: its learned guidance is still called `guidance_scale`
        learned = "sc_guidance_scale" if "sc_guidance_scale" in inspect.signature(super().__call__).parameters else (
            "guidance_scale")  # fmt: skip
        out = super().__call__(batch_size=size, gen_length=gen_length or max_new_tokens, generator=generator,
                               num_inference_steps=num_inference_steps, output_type=output_type,
                               **{learned: sc_guidance_scale})  # fmt: skip
        texts = out.texts
        if prompt is not None and texts is not None:
            texts = [f"{p} {t}" for p, t in zip(prompt, texts)]
        return TextPipelineOutput(sequences=out.sequences, texts=texts, latents=out.latents)


def _toy_task(num_test=5):
    """A paired DatasetDict (``id``, ``source``, ``target``) of tiny-vocabulary sentences, splits train/validation/test."""
    rng = torch.Generator().manual_seed(3)

    def text(n):
        return " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (n,), generator=rng))

    def split(name, n):
        return Dataset.from_dict({"id": [f"{name}-{i}" for i in range(n)], "source": [text(12) for _ in range(n)],
                                  "target": [text(3 + i % 3) for i in range(n)]})  # fmt: skip

    return DatasetDict(train=split("train", 4), validation=split("validation", 2), test=split("test", num_test))


@pytest.fixture(scope="module")
def stub_pipe():
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(0)
    elf = ELFForFlowMatching(
        tiny_elf_config(vocab_size=len(tokenizer), latent_dim=8, hidden_size=16, num_hidden_layers=2,
                        eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)
    ).eval()  # fmt: skip
    with torch.no_grad():
        for p in elf.parameters():
            p.normal_(0, 1.0)
    pipe = StubConditionalPipeline(**ELFPipeline.from_model(elf, tokenizer).components)
    pipe.set_progress_bar_config(disable=True)
    pipe.calls = []
    return pipe


CONDITIONAL = dict(
    task_samples=4, task_steps=(2, 4), cfg_scales=(1, 2, 3), sweep_steps=4, batch_size=2, task_source_tokens=8,
    continuation=True, prompt_tokens=4, continuation_tokens=4, speed_batch_size=2, latency_repeats=1,
    throughput_repeats=1, matmul_size=64, speed_lengths=(8,), gen_length=8,
)  # fmt: skip


@pytest.fixture(scope="module")
def conditional_run(stub_pipe, tmp_path_factory):
    tokenizer = build_tiny_tokenizer()
    ar, judge = (_tiny_llama(tokenizer, 1), tokenizer), (_tiny_llama(tokenizer, 2), tokenizer)
    out = tmp_path_factory.mktemp("conditional")
    stub_pipe.calls.clear()
    results = run_benchmark({"elf-stub": stub_pipe}, ar, out_dir=out, quick=True, judge=judge, corpus=_tiny_corpus(),
                            quality=False, tasks={"toy": _toy_task()}, **CONDITIONAL)  # fmt: skip
    return out, results, list(stub_pipe.calls), ar, judge


def test_task_rows_score_every_setting_against_the_ar_peer(conditional_run):
    _, results, calls, (model, tokenizer), _ = conditional_run
    task = results["tasks"]["toy"]
    data = _toy_task()["test"]
    assert task["num_examples"] == 4 and task["metric"] == "rougeL"
    longest = max(len(tokenizer(t, add_special_tokens=False).input_ids) for t in data["target"][:4])
    assert task["gen_length"] == longest + 1
    rows = task["rows"]
    assert [(r["model"], r.get("decoding")) for r in rows[:2]] == [("AR", "greedy"), ("AR", "nucleus")]
    diffusion = [(r["steps"], r["cfg_scale"], r["sweeps"]) for r in rows[2:]]
    # the stub's default input CFG is 1.0, so (4 steps, CFG 1) is one row in both sweeps
    assert diffusion == [(2, 1.0, ["steps"]), (4, 1.0, ["steps", "cfg"]), (4, 2.0, ["cfg"]), (4, 3.0, ["cfg"])]
    assert all(r["sc_guidance_scale"] == 3.0 for r in rows[2:])  # the learned guidance stays at its default
    # the pipeline got the sources in batches of 2, the target length and the swept input CFG
    source_calls = [c for c in calls if c["source"] is not None and c["output_type"] == "text"]
    assert [len(c["source"]) for c in source_calls] == [2, 2] * 4
    assert source_calls[0]["source"] == [" ".join(s.split()[:8]) for s in data["source"][:2]]
    assert {c["gen_length"] for c in source_calls} == {task["gen_length"]}
    assert [c["guidance_scale"] for c in source_calls[::2]] == [1.0, 1.0, 2.0, 3.0]
    # the AR peer's greedy row: generate after [CLS] source [SEP] until [SEP]
    source = " ".join(data["source"][0].split()[:8])
    prompt = torch.tensor(ar_task_prompts(model, tokenizer, [source]))
    assert prompt[0, 0] == tokenizer.cls_token_id and prompt[0, -1] == tokenizer.sep_token_id
    new = model.generate(input_ids=prompt, attention_mask=torch.ones_like(prompt), do_sample=False,
                         max_new_tokens=task["gen_length"], eos_token_id=tokenizer.sep_token_id,
                         pad_token_id=tokenizer.pad_token_id)[0, prompt.shape[1] :].tolist()  # fmt: skip
    new = new[: new.index(tokenizer.sep_token_id)] if tokenizer.sep_token_id in new else new
    assert rows[0]["examples"][0] == tokenizer.decode(new, skip_special_tokens=True).strip()
    for row in rows:  # ratios are to the greedy row's scores
        assert set(row["scores"]) == set(task_scores(["a"], ["a"]))
        if row["scores"]["bleu"] and rows[0]["scores"]["bleu"]:
            assert row["ratios"]["bleu_ratio"] == pytest.approx(row["scores"]["bleu"] / rows[0]["scores"]["bleu"])
    assert rows[0]["ratios"].get("rougeL_ratio") in (1.0, None)


def test_task_speed_rows_have_ratios_to_the_ar_peer(conditional_run):
    _, results, calls, _, _ = conditional_run
    speed = results["tasks"]["toy"]["speed"]
    assert [(r["kind"], r["measure"], r["steps"]) for r in speed] == [
        ("autoregressive", "latency", None), ("autoregressive", "throughput", None),
        ("diffusion", "latency", 2), ("diffusion", "latency", 4), ("diffusion", "throughput", 4),
    ]  # fmt: skip
    ar = {r["measure"]: r for r in speed if r["kind"] == "autoregressive"}
    for row in speed[2:]:
        assert row["time_ratio"] == pytest.approx(row["seconds"] / ar[row["measure"]]["seconds"])
    assert any(c["output_type"] == "seq" and c["source"] is not None and len(c["source"]) == 2 for c in calls)


def test_continuation_rows_score_the_continuation_given_the_prompt(conditional_run):
    _, results, calls, _, judge = conditional_run
    continuation = results["continuation"]
    rows = continuation["rows"]
    assert continuation["num_prompts"] == 4 and continuation["continuation_tokens"] == 4
    assert [(r["kind"], r.get("sampling")) for r in rows[:3]] == [
        ("reference", None), ("autoregressive", "ancestral"), ("autoregressive", "nucleus")]  # fmt: skip
    assert len(rows) == 3 + 4 and rows[0]["entropy_ratio"] == pytest.approx(1.0)
    assert rows[1]["ppl_ratio"] == pytest.approx(1.0)
    prompt_calls = [c for c in calls if c["prompt"] is not None]
    prompts, references = continuation_examples(
        _tiny_corpus(), build_tiny_tokenizer(), resolve_settings(True, **CONDITIONAL)
    )
    assert [p for c in prompt_calls[:2] for p in c["prompt"]] == prompts and {
        c["max_new_tokens"] for c in prompt_calls
    } == {4}
    assert all(len(p.split()) == 4 and r.startswith(p) and len(r.split()) == 8 for p, r in zip(prompts, references))
    # the reference row: each held-out chunk's last 4 tokens scored after its first 4
    assert rows[0]["metrics"]["ppl"] == pytest.approx(continuation_nll(prompts, references, *judge).perplexity)
    for row in rows[1:]:  # every generated text begins with its prompt
        assert all(text.startswith(prompt) for text, prompt in zip(row["examples"], prompts))


def test_conditional_results_tables_plot_and_command(conditional_run):
    out, results, _, _, _ = conditional_run
    markdown = (out / "RESULTS.md").read_text()
    for text in ("## Paired tasks", "### toy", "Input CFG sweep at 4 steps", "× AR ROUGE-L", "## Prompt continuation",
                 "judge PPL of continuation given prompt", "![Input CFG sweep (the U-curve)](cfg_curve.png)"):  # fmt: skip
        assert text in markdown
    assert (out / "cfg_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not (out / "frontier.png").exists()  # no unconditional quality rows in this run
    saved = json.loads((out / "results.json").read_text())
    assert saved["settings"]["tasks"] == ["toy"] and saved["settings"]["task_models"]["toy"]["ar_peer"]["name"] == "AR"
    args = add_bench_arguments(argparse.ArgumentParser()).parse_args(shlex.split(saved["command"])[2:])
    assert args.tasks == ["toy"] and args.continuation and args.cfg_scales == [1, 2, 3] and args.quality is False
    assert args.task_steps == [2, 4] and args.prompt_tokens == 4


def test_learned_guidance_goes_to_sc_guidance_scale(stub_pipe):
    stub_pipe.calls.clear()
    assert default_guidance_scale(stub_pipe) == 3.0  # the `sc_guidance_scale` default, not the input CFG's 1.0
    sample_diffusion(stub_pipe, num_samples=2, gen_length=4, num_inference_steps=2, guidance_scale=2.0, seed=0,
                     batch_size=2)  # fmt: skip
    assert stub_pipe.calls[0]["sc_guidance_scale"] == 2.0 and stub_pipe.calls[0]["guidance_scale"] == 1.0


class UnconditionedStub(StubConditionalPipeline):
    """A pipeline whose model has no condition path: it rejects ``source=`` and ``prompt=`` by name."""

    def __call__(self, prompt=None, source=None, **kwargs):
        if prompt is not None or source is not None:
            raise ValueError("`source` / `prompt` need a model trained with conditions; this one has none.")
        return super().__call__(**kwargs)


def test_unconditioned_pipeline_is_skipped_with_its_reason(stub_pipe, tmp_path):
    tokenizer = build_tiny_tokenizer()
    plain = UnconditionedStub(**stub_pipe.components)
    plain.set_progress_bar_config(disable=True)
    plain.calls = []
    conditional = {k: v for k, v in CONDITIONAL.items() if k != "continuation"}
    results = run_benchmark({"plain": plain}, (_tiny_llama(tokenizer, 1), tokenizer), out_dir=tmp_path, quick=True,
                            quality=False, speed=False, tasks={"toy": _toy_task()}, **conditional)  # fmt: skip
    task = results["tasks"]["toy"]
    assert [r["model"] for r in task["rows"]] == ["AR", "AR"]
    assert task["skipped"] == [{"model": "plain", "reason": "source= rejected: `source` / `prompt` need a model "
                                "trained with conditions; this one has none."}]  # fmt: skip
    assert "- skipped: plain (source= rejected" in (tmp_path / "RESULTS.md").read_text()


def test_conditional_settings_and_bad_arguments(stub_pipe, tmp_path):
    settings = resolve_settings(True, task_steps=(8, 32), cfg_scales=(1.0, 2.0), sweep_steps=32)
    assert [(s["steps"], s["cfg_scale"]) for s in conditional_settings(stub_pipe, settings)] == [
        (8, 1.0), (32, 1.0), (32, 2.0)]  # fmt: skip
    with pytest.raises(ValueError, match="task_samples must be a positive integer"):
        resolve_settings(True, task_samples=0)
    with pytest.raises(ValueError, match=r"task models given for \['other'\]"):
        run_benchmark({"elf": stub_pipe}, out_dir=tmp_path, quick=True, quality=False, speed=False,
                      tasks={"toy": _toy_task()}, task_models={"other": {"x": stub_pipe}})  # fmt: skip
    parser = add_bench_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--task", "kjv-web", "--task-model", "kjv-web:elf=runs/elf-kjv", "--task-ar",
                              "kjv-web=runs/ar-kjv", "--cfg-scales", "1", "2"])  # fmt: skip
    assert args.task_models == [("kjv-web", "elf", "runs/elf-kjv")] and args.task_ar == [("kjv-web", "runs/ar-kjv")]
    with pytest.raises(SystemExit):
        parser.parse_args(["--task-ar", "runs/ar-kjv"])
