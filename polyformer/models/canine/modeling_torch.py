"""CANINE in PyTorch (Clark et al., 2021): a character-level encoder without a vocabulary.

Notation: B batch, T characters, M molecules (T // downsampling_rate), C width, H heads, D head dim,
N windows, W window width, K hash functions.

    code points (B, T) --hash embeddings--> chars (B, T, C)
        --initial_char_encoder (1 layer, local attention in windows)--> chars (B, T, C)
        --chars_to_molecules (strided conv, [CLS] kept apart)--> molecules (B, M, C)
        --encoder (num_hidden_layers, full attention)--> molecules (B, M, C) --pooler--> (B, C)
        --repeat each molecule downsampling_rate times, concat with chars--> (B, T, 2C)
        --projection (conv)--> (B, T, C) --final_char_encoder (1 layer)--> last_hidden_state (B, T, C)

Module attributes are the reference's checkpoint keys (canine.initial_char_encoder.layer.0.attention.self.query, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from ...outputs import (
    ModelOutput,
    MultipleChoiceModelOutput,
    QuestionAnsweringModelOutput,
    SequenceClassifierOutput,
    TokenClassifierOutput,
    finish,
)
from ...pt import inputs
from ...pt.attention import attend
from ...pt.bert_layers import BertEncoder, BertLayer, BertPooler
from ...pt.heads import classification_loss, cross_entropy_loss, flatten_choices, span_qa_loss
from ...pt.layers import activation
from ...pt.masks import padding_mask
from ...pt.modeling import PreTrainedModel
from .configuration import CanineConfig

UNICODE_SIZE = 0x110000  # code points 0 .. 0x10FFFF
CODE_POINTS = dict(bound="Unicode code points", range_error=ValueError)  # how an id out of range is reported
PRIMES = (31, 43, 59, 61, 73, 97, 103, 113, 137, 149, 157, 173, 181, 193, 211, 223)  # one per hash function


@dataclass
class CanineModelOutputWithPooling(ModelOutput):
    """CANINE's encoder output. `last_hidden_state` (B, T, C) per character; `pooler_output` (B, C) from
    the deep encoder's first ([CLS]) molecule; `hidden_states`: the input and output of the initial
    character encoder (B, T, C), then of each deep layer (B, M, C) with M = T // downsampling_rate, then of
    the final character encoder (B, T, C); `attentions`: the initial encoder's first local window
    (B, H, W, W), each deep layer's (B, H, M, M), the final encoder's (B, H, T, T)."""

    last_hidden_state: Any = None
    pooler_output: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


# --- embeddings ---------------------------------------------------------------------------------
class CanineEmbeddings(nn.Module):
    """K hashed code-point embeddings, concatenated, + token type + position -> LayerNorm -> dropout.

    Hash k of code point c is ((c + 1) * PRIMES[k]) % num_hash_buckets; each hash has its own table of
    width C / K (HashBucketCodepointEmbedder_k). Position rows come from a table of num_hash_buckets rows.
    """

    def __init__(self, config: CanineConfig):
        super().__init__()
        k, width = config.num_hash_functions, config.hidden_size
        if not 0 < k <= len(PRIMES) or width % k:
            raise ValueError(f"num_hash_functions={k} must be in [1, {len(PRIMES)}] and divide hidden_size={width}")
        for i in range(k):
            setattr(self, f"HashBucketCodepointEmbedder_{i}", nn.Embedding(config.num_hash_buckets, width // k))
        self.char_position_embeddings = nn.Embedding(config.num_hash_buckets, width)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, width)
        self.LayerNorm = nn.LayerNorm(width, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.primes = PRIMES[:k]
        self.num_buckets = config.num_hash_buckets

    def embed_code_points(self, input_ids: torch.Tensor) -> torch.Tensor:
        """(B, T) code points -> (B, T, C)."""
        primes = torch.tensor(self.primes, device=input_ids.device)
        buckets = (input_ids[..., None] + 1) * primes % self.num_buckets  # (B, T, K)
        return torch.cat([getattr(self, f"HashBucketCodepointEmbedder_{i}")(buckets[..., i])
                          for i in range(len(self.primes))], dim=-1)

    def forward(self, input_ids, token_type_ids, position_ids, inputs_embeds) -> torch.Tensor:
        x = self.embed_code_points(input_ids) if inputs_embeds is None else inputs_embeds  # (B, T, C)
        if position_ids is None:
            position_ids = torch.arange(x.shape[1], device=x.device)
        if token_type_ids is None:
            token_type_ids = torch.zeros(x.shape[:2], dtype=torch.long, device=x.device)
        x = x + self.token_type_embeddings(token_type_ids) + self.char_position_embeddings(position_ids)
        return self.dropout(self.LayerNorm(x))


# --- local attention (the first character encoder) ---------------------------------------------------
@dataclass(frozen=True)
class LocalWindows:
    """Where each query may look in the initial character encoder's local attention.

    Queries are cut into consecutive windows of `from_width` (= `from_stride`) positions; window n
    attends to keys [n * to_stride, n * to_stride + to_width). `first_position_attends_to_all` gives
    position 0 a window of its own over every key; `always_attend_to_first_position` adds key 0 to
    every window. CanineModel uses windows of local_transformer_stride and neither flag.
    """

    from_width: int = 128
    from_stride: int = 128
    to_width: int = 128
    to_stride: int = 128
    first_position_attends_to_all: bool = False
    always_attend_to_first_position: bool = False

    def __post_init__(self):
        if self.from_width != self.from_stride:
            raise ValueError("attend_from_chunk_width must equal attend_from_chunk_stride: the query windows "
                             "must tile the sequence")
        if self.to_width < self.to_stride:
            raise ValueError("attend_to_chunk_width < attend_to_chunk_stride would cause sequence positions to "
                             "get skipped")

    def indices(self, length: int, device) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Query and key positions per window, padded at the end: (N, Wq), (N, Wq) valid, (N, Wk), (N, Wk) valid."""
        first = self.first_position_attends_to_all
        queries = [range(0, 1)] if first else []
        queries += [range(s, min(length, s + self.from_width)) for s in range(int(first), length, self.from_stride)]
        keys = [range(0, length)] if first else []
        keys += [range(s, min(length, s + self.to_width)) for s in range(0, length, self.to_stride)]
        if len(queries) != len(keys):
            raise ValueError(f"local attention has {len(queries)} query windows but {len(keys)} key windows for "
                             f"length {length}; check the chunk strides")
        if self.always_attend_to_first_position:
            keys = [[0, *window] for window in keys]
        return (*_padded(queries, device), *_padded(keys, device))

    def attend(self, q, k, v, key_mask, **attend_kwargs):
        """Attention inside windows: each window is one row of a (B * N) batch, so the cost is T * W, not T * T.

        q, k, v (B, H, T, D); key_mask None or additive (B, 1, 1, T). Returns (out (B, H, T, D), the first
        window's weights (B, H, Wq0, Wk0) or None), as the reference returns the first chunk's only.
        """
        b, h, t, d = q.shape
        q_index, q_valid, k_index, k_valid = self.indices(t, q.device)
        n, wq, wk = q_index.shape[0], q_index.shape[1], k_index.shape[1]

        def gather(x, index, width):  # (B, H, T, D) -> (B * N, H, W, D)
            return x[:, :, index.reshape(-1)].view(b, h, n, width, d).transpose(1, 2).reshape(b * n, h, width, d)

        mask = None
        if key_mask is not None or not bool(k_valid.all()):
            keys = torch.zeros(b, t, dtype=q.dtype, device=q.device) if key_mask is None else key_mask.view(b, t)
            mask = keys[:, k_index].masked_fill(~k_valid, float("-inf")).view(b * n, 1, 1, wk)  # padded slots: -inf
        out, weights = attend(gather(q, q_index, wq), gather(k, k_index, wk), gather(v, k_index, wk), mask,
                              **attend_kwargs)
        out = out.view(b, n, h, wq, d).transpose(1, 2).reshape(b, h, n * wq, d)[:, :, q_valid.reshape(-1)]
        if weights is not None:
            weights = weights.view(b, n, h, wq, wk)[:, 0, :, : int(q_valid[0].sum()), : int(k_valid[0].sum())]
        return out, weights


