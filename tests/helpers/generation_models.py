"""The toy models of generation_toy.py as polyformer models (a causal LM, an encoder-decoder LM), the
reference fixtures they are checked against (tests/fixtures/generation/, written by
scripts/fixtures/make_generation_fixtures.py), and the comparison of a generate() result with a case."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from . import generation_toy as toy
from .tolerance import assert_close
from polyformer.configuration import PretrainedConfig
from polyformer.generation.utils import GenerationMixin
from polyformer.outputs import BaseModelOutput, CausalLMOutputWithPast, ModelOutput
from polyformer.pt.cache import EncoderDecoderCache
from polyformer.pt.modeling import PreTrainedModel

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "generation" / "toy"


class ToyConfig(PretrainedConfig):
    model_type = "toy"

    def __init__(self, vocab_size=24, hidden_size=16, max_position_embeddings=48, num_attention_heads=1,
                 num_hidden_layers=1, logit_scale=4.0, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.max_position_embeddings = max_position_embeddings
        self.num_attention_heads = num_attention_heads
        self.num_hidden_layers = num_hidden_layers
        self.logit_scale = logit_scale
        super().__init__(**kwargs)


class ToyCache:
    """A static cache: (B, S_max, C) key and value buffers, written in place; `seen` tokens held."""

    def __init__(self, batch: int, max_length: int, width: int):
        self.keys = torch.zeros(batch, max_length, width)
        self.values = torch.zeros(batch, max_length, width)
        self.seen = 0

    def reorder(self, rows: torch.LongTensor) -> None:
        self.keys[:] = self.keys[rows]
        self.values[:] = self.values[rows]

    def to_legacy(self):
        return ((self.keys[:, None, : self.seen], self.values[:, None, : self.seen]),)


class ToyForCausalLM(GenerationMixin, PreTrainedModel):
    config_class = ToyConfig
    base_model_prefix = ""
    static_cache = True  # tests switch it off to exercise the model-returned (tuple) cache

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.params = torch.nn.ParameterDict({k: torch.nn.Parameter(v) for k, v in toy.make_params().items()})
        self.forward_calls = []  # (input length, cache object) per forward, for the tests

    def _init_weights(self, module):
        pass

    def _init_generation_cache(self, batch_size, max_length):
        return ToyCache(batch_size, max_length, self.config.hidden_size) if self.static_cache else None

    def forward(self, input_ids, attention_mask=None, position_ids=None, past_key_values=None, use_cache=None,
                output_attentions=False, output_hidden_states=False, return_dict=True):
        self.forward_calls.append((input_ids.shape[1], past_key_values))
        params = dict(self.params)
        if attention_mask is None:
            attention_mask = torch.ones(input_ids.shape[0], input_ids.shape[1], dtype=torch.long)
        if position_ids is None:
            position_ids = toy.positions_from_mask(attention_mask)[:, -input_ids.shape[1]:]
        if isinstance(past_key_values, ToyCache):
            cache = past_key_values
            logits, _, _, weights = toy.forward_into(params, input_ids, attention_mask, position_ids, cache.keys,
                                                     cache.values, cache.seen)
            cache.seen += input_ids.shape[1]
            past = cache
        else:
            # legacy tuples in the usual (B, H, S, D) layout, H = 1
            layer = [t[:, 0] for t in past_key_values[0]] if past_key_values is not None else (None, None)
            logits, k, v, weights = toy.forward(params, input_ids, attention_mask, position_ids, *layer)
            past = ((k[:, None], v[:, None]),) if use_cache else None
        return CausalLMOutputWithPast(logits=logits, past_key_values=past,
                                      attentions=(weights,) if output_attentions else None,
                                      hidden_states=(logits,) if output_hidden_states else None)


def toy_model(**config_kwargs) -> ToyForCausalLM:
    return ToyForCausalLM(ToyConfig(**config_kwargs)).eval()


def reference_cases(kind: str = "toy") -> dict:
    """The recorded cases of the decoder-only toy ("toy") or the encoder-decoder toy ("seq2seq")."""
    folder = FIXTURES.parent / kind
    meta = json.loads((folder / "cases.json").read_text())
    tensors = load_file(str(folder / "io.safetensors"))
    return {"meta": meta, "tensors": tensors}


def expected(fixture: dict, structure):
    """A case's recorded output: a tensor for a key, tuples for lists of keys."""
    if structure is None:
        return None
    if isinstance(structure, str):
        return fixture["tensors"][structure]
    return tuple(expected(fixture, s) for s in structure)


