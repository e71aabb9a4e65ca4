"""Logits processors: (input_ids, scores) -> scores, applied before every token is chosen.

Each one matches transformers 4.37 in what it computes (so greedy, sampled and beam ids match), but all
of them are tensor operations — no `.tolist()` or Python loop over the batch per token — so a generate
loop that runs them never waits on the device. Notation: B rows (batch x beams), T tokens so far, V vocab.
"""

from __future__ import annotations

import functools
import inspect
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

EosIds = Union[int, Sequence[int], None]


def eos_list(eos_token_id: EosIds) -> List[int]:
    """None / an id / a list of ids -> a list of ids."""
    if eos_token_id is None:
        return []
    return [eos_token_id] if isinstance(eos_token_id, int) else list(eos_token_id)


class LogitsProcessor:
    """Base class: `__call__(input_ids (B, T), scores (B, V)) -> scores (B, V)`; may edit scores in place."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        raise NotImplementedError(f"{type(self).__name__} is an abstract class; subclass it and define __call__")


class LogitsWarper:
    """Base class of the processors that only reshape the sampling distribution (temperature, top-k, ...)."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        raise NotImplementedError(f"{type(self).__name__} is an abstract class; subclass it and define __call__")


@functools.lru_cache(maxsize=None)
def _call_parameters(cls: type) -> Tuple[Tuple[str, ...], bool]:
    """The parameters of cls.__call__ after (input_ids, scores), and whether it takes **kwargs."""
    params = list(inspect.signature(cls.__call__).parameters.values())[3:]
    named = tuple(p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL))
    return named, any(p.kind == p.VAR_KEYWORD for p in params)


def _extra_parameters(processor) -> Tuple[Tuple[str, ...], bool]:
    if inspect.isroutine(processor) or isinstance(processor, functools.partial):
        return (), False  # a plain function takes (input_ids, scores)
    return _call_parameters(type(processor))


class LogitsProcessorList(list):
    """A list of processors applied in order; extra keyword arguments reach the processors that take them."""

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor, **kwargs) -> torch.FloatTensor:
        for processor in self:
            named, var_kw = _extra_parameters(processor)
            if named or var_kw:
                missing = [name for name in named if name not in kwargs]
                if missing:
                    raise ValueError(f"{type(processor).__name__} needs the arguments {missing}; pass them to the "
                                     "logits processor list")
                scores = processor(input_ids, scores, **kwargs)
            else:
                scores = processor(input_ids, scores)
        return scores


def _check_count(name: str, value, minimum: int = 0) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        kind = "a non-negative" if minimum == 0 else "a strictly positive"
        raise ValueError(f"`{name}` has to be {kind} integer, but is {value!r}")


def _check_penalty(penalty) -> None:
    if isinstance(penalty, bool) or not isinstance(penalty, (int, float)) or not penalty > 0:
        raise ValueError(f"`penalty` has to be a strictly positive float, but is {penalty!r}")


class MinLengthLogitsProcessor(LogitsProcessor):
    """EOS is impossible while the sequence (prompt included) is shorter than `min_length`."""

    def __init__(self, min_length: int, eos_token_id: EosIds):
        _check_count("min_length", min_length)
        self.min_length = min_length
        self.eos_token_id = eos_list(eos_token_id)

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] < self.min_length:
            scores[:, self.eos_token_id] = -math.inf
        return scores


class MinNewTokensLengthLogitsProcessor(LogitsProcessor):
    """EOS is impossible until `min_new_tokens` tokens follow the first `prompt_length_to_skip`."""

    def __init__(self, prompt_length_to_skip: int, min_new_tokens: int, eos_token_id: EosIds):
        _check_count("prompt_length_to_skip", prompt_length_to_skip)
        _check_count("min_new_tokens", min_new_tokens)
        self.prompt_length_to_skip = prompt_length_to_skip
        self.min_new_tokens = min_new_tokens
        self.eos_token_id = eos_list(eos_token_id)

    def __call__(self, input_ids, scores):
        if input_ids.shape[-1] - self.prompt_length_to_skip < self.min_new_tokens:
            scores[:, self.eos_token_id] = -math.inf
        return scores


