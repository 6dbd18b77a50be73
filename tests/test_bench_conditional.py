"""The conditional half of the benchmark: paired tasks (BLEU / ROUGE against the AR peer, input-CFG sweep, speed
ratios) and prompt continuation (judge perplexity of the continuation given the prompt, entropy), on a tiny random
conditional ELF whose pipeline records its calls, a tiny Llama peer and a tiny paired DatasetDict."""

import argparse
import inspect
import json
import shlex

import pytest
import torch
from datasets import Dataset, DatasetDict

from conftest import TINY_ELF, WORDS, EmbeddingEncoder, build_tiny_tokenizer
from latentlm import ELFConfig, ELFForFlowMatching, ELFPipeline
from latentlm.evaluation import continuation_nll, task_scores
from latentlm.evaluation.bench_conditional import (
    ar_task_prompts,
    conditional_settings,
    continuation_examples,
    task_examples,
)
from latentlm.evaluation.bench_sampling import default_guidance_scale, sample_diffusion
from latentlm.evaluation.bench_settings import resolve_settings
from latentlm.evaluation.benchmark import add_bench_arguments, run_benchmark
from test_benchmark import _tiny_corpus, _tiny_llama


class RecordingELFPipeline(ELFPipeline):
    """ELF's pipeline, recording the keyword arguments of every call."""

    calls: list

    def __call__(self, **kwargs):
        self.calls.append(kwargs)
        return super().__call__(**kwargs)

    __call__.__signature__ = inspect.signature(ELFPipeline.__call__)  # the benchmark reads the defaults from it