def check_case(fixture: dict, name: str, result) -> None:
    """`result` is what the reference returned for case `name`: the same class and fields, ids and beam
    indices exactly, the rest within the tolerances (`tolerance.ATOL`, `tolerance.RTOL`)."""
    case = fixture["meta"]["cases"][name]
    if case["output_class"] is None:
        assert isinstance(result, torch.Tensor)
        assert_close(result, expected(fixture, case["outputs"]["sequences"]), atol=0, rtol=0, name="sequences")
        return
    assert type(result).__name__ == case["output_class"]
    assert sorted(k for k in result.keys() if k != "past_key_values") == sorted(case["outputs"])
    for field, structure in case["outputs"].items():
        want, got = expected(fixture, structure), result[field]
        if isinstance(want, tuple):
            assert len(got) == len(want), field
            for i, (one, reference) in enumerate(zip(got, want)):
                assert_close(one, reference, name=f"{field}[{i}]")
        elif field in ("sequences", "beam_indices"):
            assert_close(got, want, atol=0, rtol=0, name=field)
        else:
            assert_close(got, want, name=field)


def polyformer_kwargs(kwargs: dict) -> dict:
    """A case's generate kwargs as Python objects."""
    return toy.kwargs_from_json(kwargs)


# --- the encoder-decoder toy ----------------------------------------------------------------------------
class ToySeq2SeqConfig(PretrainedConfig):
    model_type = "toy_seq2seq"

    def __init__(self, vocab_size=24, d_model=16, max_position_embeddings=48, logit_scale=4.0, decoder_layers=1,
                 decoder_attention_heads=1, pad_token_id=1, bos_token_id=0, eos_token_id=2, decoder_start_token_id=2,
                 forced_eos_token_id=2, is_encoder_decoder=True, **kwargs):
        self.vocab_size = vocab_size
        self.d_model = d_model
        self.max_position_embeddings = max_position_embeddings
        self.logit_scale = logit_scale
        self.decoder_layers = decoder_layers
        self.decoder_attention_heads = decoder_attention_heads
        super().__init__(pad_token_id=pad_token_id, bos_token_id=bos_token_id, eos_token_id=eos_token_id,
                         decoder_start_token_id=decoder_start_token_id, forced_eos_token_id=forced_eos_token_id,
                         is_encoder_decoder=is_encoder_decoder, **kwargs)


@dataclass
class ToySeq2SeqOutput(ModelOutput):
    logits: Any = None
    past_key_values: Any = None
    decoder_hidden_states: Any = None
    decoder_attentions: Any = None
    cross_attentions: Any = None
    encoder_last_hidden_state: Any = None


class ToySeq2SeqCache:
    """Preallocated (N, S_max, C) self-attention buffers, written in place, and the cross-attention keys
    and values of the encoder states, computed at the first step; `seen` decoder tokens held."""

    def __init__(self, batch: int, max_length: int, width: int):
        self.keys = torch.zeros(batch, max_length, width)
        self.values = torch.zeros(batch, max_length, width)
        self.cross = None
        self.seen = 0

    def reorder(self, rows: torch.LongTensor) -> None:  # beams of a row share their encoder states
        self.keys[:] = self.keys[rows]
        self.values[:] = self.values[rows]

    def to_legacy(self):
        return ((self.keys[:, None, : self.seen], self.values[:, None, : self.seen], self.cross[0][:, None],
                 self.cross[1][:, None]),)


class ToyEncoder(torch.nn.Module):
    def __init__(self, owner):
        super().__init__()
        self.owner = [owner]  # not a submodule: the parameters are the owner's
        self.calls = 0

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        self.calls += 1
        shape = (input_ids if inputs_embeds is None else inputs_embeds).shape[:2]
        if attention_mask is None:
            attention_mask = torch.ones(shape, dtype=torch.long)
        states, embeddings, weights = toy.encode(dict(self.owner[0].params), input_ids, attention_mask, inputs_embeds)
        return BaseModelOutput(last_hidden_state=states,
                               hidden_states=(embeddings, states) if output_hidden_states else None,
                               attentions=(weights,) if output_attentions else None)


