"""Validation shared by the method configs: every error names the field and says what was expected."""


def check_positive(config, names) -> None:
    for name in names:
        if getattr(config, name) <= 0:
            raise ValueError(f"`{name}` must be positive, got {getattr(config, name)}.")


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


def check_conditioning(config) -> None:
    """The conditioning fields every method config has (`conditional`, `prompt_prob`, `condition_dropout`,
    `max_prompt_fraction`); a positive `prompt_prob` makes the model conditional."""
    check_probability(config, ("prompt_prob", "condition_dropout"))
    if not 0.0 < config.max_prompt_fraction < 1.0:
        raise ValueError(f"`max_prompt_fraction` must be in (0, 1), got {config.max_prompt_fraction}.")
    if config.prompt_prob > 0:
        config.conditional = True

