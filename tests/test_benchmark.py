"""The benchmark runner: FLOP counts (ELF and Cosmos), a tiny end-to-end quick run with ELF, Cosmos and the AR
baseline, sweeps per model kind, ratios to the AR baseline and to a reference diffusion model, the CLI pair."""

import argparse
import json
import shlex
import statistics

import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from conftest import WORDS, build_tiny_tokenizer
from latentlm import (
    CosmosLMAutoencoder,
    CosmosLMAutoencoderConfig,
    CosmosLMConfig,
    CosmosLMForDiffusion,
    CosmosLMModel,
    CosmosLMPipeline,
    ELFConfig,
    ELFForFlowMatching,
    ELFPipeline,
)
from latentlm.evaluation.benchmark import (
    QualityEvaluator,
    add_bench_arguments,
    add_evaluate_arguments,
    held_out_references,
    run_bench_from_args,
    run_benchmark,
    run_evaluate_from_args,
    token_chunks,
)
from latentlm.evaluation.speed import codec_decode_flops, denoiser_forward_flops, sampling_flops


def tiny_elf_config(**overrides):
    kwargs = dict(
        vocab_size=30, latent_dim=4, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16,
        bottleneck_dim=2, num_time_tokens=1, num_guidance_tokens=1, num_mode_tokens=1, max_position_embeddings=16,
        latent_mean=0.0, latent_std=1.0,
    )  # fmt: skip
    kwargs.update(overrides)
    return ELFConfig(**kwargs)


def replace_config(config, **changes):
    return type(config)(**{**config.to_dict(), **changes})


def tiny_cosmos_pipeline(tokenizer, *, random_weights=False, codec_version=1):
    """A tiny Cosmos pipeline: N = 3 latents of width 8 for L = 12 tokens, unit statistics (usable untrained); the
    original codec unless `codec_version=2` (as published)."""
    special = dict(eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)
    autoencoder = CosmosLMAutoencoder(
        CosmosLMAutoencoderConfig(
            vocab_size=len(tokenizer), encoder_dim=16, max_position_embeddings=12, num_latents=3, latent_dim=8,
            hidden_size=32, num_attention_heads=2, num_compressor_layers=1, num_decompressor_layers=1,
            lm_head_dim=16, codec_version=codec_version, mask_token_id=4, **special,
        )
    ).eval()  # fmt: skip
    # The zero-initialised head (not Cosmos' RMSNorm one) predicts the mean latent untrained: samples are text, not EOS.
    model = CosmosLMForDiffusion(
        CosmosLMConfig(vocab_size=len(tokenizer), num_latents=3, latent_dim=8, max_position_embeddings=12,
                       hidden_size=32, num_hidden_layers=2, num_attention_heads=2, output_head="norm_linear",
                       **special)
    ).eval()  # fmt: skip
    with torch.no_grad():
        if random_weights:  # the zero-initialised output head would make every sample the same
            for p in [*model.parameters(), *autoencoder.parameters()]:
                p.normal_(0, 1.0)
        autoencoder.activation_std.fill_(1.0)
        autoencoder.latent_std.fill_(1.0)
    return CosmosLMPipeline(
        model=model, autoencoder=autoencoder, scheduler=model.get_default_scheduler(), tokenizer=tokenizer
    )


# ------------------------------------------------------------------------------------------------------ FLOP counter


