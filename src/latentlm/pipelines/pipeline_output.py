from dataclasses import dataclass

import torch
from diffusers.utils import BaseOutput


@dataclass
class TextPipelineOutput(BaseOutput):
    """Output of every latentlm pipeline.

    Args:
        sequences (`torch.LongTensor` of shape `(batch_size, gen_length)`, *optional*):
            Token ids; everything from the first end-of-sequence token on is replaced by the pad id. With `prompt=`,
            each row is its prompt's tokens, unchanged, then the generated ones (`(batch_size, longest prompt +
            gen_length)`, shorter rows right-padded). `None` when `output_type="latent"`.
        texts (`list[str]`, *optional*): the decoded sequences (`output_type="text"` only); with `prompt=` each
            starts with its prompt as the tokenizer round-trips it.
        latents (`torch.FloatTensor` of shape `(batch_size, *latent_shape)`, *optional*): the final clean latents.
    """

    sequences: torch.LongTensor | None = None
    texts: list[str] | None = None
    latents: torch.FloatTensor | None = None
