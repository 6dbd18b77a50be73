"""Greedy decoding through a wide output head: `greedy_token_ids` gives float32's argmax, shortlisted or not."""

import pytest
import torch
from torch import nn

from latentlm.models.heads import FactoredLMHead, greedy_token_ids


NATIVE_BF16 = torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()
needs_native_bf16 = pytest.mark.skipif(not NATIVE_BF16, reason="the bfloat16 shortlist runs on CPUs with native bf16")
VOCAB, WIDTH = 4096, 64


def wide_head(bias: bool = True) -> nn.Linear:
    torch.manual_seed(0)
    return nn.Linear(WIDTH, VOCAB, bias=bias)


def confident_features(head: nn.Linear, shape=(3, 40)) -> torch.Tensor:
    """Features pointing at one token each, as a trained decoder's do: a clear winner per row."""
    targets = torch.randint(VOCAB, shape)
    return 4 * head.weight.detach()[targets] / head.weight.detach()[targets].norm(dim=-1, keepdim=True) ** 2


def count_full_rows(head: nn.Linear) -> list[int]:
    """Records the rows each full-vocabulary float32 pass of `head` computes."""
    rows = []
    head.register_forward_hook(lambda module, args, out: rows.append(args[0].reshape(-1, WIDTH).shape[0]))
    return rows


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("confident", [True, False])
def test_greedy_ids_equal_the_float32_argmax(bias, confident):
    head = wide_head(bias)
    features = confident_features(head) if confident else torch.randn(3, 40, WIDTH)
    with torch.inference_mode():
        ids = greedy_token_ids(features, head)
        assert ids.shape == (3, 40) and ids.dtype == torch.long
        assert torch.equal(ids, head(features).argmax(dim=-1))


@needs_native_bf16
def test_confident_rows_skip_the_float32_logits():
    head = wide_head()
    features = confident_features(head)
    full_rows = count_full_rows(head)
    with torch.inference_mode():
        ids = greedy_token_ids(features, head)
    assert full_rows == []  # every row proven from its shortlist
    with torch.inference_mode():
        assert torch.equal(ids, head(features).argmax(dim=-1))


@needs_native_bf16
def test_rows_the_bound_cannot_prove_are_rescored_in_full():
    head = wide_head()
    features = torch.cat([confident_features(head, (1, 8)), torch.zeros(1, 8, WIDTH)], dim=1)  # zeros: all tied
    with torch.inference_mode():
        expected = head(features).argmax(dim=-1)
        full_rows = count_full_rows(head)
        assert torch.equal(greedy_token_ids(features, head), expected)
    assert full_rows == [8]  # the 8 tied rows, not the confident ones


def test_factored_head_and_non_finite_features():
    torch.manual_seed(0)
    head = FactoredLMHead(WIDTH, 32, VOCAB)
    features = torch.randn(2, 16, WIDTH)
    features[0, 3] = float("nan")
    with torch.inference_mode():
        assert torch.equal(greedy_token_ids(features, head), head(features).argmax(dim=-1))


def test_a_changed_weight_is_not_served_from_the_cache():
    head = wide_head()
    features = confident_features(head)
    with torch.no_grad():
        greedy_token_ids(features, head)
        head.weight.mul_(-1)  # in place: the winners change
        assert torch.equal(greedy_token_ids(features, head), head(features).argmax(dim=-1))
    assert "_greedy_bfloat16_weight" not in head.state_dict()


def test_training_mode_takes_the_plain_path():
    head = wide_head()
    features = torch.randn(2, 5, WIDTH, requires_grad=True)
    full_rows = count_full_rows(head)
    ids = greedy_token_ids(features, head)
    assert full_rows == [10] and torch.equal(ids, head(features).argmax(dim=-1))