def _padded(windows: List, device) -> Tuple[torch.Tensor, torch.Tensor]:
    width = max(len(w) for w in windows)
    index = torch.tensor([list(w) + [0] * (width - len(w)) for w in windows], device=device)
    valid = torch.tensor([[True] * len(w) + [False] * (width - len(w)) for w in windows], device=device)
    return index, valid


# --- characters <-> molecules -----------------------------------------------------------------------
class CharactersToMolecules(nn.Module):
    """Downsample: a strided conv makes T // rate molecules; the last is dropped and the [CLS] character's
    state is put first instead, so [CLS] keeps a position of its own in the deep encoder."""

    def __init__(self, config: CanineConfig):
        super().__init__()
        rate = config.downsampling_rate
        self.conv = nn.Conv1d(config.hidden_size, config.hidden_size, kernel_size=rate, stride=rate)
        self.activation = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:  # (B, T, C) -> (B, M, C)
        molecules = self.activation(self.conv(chars.transpose(1, 2)).transpose(1, 2))  # (B, T // rate, C)
        return self.LayerNorm(torch.cat([chars[:, :1], molecules[:, :-1]], dim=1))


class ConvProjection(nn.Module):
    """Upsample: a conv of upsampling_kernel_size over [chars ; repeated molecules] (B, T, 2C) -> (B, T, C),
    padded as TF's "same" padding (the extra zero on the right)."""

    def __init__(self, config: CanineConfig):
        super().__init__()
        self.kernel_size = config.upsampling_kernel_size
        self.conv = nn.Conv1d(2 * config.hidden_size, config.hidden_size, kernel_size=self.kernel_size)
        self.activation = activation(config.hidden_act)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = (self.kernel_size - 1) // 2
        x = self.conv(F.pad(x.transpose(1, 2), (left, self.kernel_size - 1 - left)))  # (B, C, T)
        return self.dropout(self.LayerNorm(self.activation(x.transpose(1, 2))))