def recording_elf(conditional=True):
    """A tiny random ELF (conditional: trained-with-conditions config, embedding-table encoder) behind the recorder."""
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(0)
    config = dict(TINY_ELF, vocab_size=len(tokenizer), latent_mean=0.0, latent_std=1.0, conditional=conditional,
                  eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    model = ELFForFlowMatching(ELFConfig(**config))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    model.set_text_encoder(EmbeddingEncoder(16, len(tokenizer)))
    pipe = RecordingELFPipeline(**ELFPipeline.from_model(model.eval(), tokenizer).components)
    pipe.set_progress_bar_config(disable=True)
    pipe.calls = []
    return pipe


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
def elf_pipe():
    return recording_elf()


CONDITIONAL = dict(
    task_samples=4, task_steps=(2, 4), cfg_scales=(1, 2, 3), sweep_steps=4, batch_size=2, task_source_tokens=8,
    continuation=True, prompt_tokens=4, continuation_tokens=4, speed_batch_size=2, latency_repeats=1,
    throughput_repeats=1, matmul_size=64, speed_lengths=(8,), gen_length=8,
)  # fmt: skip


@pytest.fixture(scope="module")
def conditional_run(elf_pipe, tmp_path_factory):
    tokenizer = build_tiny_tokenizer()
    ar, judge = (_tiny_llama(tokenizer, 1), tokenizer), (_tiny_llama(tokenizer, 2), tokenizer)
    out = tmp_path_factory.mktemp("conditional")
    elf_pipe.calls.clear()
    results = run_benchmark({"elf": elf_pipe}, ar, out_dir=out, quick=True, judge=judge, corpus=_tiny_corpus(),
                            quality=False, tasks={"toy": _toy_task()}, **CONDITIONAL)  # fmt: skip
    return out, results, list(elf_pipe.calls), ar, judge


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
    # the pipeline's default input CFG is 1.0, so (4 steps, CFG 1) is one row in both sweeps
    assert diffusion == [(2, 1.0, ["steps"]), (4, 1.0, ["steps", "cfg"]), (4, 2.0, ["cfg"]), (4, 3.0, ["cfg"])]
    assert all(r["sc_guidance_scale"] == 3.0 for r in rows[2:])  # the learned guidance stays at its default
    # the pipeline got the sources in batches of 2, the target length and the swept input CFG
    source_calls = [c for c in calls if c.get("source") is not None and c.get("output_type", "text") == "text"]
    assert [len(c["source"]) for c in source_calls] == [2, 2] * 4
    assert source_calls[0]["source"] == [" ".join(s.split()[:8]) for s in data["source"][:2]]
    assert {c["gen_length"] for c in source_calls} == {task["gen_length"]}
    assert [c["guidance_scale"] for c in source_calls[::2]] == [1.0, 1.0, 2.0, 3.0]
    assert not any("sc_guidance_scale" in c for c in calls)
    # the AR peer's greedy row: generate after `source [SEP]` (its training layout) until [SEP]
    source = " ".join(data["source"][0].split()[:8])
    prompt = torch.tensor(ar_task_prompts(tokenizer, [source]))
    assert prompt[0].tolist() == [*tokenizer(source, add_special_tokens=False).input_ids, tokenizer.sep_token_id]
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
    assert any(c.get("output_type") == "seq" and len(c.get("source") or ()) == 2 for c in calls)


def test_continuation_rows_score_the_continuation_given_the_prompt(conditional_run):
    _, results, calls, _, judge = conditional_run
    continuation = results["continuation"]
    rows = continuation["rows"]
    assert continuation["num_prompts"] == 4 and continuation["continuation_tokens"] == 4
    assert [(r["kind"], r.get("sampling")) for r in rows[:3]] == [
        ("reference", None), ("autoregressive", "ancestral"), ("autoregressive", "nucleus")]  # fmt: skip
    assert len(rows) == 3 + 4 and rows[0]["entropy_ratio"] == pytest.approx(1.0)
    assert rows[1]["ppl_ratio"] == pytest.approx(1.0)
    prompt_calls = [c for c in calls if c.get("prompt") is not None]
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


def test_learned_guidance_goes_to_sc_guidance_scale(elf_pipe):
    elf_pipe.calls.clear()
    assert default_guidance_scale(elf_pipe) == 3.0  # ELF's `sc_guidance_scale` default, not the input CFG's 1.0
    sample_diffusion(elf_pipe, num_samples=2, gen_length=4, num_inference_steps=2, guidance_scale=2.0, seed=0,
                     batch_size=2)  # fmt: skip
    assert elf_pipe.calls[0]["sc_guidance_scale"] == 2.0 and "guidance_scale" not in elf_pipe.calls[0]


def test_unconditioned_pipeline_is_skipped_with_its_reason(tmp_path):
    tokenizer = build_tiny_tokenizer()
    plain = recording_elf(conditional=False)
    conditional = {k: v for k, v in CONDITIONAL.items() if k != "continuation"}
    results = run_benchmark({"plain": plain}, (_tiny_llama(tokenizer, 1), tokenizer), out_dir=tmp_path, quick=True,
                            quality=False, speed=False, tasks={"toy": _toy_task()}, **conditional)  # fmt: skip
    task = results["tasks"]["toy"]
    assert [r["model"] for r in task["rows"]] == ["AR", "AR"]
    assert task["skipped"][0]["model"] == "plain"
    assert task["skipped"][0]["reason"].startswith("source= rejected: `source` needs a model trained with conditions")
    assert "- skipped: plain (source= rejected" in (tmp_path / "RESULTS.md").read_text()


def test_conditional_settings_and_bad_arguments(elf_pipe, tmp_path):
    settings = resolve_settings(True, task_steps=(8, 32), cfg_scales=(1.0, 2.0), sweep_steps=32)
    assert [(s["steps"], s["cfg_scale"]) for s in conditional_settings(elf_pipe, settings)] == [
        (8, 1.0), (32, 1.0), (32, 2.0)]  # fmt: skip
    with pytest.raises(ValueError, match="task_samples must be a positive integer"):
        resolve_settings(True, task_samples=0)
    with pytest.raises(ValueError, match=r"task models given for \['other'\]"):
        run_benchmark({"elf": elf_pipe}, out_dir=tmp_path, quick=True, quality=False, speed=False,
                      tasks={"toy": _toy_task()}, task_models={"other": {"x": elf_pipe}})  # fmt: skip
    parser = add_bench_arguments(argparse.ArgumentParser())
    args = parser.parse_args(["--task", "kjv-web", "--task-model", "kjv-web:elf=runs/elf-kjv", "--task-ar",
                              "kjv-web=runs/ar-kjv", "--cfg-scales", "1", "2"])  # fmt: skip
    assert args.task_models == [("kjv-web", "elf", "runs/elf-kjv")] and args.task_ar == [("kjv-web", "runs/ar-kjv")]
    with pytest.raises(SystemExit):
        parser.parse_args(["--task-ar", "runs/ar-kjv"])


def test_task_lengths_default_to_the_task_recipes():
    """wordnet-gloss' models train on 16 source and 32 target tokens (examples/configs/*-glosses.yaml); a task
    without a recipe cuts sources at 64 tokens and generates the longest reference + 1."""
    tokenizer = build_tiny_tokenizer()
    long = DatasetDict(test=Dataset.from_dict({"id": ["a", "b"], "source": [" ".join(WORDS * 10)] * 2,
                                               "target": ["the cat sat", "a dog"]}))  # fmt: skip
    glosses = task_examples("wordnet-gloss", long, tokenizer, resolve_settings(True))
    assert glosses["gen_length"] == 32 and glosses["sources"][0] == " ".join((WORDS * 10)[:16])
    other = task_examples("other", long, tokenizer, resolve_settings(True))
    assert other["gen_length"] == 4 and other["sources"][0] == " ".join((WORDS * 10)[:64])
    given = task_examples("bbc-headlines", long, tokenizer, resolve_settings(True, task_source_tokens=5,
                                                                             task_gen_length=7))  # fmt: skip
    assert given["gen_length"] == 7 and given["sources"][1] == " ".join(WORDS[:5])
    assert given["references"] == ["the cat sat", "a dog"] and given["ids"] == ["a", "b"]
    with pytest.raises(ValueError, match="'source' and 'target' columns"):
        task_examples("x", DatasetDict(test=Dataset.from_dict({"text": ["a"]})), tokenizer, resolve_settings(True))
