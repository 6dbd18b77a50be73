"""The bundled elf-tiny-prose decoding an 8-step batch of 64 x 128 latents: full logits + argmax vs
`decode_latents_to_ids` (see README.md)."""

import time

import torch

import latentlm
from latentlm import ELFPipeline


def seconds(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


pipe = ELFPipeline.from_pretrained(latentlm.pretrained_path("elf-tiny-prose"))
model = pipe.model
print(model.dtype)
generator = torch.Generator().manual_seed(0)
latents = pipe(batch_size=64, gen_length=128, num_inference_steps=8, output_type="latent", generator=generator).latents
with torch.inference_mode():
    for _ in range(2):  # the second round is the measured one
        argmax_ids, argmax_seconds = seconds(lambda: model.decode_latents(latents).argmax(-1))
        shortlist_ids, shortlist_seconds = seconds(lambda: model.decode_latents_to_ids(latents))
    differing = (argmax_ids != shortlist_ids).sum().item()
    print(torch.equal(argmax_ids, shortlist_ids), differing, argmax_seconds, shortlist_seconds)
