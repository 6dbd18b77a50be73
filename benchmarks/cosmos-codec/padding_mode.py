"""Why Cosmos samples decode to nothing: the padding mode of framed windows.

Framed training windows (`[CLS] chunk [SEP] [PAD]...`, one document per frame) end in padding whenever a document's
last chunk is short. A latent that covers only padding is nearly the same vector in every window (a tight cluster far
from every content latent), so the data the denoiser learns holds a point mass per latent position; a sample that lands
in that mode decodes to `[SEP]` (what the codec emits on padding), and the pipeline cuts the text at its first `[SEP]`.

For a trained Cosmos pipeline this script samples `--num-samples` latents (`--steps` Euler–Maruyama steps, seed 0),
encodes the first `--num-sequences` test windows of the run's own layout, and reports:
  * how many samples are empty (position 0 decodes to `[SEP]`, or position 1 does: "[CLS] [SEP] ...");
  * the share of `[SEP]` among the decoded tokens, for the samples and for the data's own latents;
  * the mean distance of every sampled latent to the padding centre of its position (the mean of the data latents
    that cover only padding), for empty and non-empty samples, against the data's content latents.

    python benchmarks/cosmos-codec/padding_mode.py RUN [RUN ...] [--steps 50] [--out FILE.json]
"""

import argparse
import json
import os

import torch

from latentlm import CosmosLMPipeline
from latentlm.data import (
    DataCollatorForFixedLength,
    add_model_encoder_activations,
    load_text_dataset,
    tokenize_and_chunk,
)
from latentlm.training.config import trained_sequence_layout


@torch.no_grad()
def data_latents(pipe, run: str, num_sequences: int):
    """Normalised latents `(n, N, D)` and token ids `(n, L)` of the first test windows, in the run's layout."""
    autoencoder = pipe.model.get_autoencoder()
    framing, fill_frames = trained_sequence_layout(run)
    windows = tokenize_and_chunk(
        load_text_dataset("english-prose")["test"], pipe.tokenizer, autoencoder.config.max_position_embeddings,
        framing=framing, fill_frames=fill_frames,
    ).select(range(num_sequences))  # fmt: skip
    windows = add_model_encoder_activations(windows, autoencoder, batch_size=32)
    batch = DataCollatorForFixedLength()([windows[i] for i in range(len(windows))])
    latents = autoencoder.encode(batch["input_ids"], batch["attention_mask"], batch["encoder_activations"])
    return autoencoder.normalize_latents(latents), batch["input_ids"], batch["attention_mask"]


def padding_centres(latents, attention_mask):
    """Per latent position, the mean of the data latents whose tokens are all padding (NaN where none is)."""
    num_latents = latents.shape[1]
    only_padding = (attention_mask == 0).view(len(attention_mask), num_latents, -1).all(-1)  # (n, N)
    centres = torch.full(latents.shape[1:], float("nan"))
    for j in range(num_latents):
        if only_padding[:, j].any():
            centres[j] = latents[only_padding[:, j], j].mean(0)
    return centres, only_padding


def mean_distance(latents, centres, positions, keep=None) -> float:
    """Mean distance of `latents[:, j]` to the padding centre of position `j`, over the given positions and the rows
    `keep[:, j]` selects (all rows when `None`)."""
    distances = []
    for j in positions:
        rows = latents[:, j] if keep is None else latents[keep[:, j], j]
        distances.append((rows - centres[j]).norm(dim=-1))
    return torch.cat(distances).mean().item()


@torch.no_grad()
def measure(run: str, steps: int, num_samples: int, num_sequences: int) -> dict:
    pipe = CosmosLMPipeline.from_pretrained(run)
    pipe.set_progress_bar_config(disable=True)
    model, sep = pipe.model, pipe.tokenizer.sep_token_id
    out = pipe(batch_size=num_samples, num_inference_steps=steps, generator=torch.Generator().manual_seed(0),
               output_type="latent")  # fmt: skip
    samples = out.latents
    ids = model.decode_latents_to_ids(samples)  # before the pipeline's cut at the first [SEP]
    empty = (ids[:, 0] == sep) | (ids[:, 1] == sep)
    data, data_ids, mask = data_latents(pipe, run, num_sequences)
    centres, only_padding = padding_centres(data, mask)
    positions = [j for j in range(centres.shape[0]) if not torch.isnan(centres[j, 0])]
    row = {
        "run": run,
        "steps": steps,
        "num_samples": num_samples,
        "empty_samples": int(empty.sum()),
        "sep_share_samples": (ids == sep).float().mean().item(),
        "sep_share_data_decoded": (model.decode_latents_to_ids(data) == sep).float().mean().item(),
        "data_windows_with_padding": int((mask == 0).any(1).sum()),
        "data_latents_only_padding": only_padding.float().mean().item(),
        "num_data_windows": len(data),
    }
    if positions:
        row["distance_to_padding_centre"] = {
            "empty_samples": mean_distance(samples[empty], centres, positions) if empty.any() else None,
            "other_samples": mean_distance(samples[~empty], centres, positions) if (~empty).any() else None,
            "data_content_latents": mean_distance(data, centres, positions, keep=~only_padding),
            "data_padding_latents": mean_distance(data, centres, positions, keep=only_padding),
        }
    return row


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("runs", nargs="+", help="Cosmos pipeline folders (`latentlm train` exports)")
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--num-sequences", type=int, default=128)
    parser.add_argument("--out", help="write the rows here as JSON")
    args = parser.parse_args()
    rows = [measure(run, args.steps, args.num_samples, args.num_sequences) for run in args.runs]
    text = json.dumps(rows, indent=2)
    print(text)
    if args.out:
        os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
