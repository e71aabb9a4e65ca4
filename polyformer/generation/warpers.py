"""Logits warpers: reshape the distribution that sampling draws from (temperature, top-k, top-p, typical,
epsilon and eta cutoffs).

Each computes exactly what transformers 4.37 computes — same operations in the same order — because
`torch.manual_seed(s)` + sampling must draw the reference's tokens: `torch.multinomial` on bit-identical
probabilities. All are tensor operations; none waits on the device. Notation: B rows, V vocab.
"""

from __future__ import annotations

import math

import torch

from .processors import LogitsWarper


def _check_keep(min_tokens_to_keep) -> int:
    if isinstance(min_tokens_to_keep, bool) or not isinstance(min_tokens_to_keep, int) or min_tokens_to_keep < 1:
        raise ValueError(f"`min_tokens_to_keep` has to be a positive integer, but is {min_tokens_to_keep!r}")
    return min_tokens_to_keep


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _kth_largest(scores: torch.Tensor, k: int) -> torch.Tensor:
    """(B, 1): each row's k-th largest score."""
    return torch.topk(scores, min(k, scores.size(-1)))[0][..., -1, None]


class TemperatureLogitsWarper(LogitsWarper):
    """scores / temperature: < 1 sharpens the distribution, > 1 flattens it."""

    def __init__(self, temperature: float):
        if not _is_number(temperature) or not temperature > 0:
            hint = " If you're looking for greedy decoding strategies, set `do_sample=False`." \
                if _is_number(temperature) and temperature == 0 else ""
            raise ValueError(f"`temperature` (={temperature}) has to be a strictly positive float, otherwise your "
                             f"next token scores will be invalid.{hint}")
        self.temperature = temperature

    def __call__(self, input_ids, scores):
        return scores / self.temperature


class TopKLogitsWarper(LogitsWarper):
    """Keep the `top_k` highest scores (at least `min_tokens_to_keep`); the rest get `filter_value`."""

    def __init__(self, top_k: int, filter_value: float = -math.inf, min_tokens_to_keep: int = 1):
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k <= 0:
            raise ValueError(f"`top_k` has to be a strictly positive integer, but is {top_k!r}")
        self.top_k = max(top_k, _check_keep(min_tokens_to_keep))
        self.filter_value = filter_value

    def __call__(self, input_ids, scores):
        return scores.masked_fill(scores < _kth_largest(scores, self.top_k), self.filter_value)


class TopPLogitsWarper(LogitsWarper):
    """Nucleus sampling: keep the most likely tokens whose probabilities add up to `top_p`."""

    def __init__(self, top_p: float, filter_value: float = -math.inf, min_tokens_to_keep: int = 1):
        if not _is_number(top_p) or not 0 < top_p <= 1:
            raise ValueError(f"`top_p` has to be a float in (0, 1], but is {top_p!r}")
        self.top_p = float(top_p)
        self.filter_value = filter_value
        self.min_tokens_to_keep = _check_keep(min_tokens_to_keep)

    def __call__(self, input_ids, scores):
        sorted_logits, sorted_indices = torch.sort(scores, descending=False)
        cumulative = sorted_logits.softmax(dim=-1).cumsum(dim=-1)
        remove = cumulative <= (1 - self.top_p)              # the low tail, ascending order
        remove[..., -self.min_tokens_to_keep:] = 0
        return scores.masked_fill(remove.scatter(1, sorted_indices, remove), self.filter_value)


class TypicalLogitsWarper(LogitsWarper):
    """Locally typical sampling: keep the tokens whose surprise is closest to the entropy, up to `mass`."""

    def __init__(self, mass: float = 0.9, filter_value: float = -math.inf, min_tokens_to_keep: int = 1):
        if not _is_number(mass) or not 0 < mass < 1:
            raise ValueError(f"`typical_p` has to be a float > 0 and < 1, but is {mass!r}")
        self.mass = float(mass)
        self.filter_value = filter_value
        self.min_tokens_to_keep = _check_keep(min_tokens_to_keep)

    def __call__(self, input_ids, scores):
        normalized = torch.nn.functional.log_softmax(scores, dim=-1)
        entropy = -(normalized * torch.exp(normalized)).nansum(-1, keepdim=True)
        shifted = torch.abs((-normalized) - entropy)
        sorted_scores, sorted_indices = torch.sort(shifted, descending=False)
        cumulative = scores.gather(-1, sorted_indices).softmax(dim=-1).cumsum(dim=-1)
        last = (cumulative < self.mass).sum(dim=1)
        last.clamp_(max=sorted_scores.shape[-1] - 1)
        remove = sorted_scores > sorted_scores.gather(1, last.view(-1, 1))
        remove[..., : self.min_tokens_to_keep] = 0
        return scores.masked_fill(remove.scatter(1, sorted_indices, remove), self.filter_value)


def _check_cutoff(name: str, value) -> float:
    if not _is_number(value) or not 0 < value < 1:
        raise ValueError(f"`{name}` has to be a float > 0 and < 1, but is {value!r}")
    return float(value)


class EpsilonLogitsWarper(LogitsWarper):
    """Drop tokens whose probability is below `epsilon` (keeping at least `min_tokens_to_keep`)."""

    def __init__(self, epsilon: float, filter_value: float = -math.inf, min_tokens_to_keep: int = 1):
        self.epsilon = _check_cutoff("epsilon_cutoff", epsilon)
        self.filter_value = filter_value
        self.min_tokens_to_keep = _check_keep(int(min_tokens_to_keep))

    def __call__(self, input_ids, scores):
        remove = scores.softmax(dim=-1) < self.epsilon
        remove = remove & (scores < _kth_largest(scores, self.min_tokens_to_keep))
        return scores.masked_fill(remove, self.filter_value)


class EtaLogitsWarper(LogitsWarper):
    """Eta sampling: drop tokens below min(eta, sqrt(eta) * exp(-entropy))."""

    def __init__(self, epsilon: float, filter_value: float = -math.inf, min_tokens_to_keep: int = 1):
        self.epsilon = torch.tensor(_check_cutoff("eta_cutoff", epsilon))
        self.filter_value = filter_value
        self.min_tokens_to_keep = _check_keep(int(min_tokens_to_keep))

    def __call__(self, input_ids, scores):
        entropy = torch.distributions.Categorical(logits=scores).entropy()
        epsilon = self.epsilon.to(scores.device)
        eta = torch.min(epsilon, torch.sqrt(epsilon) * torch.exp(-entropy))[..., None]
        remove = scores.softmax(dim=-1) < eta
        remove = remove & (scores < _kth_largest(scores, self.min_tokens_to_keep))
        return scores.masked_fill(remove, self.filter_value)
