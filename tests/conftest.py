"""Test-wide settings: offline Hub, slow tests behind RUN_SLOW=1, tiny shared fixtures."""

import functools
import os
import tempfile


os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import pytest  # noqa: E402
import torch  # noqa: E402


# The smallest ELF that exercises every part of the backbone (bottleneck, control tokens, self-conditioning).
TINY_ELF = dict(
    vocab_size=32,
    latent_dim=16,
    hidden_size=32,
    num_hidden_layers=2,
    num_attention_heads=2,
    max_position_embeddings=24,
    bottleneck_dim=8,
)
# The smallest Cosmos autoencoder (L = 12 tokens, N = 3 latents) and its augmentation-free variant.
TINY_COSMOS_AE = dict(
    vocab_size=40,
    encoder_dim=16,
    max_position_embeddings=12,
    num_latents=3,
    latent_dim=8,
    hidden_size=32,
    num_attention_heads=2,
    num_compressor_layers=1,
    num_decompressor_layers=1,
    lm_head_dim=16,
)
NO_AUGMENTATION = dict(activation_mask_fraction=0.0, activation_noise_fraction=0.0, latent_dropout=0.0)
WORDS = "the a cat dog sat ran on in mat park and quickly slowly big small red house tree bird sang".split()


# Tiny pretrained encoders for warm starts (`init_denoiser_from`): hidden 32, 2 layers of 2 heads, MLP 48.
TINY_ENCODERS = {
    "bert": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48),
    "roberta": dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=48, pad_token_id=1),
    "electra": dict(hidden_size=32, embedding_size=32, num_hidden_layers=2, num_attention_heads=2,
                    intermediate_size=48),
    "distilbert": dict(dim=32, n_layers=2, n_heads=2, hidden_dim=48),
    "gpt2": dict(n_embd=32, n_layer=2, n_head=2),
}  # fmt: skip


@functools.cache
def tiny_pretrained_encoder(model_type: str = "bert") -> str:
    """Saves a tiny randomly initialised `AutoModel` of ``model_type`` once per session; returns its folder."""
    from transformers import AutoConfig, AutoModel

    torch.manual_seed(0)
    config = AutoConfig.for_model(model_type, vocab_size=50, max_position_embeddings=40, **TINY_ENCODERS[model_type])
    if model_type == "gpt2":
        config.n_positions = 40
    path = os.path.join(tempfile.mkdtemp(prefix="latentlm-tiny-encoder-"), model_type)
    AutoModel.from_config(config).save_pretrained(path)
    return path


def pytest_collection_modifyitems(config, items):
    if os.environ.get("RUN_SLOW", "0") in ("1", "true", "yes"):
        return
    skip = pytest.mark.skip(reason="slow test: set RUN_SLOW=1 to run it")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


def build_tiny_tokenizer():
    """A BERT-like WordLevel tokenizer: [PAD]=0, [UNK]=1, [CLS]=2, [SEP]=3 (end of sequence), [MASK]=4, then words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {tok: i for i, tok in enumerate(specials + WORDS)}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )


@pytest.fixture
def tiny_tokenizer():
    return build_tiny_tokenizer()


class EmbeddingEncoder(torch.nn.Module):
    """A stand-in for a frozen pretrained encoder: an embedding table, with the `config.hidden_size` latentlm reads."""

    def __init__(self, hidden_size=16, vocab_size=40):
        super().__init__()
        self.config = type("Config", (), {"hidden_size": hidden_size, "_name_or_path": "fake"})()
        self.embed = torch.nn.Embedding(vocab_size, hidden_size)

    def get_input_embeddings(self):
        return self.embed

    def forward(self, input_ids, attention_mask=None):
        return type("Out", (), {"last_hidden_state": self.embed(input_ids)})()


def train_killed_after_first_checkpoint(config, monkeypatch) -> None:
    """Runs `train(config)` and kills it right after its first checkpoint is written, as a crash there would, so that
    a test can resume it (`resume_from_checkpoint = "latest"`) and compare with an uninterrupted run."""
    import latentlm.training.trainer as trainer_module
    from latentlm.training import save_checkpoint, train

    class Killed(Exception):
        pass

    def save_then_die(*args, **kwargs):
        save_checkpoint(*args, **kwargs)
        raise Killed

    with monkeypatch.context() as patch:
        patch.setattr(trainer_module, "save_checkpoint", save_then_die)
        with pytest.raises(Killed):
            train(config)
