"""Warm-starting a denoiser from a pretrained Hugging Face encoder's transformer layers (``init_denoiser_from``).

The backbone's default block (pre-norm RMSNorm, SwiGLU, RoPE, qk-norm) cannot hold a BERT layer without loss, so a
warm-started denoiser is built with ``block_type="bert"``: blocks that are a BERT layer exactly (post-norm
LayerNorm, biased attention and GELU MLP, absolute position embeddings added before an embedding LayerNorm). The
pretrained model's sizes (hidden size, layers, heads, MLP width, activation, LayerNorm eps) become the denoiser's;
`pretrained_block_kwargs` reads them. Copied: every layer's attention, MLP and LayerNorms, the position embeddings
(with the token-type-0 embedding folded in: every denoiser token is of type 0) and the embedding LayerNorm. Fresh:
the control tokens (time, guidance, mode), the self-conditioning and input projections, the output norm and head
(and the method's own heads, e.g. ELF's decoder). With ``init_denoiser_fit_projections`` the input projection is
instead fitted by least squares on the first training batches (`fit_input_projection`): latents enter as the
pretrained word embeddings of their tokens, the inputs the copied layers were trained on.

Architectures that map, by ``config.model_type``: ``bert`` (also MiniLM, e.g. all-MiniLM-L6-v2, and BERT-shaped
sentence encoders), ``roberta``, ``xlm-roberta``, ``camembert``, ``electra`` (when its embedding size equals its hidden
size) and ``distilbert``. Any other type (``gpt2``, ``llama``, ``t5``, ``deberta-v2``, ...) is refused by name:
their blocks differ (causal or relative attention, pre-norm, gated MLPs), so a copy would not be their layer.

The copy happens when a model is built from a config whose ``init_denoiser_from`` is set (``latentlm train``, or
``ELFForFlowMatching(ELFConfig(**pretrained_block_kwargs(path)))`` from Python), never in ``from_pretrained``: a
saved warm-started model holds every weight and loads without the pretrained encoder.
"""

import contextlib
import contextvars

import torch
import torch.nn.functional as F
from torch import nn
from transformers.activations import ACT2FN
from transformers.modeling_layers import GradientCheckpointingLayer


BLOCK_TYPES = ("default", "bert")
# model_type -> how its modules are laid out (see `_pretrained_parts`).
BERT_LIKE = ("bert", "roberta", "xlm-roberta", "camembert", "electra")
SUPPORTED_MODEL_TYPES = BERT_LIKE + ("distilbert",)
# Position ids of RoBERTa-style models start after the padding index (`padding_idx + 1`).
_OFFSET_POSITIONS = ("roberta", "xlm-roberta", "camembert")

_SKIP_WARM_START = contextvars.ContextVar("latentlm_skip_warm_start", default=False)


@contextlib.contextmanager
def skip_warm_start():
    """Inside this context, building a model does not copy ``init_denoiser_from`` (its weights come from elsewhere:
    `from_pretrained`, a checkpoint being resumed)."""
    token = _SKIP_WARM_START.set(True)
    try:
        yield
    finally:
        _SKIP_WARM_START.reset(token)


# ----------------------------------------------------------------------------------------------------------------
# The BERT block
# ----------------------------------------------------------------------------------------------------------------


def check_block_config(config) -> None:
    """Validates ``block_type`` and the fields the BERT block reads, each error naming its field."""
    block_type = getattr(config, "block_type", "default")
    if block_type not in BLOCK_TYPES:
        raise ValueError(f"`block_type` must be one of {BLOCK_TYPES}, got {block_type!r}.")
    if block_type == "bert":
        if getattr(config, "hidden_act", "gelu") not in ACT2FN:
            raise ValueError(f"`hidden_act` must be a transformers activation name, got {config.hidden_act!r}.")
        if getattr(config, "cross_attention_dim", None):
            raise ValueError("`block_type='bert'` has no cross-attention: unset `cross_attention_dim`.")
    if getattr(config, "init_denoiser_fit_projections", False) and getattr(config, "init_denoiser_from", None) is None:
        raise ValueError(
            "`init_denoiser_fit_projections` fits projections to copied layers: set `init_denoiser_from`."
        )
    if getattr(config, "init_denoiser_from", None) is not None and block_type != "bert":
        raise ValueError(
            "`init_denoiser_from` copies a pretrained encoder's layers into BERT blocks: set `block_type='bert'` "
            "and the encoder's sizes (`latentlm.models.warm_start.pretrained_block_kwargs(path)` gives them)."
        )


