"""LoRA adapters on latentlm pipelines, with diffusers' method names and semantics.

```python
pipe = ELFPipeline.from_pretrained("user/elf-base")
pipe.load_lora_weights("user/elf-headlines-lora", adapter_name="headlines")  # a Hub id, a folder or a state dict
pipe.load_lora_weights("runs/x/adapter", adapter_name="news")
pipe.set_adapters(["headlines", "news"], adapter_weights=[0.8, 0.5])
pipe.fuse_lora()                # merge the active adapters into the weights (faster sampling)
pipe.unfuse_lora()              # and take them out again
pipe.save_lora_adapter("my-lora", adapter_name="headlines")
pipe.unload_lora_weights()      # back to the base model
```

Everything but loading is diffusers' own `LoraBaseMixin` (set / fuse / unfuse / unload / delete / enable / disable
work on any `transformers.PreTrainedModel` component through PEFT's tuner layers). Loading injects the adapter with
PEFT (`inject_adapter_in_model` + `set_peft_model_state_dict`) and records its `LoraConfig` in
``component.peft_config``, as transformers' and diffusers' adapter mixins do.

Two checkpoint layouts load:

* diffusers' single file ``pytorch_lora_weights.safetensors``: keys prefixed by the component (``model.``,
  ``autoencoder.``), each component's `LoraConfig` in the ``lora_adapter_metadata`` header (what `save_lora_weights`
  and `save_lora_adapter` write);
* PEFT's folder ``adapter_config.json`` + ``adapter_model.safetensors`` (what ``PeftModel.save_pretrained`` and
  ``latentlm train`` with ``lora:`` write): the adapter of ``model``; a subfolder named after another component
  (``autoencoder/``) holds that component's adapter.
"""

import json
import os
from pathlib import Path

import torch
from diffusers.loaders.lora_base import (
    LORA_ADAPTER_METADATA_KEY,
    LORA_WEIGHT_NAME_SAFE,
    LoraBaseMixin,
    _pack_dict_with_prefix,
)
from diffusers.utils import logging


logger = logging.get_logger(__name__)

PEFT_CONFIG_NAME = "adapter_config.json"
PEFT_WEIGHTS_NAME = "adapter_model.safetensors"
_PEFT_PREFIX = "base_model.model."  # `PeftModel.save_pretrained` keys start with it
_HUB_KWARGS = {"revision", "token", "cache_dir", "local_files_only", "force_download"}


