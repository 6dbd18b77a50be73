"""LoRA adapters of training runs: saved alone, loadable by PEFT and by ``pipe.load_lora_weights``.

An adapter folder is PEFT's layout, ``adapter_config.json`` + ``adapter_model.safetensors`` (the LoRA weights only,
float32), with ``base_model_name_or_path`` portable: a Hub id, ``pretrained:<name>`` or the base folder relative to
the adapter folder, never an absolute local path.
"""

import json
from pathlib import Path

from .sources import portable_reference


ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"


def save_adapter(peft_model, folder: str | Path) -> None:
    """Saves the adapters of a `peft.PeftModel` (``peft_model.save_pretrained``) with a portable base model name.

    PEFT's own model card (which names the base by its local path) is not kept: latentlm writes its card when the
    folder is pushed (`latentlm.hub.push_to_hub`).
    """
    folder = Path(folder)
    peft_model.save_pretrained(folder)
    (folder / "README.md").unlink(missing_ok=True)
    for config_file in folder.rglob(ADAPTER_CONFIG):
        config = json.loads(config_file.read_text())
        config["base_model_name_or_path"] = portable_reference(
            config.get("base_model_name_or_path"), config_file.parent
        )
        config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def load_adapter_weights(peft_model, folder: str | Path) -> None:
    """Loads the weights `save_adapter` wrote into a `peft.PeftModel` with the same adapters (resuming a run)."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    result = set_peft_model_state_dict(peft_model, load_file(Path(folder) / ADAPTER_WEIGHTS))
    unexpected = [key for key in result.unexpected_keys if "lora_" in key]
    if unexpected:
        raise ValueError(f"The adapter in {folder} does not fit the model: unexpected keys {unexpected[:5]}.")
