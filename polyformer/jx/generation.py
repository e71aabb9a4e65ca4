"""`FlaxGenerationMixin`: `generate()` for Flax decoder-only models — greedy, sampling, beam search.

Semantics are 4.37's Flax ones: the output holds (B, max_length) ids, the prompt then the new tokens, and
`pad_token_id` after a row's EOS; sampling draws with `jax.random.categorical` from a PRNG key split once
per step; beam search keeps 2 * num_beams candidates per step and returns `scores`. The logits processors
are the Flax ones of 4.37 (min_length, forced BOS / EOS, suppress_tokens, begin_suppress_tokens) and the
warpers temperature, top_k, top_p; other GenerationConfig settings are ignored there, and here with a warning.

The whole decode is one jit-compiled function per set of static settings (strategy, lengths, special
ids, processors): the prompt goes through the model once with an empty cache (`init_cache`), then
`jax.lax.while_loop` runs a fixed-shape one-token step, so no step retraces, and a later call with the
same settings and input shapes reuses the compiled function. `trace=False` runs the same steps in a
Python loop (for debugging).
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections import Counter
from typing import Any, Callable, Dict, NamedTuple, Optional, Tuple

import jax
import jax.numpy as jnp

from ..generation.config import GenerationConfig, MODEL_CONFIG_GENERATION_DEFAULTS
from .outputs import FlaxBeamSearchOutput, FlaxGreedySearchOutput, FlaxSampleOutput

logger = logging.getLogger(__name__)

NEG = -1.0e7  # the reference's score of an impossible beam
IGNORED = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "bad_words_ids": None, "typical_p": 1.0,
           "epsilon_cutoff": 0.0, "eta_cutoff": 0.0, "sequence_bias": None, "exponential_decay_length_penalty": None}


class Settings(NamedTuple):
    """The static part of one generate() call: everything the compiled function depends on but the inputs."""

    strategy: str  # "greedy" | "sample" | "beam"
    max_length: int
    pad: int
    eos: Tuple[int, ...]
    min_length: int
    forced_bos: Optional[int]
    forced_eos: Optional[int]
    suppress: Tuple[int, ...]
    begin_suppress: Tuple[int, ...]
    begin_index: int
    temperature: float
    top_k: int
    top_p: float
    num_beams: int
    length_penalty: float
    early_stopping: Any
    num_return_sequences: int


# --- logits processors and warpers: f(sequences (B, L), scores (B, V), cur_len) -> scores ------------


def _force(scores, token: int):
    return jnp.full_like(scores, -jnp.inf).at[:, token].set(0)


def processors(s: Settings) -> list:
    """The 4.37 Flax processors the settings ask for, in its order."""
    out = []
    if s.eos and s.min_length > -1:
        # 4.37's Flax processor masks EOS while cur_len <= min_length (PyTorch's: < min_length)
        out.append(lambda seq, x, n: jnp.where(n <= s.min_length, x.at[:, list(s.eos)].set(-jnp.inf), x))
    if s.forced_bos is not None:
        out.append(lambda seq, x, n: jnp.where(n == 1, _force(x, s.forced_bos), x))
    if s.forced_eos is not None:
        out.append(lambda seq, x, n: jnp.where(n == s.max_length - 1, _force(x, s.forced_eos), x))
    if s.suppress:
        out.append(lambda seq, x, n: x.at[:, list(s.suppress)].set(-jnp.inf))
    if s.begin_suppress:
        out.append(lambda seq, x, n: jnp.where(n == s.begin_index, x.at[:, list(s.begin_suppress)].set(-jnp.inf), x))
    return out


def warpers(s: Settings) -> list:
    out = []
    if s.temperature != 1.0:
        out.append(lambda x: x / s.temperature)
    if s.top_k:
        out.append(top_k_warper(s.top_k))
    if s.top_p < 1.0:
        out.append(top_p_warper(s.top_p))
    return out


def top_k_warper(k: int) -> Callable:
    def warp(x):  # keep the k best (ties broken by index, as lax.top_k does), -inf elsewhere
        values, index = jax.lax.top_k(x, min(k, x.shape[-1]))
        return jnp.full_like(x, -jnp.inf).at[jnp.arange(x.shape[0])[:, None], index].set(values)
    return warp


def top_p_warper(p: float) -> Callable:
    def warp(x):  # the smallest set of best tokens whose probability reaches p (at least one)
        values, index = jax.lax.top_k(x, x.shape[-1])  # sorted, best first
        below = jax.nn.softmax(values, axis=-1).cumsum(-1) < p
        keep = jnp.roll(below, 1, axis=-1).at[:, 0].set(True)
        return jax.lax.sort_key_val(index, jnp.where(keep, values, -jnp.inf))[-1]
    return warp


def _loop(cond: Callable, body: Callable, state: Any, trace: bool) -> Any:
    if trace:
        return jax.lax.while_loop(cond, body, state)
    while bool(cond(state)):
        state = body(state)
    return state


class FlaxGenerationMixin:
    """Adds `generate()` to a Flax causal LM whose `__call__` takes (input_ids, attention_mask,
    position_ids, params, past_key_values) and that has `init_cache(batch_size, max_length)`."""

    def can_generate(self) -> bool:
        return True

    # --- inputs of each step (4.37's names and semantics) -----------------------------------------
    def prepare_inputs_for_generation(self, input_ids, max_length: int, attention_mask=None) -> Dict[str, Any]:
        """An empty cache for max_length tokens, the mask extended with ones to max_length, and positions
        counting the real tokens (cumsum(mask) - 1, so -1 on left padding)."""
        batch, length = input_ids.shape
        extended = jnp.ones((batch, max_length), dtype="i4")
        if attention_mask is not None:
            positions = attention_mask.cumsum(axis=-1) - 1
            extended = jax.lax.dynamic_update_slice(extended, attention_mask.astype("i4"), (0, 0))
        else:
            positions = jnp.broadcast_to(jnp.arange(length, dtype="i4")[None, :], (batch, length))
        return {"past_key_values": self.init_cache(batch, max_length), "attention_mask": extended,
                "position_ids": positions}

    def update_inputs_for_generation(self, model_outputs, model_kwargs: Dict[str, Any]) -> Dict[str, Any]:
        model_kwargs["past_key_values"] = model_outputs.past_key_values
        model_kwargs["position_ids"] = model_kwargs["position_ids"][:, -1:] + 1
        return model_kwargs

    # --- generate ---------------------------------------------------------------------------------
    def generate(self, input_ids, generation_config: Optional[GenerationConfig] = None, prng_key=None,
                 trace: bool = True, params: Optional[Dict[str, Any]] = None, logits_processor=None, **kwargs):
        """Generate ids for the prompts `input_ids` (B, T) (left-padded, with their `attention_mask`).

        Args:
            generation_config: defaults to `model.generation_config`; keyword arguments naming its
                attributes (max_new_tokens, do_sample, num_beams, top_k, ...) override it.
            prng_key: the key of sampling (default PRNGKey(0)).
            trace: False runs the decoding loop in Python, uncompiled.
            params: parameters to use instead of `model.params`.
            logits_processor: extra processors, callables (sequences, scores, cur_len) -> scores.
        Returns: FlaxGreedySearchOutput / FlaxSampleOutput (`sequences` (B, max_length)) or
            FlaxBeamSearchOutput (`sequences` (B * num_return_sequences, max_length), `scores`).
        """
        config, model_kwargs = self._generation_settings(generation_config, kwargs)
        attention_mask = model_kwargs.pop("attention_mask", None)
        unused = [k for k, v in model_kwargs.items() if v is not None]
        if unused:
            raise ValueError(f"The following `model_kwargs` are not used by the model: {unused} (note: typos in the "
                             "generate arguments will also show up in this list)")
        input_ids = jnp.asarray(input_ids, dtype="i4")
        if input_ids.ndim != 2:
            raise ValueError(f"input_ids must be (batch, length), got shape {input_ids.shape}")
        mask = jnp.ones_like(input_ids) if attention_mask is None else jnp.asarray(attention_mask, dtype="i4")
        settings = self._settings(config, input_ids.shape[1])
        if input_ids.shape[1] >= settings.max_length:
            logger.warning("Input length of input_ids is %d, but `max_length` is set to %d: nothing to generate.",
                           input_ids.shape[1], settings.max_length)
            return FlaxGreedySearchOutput(sequences=input_ids[:, :settings.max_length])
        extra = tuple(logits_processor or ())
        run = self._decoder(settings, extra, trace)
        key = jax.random.PRNGKey(0) if prng_key is None else prng_key
        out = run(self.params if params is None else params, input_ids, mask, key)
        if settings.strategy == "beam":
            return FlaxBeamSearchOutput(sequences=out[0], scores=out[1])
        return (FlaxSampleOutput if settings.strategy == "sample" else FlaxGreedySearchOutput)(sequences=out)

    def _generation_settings(self, generation_config, kwargs):
        if generation_config is None:
            generation_config = self.generation_config
            legacy = any(getattr(self.config, k, d) != d for k, d in MODEL_CONFIG_GENERATION_DEFAULTS.items())
            if (generation_config._from_model_config and legacy
                    and getattr(generation_config, "_original_object_hash", None) == hash(generation_config)):
                fresh = GenerationConfig.from_model_config(self.config)
                if fresh != generation_config:
                    warnings.warn("You have modified the pretrained model configuration to control generation; use "
                                  "and modify the model generation configuration instead.", UserWarning)
                    self.generation_config = generation_config = fresh
        config = copy.deepcopy(generation_config)
        model_kwargs = config.update(**kwargs)
        config.validate()
        if config.max_new_tokens is None and kwargs.get("max_length") is None and config.max_length == 20:
            warnings.warn("Using the model-agnostic default `max_length` (=20) to control the generation length; "
                          "set `max_new_tokens` instead.", UserWarning)
        return config, model_kwargs

    def _settings(self, config: GenerationConfig, prompt_length: int) -> Settings:
        eos = config.eos_token_id
        eos = tuple(eos) if isinstance(eos, (list, tuple)) else (() if eos is None else (eos,))
        pad = config.pad_token_id
        if pad is None:
            if not eos:
                raise ValueError("generate() needs a pad_token_id or an eos_token_id to fill finished rows")
            logger.warning("Setting `pad_token_id` to `eos_token_id`:%d for open-end generation.", eos[0])
            pad = eos[0]
        max_length = config.max_length if config.max_new_tokens is None else prompt_length + config.max_new_tokens
        if config.min_length is not None and config.min_length > max_length:
            raise ValueError(f"Unfeasable length constraints: the minimum length ({config.min_length}) is larger than"
                             f" the maximum length ({max_length})")
        if config.do_sample and config.num_beams > 1:
            raise NotImplementedError("Beam sampling is not implemented for Flax models (as in 4.37).")
        for name, default in IGNORED.items():
            if getattr(config, name, default) != default:
                logger.warning("generate() of Flax models ignores %s=%r (as 4.37 does)", name, getattr(config, name))
        begin = prompt_length + (1 if prompt_length == 1 and config.forced_bos_token_id is not None else 0)
        strategy = "beam" if config.num_beams > 1 else ("sample" if config.do_sample else "greedy")
        return Settings(strategy, int(max_length), int(pad), tuple(int(e) for e in eos), int(config.min_length or 0),
                        config.forced_bos_token_id, config.forced_eos_token_id, tuple(config.suppress_tokens or ()),
                        tuple(config.begin_suppress_tokens or ()), begin,
                        # warpers only shape sampling: other strategies compile the same whatever they say
                        float(config.temperature or 1.0) if strategy == "sample" else 1.0,
                        int(config.top_k or 0) if strategy == "sample" else 0,
                        float(config.top_p if config.top_p is not None else 1.0) if strategy == "sample" else 1.0,
                        int(config.num_beams), float(config.length_penalty), config.early_stopping,
                        int(config.num_return_sequences or 1))

    def _decoder(self, s: Settings, extra: tuple, trace: bool) -> Callable:
        """The (cached) compiled decode for these settings: (params, ids, mask, key) -> sequences [, scores]."""
        cache = self.__dict__.setdefault("_decoders", {})
        self.__dict__.setdefault("_traces", Counter())
        key = (s, extra, trace)
        if key not in cache:
            steps = processors(s) + list(extra)

            def process(sequences, scores, cur_len):
                for f in steps:
                    scores = f(sequences, scores, cur_len)
                return scores

            run = {"beam": self._beam_search}.get(s.strategy, self._greedy_or_sample)
            fn = lambda params, ids, mask, rng: run(s, process, params, ids, mask, rng, trace)  # noqa: E731
            cache[key] = jax.jit(fn) if trace else fn
        return cache[key]

    def _step(self, params, tokens, model_kwargs):
        """One forward with the cache: logits of the last position (B, V), updated model kwargs."""
        self._traces["step"] += 1  # counts traces: runs only while jax traces (or in trace=False loops)
        out = self(tokens, params=params, **model_kwargs)
        return out.logits[:, -1], self.update_inputs_for_generation(out, dict(model_kwargs))

    def _greedy_or_sample(self, s: Settings, process, params, ids, mask, rng, trace: bool):
        self._traces["generate"] += 1
        batch, length = ids.shape
        warp = warpers(s) if s.strategy == "sample" else []
        eos = jnp.array(s.eos or (-1,), dtype="i4")
        sequences = jax.lax.dynamic_update_slice(jnp.full((batch, s.max_length), s.pad, dtype="i4"), ids, (0, 0))
        state = (jnp.array(length), sequences, ids, jnp.zeros((batch,), bool), rng,
                 self.prepare_inputs_for_generation(ids, s.max_length, mask))

        def body(state):
            cur_len, sequences, tokens, finished, rng, model_kwargs = state
            draw, rng = jax.random.split(rng)
            logits, model_kwargs = self._step(params, tokens, model_kwargs)
            logits = process(sequences, logits, cur_len)
            if warp:
                for f in warp:
                    logits = f(logits)
                token = jax.random.categorical(draw, logits, axis=-1)
            else:
                token = jnp.argmax(logits, axis=-1)
            token = jnp.where(finished, s.pad, token).astype("i4")
            finished = finished | jnp.isin(token, eos)
            sequences = jax.lax.dynamic_update_slice(sequences, token[:, None], (0, cur_len))
            return cur_len + 1, sequences, token[:, None], finished, rng, model_kwargs

        def cond(state):
            return (state[0] < s.max_length) & ~jnp.all(state[3])

        if length > 1:  # the prompt: the only step with T > 1
            state = body(state)
        return _loop(cond, body, state, trace)[1]

    def _beam_search(self, s: Settings, process, params, ids, mask, rng, trace: bool):
        """4.37's Flax beam search (after flax/examples/wmt): K beams per row, 2K candidates per step."""
        self._traces["generate"] += 1
        batch, length = ids.shape
        k, lp = s.num_beams, s.length_penalty
        eos = jnp.array(s.eos or (-1,), dtype="i4")
        flat = lambda t: t if t.ndim == 0 else t.reshape((-1,) + t.shape[2:])  # noqa: E731  (B, K, ...) -> (B*K, ...)
        unflat = lambda t: t if t.ndim == 0 else t.reshape((batch, -1) + t.shape[1:])  # noqa: E731

        def gather(tree, index):  # index (B, K') of beams per row
            rows = jnp.arange(batch)[:, None]
            return jax.tree_util.tree_map(lambda t: t if t.ndim == 0 else t[rows, index], tree)

        beams = jnp.broadcast_to(ids[:, None], (batch, k, length))
        running = jax.lax.dynamic_update_slice(jnp.full((batch, k, s.max_length), s.pad, dtype="i4"), beams, (0, 0, 0))
        state = dict(cur_len=jnp.array(length), running=running,
                     running_scores=jnp.tile(jnp.array([0.0] + [NEG] * (k - 1), jnp.float32), (batch, 1)),
                     sequences=jnp.full((batch, k, s.max_length), s.pad, dtype="i4"),
                     scores=jnp.full((batch, k), NEG, jnp.float32), finished=jnp.zeros((batch, k), bool),
                     model_kwargs=self.prepare_inputs_for_generation(flat(beams), s.max_length,
                                                                     flat(jnp.broadcast_to(mask[:, None], beams.shape))))

        def body(state, n=1):
            cur_len = state["cur_len"]
            tokens = flat(jax.lax.dynamic_slice(state["running"], (0, 0, cur_len - n), (batch, k, n)))
            logits, model_kwargs = self._step(params, tokens, state["model_kwargs"])
            log_probs = process(flat(state["running"]), jax.nn.log_softmax(logits), cur_len)
            log_probs = unflat(log_probs) + state["running_scores"][:, :, None]  # (B, K, V)
            vocab = log_probs.shape[-1]
            cand_scores, cand = jax.lax.top_k(log_probs.reshape(batch, k * vocab), 2 * k)  # (B, 2K)
            cand_beam = cand // vocab
            cand_seqs = jax.lax.dynamic_update_slice(gather(state["running"], cand_beam),
                                                     (cand % vocab)[:, :, None].astype("i4"), (0, 0, cur_len))
            just_finished = jnp.isin(cand_seqs[:, :, cur_len], eos)
            alive_scores = cand_scores + just_finished * NEG
            alive = jax.lax.top_k(alive_scores, k)[1]
            running, running_scores = gather((cand_seqs, alive_scores), alive)
            done_scores = cand_scores / ((cur_len + 1 - length) ** lp)
            full = jnp.broadcast_to(state["finished"].all(axis=-1, keepdims=True), just_finished.shape) & (s.early_stopping is True)
            done_scores = done_scores + (~just_finished | full) * NEG
            best = jax.lax.top_k(jnp.concatenate([state["scores"], done_scores], axis=1), k)[1]
            sequences, scores, finished = gather(
                (jnp.concatenate([state["sequences"], cand_seqs], axis=1), jnp.concatenate([state["scores"], done_scores], axis=1),
                 jnp.concatenate([state["finished"], just_finished], axis=1)), best)
            cache = gather(jax.tree_util.tree_map(unflat, model_kwargs["past_key_values"]), gather(cand_beam, alive))
            model_kwargs["past_key_values"] = jax.tree_util.tree_map(flat, cache)
            return dict(cur_len=cur_len + 1, running=running, running_scores=running_scores, sequences=sequences,
                        scores=scores, finished=finished, model_kwargs=model_kwargs)

        def cond(state):
            cur_len = state["cur_len"]
            steps = s.max_length - length if s.early_stopping == "never" and lp > 0.0 else cur_len - length
            best_alive = state["running_scores"][:, :1] / (steps ** lp)
            worst_done = jnp.where(state["finished"], jnp.min(state["scores"], axis=1, keepdims=True), NEG)
            open_beams = ~(jnp.all(state["finished"]) & (s.early_stopping is True))
            return (cur_len < s.max_length) & open_beams & jnp.any(best_alive > worst_done)

        state = _loop(cond, body, body(state, n=length), trace)
        any_done = jnp.any(state["finished"], axis=1)
        sequences = jnp.where(any_done[:, None, None], state["sequences"], state["running"])
        scores = jnp.where(any_done[:, None], state["scores"], state["running_scores"])
        r = s.num_return_sequences
        return flat(sequences[:, :r]), flat(scores[:, :r])
