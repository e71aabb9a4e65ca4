"""DistilBERT in PyTorch (Sanh et al., 2019): BERT's post-LayerNorm encoder, six layers, no token types.

Notation: B batch, T sequence length, C width (dim), H heads, D head dim, N choices.
Module attributes are the reference's checkpoint keys (distilbert.transformer.layer.0.attention.q_lin, ...).
"""

from __future__ import annotations

import math
from typing import Dict, List, Optional, Set

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...outputs import (
    BaseModelOutput,
    MaskedLMOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
    finish,
)
from ...pt import inputs
from ...pt.attention import attend, merge_heads, split_heads
from ...pt.heads import classification_loss, cross_entropy_loss, flatten_choices, span_qa_loss
from ...pt.layers import SinusoidalEmbedding, activation, chunked, run_layers
from ...pt.masks import Packing, padding_mask
from ...pt.modeling import PreTrainedModel
from ...pt.pruning import prune_attention
from .configuration import DistilBertConfig

LN_EPS = 1e-12


class Embeddings(nn.Module):
    """word + position embeddings -> LayerNorm -> dropout."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.dim, padding_idx=config.pad_token_id)
        if config.sinusoidal_pos_embds:
            self.position_embeddings = SinusoidalEmbedding(config.max_position_embeddings, config.dim)
        else:
            self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.dim)
        self.LayerNorm = nn.LayerNorm(config.dim, eps=LN_EPS)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, input_ids: Optional[torch.Tensor], inputs_embeds: Optional[torch.Tensor] = None) -> torch.Tensor:
        if inputs_embeds is None:
            inputs_embeds = self.word_embeddings(input_ids)  # (B, T, C)
        positions = torch.arange(inputs_embeds.shape[1], device=inputs_embeds.device)
        return self.dropout(self.LayerNorm(inputs_embeds + self.position_embeddings(positions)))


class MultiHeadSelfAttention(nn.Module):
    def __init__(self, config: DistilBertConfig):
        super().__init__()
        if config.dim % config.n_heads != 0:
            raise ValueError(f"dim={config.dim} must be divisible by n_heads={config.n_heads}")
        self.n_heads = config.n_heads
        self.head_size = config.dim // config.n_heads
        self.pruned_heads: Set[int] = set()  # original head numbers removed by prune_heads
        self.scale = 1.0 / math.sqrt(self.head_size)
        self.dropout = config.attention_dropout
        self.impl = config._attn_implementation
        self.q_lin, self.k_lin, self.v_lin, self.out_lin = (nn.Linear(config.dim, config.dim) for _ in range(4))

    def prune_heads(self, heads: List[int]) -> None:
        """Remove `heads` (numbered as in the unpruned layer) from the projections."""
        projections = [(self, name) for name in ("q_lin", "k_lin", "v_lin")]
        prune_attention(self, heads, projections, (self, "out_lin"), self.head_size)

    def forward(self, x, mask, packing=None, head_mask=None, output_attentions=False):  # x: (B, T, C) | (N, C)
        q, k, v = (lin(x) for lin in (self.q_lin, self.k_lin, self.v_lin))
        if packing is not None:  # attention itself needs the (B, T) layout
            q, k, v = packing.pad(q), packing.pad(k), packing.pad(v)
        q, k, v = (split_heads(t, self.n_heads) for t in (q, k, v))  # (B, H, T, D)
        out, weights = attend(q, k, v, mask, scale=self.scale, dropout=self.dropout if self.training else 0.0,
                              head_mask=head_mask, need_weights=output_attentions, impl=self.impl)
        out = merge_heads(out)  # (B, T, C)
        if packing is not None:
            out = packing.pack(out)
        return self.out_lin(out), weights  # like x, (B, H, T, T) | None


class FFN(nn.Module):
    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.lin1 = nn.Linear(config.dim, config.hidden_dim)
        self.lin2 = nn.Linear(config.hidden_dim, config.dim)
        self.activation = activation(config.activation)
        self.dropout = nn.Dropout(config.dropout)
        self.chunk_size = config.chunk_size_feed_forward

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return chunked(lambda h: self.dropout(self.lin2(self.activation(self.lin1(h)))), x, self.chunk_size)


class TransformerBlock(nn.Module):
    """Post-LN block:  x = LN(x + attn(x));  x = LN(x + ffn(x))."""

    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.attention = MultiHeadSelfAttention(config)
        self.sa_layer_norm = nn.LayerNorm(config.dim, eps=LN_EPS)
        self.ffn = FFN(config)
        self.output_layer_norm = nn.LayerNorm(config.dim, eps=LN_EPS)

    def forward(self, x, mask, packing=None, head_mask=None, output_attentions=False):
        attn, weights = self.attention(x, mask, packing, head_mask=head_mask, output_attentions=output_attentions)
        x = self.sa_layer_norm(attn + x)
        return self.output_layer_norm(self.ffn(x) + x), weights


class Transformer(nn.Module):
    def __init__(self, config: DistilBertConfig):
        super().__init__()
        self.layer = nn.ModuleList(TransformerBlock(config) for _ in range(config.n_layers))
        self.gradient_checkpointing = False

    def forward(self, x, mask, packing=None, *, head_mask=None, output_hidden_states=False, output_attentions=False):
        return run_layers(self.layer, x, mask, packing, head_mask=head_mask, output_hidden_states=output_hidden_states,
                          output_attentions=output_attentions, gradient_checkpointing=self.gradient_checkpointing)


class DistilBertPreTrainedModel(PreTrainedModel):
    config_class = DistilBertConfig
    base_model_prefix = "distilbert"
    _no_split_modules = ["TransformerBlock"]  # device_map (4.37 has none for DistilBERT)
    _supports_flash_attn_2 = True  # the only family here whose attention runs flash-attn (as in 4.37)


class DistilBertModel(DistilBertPreTrainedModel):
    """The bare encoder: last_hidden_state (B, T, C), optionally all hidden states and attentions.

    Example:
        >>> from polyformer import AutoTokenizer, DistilBertModel
        >>> tokenizer = AutoTokenizer.from_pretrained("distilbert-base-uncased")
        >>> model = DistilBertModel.from_pretrained("distilbert-base-uncased")
        >>> model(**tokenizer("Hello, my dog is cute", return_tensors="pt")).last_hidden_state.shape
        torch.Size([1, 8, 768])
    """

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        self.embeddings = Embeddings(config)
        self.transformer = Transformer(config)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embeddings.word_embeddings

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.embeddings.word_embeddings = value

    def _prune_heads(self, heads_to_prune: Dict[int, List[int]]) -> None:
        self._prune_layers([block.attention for block in self.transformer.layer], heads_to_prune)

    def get_position_embeddings(self) -> nn.Embedding:
        return self.embeddings.position_embeddings

    def resize_position_embeddings(self, new_num_position_embeddings: int) -> None:
        """Change max_position_embeddings; learned rows are kept, new ones initialised."""
        old = self.embeddings.position_embeddings
        n = new_num_position_embeddings
        self.config.max_position_embeddings = n
        if self.config.sinusoidal_pos_embds:
            new = SinusoidalEmbedding(n, self.config.dim).to(old.weight.device, old.weight.dtype)
        else:
            new = nn.Embedding(n, self.config.dim, device=old.weight.device, dtype=old.weight.dtype)
            self._init_weights(new)
            with torch.no_grad():
                keep = min(n, old.num_embeddings)
                new.weight[:keep] = old.weight[:keep]
        self.embeddings.position_embeddings = new

    def forward(
        self,
        input_ids: Optional[torch.Tensor] = None,
        attention_mask: Optional[torch.Tensor] = None,
        head_mask: Optional[torch.Tensor] = None,
        inputs_embeds: Optional[torch.Tensor] = None,
        output_attentions: Optional[bool] = None,
        output_hidden_states: Optional[bool] = None,
        return_dict: Optional[bool] = None,
    ):
        """input_ids (B, T) or inputs_embeds (B, T, C); attention_mask (B, T), 1 keep / 0 padding;
        head_mask (H,) or (L, H), 1 keep / 0 drop a head."""
        out = self.encode(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                          inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                          output_hidden_states=output_hidden_states)
        return finish(out, self.config.output_options(return_dict=return_dict).return_dict)

    def encode(self, *, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None,
               output_attentions=None, output_hidden_states=None, skip_padding: bool = False) -> BaseModelOutput:
        """The encoder, as every head runs it: inputs checked, output flags resolved, a BaseModelOutput.
        `skip_padding`: heads that read position 0 only may run without the padded rows."""
        config = self.config
        inputs.check_sequence(input_ids, inputs_embeds, attention_mask, vocab_size=config.vocab_size,
                              width=config.dim, max_positions=config.max_position_embeddings)
        output_attentions, output_hidden_states, _ = config.output_options(output_attentions, output_hidden_states)

        x = self.embeddings(input_ids, inputs_embeds)  # (B, T, C)
        mask = padding_mask(attention_mask, x.dtype)
        packing = None
        # Padded rows are visible in hidden states and attention maps, so skip them only when neither is asked.
        if skip_padding and mask is not None and not (output_hidden_states or output_attentions) \
                and not torch.jit.is_tracing() and bool(attention_mask[:, 0].all()):
            packing = Packing(attention_mask)
            x = packing.pack(x)  # (N, C)
        x, hidden_states, attentions = self.transformer(
            x, mask, packing, head_mask=self.get_head_mask(head_mask, config.n_layers),
            output_hidden_states=output_hidden_states, output_attentions=output_attentions)
        if packing is not None:
            x = packing.pad(x)
        return BaseModelOutput(x, hidden_states, attentions)


class DistilBertForMaskedLM(DistilBertPreTrainedModel):
    """Masked-LM head: vocab_transform -> activation -> LayerNorm -> vocab_projector (tied to the
    word embeddings). labels (B, T) in [0, vocab_size) or -100 (ignored)."""

    _tied_weights_keys = ["vocab_projector.weight"]

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        self.activation = activation(config.activation)
        self.distilbert = DistilBertModel(config)
        self.vocab_transform = nn.Linear(config.dim, config.dim)
        self.vocab_layer_norm = nn.LayerNorm(config.dim, eps=LN_EPS)
        self.vocab_projector = nn.Linear(config.dim, config.vocab_size)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.vocab_projector

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.vocab_projector = value

    def get_position_embeddings(self) -> nn.Embedding:
        return self.distilbert.get_position_embeddings()

    def resize_position_embeddings(self, new_num_position_embeddings: int) -> None:
        self.distilbert.resize_position_embeddings(new_num_position_embeddings)

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.distilbert.encode(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                                     inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                     output_hidden_states=output_hidden_states)
        h = self.vocab_layer_norm(self.activation(self.vocab_transform(out.last_hidden_state)))
        logits = self.vocab_projector(h)  # (B, T, vocab_size)
        loss = None if labels is None else cross_entropy_loss(logits, labels)
        return finish(MaskedLMOutput(loss, logits, out.hidden_states, out.attentions),
                      self.config.output_options(return_dict=return_dict).return_dict)


class DistilBertForSequenceClassification(DistilBertPreTrainedModel):
    """[CLS] -> pre_classifier -> ReLU -> dropout -> classifier. labels (B,): regression (num_labels 1),
    single-label (int labels) or multi-label (float (B, num_labels)), per config.problem_type."""

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.distilbert = DistilBertModel(config)
        self.pre_classifier = nn.Linear(config.dim, config.dim)
        self.classifier = nn.Linear(config.dim, config.num_labels)
        self.dropout = nn.Dropout(config.seq_classif_dropout)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.distilbert.encode(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                                     inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                     output_hidden_states=output_hidden_states,
                                     skip_padding=True)  # the head reads position 0 only
        pooled = self.dropout(F.relu(self.pre_classifier(out.last_hidden_state[:, 0])))  # (B, C)
        logits = self.classifier(pooled)  # (B, num_labels)
        loss = None if labels is None else classification_loss(logits, labels, self.config)
        return finish(SequenceClassifierOutput(loss, logits, out.hidden_states, out.attentions),
                      self.config.output_options(return_dict=return_dict).return_dict)


class DistilBertForMultipleChoice(DistilBertPreTrainedModel):
    """Scores each of N choices: inputs (B, N, T), logits (B, N), labels (B,) in [0, N)."""

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        self.distilbert = DistilBertModel(config)
        self.pre_classifier = nn.Linear(config.dim, config.dim)
        self.classifier = nn.Linear(config.dim, 1)
        self.dropout = nn.Dropout(config.seq_classif_dropout)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        num_choices = inputs.check_choices(input_ids, inputs_embeds, vocab_size=self.config.vocab_size,
                                           width=self.config.dim)
        input_ids, attention_mask, inputs_embeds = flatten_choices(input_ids, attention_mask, inputs_embeds)
        out = self.distilbert.encode(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                                     inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                     output_hidden_states=output_hidden_states,
                                     skip_padding=True)  # the head reads position 0 only
        pooled = self.dropout(F.relu(self.pre_classifier(out.last_hidden_state[:, 0])))  # (B*N, C)
        logits = self.classifier(pooled).view(-1, num_choices)  # (B, N)
        loss = None if labels is None else cross_entropy_loss(logits, labels)
        return finish(MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions),
                      self.config.output_options(return_dict=return_dict).return_dict)


class DistilBertForTokenClassification(DistilBertPreTrainedModel):
    """A label per token: logits (B, T, num_labels), labels (B, T) with -100 ignored."""

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.distilbert = DistilBertModel(config)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None, labels=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.distilbert.encode(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                                     inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                     output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(out.last_hidden_state))
        loss = None if labels is None else cross_entropy_loss(logits, labels)
        return finish(TokenClassifierOutput(loss, logits, out.hidden_states, out.attentions),
                      self.config.output_options(return_dict=return_dict).return_dict)


class DistilBertForQuestionAnswering(DistilBertPreTrainedModel):
    """Extractive QA: start/end logits (B, T). Loss = mean of start and end cross-entropy; positions
    outside the sequence are clamped and ignored."""

    def __init__(self, config: DistilBertConfig):
        super().__init__(config)
        if config.num_labels != 2:
            raise ValueError(f"config.num_labels should be 2 for question answering, got {config.num_labels}")
        self.distilbert = DistilBertModel(config)
        self.qa_outputs = nn.Linear(config.dim, config.num_labels)
        self.dropout = nn.Dropout(config.qa_dropout)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, head_mask=None, inputs_embeds=None,
                start_positions=None, end_positions=None, output_attentions=None, output_hidden_states=None,
                return_dict=None):
        out = self.distilbert.encode(input_ids=input_ids, attention_mask=attention_mask, head_mask=head_mask,
                                     inputs_embeds=inputs_embeds, output_attentions=output_attentions,
                                     output_hidden_states=output_hidden_states)
        logits = self.qa_outputs(self.dropout(out.last_hidden_state))  # (B, T, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = span_qa_loss(start_logits, end_logits, start_positions, end_positions)
        return finish(QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions),
                      self.config.output_options(return_dict=return_dict).return_dict)
