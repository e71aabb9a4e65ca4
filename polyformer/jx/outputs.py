"""The Flax output classes of transformers 4.37 (`transformers.modeling_flax_outputs` and the Flax
generate outputs), on polyformer's `ModelOutput`: attribute, key and index access, `to_tuple()`.

Each class is registered as a jax pytree (its non-None fields are the children, their names the
static part), so outputs pass through `jax.jit`, `vmap` and `grad` like the reference's
`flax.struct` dataclasses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import jax

from ..outputs import ModelOutput


def register(cls: type) -> type:
    """Make `cls` a pytree: children = the values of its keys, aux data = the keys (in order)."""

    def unflatten(keys, values):
        out = cls()
        for key, value in zip(keys, values):
            out[key] = value
        return out

    jax.tree_util.register_pytree_node(cls, lambda out: (list(out.values()), tuple(out.keys())), unflatten)
    return cls


@register
@dataclass
class FlaxBaseModelOutput(ModelOutput):
    """`last_hidden_state` (B, T, C); `hidden_states`: embeddings + one per layer; `attentions` (B, H, T, S).
    A `past_key_values` key (the updated "cache" collection) is added when a cache was given."""

    last_hidden_state: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@register
@dataclass
class FlaxMaskedLMOutput(ModelOutput):
    """`logits` (B, T, vocab_size); Flax heads compute no loss."""

    logits: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


FlaxCausalLMOutput = FlaxMaskedLMOutput  # one class object under both names, as in 4.37


@register
@dataclass
class FlaxSequenceClassifierOutput(FlaxMaskedLMOutput):
    """`logits` (B, num_labels)."""


@register
@dataclass
class FlaxMultipleChoiceModelOutput(FlaxMaskedLMOutput):
    """`logits` (B, num_choices); hidden states and attentions keep the flattened batch B * num_choices."""


@register
@dataclass
class FlaxTokenClassifierOutput(FlaxMaskedLMOutput):
    """`logits` (B, T, num_labels)."""


@register
@dataclass
class FlaxQuestionAnsweringModelOutput(ModelOutput):
    """`start_logits`, `end_logits` (B, T)."""

    start_logits: Any = None
    end_logits: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@register
@dataclass
class FlaxGreedySearchOutput(ModelOutput):
    """`sequences` (B, max_length): prompt, then generated ids, then pad_token_id."""

    sequences: Any = None


@register
@dataclass
class FlaxSampleOutput(FlaxGreedySearchOutput):
    """`sequences` (B, max_length)."""


@register
@dataclass
class FlaxBeamSearchOutput(ModelOutput):
    """`sequences` (B * num_return_sequences, max_length); `scores` (B * num_return_sequences,): the
    length-penalised sum of log-probabilities of each returned beam."""

    sequences: Any = None
    scores: Any = None


def tuple_of(output: ModelOutput, tail: Tuple[str, ...] = ("hidden_states", "attentions"), drop: int = 0) -> tuple:
    """The reference's `return_dict=False` tuple: the output's own fields (logits, ...), then
    `past_key_values` when present, then the non-None `tail` fields in that order, less the first
    `drop` of them (4.37's Flax DistilBERT orders its tail (attentions, hidden_states), and its
    multiple-choice head drops the first)."""
    head = [v for k, v in output.items() if k not in tail and k != "past_key_values"]
    if "past_key_values" in output:
        head.append(output["past_key_values"])
    rest = [output[k] for k in tail if output.get(k) is not None]
    return tuple(head + rest[drop:])
