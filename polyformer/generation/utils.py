"""`GenerationMixin`: `generate()` for every model with a language-modelling head.

Mixed into the `*ForCausalLM` and `*ForConditionalGeneration` classes
(`class LlamaForCausalLM(GenerationMixin, LlamaPreTrainedModel)`).
It resolves the generation config (the call's kwargs over `model.generation_config`), checks the input,
builds the logits processors and stopping criteria, and hands one `Session` to a decoding loop
(decoding.py). It also loads and saves `generation_config.json` with the model (the `_load_extras` /
`_save_extras` hooks of `PreTrainedModel`).
"""

from __future__ import annotations

import copy
import inspect
import logging
import warnings
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch

from ..hub import resolve_file
from . import decoding, seq2seq
from .beam import BeamSearchScorer
from .outputs import (GenerateBeamDecoderOnlyOutput, GenerateBeamEncoderDecoderOutput, GenerateDecoderOnlyOutput,
                      GenerateEncoderDecoderOutput)
from .config import GENERATION_CONFIG_NAME, MODEL_CONFIG_GENERATION_DEFAULTS, GenerationConfig
from .processors import LogitsProcessorList
from .build import build_logits_processor, build_logits_warper, build_stopping_criteria, check_supported

logger = logging.getLogger(__name__)