class BertStyleSelfAttention(nn.Module):
    """BERT's self-attention: fused biased q/k/v, scaled dot product (no positions, no qk-norm), biased output."""

    def __init__(self, config):
        super().__init__()
        self.num_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.qkv = nn.Linear(config.hidden_size, 3 * config.hidden_size, bias=True)
        self.out_proj = nn.Linear(config.hidden_size, config.hidden_size, bias=True)

    def forward(
        self, hidden_states: torch.Tensor, attention_mask: torch.Tensor | None, dropout: float
    ) -> torch.Tensor:
        batch, seq_len, _ = hidden_states.shape
        qkv = self.qkv(hidden_states).view(batch, seq_len, 3, self.num_heads, self.head_dim)
        q, k, v = (x.transpose(1, 2) for x in qkv.unbind(dim=2))
        mask = None if attention_mask is None else attention_mask[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout)
        return self.out_proj(out.transpose(1, 2).reshape(batch, seq_len, -1))


class BertStyleBlock(GradientCheckpointingLayer):
    """One BERT encoder layer (post-norm): ``h = LN(h + Attn(h)); h = LN(h + W2 act(W1 h))``.

    Same call signature as `DenoiserBlock`; ``rotary`` is ignored (positions enter once, in `AbsolutePositions`).
    """

    def __init__(self, config, dropout: float):
        super().__init__()
        self.dropout = dropout
        self.attn = BertStyleSelfAttention(config)
        self.attn_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.up_proj = nn.Linear(config.hidden_size, config.intermediate_size, bias=True)
        self.act = ACT2FN[config.hidden_act]
        self.down_proj = nn.Linear(config.intermediate_size, config.hidden_size, bias=True)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(
        self,
        hidden_states: torch.Tensor,
        rotary=None,
        attention_mask: torch.Tensor | None = None,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        dropout = self.dropout if self.training else 0.0
        attn = self.attn(hidden_states, attention_mask, dropout)
        hidden_states = self.attn_norm(hidden_states + F.dropout(attn, p=dropout, training=dropout > 0))
        mlp = self.down_proj(self.act(self.up_proj(hidden_states)))
        return self.mlp_norm(hidden_states + F.dropout(mlp, p=dropout, training=dropout > 0))


class AbsolutePositions(nn.Module):
    """BERT's embedding stage for the denoiser's sequence: learned absolute positions added to the condition and
    latent tokens (positions ``0 .. cond_len + seq_len - 1``, the order a BERT reads the text in), nothing added to
    the control prefix, then a LayerNorm over every token."""

    def __init__(self, config):
        super().__init__()
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, hidden_states: torch.Tensor, num_control: int) -> torch.Tensor:
        """hidden_states: `(batch, num_control + num_positions, hidden)` -> the same shape."""
        num_positions = hidden_states.shape[1] - num_control
        if num_positions > self.position_embeddings.num_embeddings:
            raise ValueError(
                f"The sequence has {num_positions} positions but the model supports at most "
                f"{self.position_embeddings.num_embeddings} (`max_position_embeddings`)."
            )
        positions = self.position_embeddings.weight[:num_positions].to(hidden_states.dtype)
        hidden_states = torch.cat([hidden_states[:, :num_control], hidden_states[:, num_control:] + positions], dim=1)
        return self.norm(hidden_states)


# ----------------------------------------------------------------------------------------------------------------
# Reading a pretrained encoder
# ----------------------------------------------------------------------------------------------------------------


def _load_pretrained_config(name_or_path: str):
    from transformers import AutoConfig

    from .encoders import resolve_encoder_path

    try:
        return AutoConfig.from_pretrained(resolve_encoder_path(name_or_path))
    except (OSError, ValueError) as err:
        raise ValueError(f"`init_denoiser_from` ({name_or_path!r}) is not a loadable `AutoModel` path: {err}") from err


def _check_model_type(config, name_or_path: str) -> str:
    model_type = config.model_type
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise ValueError(
            f"`init_denoiser_from` ({name_or_path!r}) is a {model_type!r} model; only encoders with BERT-style "
            f"post-norm blocks map onto the denoiser: {', '.join(SUPPORTED_MODEL_TYPES)}."
        )
    if model_type == "electra" and config.embedding_size != config.hidden_size:
        raise ValueError(
            f"`init_denoiser_from` ({name_or_path!r}): an ELECTRA whose embedding size ({config.embedding_size}) "
            f"differs from its hidden size ({config.hidden_size}) has no position table of the blocks' width."
        )
    return model_type