def test_denoiser_flops_equal_a_hand_count():
    # latent_dim 4, hidden 8, intermediate 16, bottleneck 2, 1 layer; prefix = 1 time + 1 guidance + 1 mode token;
    # batch 1, seq_len 3 -> N = 6 positions. Multiply-accumulates:
    self_cond = 3 * (2 * 4) * 4  # 96: concat(latents, estimate) -> latent_dim, latent tokens only
    input_proj = 3 * (4 * 2 + 2 * 8)  # 72: latent -> bottleneck -> hidden
    scalar_mlps = 2 * (256 * 8 + 8 * 8)  # 4224: time and guidance embeddings, 256 -> hidden -> hidden, once each
    block = 6 * (8 * 24 + 8 * 8 + 8 * 32 + 16 * 8)  # 3840: qkv, out_proj, gate_up, down over N = 6 positions
    attention = 2 * 6 * 6 * 8  # 576: Q K^T and A V over all heads
    proj_out = 3 * 8 * 4  # 96: hidden -> latent_dim, latent tokens only
    hand = 2 * (self_cond + input_proj + scalar_mlps + block + attention + proj_out)
    assert hand == 17808
    assert denoiser_forward_flops(tiny_elf_config(), 3) == hand
    assert denoiser_forward_flops(tiny_elf_config(), 3, batch_size=5) == 5 * hand


@pytest.mark.parametrize(
    "overrides, condition_len",
    [
        ({}, 0),
        ({"num_hidden_layers": 2, "use_long_skips": True, "bottleneck_dim": None}, 2),
        ({"self_conditioning": False, "num_guidance_tokens": 0, "num_mode_tokens": 0, "num_time_tokens": 3}, 0),
    ],
)
def test_denoiser_flops_match_torch_flop_counter(overrides, condition_len):
    config = tiny_elf_config(**overrides)
    denoiser = ELFForFlowMatching(config).model.transformer.eval()
    batch, seq_len = 2, 5
    kwargs = {"guidance_scale": 2.0} if config.num_guidance_tokens else {}
    if condition_len:
        kwargs["condition_hidden_states"] = torch.randn(batch, condition_len, config.latent_dim)
    # The math SDPA backend runs attention as matmuls, which the flop counter sees.
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        denoiser(torch.randn(batch, seq_len, config.latent_dim), 0.5, **kwargs)
    expected = denoiser_forward_flops(config, seq_len, batch_size=batch, condition_len=condition_len)
    assert counter.get_total_flops() == expected


@pytest.mark.parametrize(
    "overrides",
    [
        {},  # Cosmos' published denoiser
        {"time_injection": "tokens", "self_conditioning_injection": "input", "long_skip_merge": "concat_linear",
         "output_head": "norm_linear", "num_hidden_layers": 3},  # latentlm's first form
        {"latent_dim": 32, "cross_attention_dim": 6, "self_conditioning": False},  # RMSNorm head, no projection
    ],
)  # fmt: skip
def test_cosmos_denoiser_flops_match_torch_flop_counter(overrides):
    base = dict(
        vocab_size=30, num_latents=3, latent_dim=8, max_position_embeddings=12, hidden_size=32, num_hidden_layers=2,
        num_attention_heads=2,
    )  # fmt: skip
    config = CosmosLMConfig(**{**base, **overrides})
    denoiser = CosmosLMModel(config).transformer.eval()
    kwargs = {"encoder_hidden_states": torch.randn(2, 4, 6)} if config.cross_attention_dim else {}
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        denoiser(torch.randn(2, 3, config.latent_dim), 0.5, **kwargs)
    context_len = 4 if config.cross_attention_dim else 0
    assert counter.get_total_flops() == denoiser_forward_flops(config, 3, batch_size=2, context_len=context_len)


def test_elf_sampling_flops_count_steps_plus_one_forward_and_the_decode_head():
    config = tiny_elf_config(decoder_head_dim=6)
    flops = sampling_flops(ELFForFlowMatching(config), 3, 4, batch_size=2)
    assert flops["latent_length"] == 3 and flops["forward_calls"] == 5 and flops["decoder"] == 0
    assert flops["decode_head"] == 2 * 2 * 3 * (8 * 6 + 6 * 30)
    assert flops["total"] == 5 * denoiser_forward_flops(config, 3, batch_size=2) + flops["decode_head"]