class LatentLMLoraLoaderMixin(LoraBaseMixin):
    """LoRA loading, saving, weighting and fusing for latentlm pipelines (mix in before `DiffusionPipeline`).

    `_lora_loadable_modules` names the components that may carry adapters; a pipeline without one of them (ELF has no
    ``autoencoder``) skips it.
    """

    _lora_loadable_modules = ["model", "autoencoder"]

    # ------------------------------------------------------------------------------------------------------------
    # Loading
    # ------------------------------------------------------------------------------------------------------------

    @classmethod
    def lora_state_dict(
        cls,
        pretrained_model_name_or_path_or_dict: str | os.PathLike | dict,
        *,
        weight_name: str | None = None,
        subfolder: str | None = None,
        return_lora_metadata: bool = False,
        **hub_kwargs,
    ):
        """The LoRA weights of a checkpoint, keys prefixed by component (``model.<module>.lora_A.weight``).

        Args:
            pretrained_model_name_or_path_or_dict: a Hub id, a local folder (either layout, see the module
                docstring), a ``.safetensors`` file, or a state dict already prefixed by component.
            weight_name: the file inside the folder or repository (default: the layout's own name).
            subfolder: a folder inside it.
            return_lora_metadata: also return ``{"<component>.<LoraConfig field>": value}`` (None when unknown).
            **hub_kwargs: `huggingface_hub.hf_hub_download` arguments (``revision``, ``token``, ``cache_dir``,
                ``local_files_only``).
        """
        unknown = sorted(set(hub_kwargs) - _HUB_KWARGS)
        if unknown:
            raise ValueError(
                f"Unsupported arguments {unknown}: latentlm's LoRA loader takes `weight_name`, `subfolder` and "
                f"{sorted(_HUB_KWARGS)} (no hotswap or low_cpu_mem_usage)."
            )
        state_dict, metadata = _read_lora_checkpoint(
            pretrained_model_name_or_path_or_dict, weight_name, subfolder, hub_kwargs
        )
        return (state_dict, metadata) if return_lora_metadata else state_dict

    def load_lora_weights(
        self,
        pretrained_model_name_or_path_or_dict: str | os.PathLike | dict,
        adapter_name: str | None = None,
        **kwargs,
    ) -> None:
        """Loads a LoRA checkpoint into the pipeline's components under ``adapter_name`` and makes it the active one.

        Args:
            pretrained_model_name_or_path_or_dict: see `lora_state_dict`.
            adapter_name: the adapter's name (default ``default_<n>``, as diffusers); it must not be in use.
            **kwargs: passed to `lora_state_dict` (``weight_name``, ``subfolder``, ``revision``, ...).

        Raises:
            ValueError: when the checkpoint holds no LoRA weight for any component of this pipeline, when
                ``adapter_name`` is in use, or when the weights do not fit the model (the message names the keys).
        """
        state_dict, metadata = self.lora_state_dict(
            pretrained_model_name_or_path_or_dict, return_lora_metadata=True, **kwargs
        )
        if not any("lora_" in key for key in state_dict):
            raise ValueError(
                f"`pretrained_model_name_or_path_or_dict` ({_describe(pretrained_model_name_or_path_or_dict)}) holds no "
                "LoRA weights (no `lora_A` / `lora_B` keys)."
            )
        adapter_name = adapter_name or _next_adapter_name(self)
        loaded = []
        for component in self._lora_loadable_modules:
            model = getattr(self, component, None)
            prefix = f"{component}."
            # Keys of a `PeftModel`'s state dict start with "base_model.model."; those of the bare model do not.
            weights = {
                k.removeprefix(prefix).removeprefix(_PEFT_PREFIX): v
                for k, v in state_dict.items()
                if k.startswith(prefix)
            }
            if model is None or not weights:
                continue
            config = {k.removeprefix(prefix): v for k, v in (metadata or {}).items() if k.startswith(prefix)}
            load_lora_into_model(model, weights, lora_config_from(config, weights), adapter_name)
            loaded.append(component)
        if not loaded:
            present = [c for c in self._lora_loadable_modules if getattr(self, c, None) is not None]
            raise ValueError(
                f"The LoRA checkpoint {_describe(pretrained_model_name_or_path_or_dict)} has no weights for this "
                f"pipeline's components {present}: its keys start with "
                f"{sorted({key.split('.')[0] for key in state_dict})}."
            )
        self.set_adapters([adapter_name])
        logger.info(f"Loaded LoRA adapter {adapter_name!r} into {loaded}.")

    # ------------------------------------------------------------------------------------------------------------
    # Saving
    # ------------------------------------------------------------------------------------------------------------

    @classmethod
    def save_lora_weights(
        cls,
        save_directory: str | os.PathLike,
        model_lora_layers: dict[str, torch.Tensor] | torch.nn.Module | None = None,
        autoencoder_lora_layers: dict[str, torch.Tensor] | torch.nn.Module | None = None,
        model_lora_adapter_metadata: dict | None = None,
        autoencoder_lora_adapter_metadata: dict | None = None,
        is_main_process: bool = True,
        weight_name: str | None = None,
        save_function=None,
        safe_serialization: bool = True,
    ) -> None:
        """Writes LoRA layers as diffusers does: one ``pytorch_lora_weights.safetensors`` with component-prefixed keys
        and each component's `LoraConfig` (as a dict) in the header.

        ``*_lora_layers`` are PEFT state dicts (``peft.get_peft_model_state_dict(pipe.model, adapter_name=...)``);
        `save_lora_adapter` builds them from a loaded adapter.
        """
        layers = {"model": model_lora_layers, "autoencoder": autoencoder_lora_layers}
        layers = {prefix: value for prefix, value in layers.items() if value is not None}
        if not layers:
            raise ValueError("Pass at least one of `model_lora_layers` or `autoencoder_lora_layers`.")
        metadata = {"model": model_lora_adapter_metadata, "autoencoder": autoencoder_lora_adapter_metadata}
        cls._save_lora_weights(
            save_directory=save_directory,
            lora_layers=layers,
            lora_metadata={prefix: _portable_config(metadata[prefix]) for prefix in layers},
            is_main_process=is_main_process,
            weight_name=weight_name,
            save_function=save_function,
            safe_serialization=safe_serialization,
        )

    def save_lora_adapter(self, save_directory: str | os.PathLike, adapter_name: str | None = None) -> None:
        """Saves one loaded adapter (default: the active one) of every component carrying it, with its `LoraConfig`,
        in diffusers' layout (`save_lora_weights`); `load_lora_weights` reads it back."""
        from peft import get_peft_model_state_dict

        adapter_name = adapter_name or _single(self.get_active_adapters(), "active adapter")
        kwargs = {}
        for component, adapters in self.get_list_adapters().items():
            if adapter_name in adapters:
                model = getattr(self, component)
                kwargs[f"{component}_lora_layers"] = get_peft_model_state_dict(model, adapter_name=adapter_name)
                kwargs[f"{component}_lora_adapter_metadata"] = model.peft_config[adapter_name].to_dict()
        if not kwargs:
            raise ValueError(f"`adapter_name` {adapter_name!r} is not loaded; loaded: {self.get_list_adapters()}.")
        self.save_lora_weights(save_directory, **kwargs)

    def save_pretrained(self, save_directory: str | os.PathLike, *args, **kwargs):
        """`DiffusionPipeline.save_pretrained`, refused while a component carries LoRA layers: its weights would be
        written under PEFT's names (or not at all) and the folder could not be loaded back."""
        carrying = _components_with_lora(self)
        if carrying:
            raise ValueError(
                f"The pipeline's {carrying} carry LoRA adapters ({self.get_list_adapters()}). Save the adapter alone "
                "with `pipe.save_lora_adapter(path, adapter_name)` (load it on the base with `load_lora_weights`), or "
                "merge it into the weights first with `pipe.fuse_lora(); pipe.unload_lora_weights()`."
            )
        return super().save_pretrained(save_directory, *args, **kwargs)

    # ------------------------------------------------------------------------------------------------------------
    # Fusing: diffusers' methods, on every component that carries adapters unless `components` says otherwise
    # ------------------------------------------------------------------------------------------------------------

    def fuse_lora(
        self,
        components: list[str] | None = None,
        lora_scale: float = 1.0,
        safe_fusing: bool = False,
        adapter_names: list[str] | None = None,
        **kwargs,
    ) -> None:
        """Merges the active adapters (or ``adapter_names``) into the weights of ``components`` (default: all
        components with adapters); `unfuse_lora` takes them out again."""
        super().fuse_lora(
            components=components or self._components_with_adapters(),
            lora_scale=lora_scale,
            safe_fusing=safe_fusing,
            adapter_names=adapter_names,
            **kwargs,
        )

    def unfuse_lora(self, components: list[str] | None = None, **kwargs) -> None:
        """Reverses `fuse_lora` on ``components`` (default: all components with adapters)."""
        super().unfuse_lora(components=components or self._components_with_adapters(), **kwargs)

    def _components_with_adapters(self) -> list[str]:
        components = [name for name, adapters in self.get_list_adapters().items() if adapters]
        if not components:
            raise ValueError("The pipeline carries no LoRA adapter: load one with `load_lora_weights` first.")
        return components