def _penalize(scores: torch.Tensor, ids: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL's penalty on the tokens in `ids`: negative scores times `penalty`, positive ones divided."""
    score = torch.gather(scores, 1, ids)
    score = torch.where(score < 0, score * penalty, score / penalty)
    return scores.scatter_(1, ids, score)


class RepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Penalise every token already in the sequence (prompt included); > 1 discourages repeats."""

    def __init__(self, penalty: float):
        _check_penalty(penalty)
        self.penalty = penalty

    def __call__(self, input_ids, scores):
        return _penalize(scores, input_ids, self.penalty)


class EncoderRepetitionPenaltyLogitsProcessor(LogitsProcessor):
    """Favour (penalty > 1) the tokens of the encoder input (the prompt, for a decoder-only model)."""

    def __init__(self, penalty: float, encoder_input_ids: torch.LongTensor):
        _check_penalty(penalty)
        self.penalty = 1 / penalty
        self.encoder_input_ids = encoder_input_ids

    def __call__(self, input_ids, scores):
        return _penalize(scores, self.encoder_input_ids, self.penalty)


def _ban_ngrams(scores: torch.Tensor, source: torch.Tensor, tail: torch.Tensor, n: int) -> torch.Tensor:
    """Forbid, in each row, every token that completes an n-gram of `source` (rows, S) whose first n - 1
    tokens equal `tail` (rows, n - 1)."""
    if source.shape[1] < n:
        return scores
    windows = source.unfold(1, n, 1)                                   # (rows, W, n)
    match = (windows[:, :, :-1] == tail.unsqueeze(1)).all(-1)           # (rows, W); all-True when n == 1
    hits = torch.zeros(scores.shape, dtype=torch.long, device=scores.device)
    hits.scatter_add_(1, windows[:, :, -1], match.long())
    return scores.masked_fill_(hits > 0, -math.inf)


class NoRepeatNGramLogitsProcessor(LogitsProcessor):
    """No n-gram of size `ngram_size` appears twice (the prompt counts)."""

    def __init__(self, ngram_size: int):
        _check_count("ngram_size", ngram_size, 1)
        self.ngram_size = ngram_size

    def __call__(self, input_ids, scores):
        n, length = self.ngram_size, input_ids.shape[-1]
        if length + 1 < n:
            return scores
        return _ban_ngrams(scores, input_ids, input_ids[:, length - n + 1:], n)


class EncoderNoRepeatNGramLogitsProcessor(LogitsProcessor):
    """No n-gram of the encoder input (size `encoder_ngram_size`) is repeated in the output."""

    def __init__(self, encoder_ngram_size: int, encoder_input_ids: torch.LongTensor):
        _check_count("encoder_ngram_size", encoder_ngram_size, 1)
        self.ngram_size = encoder_ngram_size
        self.encoder_input_ids = encoder_input_ids if encoder_input_ids.dim() == 2 else encoder_input_ids[None]

    def __call__(self, input_ids, scores):
        n, length = self.ngram_size, input_ids.shape[-1]
        if length < n - 1:
            return scores
        source = self.encoder_input_ids.repeat_interleave(scores.shape[0] // self.encoder_input_ids.shape[0], 0)
        return _ban_ngrams(scores, source, input_ids[:, length - n + 1:], n)


class SequenceBiasLogitsProcessor(LogitsProcessor):
    """Add a bias to the last token of each given sequence when the tokens before it match the end of the
    input (always, for one-token sequences). `sequence_bias`: {tuple of ids: float}."""

    def __init__(self, sequence_bias: Dict[Tuple[int, ...], float]):
        self.sequence_bias = sequence_bias
        self._validate_arguments()
        self._prepared: Optional[tuple] = None

    def _validate_arguments(self) -> None:
        bias = self.sequence_bias
        if not isinstance(bias, dict) or not bias:
            raise ValueError(f"`sequence_bias` has to be a non-empty dictionary, but is {bias}.")
        if any(not isinstance(ids, tuple) or not ids or not _all_ids(ids) for ids in bias):
            raise ValueError(f"Each key in `sequence_bias` has to be a non-empty tuple of positive integers, "
                             f"but is {bias}.")
        if any(not isinstance(value, float) for value in bias.values()):
            raise ValueError(f"`sequence_bias` has to be a dict with floats as values, but is {bias}.")

    def _prepare(self, scores: torch.Tensor) -> tuple:
        """Once: the one-token biases as a (V,) vector, the longer sequences grouped by length as
        (prefixes (N, L-1), last tokens (N,), biases (N,)) tensors."""
        vocab, device = scores.shape[-1], scores.device
        invalid = [t for ids in self.sequence_bias for t in ids if t >= vocab]
        if invalid:
            raise ValueError(f"The model vocabulary size is {vocab}, but the following tokens were being biased: "
                             f"{invalid}")
        single = torch.zeros(vocab, dtype=torch.float, device=device)
        by_length: Dict[int, list] = {}
        for ids, bias in self.sequence_bias.items():
            if len(ids) == 1:
                single[ids[0]] = bias
            else:
                by_length.setdefault(len(ids), []).append((ids, bias))
        groups = [(length,
                   torch.tensor([ids[:-1] for ids, _ in group], dtype=torch.long, device=device),
                   torch.tensor([ids[-1] for ids, _ in group], dtype=torch.long, device=device),
                   torch.tensor([bias for _, bias in group], dtype=torch.float, device=device))
                  for length, group in sorted(by_length.items())]
        return single, groups

    def __call__(self, input_ids, scores):
        if self._prepared is None:
            self._prepared = self._prepare(scores)
        single, groups = self._prepared
        bias = torch.zeros_like(scores)
        bias += single
        for length, prefixes, last, values in groups:
            if length > input_ids.shape[1]:  # longer than the context: cannot match yet
                continue
            match = (input_ids[:, None, input_ids.shape[1] - length + 1:] == prefixes).all(-1)   # (B, N)
            bias.index_add_(1, last, torch.where(match, values, values.new_zeros(())).to(bias.dtype))
        return scores + bias


def _all_ids(ids) -> bool:
    return all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in ids)


class NoBadWordsLogitsProcessor(SequenceBiasLogitsProcessor):
    """Never complete any of `bad_words_ids` (a list of token-id lists). A bad word that is just an EOS
    id is ignored, as in the reference."""

    def __init__(self, bad_words_ids: List[List[int]], eos_token_id: EosIds):
        self.bad_word_ids = bad_words_ids
        if not isinstance(bad_words_ids, list) or not bad_words_ids:
            raise ValueError(f"`bad_words_ids` has to be a non-empty list, but is {bad_words_ids}.")
        if any(not isinstance(ids, list) for ids in bad_words_ids):
            raise ValueError(f"`bad_words_ids` has to be a list of lists, but is {bad_words_ids}.")
        if any(not _all_ids(ids) for ids in bad_words_ids):
            raise ValueError(f"Each list in `bad_words_ids` has to be a list of positive integers, but is "
                             f"{bad_words_ids}.")
        eos = eos_list(eos_token_id)
        kept = [ids for ids in bad_words_ids if all(ids != [e] for e in eos)]
        super().__init__({tuple(ids): -math.inf for ids in kept})


class PrefixConstrainedLogitsProcessor(LogitsProcessor):
    """Only the tokens `prefix_allowed_tokens_fn(batch_id, sent)` returns are allowed (a user callback,
    called once per row and step)."""

    def __init__(self, prefix_allowed_tokens_fn: Callable[[int, torch.Tensor], List[int]], num_beams: int):
        self._prefix_allowed_tokens_fn = prefix_allowed_tokens_fn
        self._num_beams = num_beams

    def __call__(self, input_ids, scores):
        mask = torch.full_like(scores, -math.inf)
        for row, sent in enumerate(input_ids):
            allowed = self._prefix_allowed_tokens_fn(row // self._num_beams, sent)
            if len(allowed) == 0:
                raise ValueError(f"`prefix_allowed_tokens_fn` returned an empty list for batch ID "
                                 f"{row // self._num_beams}: the constraint is unsatisfiable.")
            mask[row, allowed] = 0
        return scores + mask


def _force(scores: torch.Tensor, token_ids: List[int]) -> torch.Tensor:
    """Only `token_ids` possible (score 0), everything else -inf."""
    scores[:] = -math.inf
    scores[:, token_ids] = 0
    return scores


class ForcedBOSTokenLogitsProcessor(LogitsProcessor):
    """The first generated token (encoder-decoder: after the start token) is `bos_token_id`."""

    def __init__(self, bos_token_id: int):
        self.bos_token_id = bos_token_id

    def __call__(self, input_ids, scores):
        return _force(scores, [self.bos_token_id]) if input_ids.shape[-1] == 1 else scores


class ForcedEOSTokenLogitsProcessor(LogitsProcessor):
    """The token that reaches `max_length` is an EOS."""

    def __init__(self, max_length: int, eos_token_id: EosIds):
        self.max_length = max_length
        self.eos_token_id = eos_list(eos_token_id)

    def __call__(self, input_ids, scores):
        return _force(scores, self.eos_token_id) if input_ids.shape[-1] == self.max_length - 1 else scores


class ForceTokensLogitsProcessor(LogitsProcessor):
    """`force_token_map` [[generation index, token], ...]: that token at that index."""

    def __init__(self, force_token_map: List[List[int]]):
        self.force_token_map = dict(force_token_map)

    def __call__(self, input_ids, scores):
        token = self.force_token_map.get(input_ids.shape[-1])
        return _force(scores, [token]) if token is not None else scores


class InfNanRemoveLogitsProcessor(LogitsProcessor):
    """NaN -> 0, +-inf -> the dtype's largest / smallest finite value."""

    def __call__(self, input_ids, scores):
        info = torch.finfo(scores.dtype)
        return torch.nan_to_num_(scores, nan=0.0, posinf=info.max, neginf=info.min)


class ExponentialDecayLengthPenalty(LogitsProcessor):
    """After `start_index` new tokens, raise the EOS scores by |score| * (decay_factor ** k - 1)."""

    def __init__(self, exponential_decay_length_penalty: Tuple[int, float], eos_token_id: EosIds,
                 input_ids_seq_length: int):
        self.regulation_start = exponential_decay_length_penalty[0] + input_ids_seq_length
        self.regulation_factor = exponential_decay_length_penalty[1]
        self.eos_token_id = eos_list(eos_token_id)

    def __call__(self, input_ids, scores):
        length = input_ids.shape[-1]
        if length > self.regulation_start:
            factor = pow(self.regulation_factor, length - self.regulation_start) - 1
            for i in self.eos_token_id:
                scores[:, i] = scores[:, i] + torch.abs(scores[:, i]) * factor
        return scores


class LogitNormalization(LogitsProcessor, LogitsWarper):
    """Scores -> log-probabilities (log-softmax)."""

    def __call__(self, input_ids, scores):
        return scores.log_softmax(dim=-1)


class SuppressTokensLogitsProcessor(LogitsProcessor):
    """`suppress_tokens` are never generated."""

    def __init__(self, suppress_tokens: Sequence[int]):
        self.suppress_tokens = list(suppress_tokens)

    def __call__(self, input_ids, scores):
        scores[:, self.suppress_tokens] = -math.inf
        return scores


class SuppressTokensAtBeginLogitsProcessor(LogitsProcessor):
    """`begin_suppress_tokens` are not generated at `begin_index` (the first generated position)."""

    def __init__(self, begin_suppress_tokens: Sequence[int], begin_index: int):
        self.begin_suppress_tokens = list(begin_suppress_tokens)
        self.begin_index = begin_index

    def set_begin_index(self, begin_index: int) -> None:
        self.begin_index = begin_index

    def __call__(self, input_ids, scores):
        if input_ids.shape[1] == self.begin_index:
            scores[:, self.begin_suppress_tokens] = -math.inf
        return scores
