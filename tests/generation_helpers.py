"""The toy model of generation_toy.py as a polyformer causal LM, and the reference fixtures it is checked
against (tests/fixtures/generation/, written by scripts/fixtures/make_generation_fixtures.py)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

import generation_toy as toy
from polyformer.configuration import PretrainedConfig
from polyformer.generation.utils import GenerationMixin
from polyformer.outputs import CausalLMOutputWithPast
from polyformer.pt.modeling import PreTrainedModel

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "generation" / "toy"


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


def reference_cases() -> dict:
    meta = json.loads((FIXTURES / "cases.json").read_text())
    tensors = load_file(str(FIXTURES / "io.safetensors"))
    return {"meta": meta, "tensors": tensors}


def polyformer_kwargs(kwargs: dict) -> dict:
    """A case's generate kwargs as Python objects."""
    return toy.kwargs_from_json(kwargs)