def pretrained_block_kwargs(name_or_path: str) -> dict:
    """The denoiser config entries that make its blocks those of ``name_or_path``: ``init_denoiser_from``,
    ``block_type="bert"`` and the pretrained sizes (read from its config only, no weights loaded)."""
    config = _load_pretrained_config(name_or_path)
    model_type = _check_model_type(config, name_or_path)
    if model_type == "distilbert":
        sizes = {
            "hidden_size": config.dim,
            "num_hidden_layers": config.n_layers,
            "num_attention_heads": config.n_heads,
            "intermediate_size": config.hidden_dim,
            "hidden_act": config.activation,
            "layer_norm_eps": 1e-12,  # DistilBERT's LayerNorms use a fixed eps
        }
    else:
        sizes = {
            "hidden_size": config.hidden_size,
            "num_hidden_layers": config.num_hidden_layers,
            "num_attention_heads": config.num_attention_heads,
            "intermediate_size": config.intermediate_size,
            "hidden_act": config.hidden_act,
            "layer_norm_eps": config.layer_norm_eps,
        }
    return {"init_denoiser_from": name_or_path, "block_type": "bert", **sizes}


def _layer_parts(layer, model_type: str) -> dict[str, nn.Module]:
    """The modules of one pretrained layer under the denoiser block's names."""
    if model_type == "distilbert":
        attn = layer.attention
        return {
            "q": attn.q_lin, "k": attn.k_lin, "v": attn.v_lin, "attn.out_proj": attn.out_lin,
            "attn_norm": layer.sa_layer_norm, "up_proj": layer.ffn.lin1, "down_proj": layer.ffn.lin2,
            "mlp_norm": layer.output_layer_norm,
        }  # fmt: skip
    self_attn = layer.attention.self
    return {
        "q": self_attn.query, "k": self_attn.key, "v": self_attn.value,
        "attn.out_proj": layer.attention.output.dense, "attn_norm": layer.attention.output.LayerNorm,
        "up_proj": layer.intermediate.dense, "down_proj": layer.output.dense, "mlp_norm": layer.output.LayerNorm,
    }  # fmt: skip


def _pretrained_parts(encoder) -> tuple[list, torch.Tensor, nn.Module]:
    """(layers, position table of type-0 tokens `(max_positions, hidden)`, embedding LayerNorm) of ``encoder``."""
    model_type = encoder.config.model_type
    embeddings = encoder.embeddings
    if model_type == "distilbert":
        layers = list(encoder.transformer.layer)
        positions = embeddings.position_embeddings.weight
    else:
        layers = list(encoder.encoder.layer)
        positions = embeddings.position_embeddings.weight
        if model_type in _OFFSET_POSITIONS:
            positions = positions[encoder.config.pad_token_id + 1 :]
        positions = positions + embeddings.token_type_embeddings.weight[0]
    return [_layer_parts(layer, model_type) for layer in layers], positions, embeddings.LayerNorm


@torch.no_grad()
def copy_pretrained_layers(denoiser: nn.Module, encoder: nn.Module, name_or_path: str = "the encoder") -> None:
    """Copies ``encoder``'s layers, position embeddings and embedding LayerNorm into ``denoiser`` (a
    `DenoiserTransformer` built with ``block_type="bert"``); every other weight of the denoiser is left as it is.

    Raises:
        ValueError: naming the size that differs, or the architecture when it does not map.
    """
    _check_model_type(encoder.config, name_or_path)
    layers, positions, embed_norm = _pretrained_parts(encoder)
    config = denoiser.config
    if getattr(config, "block_type", "default") != "bert":
        raise ValueError("The denoiser must be built with `block_type='bert'` to hold a pretrained encoder's layers.")
    first = layers[0]
    pretrained = {
        "num_hidden_layers": len(layers),
        "hidden_size": first["q"].in_features,
        "intermediate_size": first["up_proj"].out_features,
    }
    for name, value in pretrained.items():
        if getattr(config, name) != value:
            raise ValueError(
                f"`{name}` is {getattr(config, name)} but `init_denoiser_from` ({name_or_path}) has {value}: take the "
                "sizes from `pretrained_block_kwargs`."
            )
    num_heads = getattr(encoder.config, "num_attention_heads", getattr(encoder.config, "n_heads", None))
    if num_heads != config.num_attention_heads:
        raise ValueError(
            f"`num_attention_heads` is {config.num_attention_heads} but `init_denoiser_from` ({name_or_path}) has "
            f"{num_heads}."
        )
    table = denoiser.positions.position_embeddings.weight
    if positions.shape[0] < table.shape[0]:
        raise ValueError(
            f"`max_position_embeddings` is {table.shape[0]} but `init_denoiser_from` ({name_or_path}) has "
            f"{positions.shape[0]} positions."
        )
    table.copy_(positions[: table.shape[0]])
    denoiser.positions.norm.load_state_dict(embed_norm.state_dict())
    for block, parts in zip(denoiser.blocks, layers):
        block.attn.qkv.weight.copy_(torch.cat([parts["q"].weight, parts["k"].weight, parts["v"].weight]))
        block.attn.qkv.bias.copy_(torch.cat([parts["q"].bias, parts["k"].bias, parts["v"].bias]))
        for name in ("attn.out_proj", "attn_norm", "up_proj", "down_proj", "mlp_norm"):
            block.get_submodule(name).load_state_dict(parts[name].state_dict())