def repeat_molecules(molecules: torch.Tensor, length: int, rate: int) -> torch.Tensor:
    """(B, M, C) -> (B, T, C): molecules 1..M-1 each `rate` times (the [CLS] molecule is not used), then the
    last one again `rate + T % rate` times, so that every character position has one."""
    repeated = molecules[:, 1:].repeat_interleave(rate, dim=1)
    return torch.cat([repeated, molecules[:, -1:].expand(-1, rate + length % rate, -1)], dim=1)


class CanineLayer(BertLayer):
    """One encoder layer (BERT's, with BERT's weight names), attending within `LocalWindows` when `local`."""

    def __init__(self, config: CanineConfig, local: bool = False, always_attend_to_first_position: bool = False,
                 first_position_attends_to_all: bool = False, attend_from_chunk_width: int = 128,
                 attend_from_chunk_stride: int = 128, attend_to_chunk_width: int = 128,
                 attend_to_chunk_stride: int = 128):
        windows = LocalWindows(attend_from_chunk_width, attend_from_chunk_stride, attend_to_chunk_width,
                               attend_to_chunk_stride, first_position_attends_to_all,
                               always_attend_to_first_position) if local else None
        super().__init__(config, windows)


# --- models -------------------------------------------------------------------------------------------
class CaninePreTrainedModel(PreTrainedModel):
    config_class = CanineConfig
    base_model_prefix = "canine"
    # device_map (4.37 has none for CANINE): layers, hash embeddings and the down / up sampling whole
    _no_split_modules = ["CanineLayer", "CanineEmbeddings", "CharactersToMolecules", "ConvProjection"]

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if isinstance(module, nn.Conv1d):
            module.weight.normal_(0.0, self.config.initializer_range)
            module.bias.zero_()
        else:
            super()._init_weights(module)


