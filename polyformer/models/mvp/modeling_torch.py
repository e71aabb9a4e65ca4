"""MVP in PyTorch (Tang et al., 2022, "MVP: Multi-task Supervised Pre-training for Natural Language
Generation"): BART's post-LayerNorm encoder-decoder (`pt.seq2seq`) plus, when `config.use_prompt`, layer-wise
prompts: per layer, prompt_length key and value vectors put before the keys and values of the encoder
self-attention, the decoder self-attention and the cross-attention. `set_lightweight_tuning()` freezes
everything but the prompts (prefix-tuning).

Notation: B batch, T decoder tokens, S_enc encoder length, C width (d_model), H heads, D head dim,
P prompt length, L layers, V vocabulary.
Module attributes are the reference's checkpoint keys (model.encoder.self_attn_prompt.prompt_trans.0, ...).
"""

from __future__ import annotations

import copy
import logging
from typing import List, Optional, Tuple

import torch
import torch.nn as nn

from ...generation.utils import GenerationMixin
from ...outputs import (CausalLMOutputWithCrossAttentions, Seq2SeqLMOutput, Seq2SeqQuestionAnsweringModelOutput,
                        Seq2SeqSequenceClassifierOutput, finish)
from ...pt.cache import StaticCache
from ...pt.heads import classification_loss, cross_entropy_loss, span_qa_loss
from ...pt.modeling import PreTrainedModel
from ...pt.seq2seq import Seq2SeqDecoder, Seq2SeqEncoder, Seq2SeqModel, as_encoder_output
from ...pt.seq2seq_heads import ClassificationHead, eos_pool, seq2seq_tail, shift_tokens_right
from .configuration import MvpConfig

logger = logging.getLogger(__name__)


class MvpPrompt(nn.Module):
    """Layer-wise prompts of one attention kind: prompt_embedding (P, C) -> prompt_trans (C -> mid -> L*2*C,
    GELU between) -> dropout -> per layer a (2, H, P, D) tensor: keys [0] and values [1]."""

    def __init__(self, config: MvpConfig, num_layers: int, num_heads: int):
        super().__init__()
        self.prompt_length, self.num_layers, self.num_heads = config.prompt_length, num_layers, num_heads
        self.head_dim = config.d_model // num_heads
        self.dropout = nn.Dropout(p=config.dropout)
        self.prompt_embedding = nn.Embedding(config.prompt_length, config.d_model)
        self.prompt_trans = nn.Sequential(nn.Linear(config.d_model, config.prompt_mid_dim), nn.GELU(),
                                          nn.Linear(config.prompt_mid_dim, num_layers * 2 * config.d_model))

    def forward(self, prompt_ids: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, ...]:
        if prompt_ids is None:
            prompt_ids = torch.arange(self.prompt_length, device=self.prompt_embedding.weight.device)
        prompt = self.prompt_trans(self.prompt_embedding(prompt_ids))  # (P, L*2*C)
        prompt = self.dropout(prompt.view(self.prompt_length, self.num_layers * 2, self.num_heads, self.head_dim))
        return prompt.permute(1, 2, 0, 3).split(2)  # L x (2, H, P, D)


class MvpPreTrainedModel(PreTrainedModel):
    config_class = MvpConfig
    base_model_prefix = "model"
    # device_map (4.37 has none for MVP): layers and prompt tables whole on one device
    _no_split_modules = ["EncoderLayer", "DecoderLayer", "MvpPrompt"]
    _skip_keys_device_placement = "past_key_values"

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """The base init (normal(0, init_std) weights, zero biases and padding rows, identity LayerNorms),
        and a zero final_logits_bias; nothing on the meta device (from_pretrained fills those tensors)."""
        if any(t.is_meta for t in module.parameters(recurse=False)):
            return
        super()._init_weights(module)
        if isinstance(module, MvpForConditionalGeneration) and not module.final_logits_bias.is_meta:
            module.final_logits_bias.zero_()

    @property
    def dummy_inputs(self) -> dict:
        pad = self.config.pad_token_id
        input_ids = torch.tensor([[0, 6, 10, 4, 2], [0, 8, 12, 2, pad]], device=self.device)
        return {"attention_mask": input_ids.ne(pad), "input_ids": input_ids}

    def _match_prefix(self, state):
        """Also: a checkpoint naming one of several aliases of a tensor (model.shared.weight, which the
        stacks' embed_tokens are) fills the others, so none counts as missing."""
        state = super()._match_prefix(state)
        aliases = {}
        for name, tensor in self.state_dict(keep_vars=True).items():
            aliases.setdefault(id(tensor), []).append(name)
        for names in aliases.values():
            given = next((state[n] for n in names if n in state), None)
            for name in names if given is not None else ():
                state.setdefault(name, given)
        return state

    def _check_prompts(self) -> None:
        if not self.config.use_prompt:
            raise ValueError("If you want to use lightweight tuning, make sure that `use_prompt=True`.")