def load_lora_into_model(model: torch.nn.Module, state_dict: dict, lora_config, adapter_name: str) -> None:
    """Injects a LoRA adapter into ``model`` with PEFT and loads its weights (PEFT key names, no adapter name).

    The config is recorded in ``model.peft_config[adapter_name]`` (with ``_hf_peft_config_loaded``), where diffusers'
    and transformers' helpers look for a model's adapters.
    """
    from peft import inject_adapter_in_model, set_peft_model_state_dict

    existing = getattr(model, "peft_config", None) or {}
    if adapter_name in existing:
        raise ValueError(f"`adapter_name` {adapter_name!r} is already in use; loaded: {sorted(existing)}.")
    if existing:  # PEFT warns when it finds a config; the adapters of `existing` stay in their layers
        del model.peft_config
    inject_adapter_in_model(lora_config, model, adapter_name=adapter_name)
    result = set_peft_model_state_dict(model, state_dict, adapter_name=adapter_name)
    unexpected = [key for key in result.unexpected_keys if "lora_" in key]
    missing = [key for key in result.missing_keys if "lora_" in key and f".{adapter_name}." in key]
    if unexpected or missing:
        raise ValueError(
            f"The LoRA weights do not fit {type(model).__name__}: unexpected {unexpected[:5]}, missing {missing[:5]}."
        )
    model.peft_config = {**existing, adapter_name: lora_config}
    model._hf_peft_config_loaded = True
    parameter = next(model.parameters())
    model.to(device=parameter.device, dtype=parameter.dtype)  # the new layers join the base weights


def lora_config_from(config: dict | None, state_dict: dict):
    """A `peft.LoraConfig` from a saved config dict, or inferred from the weights (rank from ``lora_A``, target
    modules from the key names, ``lora_alpha = r``) when the checkpoint carries none."""
    from peft import LoraConfig

    if config:
        fields = set(LoraConfig.__dataclass_fields__) - {"peft_type", "runtime_config"}
        return LoraConfig(**{key: value for key, value in config.items() if key in fields})
    ranks = {key: value.shape[0] for key, value in state_dict.items() if key.endswith("lora_A.weight")}
    if not ranks:
        raise ValueError("The LoRA checkpoint has no `lora_A.weight` keys to infer its rank from.")
    rank = max(set(ranks.values()), key=list(ranks.values()).count)
    targets = sorted({key.removesuffix(".lora_A.weight") for key in ranks})
    return LoraConfig(
        r=rank,
        lora_alpha=rank,
        target_modules=targets,
        rank_pattern={
            name: r for name, r in zip(targets, (ranks[f"{t}.lora_A.weight"] for t in targets)) if r != rank
        },
    )