def test_cosmos_sampling_flops_run_the_denoiser_on_the_latents_and_decode_all_slots(tiny_tokenizer):
    pipe = tiny_cosmos_pipeline(tiny_tokenizer)
    config = pipe.model.config
    flops = sampling_flops(pipe.model, 8, 4, batch_size=2)
    # The denoiser sees N = 3 latents (time through every block, additive long skips), whatever gen_length; 4 steps,
    # no decode forward.
    assert flops["latent_length"] == 3 and flops["forward_calls"] == 4
    assert flops["forward"] == denoiser_forward_flops(config, 3, batch_size=2)
    concat_skips = replace_config(config, long_skip_merge="concat_linear")
    assert denoiser_forward_flops(concat_skips, 3) > denoiser_forward_flops(config, 3)
    # The decompressor decodes all L = 12 slots (the text is their first gen_length tokens). Hand count, batch 1:
    # from_latents 3 * 8 * 32; one block with 12 queries over 12 + 3 keys: q_proj and out_proj 2 * 12 * 32 * 32,
    # kv_proj 15 * 32 * 64, Q K^T and A V 2 * 12 * 15 * 32, SwiGLU (intermediate 85) 12 * 32 * 170 + 12 * 85 * 32;
    # the chunk shortcut 3 * 8 * (4 * 32); head 12 * (32 * 16 + 16 * 25).
    decoder = (
        3 * 8 * 32 + 3 * 8 * 4 * 32 + 2 * 12 * 32 * 32 + 15 * 32 * 64 + 2 * 12 * 15 * 32 + 12 * 32 * 170 + 12 * 85 * 32
    )
    head = 12 * (32 * 16 + 16 * len(tiny_tokenizer))
    assert codec_decode_flops(pipe.autoencoder.config) == {"decoder": 2 * decoder, "decode_head": 2 * head,
                                                           "decoded_tokens": 12}  # fmt: skip
    assert flops["decoder"] == 2 * 2 * decoder and flops["decode_head"] == 2 * 2 * head
    assert flops["total"] == 4 * flops["forward"] + flops["decoder"] + flops["decode_head"]


@pytest.mark.parametrize("kind", ["elf", "cosmos", "cosmos-published"])
def test_sampling_flops_match_torch_flop_counter_on_a_whole_pipeline_call(kind, tiny_tokenizer):
    torch.manual_seed(0)
    if kind == "elf":
        config = tiny_elf_config(vocab_size=len(tiny_tokenizer), num_hidden_layers=2, use_long_skips=True)
        pipe = ELFPipeline.from_model(ELFForFlowMatching(config).eval(), tiny_tokenizer)
    else:
        pipe = tiny_cosmos_pipeline(tiny_tokenizer, codec_version=2 if kind == "cosmos-published" else 1)
    pipe.set_progress_bar_config(disable=True)
    with torch.inference_mode(), sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        pipe(batch_size=2, gen_length=5, num_inference_steps=3, output_type="seq")
    assert counter.get_total_flops() == sampling_flops(pipe.model, 5, 3, batch_size=2)["total"]


# ---------------------------------------------------------------------------------------------------- references


def test_reference_chunks_are_fixed_length_round_tripped_and_disjoint(tiny_tokenizer):
    text = " ".join(WORDS)  # 20 words -> two 8-token chunks, the remainder is dropped
    assert token_chunks([text], tiny_tokenizer, 8) == [" ".join(WORDS[:8]), " ".join(WORDS[8:16])]
    assert token_chunks(["the  cat\n sat"], tiny_tokenizer, 2) == ["the  cat"]  # a slice of the original text

    # 4 test chunks are not enough for 3 + 2 references: the validation split adds 2 more.
    corpus = {"test": [text, " ".join(reversed(WORDS))], "validation": [" ".join(WORDS[5:] + WORDS[:5])]}
    first, second = held_out_references(corpus, tiny_tokenizer, 8, [3, 2], seed=0)
    assert len(first) == 3 and len(second) == 2 and not set(first) & set(second)
    assert all(len(tiny_tokenizer(t, add_special_tokens=False).input_ids) == 8 for t in first + second)
    assert held_out_references(corpus, tiny_tokenizer, 8, [3, 2], seed=0) == [first, second]
    with pytest.raises(ValueError, match="chunks"):
        held_out_references(corpus, tiny_tokenizer, 8, [4, 4], seed=0)


