"""Stopping criteria: after each token, should generation stop?

A criterion returns a bool (stop every row, the transformers 4.37 contract) or a (B,) bool tensor (stop
those rows: they are finished, as if they had produced EOS; the transformers >= 4.39 contract, used by
`StopStringCriteria`). `generate()` bounds its loop by `max_length` itself, so `MaxLengthCriteria` costs
nothing per token; `MaxTimeCriteria` reads the clock, which does not wait on the device.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from typing import Any, List, Optional, Sequence, Union

import torch

logger = logging.getLogger(__name__)


class StoppingCriteria:
    """Base class: `__call__(input_ids (B, T), scores) -> bool or (B,) bool tensor`."""

    def __call__(self, input_ids: torch.LongTensor, scores: Any, **kwargs) -> Union[bool, torch.BoolTensor]:
        raise NotImplementedError("StoppingCriteria needs to be subclassed")


class MaxLengthCriteria(StoppingCriteria):
    """Stop once the sequence (prompt included) holds `max_length` tokens."""

    def __init__(self, max_length: int, max_position_embeddings: Optional[int] = None):
        self.max_length = max_length
        self.max_position_embeddings = max_position_embeddings

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        length = input_ids.shape[-1]
        done = length >= self.max_length
        if self.max_position_embeddings is not None and not done and length >= self.max_position_embeddings:
            logger.warning("This is a friendly reminder - the current text generation call will exceed the model's "
                           "predefined maximum length (%d). Depending on the model, you may observe exceptions, "
                           "performance degradation, or nothing at all.", self.max_position_embeddings)
        return done


class MaxNewTokensCriteria(StoppingCriteria):
    """Deprecated (as in the reference): stop at `start_length + max_new_tokens` tokens."""

    def __init__(self, start_length: int, max_new_tokens: int):
        warnings.warn("The class `MaxNewTokensCriteria` is deprecated. Please use "
                      f"`MaxLengthCriteria(max_length={start_length + max_new_tokens})` instead.", FutureWarning)
        self.start_length = start_length
        self.max_new_tokens = max_new_tokens
        self.max_length = start_length + max_new_tokens

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        return input_ids.shape[-1] >= self.max_length


class MaxTimeCriteria(StoppingCriteria):
    """Stop once `max_time` seconds have passed since `initial_timestamp` (default: construction). The
    token being computed when time runs out is still finished."""

    def __init__(self, max_time: float, initial_timestamp: Optional[float] = None):
        self.max_time = max_time
        self.initial_timestamp = time.time() if initial_timestamp is None else initial_timestamp

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        return time.time() - self.initial_timestamp > self.max_time


class StopStringCriteria(StoppingCriteria):
    """A row stops once its text ends with one of `stop_strings` (the string stays in the output).

    Each step decodes only the last few tokens of each row, so the cost does not grow with the sequence.
    The window is counted in UTF-8 bytes, not characters: a byte-level BPE token may hold a single byte of
    "😀" (4 bytes) or "中文" (6), and every token decodes to at least one byte, so the longest stop string's
    byte length (plus a margin) always covers it, whatever its token count. Matching is on decoded text.
    Stopping is decided after each generated token only.
    """

    def __init__(self, tokenizer: Any, stop_strings: Union[str, Sequence[str]]):
        if tokenizer is None:
            raise ValueError("stop_strings needs a tokenizer: pass generate(..., stop_strings=..., tokenizer=tokenizer)")
        strings = [stop_strings] if isinstance(stop_strings, str) else list(stop_strings)
        if not strings or not all(isinstance(s, str) and s for s in strings):
            raise ValueError(f"stop_strings must be a non-empty string or a list of them, got {stop_strings!r}")
        self.tokenizer = tokenizer
        self.stop_strings = strings
        self._window = max(len(s.encode("utf-8", "surrogatepass")) for s in strings) + 2

    def __call__(self, input_ids, scores, **kwargs) -> torch.BoolTensor:
        tails = input_ids[:, max(input_ids.shape[-1] - self._window, 0):].tolist()
        texts = [self.tokenizer.decode(row, skip_special_tokens=False, clean_up_tokenization_spaces=False)
                 for row in tails]
        done = [any(text.endswith(s) for s in self.stop_strings) for text in texts]
        return torch.tensor(done, dtype=torch.bool, device=input_ids.device)


class StoppingCriteriaList(list):
    """The criteria of one generate() call. Called, it says whether every row should stop (bool);
    `rows_to_stop` gives the per-row answer."""

    def __call__(self, input_ids, scores, **kwargs) -> bool:
        rows = self.rows_to_stop(input_ids, scores, **kwargs)
        return rows if isinstance(rows, bool) else bool(rows.all())

    def rows_to_stop(self, input_ids, scores, **kwargs) -> Union[bool, torch.BoolTensor]:
        """True (all rows stop), False (none does), or a (B,) bool tensor."""
        rows: Union[bool, torch.Tensor] = False
        for criterion in self:
            answer = criterion(input_ids, scores, **kwargs)
            if isinstance(answer, torch.Tensor) and answer.dim() > 0:
                rows = answer if rows is False else rows | answer
            elif bool(answer):
                return True
        return rows

    @property
    def max_length(self) -> Optional[int]:
        for criterion in self:
            if isinstance(criterion, (MaxLengthCriteria, MaxNewTokensCriteria)):
                return criterion.max_length
        return None


def validate_stopping_criteria(stopping_criteria: StoppingCriteriaList, max_length: int) -> StoppingCriteriaList:
    """A copy of `stopping_criteria` that stops at `max_length` (warns when it already stops elsewhere)."""
    known = stopping_criteria.max_length
    criteria = copy.deepcopy(stopping_criteria)
    if known is not None and known != max_length:
        warnings.warn("You set different `max_length` for stopping criteria and `max_length` parameter", UserWarning)
    elif known is None:
        criteria.append(MaxLengthCriteria(max_length=max_length))
    return criteria


def custom_criteria(criteria: StoppingCriteriaList) -> List[StoppingCriteria]:
    """The criteria a decoding loop must call per token: all but max-length, which bounds the loop."""
    return [c for c in criteria if not isinstance(c, (MaxLengthCriteria, MaxNewTokensCriteria))]
