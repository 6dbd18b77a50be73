"""The sampling interface every diffusion method's model exposes to the one pipeline loop, and the conditioning
parts they share (DESIGN.md §5)."""

from dataclasses import dataclass

import torch


@dataclass
class TextCondition:
    """A condition (a prompt to continue, a source to transform) as the denoiser reads it.

    Attributes:
        hidden_states (`torch.FloatTensor` of shape `(batch, cond_len, width)`): the condition's representation
            (ELF: clean normalised latents placed before the target; Cosmos: states read by cross-attention).
        attention_mask (`torch.BoolTensor` of shape `(batch, cond_len)`): True on real condition tokens. Padding sits
            on the **left** (`left_align`), so the last condition token is always next to the first target token.
            A row whose mask is all False is the unconditional branch (condition dropout, classifier-free guidance).
    """

    hidden_states: torch.Tensor
    attention_mask: torch.Tensor

    def __len__(self) -> int:
        return self.hidden_states.shape[0]

    def __getitem__(self, rows: slice) -> "TextCondition":
        """The condition of a slice of the batch's rows."""
        return TextCondition(self.hidden_states[rows], self.attention_mask[rows])

    def dropped(self, rows: torch.Tensor | None = None) -> "TextCondition":
        """The same condition with `rows` (a `(batch,)` bool mask; all rows when `None`) made unconditional: their
        states are zeroed and masked out."""
        keep = torch.zeros(len(self), dtype=torch.bool, device=self.attention_mask.device)
        if rows is not None:
            keep = ~rows.to(device=keep.device, dtype=torch.bool)
        return TextCondition(
            self.hidden_states * keep[:, None, None].to(self.hidden_states.dtype),
            self.attention_mask & keep[:, None],
        )

    def repeat_interleave(self, repeats: int) -> "TextCondition":
        """Each row `repeats` times in a row (`num_return_sequences`)."""
        return TextCondition(
            self.hidden_states.repeat_interleave(repeats, dim=0), self.attention_mask.repeat_interleave(repeats, dim=0)
        )

    @classmethod
    def cat(cls, conditions: list["TextCondition"]) -> "TextCondition":
        """Stacks conditions along the batch, left-padding the shorter ones (the two halves of a CFG batch)."""
        length = max(c.hidden_states.shape[1] for c in conditions)
        states, masks = [], []
        for c in conditions:
            pad = length - c.hidden_states.shape[1]
            states.append(torch.nn.functional.pad(c.hidden_states, (0, 0, pad, 0)))
            masks.append(torch.nn.functional.pad(c.attention_mask, (pad, 0), value=False))
        return cls(torch.cat(states), torch.cat(masks))


def cross_attention_kwargs(condition: TextCondition | None) -> dict:
    """The backbone's arguments for a condition read by cross-attention (Cosmos, LDLM); none without a condition."""
    if condition is None:
        return {}
    return {"encoder_hidden_states": condition.hidden_states, "encoder_attention_mask": condition.attention_mask}