# ------------------------------------------------------------------------------------------------ end-to-end run


def _tiny_corpus():
    rng = torch.Generator().manual_seed(0)

    def doc(n):
        return " ".join(WORDS[int(i)] for i in torch.randint(len(WORDS), (n,), generator=rng))

    return {"train": [doc(40) for _ in range(20)], "validation": [doc(16) for _ in range(2)],
            "test": [doc(16) for _ in range(8)]}  # fmt: skip


def _tiny_llama(tokenizer, seed):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
        num_key_value_heads=2, max_position_embeddings=32, bos_token_id=tokenizer.cls_token_id,
        eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def tiny_models(tmp_path_factory):
    """Tiny random ELF and Cosmos pipelines, AR baseline and judge saved to folders, and a tiny corpus."""
    root = tmp_path_factory.mktemp("bench")
    tokenizer = build_tiny_tokenizer()
    torch.manual_seed(0)
    elf = ELFForFlowMatching(
        tiny_elf_config(vocab_size=len(tokenizer), latent_dim=8, hidden_size=16, num_hidden_layers=2,
                        eos_token_id=tokenizer.sep_token_id, pad_token_id=tokenizer.pad_token_id)
    ).eval()  # fmt: skip
    with torch.no_grad():
        for p in elf.parameters():
            p.normal_(0, 1.0)  # an untrained decode head at 0.3 puts end-of-sequence first everywhere
    ELFPipeline.from_model(elf, tokenizer).save_pretrained(root / "elf")
    tiny_cosmos_pipeline(tokenizer, random_weights=True).save_pretrained(root / "cosmos")
    for name, seed in (("ar", 1), ("judge", 2)):
        _tiny_llama(tokenizer, seed).save_pretrained(root / name)
        tokenizer.save_pretrained(root / name)
    corpus_dir = root / "corpus"
    corpus_dir.mkdir()
    for split, texts in _tiny_corpus().items():
        (corpus_dir / f"{split}.jsonl").write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    return root


QUICK = dict(
    num_samples=4, gen_length=8, steps=(2, 4), guidance_scales=(1, 3), gammas=(0, 1.5), sweep_steps=4, batch_size=4,
    speed_lengths=(8,), speed_batch_size=4, latency_repeats=2, throughput_repeats=2, matmul_size=64,
)  # fmt: skip


@pytest.fixture(scope="module")
def quick_run(tiny_models, tmp_path_factory):
    from transformers import AutoModelForCausalLM

    judge = (AutoModelForCausalLM.from_pretrained(tiny_models / "judge"), build_tiny_tokenizer())
    out = tmp_path_factory.mktemp("out")
    models = {"elf-tiny": tiny_models / "elf", "cosmos-tiny": tiny_models / "cosmos"}
    results = run_benchmark(models, tiny_models / "ar", out_dir=out, quick=True, judge=judge, corpus=_tiny_corpus(),
                            solvers=("euler_maruyama", "ddim"), speed_reference="elf-tiny", **QUICK)  # fmt: skip
    return out, results


