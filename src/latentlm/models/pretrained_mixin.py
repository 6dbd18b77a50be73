"""What every latentlm model class adds to `transformers.PreTrainedModel`: its loading rules and its Hub card."""

import torch

from ..hub import PushToHubMixin, check_local_path, reraise_naming_file


class LatentLMModelMixin(PushToHubMixin):
    """Mixed in before `PreTrainedModel` by latentlm's model classes (denoisers, training heads, autoencoders).

    * Attention is always `scaled_dot_product_attention` with a real key mask: ``attn_implementation="eager"`` (or a
      flash kernel), which transformers would accept while the model kept using SDPA, is refused by name.
    * ``from_pretrained`` loads in float32 unless ``dtype`` says otherwise: checkpoints may be stored in float16 to keep
      them small, and the training forward mixes float32 targets (encoder activations, losses) with the weights, so
      a model loaded to train in a hand-written loop must hold float32 master weights. For float16/bfloat16 compute,
      keep the float32 weights and train under ``torch.autocast`` (as ``mixed_precision`` does in `train`); pass
      ``dtype=torch.float16`` only to sample.
    * ``from_pretrained`` refuses a checkpoint that leaves weights of the model missing (a config whose size keys were
      misspelt or dropped builds a differently shaped model and would silently train from random weights), names
      the folder or file when the weights or the config cannot be read, and says so when a local path is missing.
    * ``push_to_hub`` writes latentlm's model card (`latentlm.hub.PushToHubMixin`).
    * ``get_input_embeddings`` is None unless the model has a token embedding table (NFDM): the others read continuous
      inputs (a frozen encoder's states, latents). Accelerate's FSDP asks every model for it.
    """

    def get_input_embeddings(self):
        return None

    def _check_and_adjust_attn_implementation(self, attn_implementation, is_init_check=False, **kwargs):
        if attn_implementation not in (None, "sdpa"):
            raise ValueError(
                f"{type(self).__name__} only implements `attn_implementation='sdpa'` "
                f"(torch's scaled_dot_product_attention), got {attn_implementation!r}."
            )
        return "sdpa"

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        check_local_path(pretrained_model_name_or_path)
        if kwargs.get("dtype") is None and kwargs.get("torch_dtype") is None:
            kwargs["dtype"] = torch.float32
        want_info = kwargs.pop("output_loading_info", False)
        with reraise_naming_file(pretrained_model_name_or_path):
            try:
                model, info = super().from_pretrained(
                    pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs
                )
            except RuntimeError as err:
                if "ignore_mismatched_sizes" not in str(err):
                    raise
                raise ValueError(
                    f"{pretrained_model_name_or_path!s}: the stored weights have other shapes than its config.json "
                    "describes (a missing or edited size key? see the load report above). Pass "
                    "`ignore_mismatched_sizes=True` to initialise them randomly."
                ) from err
        if info.get("missing_keys") and not kwargs.get("ignore_mismatched_sizes"):
            missing = sorted(info["missing_keys"])
            raise ValueError(
                f"{pretrained_model_name_or_path!s} has no stored weights for {len(missing)} parameters of "
                f"{cls.__name__} (e.g. {missing[:3]}): its config.json does not describe the stored weights (a "
                "misspelt or missing size key?). Pass `ignore_mismatched_sizes=True` to initialise them randomly."
            )
        return (model, info) if want_info else model
