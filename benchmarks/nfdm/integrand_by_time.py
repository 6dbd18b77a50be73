"""Where a trained NFDM's bound comes from: the diffusion integrand L(t) per token (median and max over 16 held-out
blocks, one noise draw each) at fixed times, and the range of the forward network's log_std_bar.

    python benchmarks/nfdm/integrand_by_time.py runs/nfdm-compare-200/nfdm-learned runs/nfdm-compare-200/nfdm-fixed
"""

import sys

import torch
from transformers import AutoTokenizer

from latentlm import NFDMForDiffusion
from latentlm.evaluation.likelihood import held_out_blocks


TIMES = (0.001, 0.01, 0.05, 0.1, 0.3, 0.5, 0.7, 0.9, 0.99)


@torch.no_grad()
def report(path: str) -> None:
    model = NFDMForDiffusion.from_pretrained(f"{path}/model").eval()
    blocks = held_out_blocks(AutoTokenizer.from_pretrained(f"{path}/tokenizer"), "english-prose", "test", 64, 16)
    ids = torch.stack([torch.as_tensor(row["input_ids"]) for row in blocks])
    torch.manual_seed(0)
    print(f"{path}: diffusion integrand L(t) in nats per token (median / max over {len(ids)} blocks)")
    for t in TIMES:
        per_token = model.compute_bound_terms(ids, timesteps=t).diffusion_integrand / ids.shape[1]
        print(f"  t = {t:<5}  {per_token.median().item():8.1f} / {per_token.max().item():8.1f}")
    x = model.embed_tokens(ids)
    for t in (0.1, 0.5, 0.9):
        _, log_std_bar, _, _ = model.forward_fields(x, torch.full((len(ids),), t))
        print(f"  log_std_bar at t = {t}: [{log_std_bar.min().item():.2f}, {log_std_bar.max().item():.2f}]")


if __name__ == "__main__":
    for path in sys.argv[1:]:
        report(path)