def warm_start_denoisers(model: nn.Module) -> None:
    """Copies ``model.config.init_denoiser_from`` into every `DenoiserTransformer` of ``model`` (called when a model
    is built; a no-op when the field is unset or inside `skip_warm_start`)."""
    from transformers import AutoModel

    from .backbone import DenoiserTransformer
    from .encoders import resolve_encoder_path

    name_or_path = getattr(model.config, "init_denoiser_from", None)
    if name_or_path is None or _SKIP_WARM_START.get():
        return
    # A training head builds its bare denoiser model first, and both run `post_init`: copy once.
    denoisers = [
        module
        for module in model.modules()
        if isinstance(module, DenoiserTransformer) and getattr(module, "_warm_started_from", None) != name_or_path
    ]
    if not denoisers:
        return
    _check_model_type(_load_pretrained_config(name_or_path), name_or_path)
    encoder = AutoModel.from_pretrained(resolve_encoder_path(name_or_path), dtype=torch.float32)
    device = next(iter(model.parameters())).device
    for denoiser in denoisers:
        copy_pretrained_layers(denoiser, encoder.to(device), name_or_path)
        denoiser._warm_started_from = name_or_path


# ----------------------------------------------------------------------------------------------------------------
# Optional: fitting the fresh input projection to the copied layers (`init_denoiser_fit_projections`)
# ----------------------------------------------------------------------------------------------------------------


def pretrained_word_embeddings(name_or_path: str, vocab_size: int) -> torch.Tensor:
    """The word-embedding table `(vocab_size, hidden)` of ``init_denoiser_from``; its vocabulary must be the model's
    (the fit reads token ids of the model's tokenizer)."""
    from transformers import AutoModel

    from .encoders import resolve_encoder_path

    encoder = AutoModel.from_pretrained(resolve_encoder_path(name_or_path), dtype=torch.float32)
    table = encoder.get_input_embeddings().weight.detach()
    if table.shape[0] != vocab_size:
        raise ValueError(
            f"`init_denoiser_fit_projections`: `init_denoiser_from` ({name_or_path}) has a vocabulary of "
            f"{table.shape[0]} tokens but the model has `vocab_size` {vocab_size}: they must share the tokenizer."
        )
    return table


def _least_squares(inputs: torch.Tensor, targets: torch.Tensor, ridge: float = 1e-4) -> tuple[torch.Tensor, ...]:
    """Ridge regression ``targets ~ inputs @ W.T + b`` in float64: `(N, a), (N, b)` -> `W (b, a)`, `b (b,)`."""
    inputs, targets = inputs.double(), targets.double()
    mean_in, mean_out = inputs.mean(0), targets.mean(0)
    centred = inputs - mean_in
    gram = centred.T @ centred
    gram += ridge * gram.diagonal().mean() * torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device)
    weight = torch.linalg.solve(gram, centred.T @ (targets - mean_out)).T
    return weight.float(), (mean_out - weight @ mean_in).float()


@torch.no_grad()
def fit_input_projection(denoiser: nn.Module, latents: torch.Tensor, embeddings: torch.Tensor) -> None:
    """Sets the denoiser's input path so that clean latents enter as the pretrained encoder's word embeddings of
    their tokens (a least-squares fit): the copied layers then see inputs like those they were trained on.

    Args:
        latents: `(N, latent_dim)` clean latents of N real tokens.
        embeddings: `(N, hidden)` the pretrained word embeddings of the same tokens.

    The self-conditioning projection (if any) starts as ``[I | 0]`` (the estimate is ignored until trained); with a
    bottleneck the fitted map is truncated to its rank by SVD and split over the two linear layers.
    """
    if denoiser.self_cond_proj is not None:
        width = latents.shape[1]
        eye = torch.eye(width, dtype=denoiser.self_cond_proj.weight.dtype, device=latents.device)
        denoiser.self_cond_proj.weight.copy_(torch.cat([eye, torch.zeros_like(eye)], dim=1))
        denoiser.self_cond_proj.bias.zero_()
    weight, bias = _least_squares(latents, embeddings)
    if isinstance(denoiser.input_proj, nn.Sequential):
        down, up = denoiser.input_proj
        u, s, vh = torch.linalg.svd(weight, full_matrices=False)
        rank = down.out_features
        root = s[:rank].sqrt()
        down.weight.copy_(root[:, None] * vh[:rank])
        up.weight.copy_(u[:, :rank] * root)
        up.bias.copy_(bias)
    else:
        denoiser.input_proj.weight.copy_(weight)
        denoiser.input_proj.bias.copy_(bias)