class GenerationMixin:
    """Adds `generate()` (greedy, sampling, beam search, beam sampling), `generation_config` and
    `compute_transition_scores` to a model whose forward takes (input_ids, attention_mask, position_ids,
    past_key_values, use_cache) and returns `.logits` (B, T, V) and `.past_key_values`."""

    # Listed before the PreTrainedModel base (`class XForCausalLM(GenerationMixin, XPreTrainedModel)`), so
    # these hooks override the base's inert ones.

    # --- hooks called by PreTrainedModel ------------------------------------------------------------
    def can_generate(self) -> bool:
        return True

    @property
    def generation_config(self) -> GenerationConfig:
        """The default generation settings: generation_config.json when the model was loaded with one,
        otherwise those its config holds (made on first use)."""
        config = self.__dict__.get("_generation_config")
        if config is None:
            config = GenerationConfig.from_model_config(self.config)
            self.__dict__["_generation_config"] = config
        return config

    @generation_config.setter
    def generation_config(self, value: Optional[GenerationConfig]) -> None:
        self.__dict__["_generation_config"] = value

    def _load_extras(self, name: str, hub_kwargs: Dict[str, Any]) -> None:
        parent = getattr(super(), "_load_extras", None)
        if parent is not None:
            parent(name, hub_kwargs)
        # Absent is None; a Hub error (HubError) or an unsafe path is raised, never read as "absent".
        path = resolve_file(name, GENERATION_CONFIG_NAME, required=False, **hub_kwargs)
        if path is None:
            logger.info("Generation config file not found, using a generation config created from the model config.")
            self.generation_config = GenerationConfig.from_model_config(self.config)
        else:
            self.generation_config = GenerationConfig.from_json_file(path)

    def _save_extras(self, save_directory: str) -> None:
        parent = getattr(super(), "_save_extras", None)
        if parent is not None:
            parent(save_directory)
        config = self.generation_config
        if config._from_model_config and _legacy_generation_keys(self.config):
            if GenerationConfig.from_model_config(self.config) != config:
                logger.warning("Your generation config was originally created from the model config, but the model "
                               "config has changed since then; generate() will use the model config's values. "
                               "Set model.generation_config before saving to avoid this.")
        config.save_pretrained(save_directory)

    # --- what a model family may override ------------------------------------------------------------
    def prepare_inputs_for_generation(self, input_ids: torch.LongTensor, past_key_values: Any = None,
                                      attention_mask: Optional[torch.Tensor] = None,
                                      position_ids: Optional[torch.Tensor] = None, use_cache: Optional[bool] = None,
                                      **kwargs: Any) -> Dict[str, Any]:
        """The inputs of one forward of a decoder-only model: the tokens the cache has not seen, their
        positions (from the attention mask: cumsum - 1, 1 at padding, as the reference), the mask over
        every token so far, the cache. For an encoder-decoder model, BART's: the decoder tokens
        (`input_ids` are the decoder's) the cache has not seen, with the encoder outputs and source mask."""
        if getattr(self.config, "is_encoder_decoder", False):
            names = ("head_mask", "decoder_head_mask", "cross_attn_head_mask", "encoder_outputs")
            return seq2seq.step_inputs(input_ids, past_key_values, attention_mask, use_cache=use_cache,
                                       past_length=_past_length(past_key_values), **{k: kwargs.get(k) for k in names})
        if position_ids is None and attention_mask is not None:
            position_ids = attention_mask.long().cumsum(-1) - 1
            position_ids.masked_fill_(attention_mask == 0, 1)
        past_length = _past_length(past_key_values)
        if past_length:
            if attention_mask is not None and attention_mask.shape[1] > input_ids.shape[1]:
                input_ids = input_ids[:, -(attention_mask.shape[1] - past_length):]
            elif past_length < input_ids.shape[1]:
                input_ids = input_ids[:, past_length:]
        if position_ids is not None:
            position_ids = position_ids[:, -input_ids.shape[1]:]
        inputs = {"input_ids": input_ids, "attention_mask": attention_mask, "position_ids": position_ids,
                  "past_key_values": past_key_values, "use_cache": use_cache}
        token_type_ids = kwargs.pop("token_type_ids", None)
        if token_type_ids is not None:
            inputs["token_type_ids"] = token_type_ids[:, -input_ids.shape[1]:]
        inputs.update(kwargs)
        return inputs

    def _init_generation_cache(self, batch_size: int, max_length: int) -> Any:
        """A KV cache for `batch_size` rows of up to `max_length` tokens, allocated once per generate()
        call and updated in place by the model; None lets the model return its own cache each step."""
        if getattr(self.config, "is_encoder_decoder", False):
            return seq2seq.init_cache(self, batch_size, max_length)
        from ..pt.cache import StaticCache

        config = self.config
        heads = config.num_attention_heads
        return StaticCache(config.num_hidden_layers, batch=batch_size,
                           n_kv_heads=getattr(config, "num_key_value_heads", None) or heads,
                           head_dim=config.hidden_size // heads, max_length=max_length, dtype=self.dtype,
                           device=self.device)

    @staticmethod
    def _reorder_cache(past_key_values: Tuple[Tuple[torch.Tensor, ...], ...], beam_idx: torch.LongTensor):
        """Legacy tuple caches: select rows `beam_idx` of every tensor."""
        return tuple(tuple(t.index_select(0, beam_idx.to(t.device)) for t in layer) for layer in past_key_values)

    # --- generate -------------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, inputs: Optional[torch.Tensor] = None, generation_config: Optional[GenerationConfig] = None,
                 logits_processor: Optional[LogitsProcessorList] = None, stopping_criteria=None,
                 prefix_allowed_tokens_fn: Optional[Callable[[int, torch.Tensor], List[int]]] = None,
                 synced_gpus: Optional[bool] = None, assistant_model=None, streamer=None,
                 negative_prompt_ids: Optional[torch.Tensor] = None,
                 negative_prompt_attention_mask: Optional[torch.Tensor] = None, **kwargs: Any):
        """Continue `inputs` (B, T) token ids: greedy (default), sampling (`do_sample=True`), beam search
        (`num_beams>1`) or beam sampling (both). For an encoder-decoder model (`config.is_encoder_decoder`)
        `inputs` is the source: the encoder runs once and the decoder generates from
        `decoder_start_token_id` (or `decoder_input_ids=`); lengths count decoder tokens (seq2seq.py).

        Args:
            inputs: the prompt ids (or `input_ids=`); None starts from `bos_token_id`. Left-pad batches and
                pass their `attention_mask`.
            generation_config: the settings to start from (default `model.generation_config`); any of its
                attributes can also be passed as a keyword argument (`max_new_tokens=20, top_p=0.9`).
            logits_processor / stopping_criteria: extra processors / criteria, after the configured ones.
            prefix_allowed_tokens_fn: (batch_id, ids) -> the tokens allowed next.
            streamer: gets the prompt and then each new token (`TextStreamer`, `TextIteratorStreamer`); not
                with beams.
            tokenizer: needed with `stop_strings`.
            kwargs: generation settings, else model inputs (`attention_mask`, ...); unknown names raise.

        Returns:
            The sequences (B * num_return_sequences, L) — prompt included — or, with
            `return_dict_in_generate=True`, a `GenerateDecoderOnlyOutput` / `GenerateBeamDecoderOnlyOutput`
            with `sequences`, `scores` (with `output_scores=True`), `sequences_scores` and `beam_indices`
            (beams), `attentions` / `hidden_states` (when asked for); for encoder-decoder models
            `Generate[Beam]EncoderDecoderOutput`, with `encoder_attentions` / `encoder_hidden_states`,
            `decoder_attentions` / `cross_attentions` / `decoder_hidden_states` instead.
        """
        if not self.can_generate():
            raise TypeError(f"The current model class ({type(self).__name__}) is not compatible with `.generate()`, "
                            "as it doesn't have a language model head.")
        config = copy.deepcopy(self._default_generation_config() if generation_config is None else generation_config)
        tokenizer = kwargs.pop("tokenizer", None)
        compile_step = _compile_requested(kwargs.pop("compile", None), kwargs.pop("cache_implementation", None), config)
        model_kwargs = config.update(**kwargs)
        config.validate()
        check_supported(config, assistant_model, negative_prompt_ids)
        is_seq2seq = bool(getattr(self.config, "is_encoder_decoder", False))
        if model_kwargs.get("inputs_embeds") is not None and not is_seq2seq:
            raise NotImplementedError("generate(inputs_embeds=...) is not supported; pass input_ids")
        self._validate_model_kwargs(model_kwargs)
        if config.pad_token_id is None and config.eos_token_id is not None:
            if model_kwargs.get("attention_mask") is None:
                logger.warning("The attention mask and the pad token id were not set. As a consequence, you may "
                               "observe unexpected behavior. Please pass your input's `attention_mask` to obtain "
                               "reliable results.")
            eos = config.eos_token_id[0] if isinstance(config.eos_token_id, list) else config.eos_token_id
            logger.warning("Setting `pad_token_id` to `eos_token_id`:%s for open-end generation.", eos)
            config.pad_token_id = eos

        if is_seq2seq:  # the encoder runs here, once; input_ids are the decoder's from now on
            input_ids, source = seq2seq.prepare(self, inputs, config, model_kwargs)
        else:
            input_ids = source = self._generation_input_ids(inputs, config.bos_token_id, model_kwargs)
            model_kwargs["attention_mask"] = self._generation_attention_mask(input_ids, config, model_kwargs)
        model_kwargs["use_cache"] = config.use_cache
        if (not is_seq2seq and config.pad_token_id is not None
                and bool((input_ids[:, -1] == config.pad_token_id).any())):
            logger.warning("A decoder-only architecture is being used, but right-padding was detected! For correct "
                           "generation results, please set `padding_side='left'` when initializing the tokenizer.")
        length = input_ids.shape[-1]
        has_default_max_length = kwargs.get("max_length") is None and config.max_length is not None
        if config.max_new_tokens is not None:
            if not has_default_max_length and config.max_length is not None:
                logger.warning("Both `max_new_tokens` (=%s) and `max_length`(=%s) seem to have been set. "
                               "`max_new_tokens` will take precedence.", config.max_new_tokens, config.max_length)
            config.max_length = config.max_new_tokens + length
        self._check_generated_length(config, length, has_default_max_length, is_seq2seq)
        if streamer is not None:
            if config.num_beams > 1:
                raise ValueError("`streamer` cannot be used with beam search (yet!). Make sure that `num_beams` is "
                                 "set to 1.")
            streamer.put(input_ids.cpu())
        if config.max_new_tokens == 0:
            if streamer is not None:
                streamer.end()
            return self._nothing_generated(input_ids, config, is_seq2seq)

        processors = build_logits_processor(config, input_length=length, encoder_input_ids=source,
                                            prefix_allowed_tokens_fn=prefix_allowed_tokens_fn, custom=logits_processor)
        criteria = build_stopping_criteria(config, getattr(self.config, "max_position_embeddings", None),
                                           stopping_criteria, tokenizer)
        warpers = build_logits_warper(config) if config.do_sample else None
        recorder = decoding.Recorder(return_dict=config.return_dict_in_generate, scores=config.output_scores,
                                     attentions=config.output_attentions, hidden_states=config.output_hidden_states,
                                     encoder_outputs=model_kwargs.get("encoder_outputs"), seq2seq=is_seq2seq)
        expand = config.num_beams if config.num_beams > 1 else config.num_return_sequences
        if expand > 1:  # rows, source masks and encoder outputs repeated for beams / returned sequences
            input_ids = input_ids.repeat_interleave(expand, dim=0)
            model_kwargs = seq2seq.expand(model_kwargs, expand)
        max_length = max(config.max_length, length + 1)  # as the reference, at least one new token
        session = decoding.Session(self, input_ids, model_kwargs, max_length, fill_value=config.pad_token_id or 0,
                                   compile=compile_step)
        common = dict(processors=processors, warpers=warpers, criteria=criteria, max_length=max_length,
                      pad_token_id=config.pad_token_id, eos_token_id=config.eos_token_id, recorder=recorder,
                      return_dict=config.return_dict_in_generate)
        scorer = None if config.num_beams == 1 else BeamSearchScorer(
            input_ids.shape[0] // config.num_beams, config.num_beams, input_ids.device,
            length_penalty=config.length_penalty, do_early_stopping=config.early_stopping,
            num_beam_hyps_to_keep=config.num_return_sequences, max_length=config.max_length)
        return decoding.run(session, scorer, streamer=streamer, **common)

    # --- generate(), step by step ---------------------------------------------------------------------
    def _default_generation_config(self) -> GenerationConfig:
        """`model.generation_config`, unless it was made from the model config, left untouched, and the
        model config has since been given generation settings (the reference's legacy behaviour)."""
        config = self.generation_config
        if (config._from_model_config and getattr(config, "_original_object_hash", None) == hash(config)
                and _legacy_generation_keys(self.config)):
            fresh = GenerationConfig.from_model_config(self.config)
            if fresh != config:
                warnings.warn("You have modified the pretrained model configuration to control generation. This is a "
                              "deprecated strategy to control generation; use and modify the model generation "
                              "configuration instead.", UserWarning)
                self.generation_config = config = fresh
        return config

    def _validate_model_kwargs(self, model_kwargs: Dict[str, Any]) -> None:
        """Keyword arguments that are neither generation settings nor model inputs (typos) raise."""
        accepted = set(inspect.signature(self.prepare_inputs_for_generation).parameters)
        if "kwargs" in accepted or "model_kwargs" in accepted:
            accepted |= set(inspect.signature(self.forward).parameters)
        if getattr(self.config, "is_encoder_decoder", False):
            accepted = seq2seq.validate_kwargs(self, accepted)
        unused = [key for key, value in model_kwargs.items() if value is not None and key not in accepted]
        if unused:
            raise ValueError(f"The following `model_kwargs` are not used by the model: {unused} (note: typos in the "
                             "generate arguments will also show up in this list)")

    def _generation_input_ids(self, inputs, bos_token_id, model_kwargs: Dict[str, Any]) -> torch.LongTensor:
        given = model_kwargs.pop("input_ids", None)
        if given is not None and inputs is not None:
            raise ValueError("`inputs` and `input_ids` were both passed to generate(); pass only one of them")
        inputs = given if inputs is None else inputs
        if inputs is None:
            if bos_token_id is None:
                raise ValueError("`bos_token_id` has to be defined when no `input_ids` are provided.")
            batch = next((v.shape[0] for v in model_kwargs.values() if isinstance(v, torch.Tensor)), 1)
            return torch.full((batch, 1), bos_token_id, dtype=torch.long, device=self.device)
        if not isinstance(inputs, torch.Tensor):
            raise TypeError(f"input_ids must be a torch.Tensor of token ids, got {type(inputs).__name__}")
        if inputs.is_floating_point() or inputs.dtype == torch.bool or inputs.dim() != 2:
            raise ValueError("input_ids must be a 2-D integer tensor (batch_size, sequence_length), got "
                             f"dtype {inputs.dtype} and shape {tuple(inputs.shape)}")
        if inputs.shape[1] == 0:
            raise ValueError("input_ids is empty (sequence_length 0); pass at least one token, or none at all to "
                             "start from bos_token_id")
        if inputs.device.type != self.device.type:
            warnings.warn(f"You are calling .generate() with the `input_ids` on {inputs.device.type}, whereas the "
                          f"model is on {self.device.type}. Move the inputs with input_ids.to('{self.device.type}').",
                          UserWarning)
        return inputs

    def _generation_attention_mask(self, input_ids, config: GenerationConfig, model_kwargs) -> torch.Tensor:
        """The given mask (checked), else 0 at pad tokens when pad is not also an EOS, else all ones."""
        mask = model_kwargs.get("attention_mask")
        if mask is not None:
            if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != tuple(input_ids.shape):
                shape = tuple(mask.shape) if isinstance(mask, torch.Tensor) else type(mask).__name__
                raise ValueError(f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, "
                                 f"got {shape}")
            return mask
        pad, eos = config.pad_token_id, config.eos_token_id
        eos = [eos] if isinstance(eos, int) else (eos or [])
        if pad is not None and pad not in eos and bool((input_ids == pad).any()):
            return input_ids.ne(pad).long()
        return torch.ones_like(input_ids, dtype=torch.long)

    def _check_generated_length(self, config: GenerationConfig, length: int, has_default_max_length: bool,
                                is_seq2seq: bool = False) -> None:
        max_positions = getattr(self.config, "max_position_embeddings", None)
        if max_positions is not None and length > max_positions:
            raise ValueError(f"The prompt has {length} tokens, more than the model's {max_positions} positions "
                             "(max_position_embeddings); truncate it (tokenizer(..., truncation=True, max_length=...))")
        if max_positions is not None and config.max_length > max_positions:
            logger.warning("max_length %d exceeds the model's max_position_embeddings (%d): depending on the model "
                           "you may see exceptions or degraded output past that length.", config.max_length,
                           max_positions)
        if has_default_max_length and config.max_new_tokens is None and config.max_length == 20:
            warnings.warn(f"Using the model-agnostic default `max_length` (={config.max_length}) to control the "
                          "generation length. We recommend setting `max_new_tokens` to control the maximum length "
                          "of the generation.", UserWarning)
        if length >= config.max_length and config.max_new_tokens != 0:
            name = "decoder_input_ids" if is_seq2seq else "input_ids"
            warnings.warn(f"Input length of {name} is {length}, but `max_length` is set to {config.max_length}. "
                          "This can lead to unexpected behavior. You should consider increasing `max_new_tokens`.",
                          UserWarning)
        if config.min_length is not None and config.min_length > config.max_length:
            warnings.warn(f"Unfeasible length constraints: `min_length` ({config.min_length}) is larger than the "
                          f"maximum possible length ({config.max_length}).", UserWarning)
        if config.min_new_tokens is not None and config.min_new_tokens + length > config.max_length:
            warnings.warn(f"Unfeasible length constraints: `min_new_tokens` ({config.min_new_tokens}), when added to "
                          f"the prompt length ({length}), is larger than the maximum possible length "
                          f"({config.max_length}).", UserWarning)

    def _nothing_generated(self, input_ids: torch.LongTensor, config: GenerationConfig, is_seq2seq: bool = False):
        """max_new_tokens=0: the prompt comes back (repeated for num_return_sequences)."""
        expand = config.num_return_sequences
        sequences = input_ids.repeat_interleave(expand, dim=0) if expand > 1 else input_ids
        if not config.return_dict_in_generate:
            return sequences
        if config.num_beams > 1:
            empty = torch.zeros(sequences.shape[0], device=sequences.device) if config.output_scores else None
            cls = GenerateBeamEncoderDecoderOutput if is_seq2seq else GenerateBeamDecoderOnlyOutput
            return cls(sequences=sequences, sequences_scores=empty, scores=() if config.output_scores else None)
        cls = GenerateEncoderDecoderOutput if is_seq2seq else GenerateDecoderOnlyOutput
        return cls(sequences=sequences, scores=() if config.output_scores else None)

    # transformers 4.37's decoding methods, for callers that prepare inputs, processors and criteria themselves
    greedy_search = decoding.greedy_search
    sample = decoding.sample
    beam_search = decoding.beam_search
    beam_sample = decoding.beam_sample

    # --- after generate -------------------------------------------------------------------------------
    def compute_transition_scores(self, sequences: torch.Tensor, scores: Tuple[torch.Tensor, ...],
                                  beam_indices: Optional[torch.Tensor] = None,
                                  normalize_logits: bool = False) -> torch.Tensor:
        """The score of each generated token (B*, new tokens), from generate()'s `scores` (and
        `beam_indices` for beams); with `normalize_logits`, log-softmax first."""
        if beam_indices is None:
            beam_indices = torch.arange(scores[0].shape[0], device=sequences.device).view(-1, 1)
            beam_indices = beam_indices.expand(-1, len(scores))
        stacked = torch.stack(scores).reshape(len(scores), -1).transpose(0, 1)     # (rows * V, steps)
        if normalize_logits:
            vocab = scores[0].shape[-1]
            stacked = torch.log_softmax(stacked.reshape(-1, vocab, stacked.shape[-1]), dim=1)
            stacked = stacked.reshape(-1, stacked.shape[-1])
        missing = beam_indices < 0
        steps = int((~missing).long().sum(-1).max())
        beam_indices = beam_indices.clone()[:, :steps]
        missing = missing[:, :steps]
        beam_indices[missing] = 0
        indices = sequences[:, sequences.shape[-1] - steps:] + beam_indices * scores[0].shape[-1]
        transition = stacked.gather(0, indices)
        transition[missing] = 0
        return transition


