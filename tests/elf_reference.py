"""The bundled `elf-tiny-prose` denoiser on fixed inputs, recorded before the backbone had Cosmos' options, so that
`test_denoiser_options.py` can check that a config without them still runs exactly the same operations.

Recorded with main at a0e7d4d on the 2-core CPU machine; to re-record with another checkout's code::

    cd tests && PYTHONPATH=OLD_CHECKOUT/src python elf_reference.py
"""

from pathlib import Path

import torch
from safetensors.torch import save_file


REFERENCE = Path(__file__).parent / "data" / "elf_tiny_prose_denoiser_reference.safetensors"


def bundled_elf_transformer():
    import latentlm
    from latentlm import ELFPipeline

    return ELFPipeline.from_pretrained(latentlm.pretrained_path("elf-tiny-prose")).model.float().model.transformer


def reference_forward(transformer):
    """Inputs that use every path of the first form: condition prefix, self-conditioning, guidance and mode tokens
    (one row denoising, one decoding)."""
    g = torch.Generator().manual_seed(0)
    z, sc, cond = (torch.randn(2, n, 384, generator=g) for n in (8, 8, 3))
    with torch.no_grad():
        return transformer(
            z, torch.tensor([0.3, 0.9]), self_condition=sc, guidance_scale=torch.tensor([1.0, 3.0]),
            mode=torch.tensor([0.0, 1.0]), condition_hidden_states=cond,
        )  # fmt: skip


if __name__ == "__main__":
    out = reference_forward(bundled_elf_transformer())
    REFERENCE.parent.mkdir(exist_ok=True)
    save_file({"sample": out.sample, "last_hidden_state": out.last_hidden_state.contiguous()}, str(REFERENCE))
