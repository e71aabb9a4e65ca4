"""The values tokenizers take and return: strategies, `AddedToken`, `BatchEncoding` and tensor conversion.

Nothing here imports numpy, torch, TensorFlow or JAX at import time; `BatchEncoding.convert_to_tensors`
imports the one framework asked for, when asked.
"""

from __future__ import annotations

import enum
import logging
import re
from collections import UserDict
from typing import Any, Dict, List, NamedTuple, Optional, Union

logger = logging.getLogger(__name__)


class _Choice(str, enum.Enum):
    """A string enum whose error names the argument and the allowed values."""

    @classmethod
    def parse(cls, value: Any, argument: str):
        try:
            return cls(value)
        except ValueError:
            allowed = ", ".join(repr(member.value) for member in cls)
            raise ValueError(f"{argument}={value!r} is not valid; expected one of {allowed}") from None


class PaddingStrategy(_Choice):
    LONGEST = "longest"
    MAX_LENGTH = "max_length"
    DO_NOT_PAD = "do_not_pad"


class TruncationStrategy(_Choice):
    ONLY_FIRST = "only_first"
    ONLY_SECOND = "only_second"
    LONGEST_FIRST = "longest_first"
    DO_NOT_TRUNCATE = "do_not_truncate"


class TensorType(_Choice):
    PYTORCH = "pt"
    TENSORFLOW = "tf"
    NUMPY = "np"
    JAX = "jax"


class CharSpan(NamedTuple):
    """Character span `[start, end)` in the original string."""

    start: int
    end: int


class TokenSpan(NamedTuple):
    """Token span `[start, end)` in the encoded sequence."""

    start: int
    end: int


class AddedToken:
    """A token added to the vocabulary, with how it is matched in text.

    Same fields, defaults and serialized form (`__getstate__`) as `tokenizers.AddedToken`:
    `single_word` (only match whole words), `lstrip` / `rstrip` (swallow the whitespace on that side),
    `normalized` (match the normalized text; defaults to `not special`), `special` (skipped by
    `decode(..., skip_special_tokens=True)`).
    """

    def __init__(self, content: str, single_word: bool = False, lstrip: bool = False, rstrip: bool = False,
                 normalized: Optional[bool] = None, special: bool = False):
        if not isinstance(content, str):
            raise TypeError(f"AddedToken content must be a str, got {type(content).__name__}")
        self.content = content
        self.single_word = single_word
        self.lstrip = lstrip
        self.rstrip = rstrip
        self.special = special
        self.normalized = (not special) if normalized is None else normalized

    def __getstate__(self) -> Dict[str, Any]:
        return {"content": self.content, "single_word": self.single_word, "lstrip": self.lstrip,
                "rstrip": self.rstrip, "normalized": self.normalized, "special": self.special}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.__init__(**state)

    def __str__(self) -> str:
        return self.content

    def __repr__(self) -> str:
        return (f'AddedToken("{self.content}", rstrip={self.rstrip}, lstrip={self.lstrip}, '
                f"single_word={self.single_word}, normalized={self.normalized}, special={self.special})")

    def __eq__(self, other: Any) -> bool:
        if not isinstance(other, AddedToken):
            return NotImplemented
        return self.__getstate__() == other.__getstate__()

    def __hash__(self) -> int:
        return hash(self.content)


def is_added_token(value: Any) -> bool:
    """An `AddedToken` of ours or of the `tokenizers` library."""
    return isinstance(value, AddedToken) or (type(value).__name__ == "AddedToken" and hasattr(value, "content"))


def as_added_token(value: Any, **defaults: Any) -> AddedToken:
    """Our `AddedToken` from a str (with `defaults`), ours, or a `tokenizers.AddedToken` (copied)."""
    if isinstance(value, str):
        return AddedToken(value, **defaults)
    if is_added_token(value):
        return AddedToken(**value.__getstate__())
    raise TypeError(f"expected a str or an AddedToken, got {type(value).__name__}: {value!r}")


