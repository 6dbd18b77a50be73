"""The optimizers (`latentlm.training.optimization`): AdamW by default, Muon + AdamW as ELF's official training,
Adafactor for small (LoRA) checkpoints."""

import copy

import pytest
import torch
from safetensors.torch import load_file
from torch import nn
from transformers import LlamaConfig, LlamaForCausalLM

from conftest import TINY_ELF, build_tiny_tokenizer
from latentlm import ELFConfig, ELFForFlowMatching
from latentlm.training import train
from latentlm.training.optimization import MuonWithAuxAdamW, build_optimizer, split_muon_parameters
from test_training import TINY_LLAMA, corpus, tiny_config, train_losses  # noqa: F401  (corpus is a fixture)


def test_elf_split_is_the_official_one_every_trainable_matrix_to_muon():
    model = ELFForFlowMatching(ELFConfig(**TINY_ELF))
    muon, other = split_muon_parameters(model)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert {id(p) for p in muon} == {id(p) for p in trainable if p.ndim == 2}  # the unembedding head included
    assert {id(p) for p in other} == {id(p) for p in trainable if p.ndim != 2}  # norms, biases, control tokens
    assert any(p.ndim == 3 for p in other) and any(p.ndim == 1 for p in other)


def test_the_output_head_can_go_to_adamw():
    model = ELFForFlowMatching(ELFConfig(**TINY_ELF))
    head = model.get_output_embeddings().weight
    muon, other = split_muon_parameters(model, output_head=False)
    assert any(p is head for p in other) and not any(p is head for p in muon)
    assert len(muon) == len(split_muon_parameters(model)[0]) - 1


def test_embedding_tables_and_heads_tied_to_them_go_to_adamw():
    llama = LlamaForCausalLM(LlamaConfig(vocab_size=30, tie_word_embeddings=True, **TINY_LLAMA))
    muon, other = split_muon_parameters(llama)
    embedding = llama.get_input_embeddings().weight
    assert llama.lm_head.weight is embedding
    assert any(p is embedding for p in other) and not any(p is embedding for p in muon)
    assert all(p.ndim == 2 for p in muon) and len(muon) == 7  # q, k, v, o, gate, up, down


def _toy_model():
    torch.manual_seed(0)
    return nn.Sequential(nn.Embedding(10, 8), nn.Linear(8, 16), nn.LayerNorm(16), nn.Linear(16, 10))


def _step(model, optimizer, seed):
    generator = torch.Generator().manual_seed(seed)
    tokens = torch.randint(0, 10, (4, 5), generator=generator)
    loss = nn.functional.cross_entropy(model(tokens).flatten(0, 1), tokens.flatten())
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def _muon_optimizer(model):
    muon, other = split_muon_parameters(model)
    return MuonWithAuxAdamW(
        muon, [{"params": other, "weight_decay": 0.0}], muon_kwargs={"lr": 0.02}, adamw_kwargs={"lr": 1e-3}
    )


def test_muon_with_aux_adamw_state_round_trips_exactly():
    model = _toy_model()
    optimizer = _muon_optimizer(model)
    assert [len(g["params"]) for g in optimizer.param_groups] == [2, 5]  # 2 Linear weights | embedding, 2 biases, norm
    for seed in range(3):
        _step(model, optimizer, seed)
    clone = copy.deepcopy(model)
    restored = _muon_optimizer(clone)
    restored.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    # both sides' state came back and the inner optimizers read it (load_state_dict replaces groups and state)
    assert restored._muon.state is restored.state and restored._adamw.state is restored.state
    assert restored._muon.param_groups[0] is restored.param_groups[0]
    assert set(restored.state[clone[1].weight]) == {"momentum_buffer"}
    assert {"exp_avg", "exp_avg_sq", "step"} <= set(restored.state[clone[0].weight])
    for seed in (3, 4):
        _step(model, optimizer, seed)
        _step(clone, restored, seed)
    for a, b in zip(model.parameters(), clone.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_an_lr_scheduler_scales_both_sides():
    model = _toy_model()
    optimizer = _muon_optimizer(model)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5)
    assert optimizer._muon.param_groups[0]["lr"] == 0.01 and optimizer._adamw.param_groups[0]["lr"] == 5e-4
    _step(model, optimizer, 0)
    scheduler.step()
    assert scheduler.get_last_lr() == [0.01, 5e-4]