class MvpEncoder(MvpPreTrainedModel, Seq2SeqEncoder):
    """MVP's encoder; with `use_prompt`, `self_attn_prompt` gives each layer's self-attention a prefix."""

    def __init__(self, config: MvpConfig, embed_tokens: Optional[nn.Embedding] = None, use_prompt: bool = False):
        super().__init__(config, embed_tokens)
        self.use_prompt = use_prompt
        if use_prompt:
            self.prompt_length = config.prompt_length
            self.self_attn_prompt = MvpPrompt(config, config.encoder_layers, config.encoder_attention_heads)
        if embed_tokens is None:  # built alone (a model initialises its stacks once, in its own post_init)
            self.post_init()


class MvpDecoder(MvpPreTrainedModel, Seq2SeqDecoder):
    """MVP's decoder; with `use_prompt`, `self_attn_prompt` and `cross_attn_prompt` give each layer's self- and
    cross-attention a prefix."""

    def __init__(self, config: MvpConfig, embed_tokens: Optional[nn.Embedding] = None, use_prompt: bool = False):
        super().__init__(config, embed_tokens)
        self.use_prompt = use_prompt
        if use_prompt:
            self.prompt_length = config.prompt_length
            self.self_attn_prompt = MvpPrompt(config, config.decoder_layers, config.decoder_attention_heads)
            self.cross_attn_prompt = MvpPrompt(config, config.decoder_layers, config.decoder_attention_heads)
        if embed_tokens is None:
            self.post_init()


class MvpModel(MvpPreTrainedModel, Seq2SeqModel):
    """The bare encoder-decoder: `shared` token embeddings, `encoder`, `decoder`. Returns Seq2SeqModelOutput:
    the decoder's last_hidden_state (B, T, C), past_key_values (per layer (self_k, self_v, cross_k, cross_v),
    without the prompts), hidden states and attentions of both stacks (with prompts, P more keys).

    Example:
        >>> import torch
        >>> from polyformer import MvpConfig, MvpModel
        >>> config = MvpConfig(d_model=32, encoder_layers=2, decoder_layers=2, encoder_attention_heads=4,
        ...                    decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, vocab_size=100)
        >>> MvpModel(config)(torch.tensor([[0, 31, 41, 2]])).last_hidden_state.shape
        torch.Size([1, 4, 32])
    """

    _keys_to_ignore_on_load_unexpected = ["final_logits_bias"]
    _tied_weights_keys = ["encoder.embed_tokens.weight", "decoder.embed_tokens.weight"]

    def __init__(self, config: MvpConfig):
        super().__init__(config)
        self.use_prompt = config.use_prompt
        self.shared = nn.Embedding(config.vocab_size, config.d_model, config.pad_token_id)
        self.encoder = MvpEncoder(config, self.shared, config.use_prompt)
        self.decoder = MvpDecoder(config, self.shared, config.use_prompt)
        self.post_init()

    def set_lightweight_tuning(self) -> None:
        """Freeze every parameter but the three prompts (needs use_prompt=True)."""
        self._check_prompts()
        self.requires_grad_(False)
        for prompt in (self.encoder.self_attn_prompt, self.decoder.self_attn_prompt, self.decoder.cross_attn_prompt):
            prompt.requires_grad_(True)


class _MvpHead(MvpPreTrainedModel):
    """A task head on `model` (an MvpModel); `head` names the head module that lightweight tuning freezes."""

    head: str
    _tied_weights_keys = ["model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight"]

    def get_encoder(self) -> nn.Module:
        return self.model.get_encoder()

    def get_decoder(self) -> nn.Module:
        return self.model.get_decoder()

    def set_lightweight_tuning(self) -> None:
        """Freeze every parameter but the prompts (the head too)."""
        self.model.set_lightweight_tuning()
        getattr(self, self.head).requires_grad_(False)