class CanineModel(CaninePreTrainedModel):
    """The bare encoder: last_hidden_state (B, T, C) per character, pooler_output (B, C) from the [CLS]
    molecule; hidden states and attentions of the three encoders, in order (see CanineModelOutputWithPooling).

    Example:
        >>> from polyformer import CanineModel, CanineTokenizer
        >>> tokenizer = CanineTokenizer.from_pretrained("google/canine-s")
        >>> model = CanineModel.from_pretrained("google/canine-s")
        >>> model(**tokenizer("Life is like a box of chocolates.", return_tensors="pt")).last_hidden_state.shape
        torch.Size([1, 35, 768])
    """

    def __init__(self, config: CanineConfig, add_pooling_layer: bool = True):
        super().__init__(config)
        if getattr(config, "position_embedding_type", "absolute") != "absolute":
            raise NotImplementedError("CANINE supports position_embedding_type='absolute' only")
        stride = config.local_transformer_stride
        self.char_embeddings = CanineEmbeddings(config)
        self.initial_char_encoder = BertEncoder(config, 1, pattern=LocalWindows(stride, stride, stride, stride))
        self.chars_to_molecules = CharactersToMolecules(config)
        self.encoder = BertEncoder(config)
        self.projection = ConvProjection(config)
        self.final_char_encoder = BertEncoder(config, 1)
        self.pooler = BertPooler(config) if add_pooling_layer else None
        self.post_init()

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, add_pooling_layer: bool = True, **kwargs):
        """As `PreTrainedModel.from_pretrained`; `add_pooling_layer=False` leaves the pooler out."""
        return super().from_pretrained(pretrained_model_name_or_path, add_pooling_layer, *model_args, **kwargs)

    def _prune_heads(self, heads_to_prune: Dict[int, List[int]]) -> None:
        """Heads of the deep encoder's layers (as 4.37: the character encoders are not pruned)."""
        self._prune_layers([layer.attention for layer in self.encoder.layer], heads_to_prune)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        """input_ids (B, T) Unicode code points, or inputs_embeds (B, T, C); attention_mask (B, T), 1 keep /
        0 padding; token_type_ids (B, T); position_ids (B, T); head_mask (H,) or (L, H) for the deep encoder."""
        out = self.encode(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                          position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                          output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        if self.config.output_options(return_dict=return_dict).return_dict:
            return out
        # the reference's tuple keeps pooler_output's place even when it is None (add_pooling_layer=False)
        return (out.last_hidden_state, out.pooler_output) + tuple(v for v in (out.hidden_states, out.attentions)
                                                                   if v is not None)

    def encode(self, *, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
               inputs_embeds=None, output_attentions=None, output_hidden_states=None) -> CanineModelOutputWithPooling:
        """The three encoders, as every head runs them: inputs checked, output flags resolved."""
        config, rate = self.config, self.config.downsampling_rate
        length = self._check(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                             position_ids=position_ids, inputs_embeds=inputs_embeds)
        output_attentions, output_hidden_states, _ = config.output_options(output_attentions, output_hidden_states)
        outputs = dict(output_hidden_states=output_hidden_states, output_attentions=output_attentions)

        chars = self.char_embeddings(input_ids, token_type_ids, position_ids, inputs_embeds)  # (B, T, C)
        char_mask = padding_mask(attention_mask, chars.dtype)
        molecule_mask = None
        if attention_mask is not None:  # a molecule is kept when any of the `rate` characters at its index is
            molecule_mask = padding_mask(F.max_pool1d(attention_mask[:, None].float(), rate, rate)[:, 0], chars.dtype)
        chars, h1, a1 = self.initial_char_encoder(chars, char_mask, **outputs)
        molecules, h2, a2 = self.encoder(self.chars_to_molecules(chars), molecule_mask,
                                         head_mask=self.get_head_mask(head_mask, config.num_hidden_layers), **outputs)
        pooled = self.pooler(molecules) if self.pooler is not None else None  # (B, C)
        x = self.projection(torch.cat([chars, repeat_molecules(molecules, length, rate)], dim=-1))  # (B, T, C)
        x, h3, a3 = self.final_char_encoder(x, char_mask, **outputs)
        return CanineModelOutputWithPooling(x, pooled, h1 + h2 + h3 if output_hidden_states else None,
                                            a1 + a2 + a3 if output_attentions else None)

    def _check(self, *, input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds) -> int:
        """Bad input fails here with the argument named; returns the sequence length T."""
        config = self.config
        shape = inputs.check_sequence(input_ids, inputs_embeds, attention_mask, vocab_size=UNICODE_SIZE,
                                      width=config.hidden_size, max_positions=config.max_position_embeddings,
                                      **CODE_POINTS)
        if shape[1] < config.downsampling_rate:
            raise ValueError(f"sequence length {shape[1]} is shorter than downsampling_rate={config.downsampling_rate}:"
                             " CANINE needs at least one molecule; pad the input")
        if token_type_ids is not None:
            inputs.check_ids(token_type_ids, config.type_vocab_size, name="token_type_ids", bound="type_vocab_size",
                             range_error=ValueError)
        if position_ids is not None:
            inputs.check_positions(position_ids, config.num_hash_buckets, range_error=ValueError,
                                   bound="num_hash_buckets: the rows of char_position_embeddings")
        elif shape[1] > config.num_hash_buckets:
            raise ValueError(f"sequence length {shape[1]} exceeds the {config.num_hash_buckets} rows of "
                             "char_position_embeddings (num_hash_buckets)")
        return shape[1]


class _CanineClassifier(CaninePreTrainedModel):
    """canine -> dropout -> classifier, on the pooled [CLS] molecule (B, C) or on every character (B, T, C)."""

    per_character = False
    output_class = SequenceClassifierOutput

    def __init__(self, config: CanineConfig, num_outputs: Optional[int] = None):
        super().__init__(config)
        self.num_labels = config.num_labels
        self.canine = CanineModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels if num_outputs is None else num_outputs)
        self.post_init()

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return cross_entropy_loss(logits, labels)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        out = self.canine.encode(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                 position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                                 output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        features = out.last_hidden_state if self.per_character else out.pooler_output
        logits = self.classifier(self.dropout(features))  # (B, num_labels) | (B, T, num_labels)
        loss = None if labels is None else self.loss(logits, labels)
        return finish(self.output_class(loss, logits, out.hidden_states, out.attentions),
                      self.config.output_options(return_dict=return_dict).return_dict)


class CanineForSequenceClassification(_CanineClassifier):
    """pooler_output -> dropout -> classifier. labels (B,): regression (num_labels 1), single-label (int
    labels) or multi-label (float (B, num_labels)), per config.problem_type."""

    def loss(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return classification_loss(logits, labels, self.config)


class CanineForTokenClassification(_CanineClassifier):
    """A label per character: logits (B, T, num_labels), labels (B, T) with -100 ignored."""

    per_character = True
    output_class = TokenClassifierOutput


class CanineForMultipleChoice(_CanineClassifier):
    """Scores each of N choices from its pooler_output: inputs (B, N, T), logits (B, N), labels (B,) in [0, N)."""

    output_class = MultipleChoiceModelOutput

    def __init__(self, config: CanineConfig):
        super().__init__(config, 1)

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, labels=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        num_choices = inputs.check_choices(input_ids, inputs_embeds, vocab_size=UNICODE_SIZE,
                                           width=self.config.hidden_size, **CODE_POINTS)
        input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds = flatten_choices(
            input_ids, attention_mask, token_type_ids, position_ids, inputs_embeds)
        out = self.canine.encode(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                 position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                                 output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.classifier(self.dropout(out.pooler_output)).view(-1, num_choices)  # (B, N)
        loss = None if labels is None else self.loss(logits, labels)
        return finish(MultipleChoiceModelOutput(loss, logits, out.hidden_states, out.attentions),
                      self.config.output_options(return_dict=return_dict).return_dict)


class CanineForQuestionAnswering(CaninePreTrainedModel):
    """Extractive QA over characters: start/end logits (B, T). Loss = mean of start and end cross-entropy;
    positions outside the sequence are clamped and ignored.

    Example (positions are characters, so the answer is a slice of the input):
        >>> from polyformer import AutoTokenizer, CanineForQuestionAnswering
        >>> tokenizer = AutoTokenizer.from_pretrained("Splend1dchan/canine-c-squad")
        >>> model = CanineForQuestionAnswering.from_pretrained("Splend1dchan/canine-c-squad")
        >>> inputs = tokenizer("Who was Jim Henson?", "Jim Henson was a nice puppet", return_tensors="pt")
        >>> out = model(**inputs)
        >>> start, end = int(out.start_logits.argmax()), int(out.end_logits.argmax())
        >>> tokenizer.decode(inputs.input_ids[0, start : end + 1], skip_special_tokens=True)
        'nice puppet'
    """

    def __init__(self, config: CanineConfig):
        super().__init__(config)
        if config.num_labels != 2:
            raise ValueError(f"config.num_labels should be 2 for question answering, got {config.num_labels}")
        self.canine = CanineModel(config)
        self.qa_outputs = nn.Linear(config.hidden_size, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, head_mask=None,
                inputs_embeds=None, start_positions=None, end_positions=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        out = self.canine.encode(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids,
                                 position_ids=position_ids, head_mask=head_mask, inputs_embeds=inputs_embeds,
                                 output_attentions=output_attentions, output_hidden_states=output_hidden_states)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, T, num_labels)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = span_qa_loss(start_logits, end_logits, start_positions, end_positions)
        return finish(QuestionAnsweringModelOutput(loss, start_logits, end_logits, out.hidden_states, out.attentions),
                      self.config.output_options(return_dict=return_dict).return_dict)
