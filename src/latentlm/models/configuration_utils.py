"""Validation shared by the method configs: every error names the field and says what was expected."""

import dataclasses
import difflib
import functools
import math
import types
import typing


def check_positive(config, names) -> None:
    for name in names:
        value = getattr(config, name)
        if isinstance(value, float) and math.isnan(value) or value <= 0:
            raise ValueError(f"`{name}` must be positive, got {value}.")


def check_probability(config, names) -> None:
    for name in names:
        if not 0.0 <= getattr(config, name) <= 1.0:
            raise ValueError(f"`{name}` must be in [0, 1], got {getattr(config, name)}.")


def check_heads_divide_hidden(config) -> None:
    if config.hidden_size % config.num_attention_heads:
        raise ValueError(
            f"`hidden_size` ({config.hidden_size}) must be divisible by `num_attention_heads` "
            f"({config.num_attention_heads})."
        )


def check_distillation(config) -> None:
    """`distill_steps` (None or positive) and `distill_teacher_steps` (positive) of a distillable method's config."""
    if config.distill_steps is not None and config.distill_steps < 1:
        raise ValueError(f"`distill_steps` must be a positive integer or None, got {config.distill_steps}.")
    if config.distill_teacher_steps < 1:
        raise ValueError(f"`distill_teacher_steps` must be a positive integer, got {config.distill_teacher_steps}.")


# Keys a saved or user-built `PreTrainedConfig` may carry besides the dataclass fields (transformers reads them).
_KNOWN_EXTRA_KEYS = {
    "model_type", "name_or_path", "attn_implementation", "experts_implementation", "num_labels", "output_attentions",
    "torch_dtype", "rope_scaling", "per_layer_config", "auto_map", "use_cache", "return_unused_kwargs",
}  # fmt: skip
# Integer fields named like sizes must be positive; every other integer field must be >= 0.
_POSITIVE_INT_SUFFIXES = ("_size", "_dim", "_layers", "_heads", "_embeddings", "num_latents")
# Float fields named like scales must be positive; dropouts are probabilities; every float must be finite.
_POSITIVE_FLOAT_SUFFIXES = ("_std", "_scale", "_clamp", "_eps", "_theta", "_range", "schedule_d")


def _allowed_types(annotation) -> tuple[set, bool]:
    """(`{int, float, bool, str, ...}` the field accepts, whether it accepts None) from a field annotation."""
    if isinstance(annotation, (types.UnionType,)) or typing.get_origin(annotation) is typing.Union:
        args = typing.get_args(annotation)
        return {a for a in args if a is not type(None)}, type(None) in args
    return {annotation}, False


def check_field_values(config, allow_none: bool = False) -> None:
    """Type, finiteness and sign of every method-specific dataclass field, each error naming the field.

    Catches what transformers accepts silently: ``hidden_size='64'``, ``num_hidden_layers=1.5``, a negative
    ``intermediate_size``, ``bottleneck_dim=0``, ``latent_std=NaN``, ``sigma_clamp=-1``.

    A config class lists in ``_signed_fields`` the numeric fields whose range its own ``__post_init__`` checks
    instead of the naming rule (e.g. a negative layer index, a std that may be 0); their type is still checked.
    """
    from transformers import PreTrainedConfig

    base_fields = {f.name for f in dataclasses.fields(PreTrainedConfig)}
    signed = getattr(type(config), "_signed_fields", ())
    for field in dataclasses.fields(config):
        if field.name in base_fields or field.name.endswith("_token_id"):
            continue
        value = getattr(config, field.name)
        allowed, optional = _allowed_types(field.type)
        if value is None:
            if not optional and not allow_none:
                raise ValueError(f"`{field.name}` must be set, got None.")
            continue
        name = field.name
        if bool in allowed:
            if not isinstance(value, bool):
                raise ValueError(f"`{name}` must be a bool, got {value!r}.")
        elif int in allowed:
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"`{name}` must be an integer, got {value!r} ({type(value).__name__}).")
            if name in signed:
                continue
            if name.endswith(_POSITIVE_INT_SUFFIXES) and value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value}.")
            if value < 0:
                raise ValueError(f"`{name}` must be >= 0, got {value}.")
        elif float in allowed:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"`{name}` must be a finite number, got {value!r}.")
            if name in signed:
                continue
            if name.endswith(_POSITIVE_FLOAT_SUFFIXES) and value <= 0:
                raise ValueError(f"`{name}` must be positive, got {value}.")
            if name.endswith("_dropout") and not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must be in [0, 1), got {value}.")
        elif str in allowed and not isinstance(value, str):
            raise ValueError(f"`{name}` must be a string, got {value!r}.")


class StrictConfigMixin:
    """Makes a latentlm config refuse what transformers would accept silently. Put it before `PreTrainedConfig`.

    * a `config.json` of another `model_type` (`from_dict` / `from_pretrained` raise instead of warning);
    * keys that are not fields of the config (a misspelt ``hiden_size`` would otherwise become an attribute and the
      real field keep its default);
    * wrongly typed, non-finite or out-of-range field values (`check_field_values`).

    A config class whose new fields default to a new behaviour lists in ``_absent_key_defaults`` the values that keep
    the old behaviour: `from_dict` (hence `from_pretrained`) gives them to a saved config that lacks those keys
    because it was saved before they existed, while a config built in code gets the field defaults.
    """

    _absent_key_defaults: dict = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        own = cls.__dict__.get("__post_init__")
        if own is not None and not getattr(own, "_checks_fields_first", False):
            # A method's `__post_init__` derives defaults (e.g. `intermediate_size`) from other fields: check types
            # before it computes anything with them, so `hidden_size="64"` fails by name, not deep in arithmetic.
            @functools.wraps(own)
            def post_init(self, **post_kwargs):
                check_field_values(self, allow_none=True)
                own(self, **post_kwargs)

            post_init._checks_fields_first = True
            cls.__post_init__ = post_init

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        model_type = config_dict.get("model_type")
        if model_type is not None and model_type != cls.model_type:
            raise ValueError(
                f"This config has `model_type` {model_type!r} but {cls.__name__} expects {cls.model_type!r}: it "
                "belongs to another model class."
            )
        absent = {key: value for key, value in cls._absent_key_defaults.items() if key not in config_dict}
        return super().from_dict({**config_dict, **absent}, **kwargs)

    def __post_init__(self, **kwargs):
        names = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(k for k in kwargs if k not in _KNOWN_EXTRA_KEYS and not k.startswith("_"))
        if unknown:
            hints = []
            for key in unknown:
                close = difflib.get_close_matches(key, names, n=1)
                hints.append(f"`{key}`" + (f" (did you mean `{close[0]}`?)" if close else ""))
            raise ValueError(f"{type(self).__name__} got unknown config keys: {', '.join(hints)}.")
        check_field_values(self)
        super().__post_init__(**kwargs)


def check_conditioning(config) -> None:
    """The conditioning fields every method config has (`conditional`, `prompt_prob`, `condition_dropout`,
    `max_prompt_fraction`); a positive `prompt_prob` makes the model conditional."""
    check_probability(config, ("prompt_prob", "condition_dropout"))
    if not 0.0 < config.max_prompt_fraction < 1.0:
        raise ValueError(f"`max_prompt_fraction` must be in (0, 1), got {config.max_prompt_fraction}.")
    if config.prompt_prob > 0:
        config.conditional = True