class MvpForConditionalGeneration(GenerationMixin, _MvpHead):
    """MVP with its LM head: logits = lm_head(decoder states) + final_logits_bias, lm_head tied to `shared`.
    labels (B, T): cross-entropy, -100 ignored; without decoder inputs, the decoder reads the labels shifted
    right (decoder_start_token_id first, -100 -> pad).

    Example:
        >>> from polyformer import AutoTokenizer, MvpForConditionalGeneration
        >>> tokenizer = AutoTokenizer.from_pretrained("RUCAIBox/mvp")
        >>> model = MvpForConditionalGeneration.from_pretrained("RUCAIBox/mvp")
        >>> inputs = tokenizer("Summarize: You may want to stick it to your boss and leave your job, but don't do "
        ...                    "it if these are your reasons.", return_tensors="pt")
        >>> labels = tokenizer("Bad Reasons To Quit Your Job", return_tensors="pt")["input_ids"]
        >>> model(**inputs, labels=labels).loss.backward()
    """

    head = "lm_head"
    _tied_weights_keys = _MvpHead._tied_weights_keys + ["lm_head.weight"]

    def __init__(self, config: MvpConfig):
        super().__init__(config)
        self.model = MvpModel(config)
        self.register_buffer("final_logits_bias", torch.zeros((1, self.model.shared.num_embeddings)))
        self.lm_head = nn.Linear(config.d_model, self.model.shared.num_embeddings, bias=False)
        self.post_init()

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def resize_token_embeddings(self, new_num_tokens: Optional[int] = None, pad_to_multiple_of: Optional[int] = None):
        """As the base class, and final_logits_bias follows (new entries zero)."""
        embeddings = super().resize_token_embeddings(new_num_tokens, pad_to_multiple_of)
        old, n = self.final_logits_bias, self.config.vocab_size
        bias = old[:, :n] if n <= old.shape[1] else torch.cat([old, old.new_zeros(1, n - old.shape[1])], dim=1)
        self.register_buffer("final_logits_bias", bias)
        return embeddings

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                head_mask=None, decoder_head_mask=None, cross_attn_head_mask=None, encoder_outputs=None,
                past_key_values=None, inputs_embeds=None, decoder_inputs_embeds=None, labels=None, use_cache=None,
                output_attentions=None, output_hidden_states=None, return_dict=None):
        """See `Seq2SeqModel.forward`; labels (B, T) in [0, vocab_size) or -100."""
        if labels is not None:
            if use_cache:
                logger.warning("The `use_cache` argument is changed to `False` since `labels` is provided.")
            use_cache = False
            if decoder_input_ids is None and decoder_inputs_embeds is None:
                decoder_input_ids = self.prepare_decoder_input_ids_from_labels(labels)
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask, head_mask=head_mask, decoder_head_mask=decoder_head_mask,
            cross_attn_head_mask=cross_attn_head_mask, encoder_outputs=encoder_outputs,
            past_key_values=past_key_values, inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds,
            use_cache=use_cache, output_attentions=options.output_attentions,
            output_hidden_states=options.output_hidden_states, return_dict=True)
        logits = self.lm_head(out.last_hidden_state) + self.final_logits_bias  # (B, T, V)
        loss = None if labels is None else cross_entropy_loss(logits, labels)
        return finish(Seq2SeqLMOutput(loss, logits, *seq2seq_tail(out)), options.return_dict)

    def prepare_decoder_input_ids_from_labels(self, labels: torch.Tensor) -> torch.Tensor:
        return shift_tokens_right(labels, self.config.pad_token_id, self.config.decoder_start_token_id)

    # --- generate()'s one-token step (generation/static_step.py) ------------------------------------
    def static_step_context(self, model_kwargs: dict) -> Optional[dict]:
        """The encoder states and source mask the decoder reads, and its prompts, once per call (see
        `Seq2SeqDecoder.step_context`)."""
        encoded = model_kwargs.get("encoder_outputs")
        return self.get_decoder().step_context(
            None if encoded is None else as_encoder_output(encoded).last_hidden_state,
            model_kwargs.get("attention_mask"),
            head_masks=(model_kwargs.get("decoder_head_mask"), model_kwargs.get("cross_attn_head_mask")))

    def static_step_logits(self, *, input_ids, token_type_ids, cache, mask, tables, **context) -> torch.Tensor:
        """The decoder's one-token step, then the LM head as `forward` applies it: (B, 1, V)."""
        hidden = self.get_decoder().decode_step(input_ids=input_ids, cache=cache, mask=mask, **context)
        return self.lm_head(hidden) + self.final_logits_bias