def test_default_stays_adamw(corpus, tmp_path):  # noqa: F811
    config = tiny_config(corpus, tmp_path)
    assert config.optimizer == "adamw"
    assert type(build_optimizer(nn.Linear(2, 2), config)) is torch.optim.AdamW


def test_muon_run_learns_and_the_card_names_it(corpus, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    train(tiny_config(corpus, out, optimizer="muon", muon_learning_rate=0.05, max_steps=20))
    losses = train_losses(out)
    assert losses[20] < losses[1] - 0.5
    assert "Muon (lr 0.05, momentum 0.95) + AdamW" in (out / "README.md").read_text()


def test_muon_with_lora_trains_only_the_adapters(corpus, tmp_path):  # noqa: F811
    tokenizer = build_tiny_tokenizer()
    base_dir = tmp_path / "base"
    LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), **TINY_LLAMA)).save_pretrained(base_dir)
    out = tmp_path / "lora"
    lora = {"r": 4, "lora_alpha": 8, "target_modules": ["q_proj", "v_proj"]}
    train(tiny_config(corpus, out, init_from=str(base_dir), lora=lora, max_steps=2, optimizer="muon"))
    base, tuned = load_file(base_dir / "model.safetensors"), load_file(out / "model.safetensors")
    changed = {name for name in base if not torch.equal(base[name], tuned[name])}
    assert changed == {"model.layers.0.self_attn.q_proj.weight", "model.layers.0.self_attn.v_proj.weight"}


def _state_numel(optimizer) -> int:
    return sum(value.numel() for state in optimizer.state.values() for key, value in state.items() if key != "step")


def test_adafactor_state_is_a_fraction_of_adamws_and_round_trips_exactly(corpus, tmp_path):  # noqa: F811
    model = nn.Sequential(nn.Linear(64, 64), nn.LayerNorm(64), nn.Linear(64, 10))
    num_parameters = sum(p.numel() for p in model.parameters())
    config = tiny_config(corpus, tmp_path, optimizer="adafactor", learning_rate=1e-3)
    optimizer = build_optimizer(model, config)
    adamw_model = copy.deepcopy(model)
    adamw = build_optimizer(adamw_model, tiny_config(corpus, tmp_path, learning_rate=1e-3))
    inputs = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    for seed in range(3):
        _regression_step(model, optimizer, inputs, seed)
        _regression_step(adamw_model, adamw, inputs, seed)
    # matrices keep a row and a column vector instead of a full second moment, and there is no first moment
    assert _state_numel(adamw) == 2 * num_parameters
    assert _state_numel(optimizer) < 0.25 * num_parameters
    assert "exp_avg" not in optimizer.state[model[0].weight]

    clone = copy.deepcopy(model)
    restored = build_optimizer(clone, config)
    restored.load_state_dict(copy.deepcopy(optimizer.state_dict()))
    for seed in (3, 4):
        _regression_step(model, optimizer, inputs, seed)
        _regression_step(clone, restored, inputs, seed)
    for a, b in zip(model.parameters(), clone.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def _regression_step(model, optimizer, inputs, seed):
    target = torch.randn(inputs.shape[0], 10, generator=torch.Generator().manual_seed(seed))
    nn.functional.mse_loss(model(inputs), target).backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def test_adafactor_run_learns_and_the_card_names_it(corpus, tmp_path):  # noqa: F811
    out = tmp_path / "run"
    train(tiny_config(corpus, out, optimizer="adafactor", max_steps=20))
    losses = train_losses(out)
    assert losses[20] < losses[1] - 0.15  # AdamW at the same settings: 3.22 -> 2.93
    assert "Adafactor (lr 0.01," in (out / "README.md").read_text()


@pytest.mark.parametrize("bad", [{"optimizer": "Muon"}, {"muon_ns_steps": 100}, {"muon_adjust_lr_fn": "rms"}])
def test_bad_muon_values_are_rejected_by_name(corpus, tmp_path, bad):  # noqa: F811
    with pytest.raises(ValueError, match=f"`{next(iter(bad))}`"):
        tiny_config(corpus, tmp_path, **bad)


def test_muon_is_refused_where_the_matrices_are_sharded():
    from latentlm.training.distributed import LaunchError, check_optimizer_sharding

    check_optimizer_sharding("muon", "MULTI_GPU")  # DDP: whole matrices on every process
    check_optimizer_sharding("adamw", "FSDP")
    for sharded in ("FSDP", "DEEPSPEED"):
        with pytest.raises(LaunchError, match=f"`optimizer: muon`.*{sharded}"):
            check_optimizer_sharding("muon", sharded)