def test_quick_run_writes_results_tables_and_plots(quick_run, tiny_models):
    out, results = quick_run
    for name in ("RESULTS.md", "results.json", "frontier.png", "quality_vs_steps.png"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0
    assert (out / "frontier.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((out / "results.json").read_text())
    assert saved["settings"]["num_samples"] == 4 and saved["settings"]["seed"] == 0
    markdown = (out / "RESULTS.md").read_text()
    assert saved["command"] in markdown and saved["command"].startswith("latentlm bench --model elf-tiny=")
    args = add_bench_arguments(argparse.ArgumentParser()).parse_args(shlex.split(saved["command"])[2:])
    assert args.quick and args.num_samples == 4 and args.steps == [2, 4] and args.gammas == [0, 1.5]
    assert args.models == [("elf-tiny", str(tiny_models / "elf")), ("cosmos-tiny", str(tiny_models / "cosmos"))]
    assert args.solvers == ["euler_maruyama", "ddim"] and args.speed_reference == "elf-tiny" and args.matmul_size == 64
    for text in ("top_k=0", "top_p=0.9", "min_new_tokens", "4 samples", "seed 0", saved["machine"]["cpu"]):
        assert text in markdown

    rows = saved["quality"]["rows"]
    assert [(r["model"], r.get("sampling")) for r in rows[:3]] == [
        ("reference", None), ("AR (ar)", "ancestral"), ("AR (ar)", "nucleus")
    ]  # fmt: skip
    elf = [r for r in rows if r["model"] == "elf-tiny"]
    settings = {(r["steps"], r["guidance_scale"], r["gamma"]) for r in elf}
    assert settings == {(2, 3.0, 0.0), (4, 3.0, 0.0), (4, 1.0, 0.0), (4, 3.0, 1.5)}  # shared settings run once
    for sweep, key, values in (("steps", "steps", {2, 4}), ("guidance", "guidance_scale", {1, 3}),
                               ("gamma", "gamma", {0, 1.5})):  # fmt: skip
        assert {r[key] for r in elf if sweep in r["sweeps"]} == values
    assert all("solver" not in r and "solver" not in r["sweeps"] for r in elf)  # ELF's scheduler has no solver
    assert {r["sampler"] for r in elf} == {"flow ODE (γ=0)", "flow SDE (γ=1.5)"}

    # Cosmos learned no guidance and its scheduler has a solver, no gamma: steps and solver sweeps only.
    cosmos = [r for r in rows if r["model"] == "cosmos-tiny"]
    assert {(r["steps"], r["solver"]) for r in cosmos} == {(2, "euler_maruyama"), (4, "euler_maruyama"), (4, "ddim")}
    assert all(r["guidance_scale"] is None and "gamma" not in r for r in cosmos)
    assert {r["solver"] for r in cosmos if "solver" in r["sweeps"]} == {"euler_maruyama", "ddim"}
    assert not any(sweep in r["sweeps"] for r in cosmos for sweep in ("guidance", "gamma"))
    assert "| cosmos-tiny | ddim | 4 | – |" in markdown and "| elf-tiny | flow SDE (γ=1.5) | 4 | 3 |" in markdown
    assert "### Solver sweep at 4 steps" in markdown and "## Models" in markdown
    elf_info, cosmos_info = saved["settings"]["models"]["elf-tiny"], saved["settings"]["models"]["cosmos-tiny"]
    assert cosmos_info["class"] == "CosmosLMPipeline" and cosmos_info["latent_shape"] == [3, 8]
    assert elf_info["latent_shape"] == [8, 8] and cosmos_info["decode"] == "codec decoder"
    assert not cosmos_info["learns_guidance"] and cosmos_info["default_sampler"] == "euler_maruyama"
    assert set(cosmos_info["component_parameters"]) == {"model", "autoencoder"}
    assert cosmos_info["parameters_total"] == sum(cosmos_info["component_parameters"].values())
    for row in rows:
        metrics = row["metrics"]
        assert metrics["num_samples"] == 4 and metrics["gen_ppl"] > 1 and metrics["entropy"] >= 0
        assert {"mauve", "diversity", "memorisation"} <= set(metrics)
        assert row["model"] in markdown
    assert all(r["metrics"]["mauve"] is not None for r in rows)


def test_speed_ratios_are_to_the_ar_baseline_of_the_same_run(quick_run):
    _, results = quick_run
    saved = json.loads((quick_run[0] / "results.json").read_text())
    rows = saved["speed"]["rows"]
    ar = {r["measure"]: r for r in rows if r["kind"] == "autoregressive"}
    assert set(ar) == {"latency", "throughput"} and ar["throughput"]["batch_size"] == 4
    diffusion = [r for r in rows if r["kind"] == "diffusion"]
    for model in ("elf-tiny", "cosmos-tiny"):
        measured = {(r["measure"], r["steps"]) for r in diffusion if r["model"] == model}
        assert measured == {("latency", 2), ("latency", 4), ("throughput", 4)}
    for row in diffusion:
        reference = ar[row["measure"]]
        assert row["ar_seconds"] == reference["seconds"]
        assert row["time_ratio"] == pytest.approx(row["seconds"] / reference["seconds"])
        assert row["throughput_ratio"] == pytest.approx(reference["seconds"] / row["seconds"])
        assert row["seconds"] == pytest.approx(statistics.median(row["times"]))
    for throughput in (r for r in diffusion if r["measure"] == "throughput"):
        assert throughput["peak_fraction"] == pytest.approx(
            throughput["flops"]["total"] / throughput["seconds"] / saved["speed"]["matmul"]["flops_best"]
        )
    flops = {r["model"]: r["flops"] for r in diffusion if r["measure"] == "throughput"}
    assert flops["elf-tiny"]["latent_length"] == 8 and flops["elf-tiny"]["forward_calls"] == 5
    assert flops["cosmos-tiny"]["latent_length"] == 3 and flops["cosmos-tiny"]["forward_calls"] == 4
    assert flops["cosmos-tiny"]["decoded_tokens"] == 12 and flops["cosmos-tiny"]["decoder"] > 0
    assert "× AR" in (quick_run[0] / "RESULTS.md").read_text()


def test_speed_ratios_to_a_reference_diffusion_model_at_the_same_steps(quick_run):
    out, _ = quick_run
    saved = json.loads((out / "results.json").read_text())
    assert saved["speed"]["reference"] == "elf-tiny"
    rows = [r for r in saved["speed"]["rows"] if r["kind"] == "diffusion"]
    elf = {(r["measure"], r["gen_length"], r["steps"]): r for r in rows if r["model"] == "elf-tiny"}
    cosmos = [r for r in rows if r["model"] == "cosmos-tiny"]
    assert len(cosmos) == 3 and all("ref_speedup" not in r for r in elf.values())
    for row in cosmos:
        reference = elf[(row["measure"], row["gen_length"], row["steps"])]
        assert row["reference"] == "elf-tiny" and row["ref_seconds"] == reference["seconds"]
        assert row["ref_speedup"] == pytest.approx(reference["seconds"] / row["seconds"])
        assert row["ref_time_ratio"] == pytest.approx(row["seconds"] / reference["seconds"])
    markdown = (out / "RESULTS.md").read_text()
    assert "× elf-tiny time" in markdown and "× elf-tiny tokens/s" in markdown
    assert "### Speed-up over elf-tiny (same tokens, batch and steps)" in markdown
    throughput = next(r for r in cosmos if r["measure"] == "throughput")
    assert "| cosmos-tiny | throughput | 8 | 4 | 4 |" in markdown and f"{throughput['ref_speedup']:.2f}×" in markdown


def test_sweep_settings_are_checked_before_sampling(tiny_models, tmp_path):
    common = dict(out_dir=tmp_path, quick=True, judge=False, corpus=_tiny_corpus(), speed=False, quality=False)
    with pytest.raises(ValueError, match="speed_reference 'nope'"):
        run_benchmark({"elf": tiny_models / "elf"}, speed_reference="nope", **common)
    with pytest.raises(ValueError, match="solver 'heun' is not valid"):
        run_benchmark({"cosmos": tiny_models / "cosmos"}, solvers=["heun"], **common)
    assert not (tmp_path / "results.json").exists()


def test_a_row_of_empty_samples_is_reported_not_fatal(tiny_models):
    from transformers import AutoModelForCausalLM

    judge = (AutoModelForCausalLM.from_pretrained(tiny_models / "judge"), build_tiny_tokenizer())
    evaluator = QualityEvaluator(judge, train_texts=["the cat sat on the mat"])
    metrics = evaluator(["", "  "])
    assert metrics["num_empty"] == 2 and metrics["gen_ppl"] is None and metrics["mauve"] is None


def test_a_gen_length_longer_than_a_model_supports_fails_before_sampling(tiny_models, tmp_path):
    with pytest.raises(ValueError, match="longer than these models support"):
        run_benchmark({"elf": tiny_models / "elf"}, out_dir=tmp_path, quick=True, gen_length=64, speed=False,
                      judge=False, corpus=_tiny_corpus())  # fmt: skip
    assert not (tmp_path / "results.json").exists()


# ---------------------------------------------------------------------------------------------------------- CLI


def test_cli_pairs_record_the_exact_command_and_evaluate_a_text_file(tiny_models, tmp_path, capsys):
    parser = add_bench_arguments(argparse.ArgumentParser())
    argv = ["--model", f"elf={tiny_models / 'elf'}", "--judge", str(tiny_models / "judge"), "--corpus",
            str(tiny_models / "corpus"), "--out-dir", str(tmp_path / "bench"), "--quick", "--no-speed",
            "--num-samples", "2", "--gen-length", "8", "--steps", "2", "--guidance-scales", "3", "--gammas", "0",
            "--sweep-steps", "2", "--no-mauve"]  # fmt: skip
    args = parser.parse_args(argv)
    args.command_line = "latentlm bench " + " ".join(argv)
    results = run_bench_from_args(args)
    assert results["speed"] is None and len(results["quality"]["rows"]) == 2  # reference + one ELF setting
    assert args.command_line in (tmp_path / "bench" / "RESULTS.md").read_text()

    samples = tmp_path / "samples.txt"
    samples.write_text("the cat sat on the mat\na big red bird sang in the tree\nthe dog ran in the park\n")
    parser = add_evaluate_arguments(argparse.ArgumentParser())
    args = parser.parse_args([str(samples), "--judge", str(tiny_models / "judge"), "--corpus",
                              str(tiny_models / "corpus"), "--tokenizer", str(tiny_models / "judge"),
                              "--output", str(tmp_path / "metrics.json")])  # fmt: skip
    capsys.readouterr()
    record = run_evaluate_from_args(args)
    printed = json.loads(capsys.readouterr().out)
    assert printed == json.loads((tmp_path / "metrics.json").read_text()) == record
    assert record["kind"] == "texts" and record["num_samples"] == 3 and record["gen_length"] == 8
    assert {"gen_ppl", "entropy", "mauve", "diversity", "memorisation"} <= set(record["metrics"])


def test_evaluate_samples_a_cosmos_folder_with_its_solver_and_rejects_a_gamma(tiny_models, tmp_path):
    parser = add_evaluate_arguments(argparse.ArgumentParser())
    common = [str(tiny_models / "cosmos"), "--judge", str(tiny_models / "judge"), "--corpus",
              str(tiny_models / "corpus"), "--num-samples", "2", "--gen-length", "8", "--steps", "2", "--no-mauve"]  # fmt: skip
    record = run_evaluate_from_args(parser.parse_args([*common, "--solver", "ddim"]))
    assert record["kind"] == "pipeline" and record["num_samples"] == 2 and record["gen_length"] == 8
    assert record["sampler"] == "ddim" and record["guidance_scale"] is None and record["gamma"] is None
    with pytest.raises(ValueError, match="has no \\['gamma'\\] setting"):
        run_evaluate_from_args(parser.parse_args([*common, "--gamma", "1.5"]))
