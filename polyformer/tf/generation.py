"""`generate()` for the TF causal LMs: greedy search, sampling and beam search, each one `tf.while_loop` over a
static cache.

The prompt runs once (`prefill`), its keys and values are padded to prompt + max_new_tokens, and each step
writes one token's keys and values at its index (`decode_step`): every shape is fixed, so the loop is traced
once by `tf.function` (generate() itself may be called inside one) with no host round-trip per token.

Settings come from `GenerationConfig` (the model's generation_config.json, overridden by keyword arguments),
as in transformers 4.37: max_length / max_new_tokens, min_length / min_new_tokens, do_sample, temperature,
top_k, top_p, eos_token_id (one or several), pad_token_id; `seed=(a, b)` makes sampling reproducible
(stateless draws); repetition_penalty, no_repeat_ngram_size and bad_words_ids (polyformer/tf/processors.py,
graph versions of 4.37's TF processors); num_beams > 1 runs beam search (polyformer/tf/beam_search.py:
length_penalty, early_stopping, num_return_sequences). Positions follow the attention mask (count of real
tokens before each one), so left-padded batches decode as the reference does. Finished rows get
pad_token_id; the output stops at the longest row, as the reference's eager generate() does.

Notation: B batch, P prompt length, N new tokens, V vocabulary.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union

from ..generation.config import GenerationConfig
from ..hub import resolve_file
from . import processors
from .backend import tf

logger = logging.getLogger(__name__)

# settings other than these are refused rather than silently ignored
UNSUPPORTED_DEFAULTS = {"num_beam_groups": 1, "penalty_alpha": None, "force_words_ids": None,
                        "return_dict_in_generate": False, "output_scores": False,
                        "forced_bos_token_id": None, "forced_eos_token_id": None, "suppress_tokens": None,
                        "begin_suppress_tokens": None, "typical_p": 1.0, "epsilon_cutoff": 0.0, "eta_cutoff": 0.0}


@dataclass(frozen=True)
class Settings:
    """What the traced loop depends on (hashable: tf.function traces once per distinct value)."""

    max_new: int
    min_new: int
    do_sample: bool
    temperature: float
    top_k: int
    top_p: float
    eos: Tuple[int, ...]
    pad: int
    repetition_penalty: float = 1.0
    no_repeat_ngram_size: int = 0
    bad_words_ids: Tuple[Tuple[int, ...], ...] = ()
    num_beams: int = 1
    num_return_sequences: int = 1
    length_penalty: float = 1.0
    early_stopping: Union[bool, str] = False


class TFGenerationMixin:
    """`generate()` and `generation_config` for a TF model with `prefill` and `decode_step` (see below)."""

    def can_generate(self) -> bool:
        return True

    @property
    def generation_config(self) -> GenerationConfig:
        if self.__dict__.get("_generation_config") is None:
            self.__dict__["_generation_config"] = GenerationConfig.from_model_config(self.config)
        return self.__dict__["_generation_config"]

    @generation_config.setter
    def generation_config(self, value: GenerationConfig) -> None:
        self.__dict__["_generation_config"] = value

    def _load_extras(self, name: str, hub_kwargs: Dict[str, Any]) -> None:
        path = resolve_file(name, "generation_config.json", required=False, **hub_kwargs)
        self.generation_config = (GenerationConfig.from_json_file(path) if path
                                  else GenerationConfig.from_model_config(self.config))

    def _save_extras(self, save_directory: str) -> None:
        self.generation_config.save_pretrained(save_directory)

    # What a model provides:
    def prefill(self, input_ids, attention_mask, position_ids):
        """The prompt (B, P) -> (next-token logits (B, V) float32, per layer (key, value) of shape (B, ., P, .))."""
        raise NotImplementedError

    def decode_step(self, token, attention_mask, position_ids, cache, index):
        """One token (B, 1) at cache slot `index` -> (logits (B, V) float32, the cache with its keys and values)."""
        raise NotImplementedError

    # --- generate -------------------------------------------------------------------------------------
    def generate(self, input_ids=None, attention_mask=None, generation_config: Optional[GenerationConfig] = None,
                 seed=None, **kwargs) -> tf.Tensor:
        """Token ids (B, P + generated), int32: the prompt then greedy or sampled tokens.

        Args:
            input_ids: (B, P) prompt ids (left-pad batches of different lengths).
            attention_mask: (B, P), 1 keep / 0 padding; by default 0 where input_ids == pad_token_id (unless the
                pad is also the eos token).
            generation_config: instead of the model's; keyword arguments override either.
            seed: (int, int), for reproducible sampling.
        """
        if input_ids is None:
            raise ValueError("generate() needs input_ids (a prompt of at least one token)")
        config = copy.deepcopy(generation_config or self.generation_config)
        unused = config.update(**kwargs)
        unused.pop("use_cache", None)  # the cache is always used; the numbers are the same
        if unused:
            raise ValueError(f"generate() got arguments it does not use: {sorted(unused)}")
        ids = tf.cast(tf.convert_to_tensor(input_ids), tf.int32)
        settings = self._settings(config, ids.shape[-1])
        if attention_mask is None:
            attention_mask = tf.ones_like(ids)
            if config.pad_token_id is not None and config.pad_token_id not in settings.eos:
                attention_mask = tf.cast(ids != config.pad_token_id, tf.int32)
        mask = tf.cast(tf.convert_to_tensor(attention_mask), tf.int32)
        seed = None if seed is None else tf.constant(seed, tf.int32)
        if settings.num_beams > 1:
            from .beam_search import beam_search

            loop = self.__dict__.get("_beam_loop")
            if loop is None:
                loop = self.__dict__["_beam_loop"] = tf.function(lambda *a: beam_search(self, *a),
                                                                 reduce_retracing=True)
            return loop(ids, mask, settings)
        loop = self.__dict__.get("_generate_loop")
        if loop is None:
            loop = self.__dict__["_generate_loop"] = tf.function(self._loop, reduce_retracing=True)
        return loop(ids, mask, seed, settings)

    def _settings(self, config: GenerationConfig, prompt: Optional[int]) -> Settings:
        for name, default in UNSUPPORTED_DEFAULTS.items():
            if getattr(config, name, default) != default:
                raise NotImplementedError(f"generate() of the TensorFlow classes does greedy search, sampling and beam "
                                          f"search; {name}={getattr(config, name)!r} is not supported")
        num_beams, num_return = int(config.num_beams), int(config.num_return_sequences)
        if num_beams < 1:
            raise ValueError(f"num_beams must be >= 1, got {num_beams}")
        if num_beams > 1 and config.do_sample:
            raise NotImplementedError("generate() of the TensorFlow classes does not do beam sampling "
                                      "(num_beams > 1 with do_sample=True)")
        if num_return > num_beams:
            raise ValueError(f"num_return_sequences={num_return} must be at most num_beams={num_beams} "
                             "(greedy search and beam search return at most num_beams sequences per prompt)")
        max_new = config.max_new_tokens
        if max_new is None:
            max_new = config.max_length - prompt
        if max_new < 1:
            raise ValueError(f"max_length={config.max_length} leaves no room after the {prompt}-token prompt; "
                             "set max_new_tokens")
        min_new = config.min_new_tokens if config.min_new_tokens is not None else max(config.min_length - prompt, 0)
        eos = config.eos_token_id
        eos = () if eos is None else tuple(eos) if isinstance(eos, (list, tuple)) else (eos,)
        pad = config.pad_token_id
        if pad is None:
            if eos:
                logger.warning("Setting `pad_token_id` to `eos_token_id`:%s for open-end generation.", eos[0])
            pad = eos[0] if eos else 0
        bad_words = config.bad_words_ids
        if bad_words is not None:
            processors.check_bad_words(bad_words)
            bad_words = tuple(tuple(int(t) for t in word) for word in bad_words)
        if config.repetition_penalty is not None and not float(config.repetition_penalty) > 0:
            raise ValueError(f"repetition_penalty has to be a strictly positive float, but is {config.repetition_penalty}")
        ngram = int(config.no_repeat_ngram_size or 0)
        if ngram < 0:
            raise ValueError(f"no_repeat_ngram_size has to be a positive integer (0: off), but is {ngram}")
        return Settings(int(max_new), int(min_new), bool(config.do_sample), float(config.temperature),
                        int(config.top_k or 0), float(config.top_p), eos, int(pad),
                        repetition_penalty=float(config.repetition_penalty or 1.0), no_repeat_ngram_size=ngram,
                        bad_words_ids=bad_words or (), num_beams=num_beams, num_return_sequences=num_return,
                        length_penalty=float(config.length_penalty), early_stopping=config.early_stopping)

    def _loop(self, ids, mask, seed, s: Settings):
        batch, prompt = tf.shape(ids)[0], tf.shape(ids)[1]
        logits, presents = self.prefill(ids, mask, tf.cumsum(mask, axis=-1, exclusive=True))
        cache = tuple(tuple(tf.pad(t, [[0, 0], [0, 0], [0, s.max_new], [0, 0]]) for t in kv) for kv in presents)
        full_mask = tf.concat([mask, tf.ones((batch, s.max_new), tf.int32)], axis=1)  # (B, P + N)
        first_position = tf.reduce_sum(mask, axis=-1, keepdims=True)  # (B, 1): real tokens before the first new one
        sequences = tf.concat([ids, tf.fill((batch, s.max_new), s.pad)], axis=1)
        columns = tf.range(prompt + s.max_new)[None]

        def body(i, sequences, finished, logits, cache):
            logits = processors.process(logits, sequences, prompt + i, s)
            token = self._next_token(logits, i, seed, s)  # (B,)
            token = tf.where(finished, s.pad, token)
            sequences = tf.where(columns == prompt + i, token[:, None], sequences)
            if s.eos:
                finished = finished | tf.reduce_any(token[:, None] == tf.constant(s.eos, tf.int32), axis=-1)
            logits, cache = self.decode_step(token[:, None], full_mask, first_position + i, cache, prompt + i)
            return i + 1, sequences, finished, logits, cache

        def running(i, sequences, finished, logits, cache):
            return tf.logical_not(tf.reduce_all(finished))

        steps, sequences, *_ = tf.while_loop(running, body, (0, sequences, tf.zeros((batch,), tf.bool), logits, cache),
                                             maximum_iterations=s.max_new)
        return sequences[:, : prompt + steps]

    @staticmethod
    def _next_token(logits, step, seed, s: Settings):
        """(B, V) logits -> (B,) int32: eos held back before min_new tokens, then argmax or a sample after
        temperature, top-k and top-p."""
        scores = tf.cast(logits, tf.float32)
        if s.eos and s.min_new > 0:
            banned = tf.reduce_any(tf.range(tf.shape(scores)[-1])[:, None] == tf.constant(s.eos, tf.int32), axis=-1)
            scores = tf.where(banned[None] & (step < s.min_new), float("-inf"), scores)
        if not s.do_sample:
            return tf.argmax(scores, axis=-1, output_type=tf.int32)
        if s.temperature != 1.0:
            scores = scores / s.temperature
        if s.top_k > 0:
            kth = tf.math.top_k(scores, k=min(s.top_k, scores.shape[-1])).values[:, -1:]
            scores = tf.where(scores < kth, float("-inf"), scores)
        if s.top_p < 1.0:
            order = tf.argsort(scores, axis=-1, direction="DESCENDING")
            sorted_scores = tf.gather(scores, order, batch_dims=1)
            before = tf.cumsum(tf.nn.softmax(sorted_scores), axis=-1, exclusive=True)  # mass of better tokens
            drop_sorted = before >= s.top_p  # keeps the smallest set reaching top_p (at least one token)
            drop = tf.gather(drop_sorted, tf.argsort(order, axis=-1), batch_dims=1)
            scores = tf.where(drop, float("-inf"), scores)
        if seed is not None:
            draw = tf.random.stateless_categorical(scores, 1, seed=seed + tf.stack([0, step]), dtype=tf.int32)
        else:
            draw = tf.random.categorical(scores, 1, dtype=tf.int32)
        return draw[:, 0]