# ----------------------------------------------------------------------------------------------------------------
# Reading checkpoints
# ----------------------------------------------------------------------------------------------------------------


def _read_lora_checkpoint(source, weight_name, subfolder, hub_kwargs) -> tuple[dict, dict | None]:
    if isinstance(source, dict):
        return source, None
    source = os.fspath(source)
    if os.path.isfile(source):
        return _read_safetensors(source)
    peft_config = _find_file(source, PEFT_CONFIG_NAME, subfolder, hub_kwargs)
    if peft_config is not None and weight_name in (None, PEFT_WEIGHTS_NAME):
        return _read_peft_layout(source, subfolder, hub_kwargs)
    weights = _find_file(source, weight_name or LORA_WEIGHT_NAME_SAFE, subfolder, hub_kwargs)
    if weights is None:
        raise ValueError(
            f"`pretrained_model_name_or_path_or_dict` ({source}) holds neither {LORA_WEIGHT_NAME_SAFE} (diffusers) "
            f"nor {PEFT_CONFIG_NAME} + {PEFT_WEIGHTS_NAME} (PEFT){f' in {subfolder!r}' if subfolder else ''}."
        )
    return _read_safetensors(weights)


def _read_safetensors(path: str) -> tuple[dict, dict | None]:
    from safetensors import safe_open
    from safetensors.torch import load_file

    with safe_open(path, framework="pt") as f:
        header = f.metadata() or {}
    metadata = json.loads(header[LORA_ADAPTER_METADATA_KEY]) if LORA_ADAPTER_METADATA_KEY in header else None
    return load_file(path), metadata


def _read_peft_layout(source: str, subfolder: str | None, hub_kwargs: dict) -> tuple[dict, dict]:
    """PEFT folders: the root is the adapter of ``model``; a subfolder named after a component holds its adapter."""
    from safetensors.torch import load_file

    state_dict, metadata = {}, {}
    for component in LatentLMLoraLoaderMixin._lora_loadable_modules:
        folder = subfolder if component == "model" else "/".join(p for p in (subfolder, component) if p)
        config_file = _find_file(source, PEFT_CONFIG_NAME, folder, hub_kwargs)
        weights_file = _find_file(source, PEFT_WEIGHTS_NAME, folder, hub_kwargs)
        if config_file is None or weights_file is None:
            continue
        state_dict.update(_pack_dict_with_prefix(load_file(weights_file), component))
        metadata.update(_pack_dict_with_prefix(json.loads(Path(config_file).read_text()), component))
    return state_dict, metadata


def _find_file(source: str, filename: str, subfolder: str | None, hub_kwargs: dict) -> str | None:
    """The local path of ``filename`` in a folder or a Hub repository (downloaded or from the cache), or None."""
    if os.path.isdir(source):
        path = Path(source, subfolder or "", filename)
        return str(path) if path.is_file() else None
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError

    try:
        return hf_hub_download(source, filename, subfolder=subfolder, **hub_kwargs)
    except (EntryNotFoundError, LocalEntryNotFoundError):
        return None


# ----------------------------------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------------------------------


def _components_with_lora(pipe) -> list[str]:
    """Components with PEFT layers in them (loaded, fused or not) or wrapped in a `PeftModel`."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    names = []
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module) and (
            hasattr(component, "peft_config") or any(isinstance(m, BaseTunerLayer) for m in component.modules())
        ):
            names.append(name)
    return names


def _next_adapter_name(pipe) -> str:
    used = {name for adapters in pipe.get_list_adapters().values() for name in adapters}
    return next(f"default_{i}" for i in range(len(used) + 1) if f"default_{i}" not in used)


def _portable_config(config: dict | None) -> dict | None:
    """A `LoraConfig` dict without local paths: ``base_model_name_or_path`` is kept only when it is a Hub id."""
    if not config:
        return config
    config = dict(config)
    base = config.get("base_model_name_or_path")
    if base and (os.path.isabs(base) or os.path.exists(base)):
        config["base_model_name_or_path"] = None
    return config


def _single(values: list[str], what: str) -> str:
    if len(values) != 1:
        raise ValueError(f"Pass `adapter_name`: there is not exactly one {what} ({values}).")
    return values[0]


def _describe(source) -> str:
    return "a state dict" if isinstance(source, dict) else str(source)
