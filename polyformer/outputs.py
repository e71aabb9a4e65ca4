"""Model outputs: dataclasses that are also ordered dicts, as in transformers.

`out.logits`, `out["logits"]` and `out[0]` all work. Fields left as None are not keys and are skipped by
index access and `to_tuple()`, so `return_dict=False` gives the reference's tuple (loss first when it
was computed). The classes hold tensors of any framework; this module imports none.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, fields, make_dataclass
from typing import Any, Optional, Tuple


class ModelOutput(OrderedDict):
    """Base of every output class. Subclasses are `@dataclass`es whose fields all default to None."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register_pytree(cls)

    def __post_init__(self) -> None:
        """`Output({"logits": x, ...})`, a mapping as the only argument, fills the fields by name, as
        transformers allows (accelerate's hooks rebuild outputs so when they move them between devices)."""
        names = [f.name for f in fields(self)]
        first = getattr(self, names[0])
        if (isinstance(first, dict) and set(first) <= set(names)
                and all(getattr(self, name) is None for name in names[1:])):
            super().__setattr__(names[0], None)
            if names[0] in self.keys():
                OrderedDict.__delitem__(self, names[0])
            for name, value in first.items():
                setattr(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        if value is not None or name in self.keys():
            super().__setitem__(name, value)
        super().__setattr__(name, value)

    def __setitem__(self, key: str, value: Any) -> None:
        super().__setitem__(key, value)
        super().__setattr__(key, value)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return dict.__getitem__(self, key)
        return self.to_tuple()[key]

    def __delitem__(self, key: str) -> None:
        raise TypeError(f"cannot delete fields of {type(self).__name__}")

    def __reduce__(self):
        return type(self), tuple(getattr(self, f.name) for f in fields(self))

    def to_tuple(self) -> Tuple[Any, ...]:
        """The non-None fields, in declaration order."""
        return tuple(self[k] for k in self.keys())


def _register_pytree(cls: type) -> None:
    """Let torch.compile / torch.export see through outputs when torch is already loaded."""
    import sys

    pytree = sys.modules.get("torch.utils._pytree")
    if pytree is None:
        return
    pytree.register_pytree_node(
        cls,
        lambda out: (list(out.values()), list(out.keys())),
        lambda values, keys: cls(**dict(zip(keys, values))),
        serialized_type_name=f"{cls.__module__}.{cls.__qualname__}",
    )


def finish(output: ModelOutput, return_dict: bool) -> Any:
    """What a forward returns: the output object, or its tuple when `return_dict` is False."""
    return output if return_dict else output.to_tuple()


@dataclass
class BaseModelOutput(ModelOutput):
    """Encoder output. `last_hidden_state` (B, T, C); `hidden_states`: embeddings + one per layer,
    each (B, T, C); `attentions`: one per layer, (B, H, T, S), post-softmax."""

    last_hidden_state: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass
class BaseModelOutputWithPooling(ModelOutput):
    """Encoder output with a pooled summary. `last_hidden_state` (B, T, C); `pooler_output` (B, C) (what it
    pools is the model's: CLIP-style text towers take the end-of-text token, GroupViT's vision tower the mean
    of its groups); `hidden_states`; `attentions` (for GroupViT's vision tower: the grouping maps)."""

    last_hidden_state: Any = None
    pooler_output: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass
class _LossAndLogits(ModelOutput):
    """The fields of every head that returns one `logits` tensor."""

    loss: Any = None
    logits: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass
class MaskedLMOutput(_LossAndLogits):
    """`logits` (B, T, vocab_size); `loss` when labels are given."""


@dataclass
class SequenceClassifierOutput(_LossAndLogits):
    """`logits` (B, num_labels); `loss` when labels are given."""


@dataclass
class MultipleChoiceModelOutput(_LossAndLogits):
    """`logits` (B, num_choices); hidden states and attentions keep the flattened batch B * num_choices."""


@dataclass
class TokenClassifierOutput(_LossAndLogits):
    """`logits` (B, T, num_labels); `loss` when labels are given (-100 ignored)."""


@dataclass
class QuestionAnsweringModelOutput(ModelOutput):
    """`start_logits`, `end_logits` (B, T); `loss` (mean of start and end cross-entropy) when both
    start_positions and end_positions are given."""

    loss: Any = None
    start_logits: Any = None
    end_logits: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass
class BaseModelOutputWithPast(ModelOutput):
    """Decoder output. `last_hidden_state` (B, T, C) for the T new tokens; `past_key_values`: the
    cache (per layer (key, value), each (B, K, S, D), or the `Cache` object given) when use_cache;
    `hidden_states`: embeddings + one per layer (the last after the final norm); `attentions` (B, H, T, S)."""

    last_hidden_state: Any = None
    past_key_values: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass
class _LossLogitsAndPast(ModelOutput):
    """The fields of every decoder head that returns one `logits` tensor and the cache."""

    loss: Any = None
    logits: Any = None
    past_key_values: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None


@dataclass
class CausalLMOutputWithPast(_LossLogitsAndPast):
    """`logits` (B, T, vocab_size) in float32; `loss` (next-token cross-entropy) when labels are given."""


@dataclass
class SequenceClassifierOutputWithPast(_LossLogitsAndPast):
    """`logits` (B, num_labels) pooled at each row's last token; `loss` when labels are given."""


# --- encoder-decoder (seq2seq) outputs ------------------------------------------------------------


@dataclass
class BaseModelOutputWithPastAndCrossAttentions(ModelOutput):
    """A decoder run alone (e.g. `MvpDecoder`): `last_hidden_state` (B, T, C); `past_key_values`;
    `hidden_states`; `attentions` (B, H, T, S); `cross_attentions` (B, H, T, S_enc) when encoder states
    were given."""

    last_hidden_state: Any = None
    past_key_values: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None
    cross_attentions: Optional[Tuple[Any, ...]] = None


# Every encoder-decoder output ends with the decoder's cache (per layer (self_k, self_v, cross_k, cross_v)),
# hidden states and attentions (self: (B, H, T, S), cross: (B, H, T, S_enc)), then the encoder's.
SEQ2SEQ_TAIL = ("past_key_values", "decoder_hidden_states", "decoder_attentions", "cross_attentions",
                 "encoder_last_hidden_state", "encoder_hidden_states", "encoder_attentions")


def _seq2seq_output(name: str, head: Tuple[str, ...], doc: str) -> type:
    """A ModelOutput dataclass with fields `head` then `SEQ2SEQ_TAIL`, all defaulting to None."""
    return make_dataclass(name, [(f, Any, None) for f in head + SEQ2SEQ_TAIL], bases=(ModelOutput,),
                          namespace={"__doc__": doc, "__module__": __name__, "__qualname__": name})


Seq2SeqModelOutput = _seq2seq_output(
    "Seq2SeqModelOutput", ("last_hidden_state",), "Encoder-decoder output: the decoder's `last_hidden_state` (B, T, C).")
Seq2SeqLMOutput = _seq2seq_output(
    "Seq2SeqLMOutput", ("loss", "logits"),
    "`logits` (B, T, vocab_size); `loss` (cross-entropy against labels, -100 ignored) when labels are given.")
Seq2SeqSequenceClassifierOutput = _seq2seq_output(
    "Seq2SeqSequenceClassifierOutput", ("loss", "logits"), "`logits` (B, num_labels); `loss` when labels are given.")
Seq2SeqQuestionAnsweringModelOutput = _seq2seq_output(
    "Seq2SeqQuestionAnsweringModelOutput", ("loss", "start_logits", "end_logits"),
    "`start_logits`, `end_logits` (B, T); `loss` when start and end positions are given.")


@dataclass
class CausalLMOutputWithCrossAttentions(ModelOutput):
    """A decoder with an LM head run alone: `logits` (B, T, vocab_size), `loss`, the cache, hidden states,
    self- and cross-attentions."""

    loss: Any = None
    logits: Any = None
    past_key_values: Any = None
    hidden_states: Optional[Tuple[Any, ...]] = None
    attentions: Optional[Tuple[Any, ...]] = None
    cross_attentions: Optional[Tuple[Any, ...]] = None
