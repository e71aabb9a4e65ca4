"""From a `GenerationConfig` to the logits processors, warpers and stopping criteria of one generate()
call — the reference's choice and order, so the same settings transform the scores the same way."""

from __future__ import annotations

from typing import Any, Callable, List, Optional

import torch

from . import processors as P
from .config import GenerationConfig
from .stopping import MaxLengthCriteria, MaxTimeCriteria, StopStringCriteria, StoppingCriteria, StoppingCriteriaList
from .warpers import (EpsilonLogitsWarper, EtaLogitsWarper, TemperatureLogitsWarper, TopKLogitsWarper,
                      TopPLogitsWarper, TypicalLogitsWarper)


def build_logits_processor(config: GenerationConfig, *, input_length: int, encoder_input_ids: torch.LongTensor,
                           prefix_allowed_tokens_fn: Optional[Callable[[int, torch.Tensor], List[int]]] = None,
                           custom: Optional[List[P.LogitsProcessor]] = None) -> P.LogitsProcessorList:
    """The processors the config asks for, then `custom` ones (a custom processor of a type the config
    already made is an error), then log-softmax when `renormalize_logits`."""
    c, eos = config, config.eos_token_id
    steps: List[Any] = []
    if c.sequence_bias is not None:
        steps.append(P.SequenceBiasLogitsProcessor(c.sequence_bias))
    if c.encoder_repetition_penalty is not None and c.encoder_repetition_penalty != 1.0:
        steps.append(P.EncoderRepetitionPenaltyLogitsProcessor(c.encoder_repetition_penalty, encoder_input_ids))
    if c.repetition_penalty is not None and c.repetition_penalty != 1.0:
        steps.append(P.RepetitionPenaltyLogitsProcessor(c.repetition_penalty))
    if c.no_repeat_ngram_size is not None and c.no_repeat_ngram_size > 0:
        steps.append(P.NoRepeatNGramLogitsProcessor(c.no_repeat_ngram_size))
    if c.encoder_no_repeat_ngram_size is not None and c.encoder_no_repeat_ngram_size > 0:
        steps.append(P.EncoderNoRepeatNGramLogitsProcessor(c.encoder_no_repeat_ngram_size, encoder_input_ids))
    if c.bad_words_ids is not None:
        steps.append(P.NoBadWordsLogitsProcessor(c.bad_words_ids, eos))
    if c.min_length is not None and eos is not None and c.min_length > 0:
        steps.append(P.MinLengthLogitsProcessor(c.min_length, eos))
    if c.min_new_tokens is not None and eos is not None and c.min_new_tokens > 0:
        steps.append(P.MinNewTokensLengthLogitsProcessor(input_length, c.min_new_tokens, eos))
    if prefix_allowed_tokens_fn is not None:
        steps.append(P.PrefixConstrainedLogitsProcessor(prefix_allowed_tokens_fn, c.num_beams // c.num_beam_groups))
    if c.forced_bos_token_id is not None:
        steps.append(P.ForcedBOSTokenLogitsProcessor(c.forced_bos_token_id))
    if c.forced_eos_token_id is not None:
        steps.append(P.ForcedEOSTokenLogitsProcessor(c.max_length, c.forced_eos_token_id))
    if c.remove_invalid_values is True:
        steps.append(P.InfNanRemoveLogitsProcessor())
    if c.exponential_decay_length_penalty is not None:
        steps.append(P.ExponentialDecayLengthPenalty(c.exponential_decay_length_penalty, eos, input_length))
    if c.suppress_tokens is not None:
        steps.append(P.SuppressTokensLogitsProcessor(c.suppress_tokens))
    if c.begin_suppress_tokens is not None:
        begin = input_length if input_length > 1 or c.forced_bos_token_id is None else input_length + 1
        if c.forced_decoder_ids is not None:
            begin += c.forced_decoder_ids[-1][0]
        steps.append(P.SuppressTokensAtBeginLogitsProcessor(c.begin_suppress_tokens, begin))
    if c.forced_decoder_ids is not None:
        steps.append(P.ForceTokensLogitsProcessor(c.forced_decoder_ids))
    result = _merge(P.LogitsProcessorList(steps), custom, "logits processor")
    if c.renormalize_logits is True:
        result.append(P.LogitNormalization())
    return result


def build_logits_warper(config: GenerationConfig) -> P.LogitsProcessorList:
    """The sampling warpers: temperature, top-k, top-p, typical, epsilon, eta (then renormalisation).
    With beams, each keeps at least one more token than there are EOS ids."""
    c = config
    keep = 1 if c.num_beams == 1 else (len(c.eos_token_id) + 1 if isinstance(c.eos_token_id, list) else 2)
    warpers: List[Any] = []
    if c.temperature is not None and c.temperature != 1.0:
        warpers.append(TemperatureLogitsWarper(c.temperature))
    if c.top_k is not None and c.top_k != 0:
        warpers.append(TopKLogitsWarper(top_k=c.top_k, min_tokens_to_keep=keep))
    if c.top_p is not None and c.top_p < 1.0:
        warpers.append(TopPLogitsWarper(top_p=c.top_p, min_tokens_to_keep=keep))
    if c.typical_p is not None and c.typical_p < 1.0:
        warpers.append(TypicalLogitsWarper(mass=c.typical_p, min_tokens_to_keep=keep))
    if c.epsilon_cutoff is not None and 0.0 < c.epsilon_cutoff < 1.0:
        warpers.append(EpsilonLogitsWarper(epsilon=c.epsilon_cutoff, min_tokens_to_keep=keep))
    if c.eta_cutoff is not None and 0.0 < c.eta_cutoff < 1.0:
        warpers.append(EtaLogitsWarper(epsilon=c.eta_cutoff, min_tokens_to_keep=keep))
    if c.renormalize_logits is True:
        warpers.append(P.LogitNormalization())
    return P.LogitsProcessorList(warpers)


def build_stopping_criteria(config: GenerationConfig, max_position_embeddings: Optional[int],
                            custom: Optional[List[StoppingCriteria]] = None, tokenizer: Any = None
                            ) -> StoppingCriteriaList:
    """max_length, max_time and stop_strings criteria, then the `custom` ones."""
    criteria: List[Any] = []
    if config.max_length is not None:
        criteria.append(MaxLengthCriteria(config.max_length, max_position_embeddings))
    if config.max_time is not None:
        criteria.append(MaxTimeCriteria(config.max_time))
    if config.stop_strings is not None:
        criteria.append(StopStringCriteria(tokenizer, config.stop_strings))
    return _merge(StoppingCriteriaList(criteria), custom, "stopping criteria")


def _merge(defaults: list, custom: Optional[list], what: str):
    """defaults + custom; a custom item of a type the defaults already hold is refused."""
    for item in custom or []:
        clash = next((d for d in defaults if type(d) is type(item)), None)
        if clash is not None:
            raise ValueError(f"A custom {what} of type {type(item).__name__} has been passed to `.generate()`, but "
                             f"one was already created from the generation config ({clash}). To change its values, "
                             "pass the corresponding arguments to `.generate()` instead.")
    defaults.extend(custom or [])
    return defaults


def check_supported(config: GenerationConfig, assistant_model: Any = None, negative_prompt_ids: Any = None) -> None:
    """Clear errors for what generate() does not do, and for values sampling cannot use."""
    unsupported = {
        "assisted generation (assistant_model, prompt_lookup_num_tokens)":
            assistant_model is not None or config.prompt_lookup_num_tokens is not None,
        "contrastive search (penalty_alpha)": (not config.do_sample and config.num_beams == 1
                                               and config.penalty_alpha is not None and config.penalty_alpha > 0
                                               and config.top_k is not None and config.top_k > 1),
        "group beam search (num_beam_groups > 1, diversity_penalty)":
            config.num_beam_groups > 1 or (config.diversity_penalty or 0) > 0,
        "constrained beam search (constraints, force_words_ids)":
            config.constraints is not None or config.force_words_ids is not None,
        "classifier-free guidance (guidance_scale, negative_prompt_ids)":
            (config.guidance_scale is not None and config.guidance_scale != 1) or negative_prompt_ids is not None,
    }
    for what, asked in unsupported.items():
        if asked:
            raise NotImplementedError(f"generate() does not support {what}")
    if config.do_sample:
        t, p = config.temperature, config.top_p
        if t is not None and (isinstance(t, bool) or not isinstance(t, (int, float)) or not t > 0):
            raise ValueError(f"`temperature` (={t}) has to be a strictly positive float when sampling "
                             "(do_sample=True); for greedy decoding set `do_sample=False`.")
        if p is not None and (isinstance(p, bool) or not isinstance(p, (int, float)) or not 0 < p <= 1):
            raise ValueError(f"`top_p` has to be a float in (0, 1] when sampling, but is {p!r}")
    for name in ("top_k", "num_return_sequences"):
        value = getattr(config, name)
        if value is not None and (not isinstance(value, int) or value < (0 if name == "top_k" else 1)):
            raise ValueError(f"`{name}` must be an integer >= {0 if name == 'top_k' else 1}, but is {value!r}")
