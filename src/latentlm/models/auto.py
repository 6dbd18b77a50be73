"""`AutoModelForTextDiffusion`: the Auto class of latentlm's training heads (`ELFForFlowMatching`, ...)."""

from collections import OrderedDict

from transformers.models.auto.auto_factory import _BaseAutoModelClass, _LazyAutoMapping


class _ModelNames(OrderedDict):
    """model_type -> class name; empty: every latentlm head is added with `register`."""


class AutoModelForTextDiffusion(_BaseAutoModelClass):
    """Loads the training head of any registered latentlm method from its config, like `AutoModelForCausalLM`.

    The bare denoisers (`ELFModel`, ...) are registered with `transformers.AutoModel`.
    """

    _model_mapping = _LazyAutoMapping(OrderedDict(), _ModelNames())