_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def replace_lone_surrogates(value: Any) -> Any:
    """`value` (a str, or lists / tuples of them) with every lone surrogate (U+D800..U+DFFF, which no UTF-8
    encoder accepts) replaced by U+FFFD, the replacement character; anything else is returned as is.
    Byte-level BPE, sentencepiece and the `tokenizers` backend all need valid UTF-8; WordPiece tokenizers drop
    both characters, so the ids match theirs."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value) if _LONE_SURROGATE.search(value) else value
    if isinstance(value, (list, tuple)):
        return type(value)(replace_lone_surrogates(item) for item in value)
    return value


def to_py_obj(obj: Any) -> Any:
    """Nested lists / Python numbers from tensors, arrays, numpy scalars and lists of them."""
    if isinstance(obj, (list, tuple)):
        return [to_py_obj(item) for item in obj]
    if isinstance(obj, dict):
        return {key: to_py_obj(value) for key, value in obj.items()}
    if hasattr(obj, "numpy") and not hasattr(obj, "tolist"):  # TensorFlow eager tensors
        obj = obj.numpy()
    if hasattr(obj, "tolist"):  # torch / numpy / jax arrays and numpy scalars
        return obj.tolist()
    return obj


def _tensor_functions(tensor_type: TensorType):
    """(is_tensor, as_tensor) for a framework, importing it now."""
    if tensor_type == TensorType.PYTORCH:
        import torch

        return torch.is_tensor, torch.tensor
    if tensor_type == TensorType.TENSORFLOW:
        import tensorflow as tf

        return tf.is_tensor, tf.constant
    if tensor_type == TensorType.JAX:
        import jax
        import jax.numpy as jnp

        return (lambda value: isinstance(value, jax.Array)), jnp.array
    import numpy as np

    def as_array(value):
        if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, np.ndarray)):
            if len({len(row) for row in value}) > 1:  # ragged rows: an object array of arrays
                ragged = np.empty(len(value), dtype=object)
                ragged[:] = [np.asarray(row) for row in value]
                return ragged
        return np.asarray(value)

    return (lambda value: isinstance(value, np.ndarray)), as_array


class BatchEncoding(UserDict):
    """What a tokenizer returns: a dict of model inputs (`input_ids`, `attention_mask`, ...).

    Keys can be read as items or attributes (`enc["input_ids"]`, `enc.input_ids`). Fast tokenizers also
    keep their `tokenizers.Encoding` objects, which give `tokens(i)`, `word_ids(i)`, `sequence_ids(i)`
    and the char <-> token <-> word mappings; `enc[i]` (an int) is the i-th such Encoding.

    Args:
        data: the model inputs.
        encoding: the fast tokenizer's `tokenizers.Encoding` (or list of them, one per row).
        tensor_type: `"pt"`, `"np"`, `"tf"` or `"jax"` to convert the values to tensors now.
        prepend_batch_axis: wrap each value in a batch of one before converting.
        n_sequences: 1 for single sequences, 2 for pairs (taken from the encodings when known).
    """

    def __init__(self, data: Optional[Dict[str, Any]] = None, encoding: Any = None,
                 tensor_type: Union[None, str, TensorType] = None, prepend_batch_axis: bool = False,
                 n_sequences: Optional[int] = None):
        super().__init__(data)
        if encoding is not None and not isinstance(encoding, (list, tuple)):
            encoding = [encoding]
        self._encodings = list(encoding) if encoding is not None else None
        if n_sequences is None and self._encodings:
            n_sequences = self._encodings[0].n_sequences
        self._n_sequences = n_sequences
        self.convert_to_tensors(tensor_type, prepend_batch_axis)

    @property
    def n_sequences(self) -> Optional[int]:
        return self._n_sequences

    @property
    def is_fast(self) -> bool:
        """Whether it came from a fast tokenizer (and so has `encodings`)."""
        return self._encodings is not None

    @property
    def encodings(self) -> Optional[List[Any]]:
        """The `tokenizers.Encoding` per row, or None for a slow tokenizer's output."""
        return self._encodings

    def __getitem__(self, item: Union[int, str, slice]) -> Any:
        if isinstance(item, str):
            return self.data[item]
        if isinstance(item, slice):
            return {key: self.data[key][item] for key in self.data}
        if self._encodings is not None:
            return self._encodings[item]
        raise KeyError(f"{item!r}: indexing a BatchEncoding by position needs a fast tokenizer's output; "
                       "use a key such as 'input_ids'")

    def __getattr__(self, item: str) -> Any:
        try:
            return self.__dict__["data"][item]
        except KeyError:
            raise AttributeError(f"BatchEncoding has no attribute or key {item!r}") from None

    def __getstate__(self) -> Dict[str, Any]:
        return {"data": self.data, "encodings": self._encodings, "n_sequences": self._n_sequences}

    def __setstate__(self, state: Dict[str, Any]) -> None:
        self.data = state["data"]
        self._encodings = state["encodings"]
        self._n_sequences = state.get("n_sequences")

    # -- fast-tokenizer alignment -------------------------------------------------------------
    def _encoding(self, batch_index: int, what: str):
        if self._encodings is None:
            raise ValueError(f"{what}() is not available when using a slow (pure Python) tokenizer; "
                             "use the tokenizer's Fast class")
        return self._encodings[batch_index]

    def _split_index(self, batch_or_index: int, index: Optional[int], what: str):
        """(encoding, index) from `f(i)` on a single sequence or `f(batch_index, i)` on a batch."""
        if index is None:
            if self._encodings is not None and len(self._encodings) > 1:
                raise ValueError(f"{what}(i) with one argument needs a batch of one; "
                                 "pass (batch_index, index)")
            return self._encoding(0, what), batch_or_index
        return self._encoding(batch_or_index, what), index

    def tokens(self, batch_index: int = 0) -> List[str]:
        """The tokens of row `batch_index` (after special tokens and padding)."""
        return self._encoding(batch_index, "tokens").tokens

    def sequence_ids(self, batch_index: int = 0) -> List[Optional[int]]:
        """Per token: None for special tokens, 0 for the first sequence, 1 for the second."""
        return self._encoding(batch_index, "sequence_ids").sequence_ids

    def word_ids(self, batch_index: int = 0) -> List[Optional[int]]:
        """Per token: the index of the word it comes from (None for special and pad tokens)."""
        return self._encoding(batch_index, "word_ids").word_ids

    words = word_ids  # the older name

    def token_to_sequence(self, batch_or_token_index: int, token_index: Optional[int] = None) -> int:
        encoding, index = self._split_index(batch_or_token_index, token_index, "token_to_sequence")
        return encoding.token_to_sequence(index if index >= 0 else len(encoding.ids) + index)

    def token_to_word(self, batch_or_token_index: int, token_index: Optional[int] = None) -> int:
        encoding, index = self._split_index(batch_or_token_index, token_index, "token_to_word")
        return encoding.token_to_word(index if index >= 0 else len(encoding.ids) + index)

    def word_to_tokens(self, batch_or_word_index: int, word_index: Optional[int] = None,
                       sequence_index: int = 0) -> Optional[TokenSpan]:
        encoding, index = self._split_index(batch_or_word_index, word_index, "word_to_tokens")
        span = encoding.word_to_tokens(index, sequence_index)
        return TokenSpan(*span) if span is not None else None

    def token_to_chars(self, batch_or_token_index: int, token_index: Optional[int] = None) -> Optional[CharSpan]:
        encoding, index = self._split_index(batch_or_token_index, token_index, "token_to_chars")
        span = encoding.token_to_chars(index)
        return CharSpan(*span) if span is not None else None

    def char_to_token(self, batch_or_char_index: int, char_index: Optional[int] = None,
                      sequence_index: int = 0) -> Optional[int]:
        encoding, index = self._split_index(batch_or_char_index, char_index, "char_to_token")
        return encoding.char_to_token(index, sequence_index)

    def word_to_chars(self, batch_or_word_index: int, word_index: Optional[int] = None,
                      sequence_index: int = 0) -> CharSpan:
        encoding, index = self._split_index(batch_or_word_index, word_index, "word_to_chars")
        return CharSpan(*encoding.word_to_chars(index, sequence_index))

    def char_to_word(self, batch_or_char_index: int, char_index: Optional[int] = None,
                     sequence_index: int = 0) -> Optional[int]:
        encoding, index = self._split_index(batch_or_char_index, char_index, "char_to_word")
        return encoding.char_to_word(index, sequence_index)

    # -- tensors ------------------------------------------------------------------------------
    def convert_to_tensors(self, tensor_type: Union[None, str, TensorType] = None,
                           prepend_batch_axis: bool = False) -> "BatchEncoding":
        """Convert every value to a `tensor_type` tensor in place (no-op for None)."""
        if tensor_type is None:
            return self
        tensor_type = TensorType.parse(tensor_type, "return_tensors")
        is_tensor, as_tensor = _tensor_functions(tensor_type)
        for key, value in self.items():
            if prepend_batch_axis:
                value = [value]
            if is_tensor(value):
                continue
            try:
                self[key] = as_tensor(value)
            except Exception as err:  # ragged lists: name the key and what would fix it
                hint = ("overflowing tokens of different lengths cannot be stacked; use a fast tokenizer"
                        if key == "overflowing_tokens" else
                        "rows have different lengths (or are nested too deeply); pass padding=True "
                        "(and truncation=True) so that every row has the same length")
                raise ValueError(f"Unable to create a {tensor_type.value!r} tensor from {key!r}: {hint}") from err
        return self

    def to(self, device: Any) -> "BatchEncoding":
        """Move every torch tensor to `device` (a str, int or `torch.device`), in place; returns self."""
        import torch

        if not isinstance(device, (str, int, torch.device)):
            raise TypeError(f"BatchEncoding.to(device) expects a device (str, int or torch.device), "
                            f"got {type(device).__name__}; casting dtypes is not supported")
        self.data = {key: value.to(device=device) if torch.is_tensor(value) else value
                     for key, value in self.data.items()}
        return self