class MvpForSequenceClassification(_MvpHead):
    """Classification from the decoder state at the last <eos> of input_ids (every row must hold as many
    <eos> tokens): classification_head (dense -> tanh -> out_proj). labels (B,) or a 0-dim tensor: regression,
    single- or multi-label per config.problem_type."""

    head = "classification_head"

    def __init__(self, config: MvpConfig, **kwargs):
        super().__init__(config, **kwargs)
        self.model = MvpModel(config)
        self.classification_head = ClassificationHead(config.d_model, config.d_model, config.num_labels,
                                                      config.classifier_dropout)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                head_mask=None, decoder_head_mask=None, cross_attn_head_mask=None, encoder_outputs=None,
                inputs_embeds=None, decoder_inputs_embeds=None, labels=None, use_cache=None, output_attentions=None,
                output_hidden_states=None, return_dict=None):
        if labels is not None:
            use_cache = False
        if input_ids is None and inputs_embeds is not None:
            raise NotImplementedError(f"Passing input embeddings is currently not supported for {type(self).__name__}")
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask, head_mask=head_mask, decoder_head_mask=decoder_head_mask,
            cross_attn_head_mask=cross_attn_head_mask, encoder_outputs=encoder_outputs,
            inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds, use_cache=use_cache,
            output_attentions=options.output_attentions, output_hidden_states=options.output_hidden_states,
            return_dict=True)
        logits = self.classification_head(eos_pool(out.last_hidden_state, input_ids, self.config.eos_token_id))
        loss = None if labels is None else classification_loss(logits, labels, self.config)
        return finish(Seq2SeqSequenceClassifierOutput(loss, logits, *seq2seq_tail(out)), options.return_dict)