def _compile_requested(compile: Optional[bool], cache_implementation: Optional[str], config: GenerationConfig) -> bool:
    """Whether generate() runs its decoding step through torch.compile: `compile=True`, or a static cache
    asked for as transformers spells it (`cache_implementation="static"`, as an argument or in the
    generation config), which transformers 5 compiles too."""
    implementation = cache_implementation or getattr(config, "cache_implementation", None)
    if implementation not in (None, "static", "dynamic"):
        raise ValueError(f"cache_implementation must be 'static' (a compiled decoding step) or 'dynamic', "
                         f"got {implementation!r}")
    if compile is not None and not isinstance(compile, bool):
        raise TypeError(f"compile must be True or False, got {compile!r}")
    return bool(compile) if compile is not None else implementation == "static"


def _past_length(past: Any) -> int:
    """How many tokens a cache holds (static or dynamic cache object, legacy tuples, or None)."""
    if past is None:
        return 0
    seen = getattr(past, "seen", None)
    if seen is not None:
        return int(seen)
    if hasattr(past, "get_seq_length"):
        return int(past.get_seq_length())
    return past[0][0].shape[2] if len(past) and past[0] is not None else 0


def _legacy_generation_keys(model_config: Any) -> bool:
    """Whether a model config sets generation keys to non-default values (the pre-GenerationConfig way)."""
    return any(hasattr(model_config, key) and getattr(model_config, key) != default
               for key, default in MODEL_CONFIG_GENERATION_DEFAULTS.items())
