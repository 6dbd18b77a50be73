"""What every latentlm model class adds to `transformers.PreTrainedModel`: its loading dtype rule and its Hub card."""

import torch

from ..hub import PushToHubMixin


class LatentLMPreTrainedMixin(PushToHubMixin):
    """Mixed in before `PreTrainedModel` by latentlm's model classes (denoisers, training heads, autoencoders).

    * ``from_pretrained`` loads in float32 unless ``dtype`` says otherwise: checkpoints may be stored in float16 to keep
      them small, and the training forward mixes float32 targets (encoder activations, losses) with the weights, so
      a model loaded to train in a hand-written loop must hold float32 master weights. For float16/bfloat16 compute,
      keep the float32 weights and train under ``torch.autocast`` (as ``mixed_precision`` does in `train`); pass
      ``dtype=torch.float16`` only to sample.
    * ``push_to_hub`` writes latentlm's model card (`latentlm.hub.PushToHubMixin`).
    """

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, **kwargs):
        if kwargs.get("dtype") is None and kwargs.get("torch_dtype") is None:
            kwargs["dtype"] = torch.float32
        return super().from_pretrained(pretrained_model_name_or_path, *args, **kwargs)
