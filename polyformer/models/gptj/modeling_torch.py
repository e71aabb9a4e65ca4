"""GPT-J in PyTorch (Wang & Komatsuzaki, 2021): a decoder of parallel-residual blocks with rotary
position embedding on the first rotary_dim dims of each head ("rotate every two").

Notation: B batch, T new tokens, S = past + T keys, C width (n_embd), H heads, D head dim, L layers.
The block, stack and LM head are shared with CodeGen (polyformer/pt/decoder.py); GPT-J's own part is
its attention projections. Module attributes are the reference's checkpoint keys
(transformer.h.0.attn.q_proj, lm_head, score, qa_outputs).
"""

from __future__ import annotations

import torch
import torch.nn as nn

from ...generation.utils import GenerationMixin
from ...outputs import QuestionAnsweringModelOutput, SequenceClassifierOutputWithPast, finish
from ...pt.attention import split_heads
from ...pt.decoder import ParallelAttention, ParallelDecoder, ParallelDecoderForCausalLM
from ...pt.heads import classification_loss, last_token_pool, span_qa_loss
from ...pt.modeling import PreTrainedModel
from .configuration import GPTJConfig



class GPTJAttention(ParallelAttention):
    """Separate q_proj, k_proj, v_proj (C -> C, no bias) and out_proj. The reference masks future
    keys before dividing the scores by sqrt(D); `GPTJModel`'s `mask_options` reproduce that."""

    def __init__(self, config: GPTJConfig, layer_idx: int):
        super().__init__(config, layer_idx)
        self.k_proj, self.v_proj, self.q_proj = (nn.Linear(config.n_embd, config.n_embd, bias=False) for _ in range(3))

    def project(self, x: torch.Tensor):
        q = split_heads(self.q_proj(x), self.n_head)  # (B, H, T, D)
        k = split_heads(self.k_proj(x), self.n_head)
        return q, k, split_heads(self.v_proj(x), self.n_head)


class GPTJPreTrainedModel(PreTrainedModel):
    config_class = GPTJConfig
    base_model_prefix = "transformer"
    _no_split_modules = ["ParallelBlock"]  # device_map: each block whole on one device (4.37: GPTJBlock)
    _skip_keys_device_placement = "past_key_values"


class GPTJModel(GPTJPreTrainedModel, ParallelDecoder):
    """The bare decoder: last_hidden_state (B, T, C), past_key_values, hidden states, attentions.

    Example:
        >>> import torch
        >>> from polyformer import GPTJConfig, GPTJModel
        >>> model = GPTJModel(GPTJConfig(n_layer=2, n_embd=64, n_head=4, rotary_dim=8, vocab_size=100))
        >>> model(torch.tensor([[1, 2, 3]])).last_hidden_state.shape
        torch.Size([1, 3, 64])
    """

    attention_class = GPTJAttention

    def __init__(self, config: GPTJConfig):
        super().__init__(config)
        # future keys hold dtype-min / sqrt(D) (masked, then scaled); padding adds dtype-min on top
        self.mask_options = {"mask_then_scale_dim": config.n_embd // config.n_head, "stack": True}


class GPTJForCausalLM(GenerationMixin, GPTJPreTrainedModel, ParallelDecoderForCausalLM):
    """GPT-J with its LM head (lm_head, with bias). labels (B, T) are shifted inside; -100 is ignored.

    Example:
        >>> from polyformer import AutoTokenizer, GPTJForCausalLM
        >>> model = GPTJForCausalLM.from_pretrained("EleutherAI/gpt-j-6B", torch_dtype="auto")
    """

    model_class = GPTJModel


class GPTJForSequenceClassification(GPTJPreTrainedModel):
    """score (no bias) on each row's last token (see `last_token_pool`: with pad_token_id, the token
    before the first pad; without it, the last position, and batches of one only).
    labels (B,): regression, single- or multi-label per config.problem_type."""

    def __init__(self, config: GPTJConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.transformer = GPTJModel(config)
        self.score = nn.Linear(config.n_embd, config.num_labels, bias=False)
        self.post_init()

    def forward(self, input_ids=None, past_key_values=None, attention_mask=None, token_type_ids=None,
                position_ids=None, head_mask=None, inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.transformer.decode(
            input_ids=input_ids, past_key_values=past_key_values, attention_mask=attention_mask,
            position_ids=position_ids, inputs_embeds=inputs_embeds, use_cache=use_cache,
            output_attentions=options.output_attentions, output_hidden_states=options.output_hidden_states,
            head_mask=head_mask, token_type_ids=token_type_ids)
        pooled = last_token_pool(out.last_hidden_state, input_ids, self.config.pad_token_id)  # (B, C)
        logits = self.score(pooled)  # (B, num_labels)
        loss = None if labels is None else classification_loss(logits, labels, self.config)
        output = SequenceClassifierOutputWithPast(loss, logits, out.past_key_values, out.hidden_states, out.attentions)
        return finish(output, options.return_dict)


class GPTJForQuestionAnswering(GPTJPreTrainedModel):
    """Extractive QA: qa_outputs -> start/end logits (B, T). Loss = mean of start and end cross-entropy;
    positions outside the sequence are clamped and ignored."""

    def __init__(self, config: GPTJConfig):
        super().__init__(config)
        if config.num_labels != 2:
            raise ValueError(f"config.num_labels should be 2 for question answering, got {config.num_labels}")
        self.num_labels = config.num_labels
        self.transformer = GPTJModel(config)
        self.qa_outputs = nn.Linear(config.n_embd, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.transformer.decode(
            input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids, inputs_embeds=inputs_embeds,
            use_cache=False, output_attentions=options.output_attentions,
            output_hidden_states=options.output_hidden_states, head_mask=head_mask, token_type_ids=token_type_ids)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = span_qa_loss(start_logits, end_logits, start_positions, end_positions)
        output = QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions)
        return finish(output, options.return_dict)