class ToySeq2SeqLM(GenerationMixin, PreTrainedModel):
    """The encoder-decoder toy: `static_cache` True gives generate() a ToySeq2SeqCache, "default" the
    GenerationMixin's EncoderDecoderCache; False makes the model return legacy tuples (per layer (self_k,
    self_v, cross_k, cross_v), (N, 1, S, C)) itself."""

    config_class = ToySeq2SeqConfig
    base_model_prefix = ""
    static_cache = True

    def __init__(self, config: ToySeq2SeqConfig):
        super().__init__(config)
        self.params = torch.nn.ParameterDict({k: torch.nn.Parameter(v) for k, v in toy.make_seq2seq_params().items()})
        self.encoder = ToyEncoder(self)
        self.forward_calls = []  # (decoder tokens, cache object) per forward

    def _init_weights(self, module):
        pass

    def get_encoder(self):
        return self.encoder

    def _init_generation_cache(self, batch_size, max_length):
        if self.static_cache == "default":  # GenerationMixin's: an EncoderDecoderCache over a StaticCache
            return super()._init_generation_cache(batch_size, max_length)
        return ToySeq2SeqCache(batch_size, max_length, self.config.d_model) if self.static_cache else None

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                encoder_outputs=None, past_key_values=None, head_mask=None, decoder_head_mask=None,
                cross_attn_head_mask=None, use_cache=None, output_attentions=False, output_hidden_states=False,
                return_dict=True):
        self.forward_calls.append((decoder_input_ids.shape[1], past_key_values))
        params = dict(self.params)
        if encoder_outputs is None:
            encoder_outputs = self.encoder(input_ids, attention_mask)
        states = encoder_outputs.last_hidden_state
        if attention_mask is None:
            attention_mask = torch.ones(states.shape[:2], dtype=torch.long)
        cache, kept = past_key_values, []
        if isinstance(cache, ToySeq2SeqCache):
            if cache.cross is None:
                cache.cross = toy.cross_kv(params, states)
            seen, cross = cache.seen, cache.cross

            def store(k, v):
                end = seen + k.shape[1]
                cache.keys[:, seen:end], cache.values[:, seen:end] = k, v
                return cache.keys[:, :end], cache.values[:, :end]
        elif isinstance(cache, EncoderDecoderCache):  # (N, H, S, D) with H = 1
            seen = cache.seen
            cross = [t[:, 0] for t in cache.cross_kv(0, lambda: [t[:, None] for t in toy.cross_kv(params, states)])]

            def store(k, v):
                k, v = cache.update(0, k[:, None], v[:, None])
                return k[:, 0], v[:, 0]
        else:
            layer = [t[:, 0] for t in cache[0]] if cache is not None else None
            seen = layer[0].shape[1] if layer is not None else 0
            cross = layer[2:] if layer is not None else toy.cross_kv(params, states)

            def store(k, v):
                if layer is not None:
                    k, v = torch.cat([layer[0], k], dim=1), torch.cat([layer[1], v], dim=1)
                kept.extend((k, v))
                return k, v
        logits, self_weights, cross_weights, g = toy.decode(params, decoder_input_ids, seen, store, cross,
                                                            attention_mask)
        if isinstance(cache, (ToySeq2SeqCache, EncoderDecoderCache)):
            if isinstance(cache, ToySeq2SeqCache):
                cache.seen += decoder_input_ids.shape[1]
            past = cache
        else:
            past = (tuple(t[:, None] for t in (*kept, *cross)),) if use_cache else None
        return ToySeq2SeqOutput(logits=logits, past_key_values=past,
                                decoder_hidden_states=(g,) if output_hidden_states else None,
                                decoder_attentions=(self_weights,) if output_attentions else None,
                                cross_attentions=(cross_weights,) if output_attentions else None,
                                encoder_last_hidden_state=states)


def seq2seq_model(**config_kwargs) -> ToySeq2SeqLM:
    return ToySeq2SeqLM(ToySeq2SeqConfig(**config_kwargs)).eval()