def left_align(hidden_states: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Moves each row's real positions to the end, keeping their order: right-padded `(batch, len, width)` states
    and `(batch, len)` mask become left-padded ones. Padded positions are zeroed.

    Tokenizers and absolute-position encoders want right padding; the denoiser wants a condition's last token right
    before the target, so that rotary (relative) positions between condition and target do not depend on the
    padding of the batch.
    """
    mask = attention_mask.bool()
    # Stable sort on "is real": padding (False) first, real tokens (True) after, each group in its original order.
    order = torch.sort(mask.to(torch.int8), dim=1, stable=True).indices
    aligned_mask = torch.gather(mask, 1, order)
    aligned = torch.gather(hidden_states, 1, order[..., None].expand_as(hidden_states))
    return aligned * aligned_mask[..., None].to(aligned.dtype), aligned_mask


class LatentDiffusionMixin:
    """What `LatentDiffusionTextPipeline` needs from a model. Method heads (`ELFForFlowMatching`, ...) implement it.

    The pipeline owns the loop and the scheduler integrates; the model only answers these questions:

    * `latent_shape(gen_length)`: the shape of one sample's latents for `gen_length` tokens;
    * `denoise(latents, timestep, ...)`: the clean-latent (x0) prediction at one step;
    * `decode_latents(latents, ...)`: token logits for clean latents (and `decode_latents_to_ids`, their argmax);
    * `get_default_scheduler()`: the scheduler matching the path the model was trained on;
    * for models trained with conditions (`config.conditional`): `encode_condition(input_ids, attention_mask)`, the
      `TextCondition` that `denoise` and `decode_latents` read through their `condition` argument. Classifier-free
      guidance is the pipeline's job (one batched call over the conditional and unconditional halves).
    """

    def latent_shape(self, gen_length: int) -> tuple[int, ...]:
        """Shape of one sample's latents, without the batch dimension."""
        raise NotImplementedError

    def denoise(
        self,
        latents: torch.Tensor,
        timestep: torch.Tensor | float,
        *,
        self_condition: torch.Tensor | None = None,
        sc_guidance_scale: float | None = None,
        condition: TextCondition | None = None,
    ) -> torch.Tensor:
        """Predicts clean latents `(batch, *latent_shape)` from noisy ones at `timestep` (sigma, 1 = noise).

        `sc_guidance_scale` is a guidance scale the model learned to take as an input (ELF's self-conditioning
        guidance); models without one ignore it.
        """
        raise NotImplementedError

    def decode_latents(
        self,
        latents: torch.Tensor,
        *,
        sc_guidance_scale: float | None = None,
        condition: TextCondition | None = None,
    ) -> torch.Tensor:
        """Token logits `(batch, gen_length, vocab_size)` for clean latents."""
        raise NotImplementedError

    def decode_latents_to_ids(
        self,
        latents: torch.Tensor,
        *,
        sc_guidance_scale: float | None = None,
        condition: TextCondition | None = None,
    ) -> torch.LongTensor:
        """Greedy token ids `(batch, gen_length)` for clean latents: the argmax of `decode_latents`.

        Models with a wide output head override it with `greedy_token_ids`, which skips the float32 logits.
        """
        return self.decode_latents(latents, sc_guidance_scale=sc_guidance_scale, condition=condition).argmax(dim=-1)

    def encode_condition(
        self, input_ids: torch.LongTensor, attention_mask: torch.Tensor | None = None
    ) -> TextCondition:
        """The condition `denoise` reads, from right-padded token ids `(batch, cond_len)` of the model's tokenizer."""
        raise NotImplementedError(f"{type(self).__name__} cannot be conditioned.")

    def get_default_scheduler(self):
        raise NotImplementedError

    @property
    def max_gen_length(self) -> int:
        """The longest generation the model supports."""
        return self.config.max_position_embeddings

    @property
    def is_conditional(self) -> bool:
        """Whether the model was trained with conditions (prompts or sources) and accepts them."""
        return bool(getattr(self.config, "conditional", False))

    def max_condition_length(self, gen_length: int) -> int:
        """The longest condition (in tokens) the model reads beside `gen_length` generated tokens."""
        return self.config.max_position_embeddings

    def default_gen_length(self, condition_length: int = 0) -> int:
        """Tokens generated when the caller does not say, beside a condition of `condition_length` tokens."""
        return self.max_gen_length


class ConditionalTrainingMixin:
    """Training-time conditions shared by the methods (DESIGN §5): paired data, prompt continuation, condition
    dropout.

    * Paired data (sequence to sequence): batches carry `condition_input_ids` / `condition_attention_mask`.
    * Prompt continuation on an unconditional corpus: with probability `config.prompt_prob` a batch is split at one
      random point `p` (uniform in `[1, max_prompt_fraction * seq_len]`); the first `p` tokens are the condition and
      the rest the target. One split per batch keeps the tensors rectangular; with rotary (relative) positions a
      target that starts at position `p` is the same as one that starts at 0.
    * Condition dropout: each conditioned row loses its condition with probability `config.condition_dropout`, so
      one model also learns the unconditional branch that classifier-free guidance needs.
    """

    def sample_prompt_split(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None) -> int:
        """The split point `p` of a continuation batch (0: train this batch unconditionally)."""
        cfg = self.config
        if not self.training or not cfg.conditional or cfg.prompt_prob <= 0:
            return 0
        if torch.rand(()) >= cfg.prompt_prob:
            return 0
        seq_len = input_ids.shape[1]
        longest = int(cfg.max_prompt_fraction * seq_len)
        if attention_mask is not None:  # keep at least one real target token in every row
            longest = min(longest, int(attention_mask.sum(dim=1).min().item()) - 1)
        if longest < 1:
            return 0
        return int(torch.randint(1, longest + 1, ()).item())

    def split_window(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None, split: int):
        """A continuation batch's window `(batch, L)` cut at `split` for models that encode the target with a codec
        (Cosmos, LDLM): `(prompt_ids, prompt_mask)` are the first `split` tokens, `(target_ids, target_mask)` the rest,
        moved to position 0 and right-padded to L with the pad id (mask 0), so the codec reads the target as a text of
        its own."""
        mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask
        pad_id = self.config.pad_token_id or 0
        target_ids = torch.nn.functional.pad(input_ids[:, split:], (0, split), value=pad_id)
        target_mask = torch.nn.functional.pad(mask[:, split:], (0, split), value=0)
        return input_ids[:, :split], mask[:, :split], target_ids, target_mask

    def drop_conditions(self, condition: TextCondition) -> TextCondition:
        """Condition dropout in training (each row with probability `config.condition_dropout`)."""
        if not self.training or self.config.condition_dropout <= 0:
            return condition
        rows = torch.rand(len(condition), device=condition.attention_mask.device) < self.config.condition_dropout
        return condition.dropped(rows)

    def check_condition_inputs(self, condition_input_ids) -> None:
        if condition_input_ids is not None and not self.config.conditional:
            raise ValueError(
                "`condition_input_ids` were given but the model was built with `conditional=False`; set "
                "`conditional: true` in its config to train with conditions."
            )