class MvpForQuestionAnswering(_MvpHead):
    """Extractive QA on the decoder states: qa_outputs -> start/end logits (B, T). Loss = mean of start and
    end cross-entropy; positions outside the sequence are clamped and ignored."""

    head = "qa_outputs"

    def __init__(self, config: MvpConfig):
        super().__init__(config)
        config.num_labels = 2
        self.num_labels = config.num_labels
        self.model = MvpModel(config)
        self.qa_outputs = nn.Linear(config.d_model, config.num_labels)
        self.post_init()

    def forward(self, input_ids=None, attention_mask=None, decoder_input_ids=None, decoder_attention_mask=None,
                head_mask=None, decoder_head_mask=None, cross_attn_head_mask=None, encoder_outputs=None,
                start_positions=None, end_positions=None, inputs_embeds=None, decoder_inputs_embeds=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        if start_positions is not None and end_positions is not None:
            use_cache = False
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.model(
            input_ids=input_ids, attention_mask=attention_mask, decoder_input_ids=decoder_input_ids,
            decoder_attention_mask=decoder_attention_mask, head_mask=head_mask, decoder_head_mask=decoder_head_mask,
            cross_attn_head_mask=cross_attn_head_mask, encoder_outputs=encoder_outputs,
            inputs_embeds=inputs_embeds, decoder_inputs_embeds=decoder_inputs_embeds, use_cache=use_cache,
            output_attentions=options.output_attentions, output_hidden_states=options.output_hidden_states,
            return_dict=True)
        logits = self.qa_outputs(out.last_hidden_state)  # (B, T, 2)
        start_logits, end_logits = (t.squeeze(-1).contiguous() for t in logits.split(1, dim=-1))
        loss = span_qa_loss(start_logits, end_logits, start_positions, end_positions)
        output = Seq2SeqQuestionAnsweringModelOutput(loss, start_logits, end_logits, *seq2seq_tail(out))
        return finish(output, options.return_dict)


class MvpDecoderWrapper(MvpPreTrainedModel):
    """Holds the decoder of MvpForCausalLM (so its weights are named model.decoder.*)."""

    def __init__(self, config: MvpConfig):
        super().__init__(config)
        self.decoder = MvpDecoder(config)

    def forward(self, *args, **kwargs):
        return self.decoder(*args, **kwargs)


class MvpForCausalLM(GenerationMixin, MvpPreTrainedModel):
    """MVP's decoder alone with an LM head (lm_head tied to its embed_tokens), without prompts (as the
    reference builds it). labels (B, T) are compared with the logits at the same position (no shift);
    -100 is ignored. encoder_hidden_states (B, S_enc, C) enable the cross-attention."""

    _tied_weights_keys = ["lm_head.weight"]

    def __init__(self, config: MvpConfig):
        config = copy.deepcopy(config)
        config.is_decoder, config.is_encoder_decoder = True, False
        super().__init__(config)
        self.model = MvpDecoderWrapper(config)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.post_init()

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.decoder.embed_tokens

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.decoder.embed_tokens = value

    def get_output_embeddings(self) -> nn.Linear:
        return self.lm_head

    def set_output_embeddings(self, value: nn.Linear) -> None:
        self.lm_head = value

    def get_decoder(self) -> MvpDecoder:
        return self.model.decoder

    def set_decoder(self, decoder: MvpDecoder) -> None:
        self.model.decoder = decoder

    def set_lightweight_tuning(self) -> None:
        raise AttributeError("MvpForCausalLM has no prompts to tune: its decoder is built without them (as in "
                             "transformers 4.37, where this call fails too); use MvpForConditionalGeneration")

    def forward(self, input_ids=None, attention_mask=None, encoder_hidden_states=None, encoder_attention_mask=None,
                head_mask=None, cross_attn_head_mask=None, past_key_values=None, inputs_embeds=None, labels=None,
                use_cache=None, output_attentions=None, output_hidden_states=None, return_dict=None):
        options = self.config.output_options(output_attentions, output_hidden_states, return_dict)
        out = self.model.decoder(
            input_ids=input_ids, attention_mask=attention_mask, encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask, head_mask=head_mask, cross_attn_head_mask=cross_attn_head_mask,
            past_key_values=past_key_values, inputs_embeds=inputs_embeds, use_cache=use_cache,
            output_attentions=options.output_attentions, output_hidden_states=options.output_hidden_states,
            return_dict=True)
        logits = self.lm_head(out.last_hidden_state)  # (B, T, V)
        loss = None if labels is None else cross_entropy_loss(logits, labels)
        output = CausalLMOutputWithCrossAttentions(loss, logits, out.past_key_values, out.hidden_states,
                                                   out.attentions, out.cross_attentions)
        return finish(output, options.return_dict)

    def prepare_inputs_for_generation(self, input_ids, past_key_values=None, attention_mask=None, use_cache=None,
                                      **kwargs):
        """The tokens the cache has not seen and the mask over all of them (positions follow the cache)."""
        if attention_mask is None:
            attention_mask = input_ids.new_ones(input_ids.shape)
        seen = _cached_length(past_key_values)
        if seen:
            input_ids = input_ids[:, seen if input_ids.shape[1] > seen else -1:]
        return {"input_ids": input_ids, "attention_mask": attention_mask, "past_key_values": past_key_values,
                "use_cache": use_cache}

    def _init_generation_cache(self, batch_size: int, max_length: int) -> StaticCache:
        return _static_cache(self, batch_size, max_length)

    def static_step_context(self, model_kwargs: dict) -> Optional[dict]:
        """generate()'s one-token step (generation/static_step.py) runs the decoder alone, as
        `prepare_inputs_for_generation` does (no encoder states, no head masks)."""
        return self.get_decoder().step_context()

    def static_step_logits(self, *, input_ids, token_type_ids, cache, mask, tables, **context) -> torch.Tensor:
        """The decoder's one-token step, then the LM head: (B, 1, V)."""
        return self.lm_head(self.get_decoder().decode_step(input_ids=input_ids, cache=cache, mask=mask, **context))


def _cached_length(past) -> int:
    if past is None:
        return 0
    return past.seen if hasattr(past, "seen") else past[0][0].shape[2]


def _static_cache(model: PreTrainedModel, batch_size: int, max_length: int) -> StaticCache:
    """Preallocated decoder self-attention keys and values (decoder_layers, B, H, max_length, D)."""
    config = model.config
    heads = config.decoder_attention_heads
    return StaticCache(config.decoder_layers, batch=batch_size, n_kv_heads=heads, head_dim=config.d_model // heads,
                       max_length=max_length, dtype=model.dtype, device=model.device)
