"""`PreTrainedTokenizerBase`: everything slow and fast tokenizers share.

A tokenizer turns text into model inputs in three stages, and this class owns the first and last:

    __call__ / encode / encode_plus / batch_encode_plus      check the input, pick strategies
        -> _encode_plus / _batch_encode_plus                  slow.py (pure Python) or fast.py (`tokenizers`)
        -> prepare_for_model / truncate_sequences / pad       ids -> BatchEncoding (used by slow tokenizers)

plus decoding and saving / loading (files.py reads and writes tokenizer_config.json and
special_tokens_map.json; the vocabulary files belong to each model's tokenizer). The special-token
attributes (`cls_token`, `cls_token_id`, ..., add_tokens) come from special_tokens.py.
Behaviour follows transformers 4.37; the few deliberate differences are noted where they happen.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import os
from typing import Any, Dict, List, Optional, Tuple, Union

from ..hub import prepare_save_directory
from ..saving import save_transaction
from ..value_rules import BOOL, Rule, check_values
from ..push_to_hub import PushToHubMixin
from .encoding import (AddedToken, BatchEncoding, CharSpan, PaddingStrategy, TensorType, TokenSpan,
                       TruncationStrategy, to_py_obj)
from .files import load_pretrained_kwargs, prefixed, save_tokenizer_config, write_json
from .special_tokens import SpecialTokensMixin

__all__ = ["AddedToken", "BatchEncoding", "CharSpan", "PaddingStrategy", "PreTrainedTokenizerBase", "TensorType",
           "TokenSpan", "TruncationStrategy"]

logger = logging.getLogger(__name__)

VERY_LARGE_INTEGER = int(1e30)  # "no limit" for model_max_length, as in the reference
LARGE_INTEGER = int(1e20)

# The init arguments (tokenizer_config.json keys) every tokenizer checks before using them.
_MAX_LENGTH = Rule(lambda v: v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and v >= 1
                                           and float(v).is_integer()), "a positive int or null")
# Switches may be null (files written by other versions do), never "no" or "false".
TOKENIZER_RULES = {
    "model_max_length": _MAX_LENGTH, "max_len": _MAX_LENGTH,
    **{key: BOOL.or_none() for key in ("do_lower_case", "do_basic_tokenize", "tokenize_chinese_chars", "strip_accents",
                                       "add_prefix_space", "trim_offsets", "clean_up_tokenization_spaces",
                                       "split_special_tokens", "add_bos_token", "add_eos_token", "legacy",
                                       "use_default_system_prompt", "do_split_on_punc")},
}


@dataclasses.dataclass
class EncodeOptions:
    """The encoding arguments of `__call__`, checked and with padding / truncation resolved."""

    add_special_tokens: bool = True
    padding: PaddingStrategy = PaddingStrategy.DO_NOT_PAD
    truncation: TruncationStrategy = TruncationStrategy.DO_NOT_TRUNCATE
    max_length: Optional[int] = None
    stride: int = 0
    is_split_into_words: bool = False
    pad_to_multiple_of: Optional[int] = None
    return_tensors: Optional[TensorType] = None
    return_token_type_ids: Optional[bool] = None  # None: as model_input_names says
    return_attention_mask: Optional[bool] = None  # None: as model_input_names says
    return_overflowing_tokens: bool = False
    return_special_tokens_mask: bool = False
    return_offsets_mapping: bool = False
    return_length: bool = False
    verbose: bool = True


_OPTION_NAMES = {field.name for field in dataclasses.fields(EncodeOptions)}


class PreTrainedTokenizerBase(PushToHubMixin, SpecialTokensMixin):
    """Base of `PreTrainedTokenizer` (slow) and `PreTrainedTokenizerFast`.

    Args (keyword only, all optional; unknown ones are kept in `init_kwargs` and saved back):
        model_max_length: longest input the model takes; `truncation=True` and `padding="max_length"`
            use it when no `max_length` is given.
        padding_side / truncation_side: "right" (default) or "left".
        model_input_names: keys the model's forward accepts (e.g. ["input_ids", "attention_mask"]).
        bos_token, eos_token, unk_token, sep_token, pad_token, cls_token, mask_token: str or AddedToken.
        additional_special_tokens: list of str or AddedToken, never split and skippable in decode.
        clean_up_tokenization_spaces: default of `decode(..., clean_up_tokenization_spaces=)` (True).
        split_special_tokens: tokenize special tokens like ordinary text (False).
        name_or_path: where it was loaded from.
    """

    vocab_files_names: Dict[str, str] = {}
    model_input_names: List[str] = ["input_ids", "token_type_ids", "attention_mask"]
    padding_side: str = "right"
    truncation_side: str = "right"
    slow_tokenizer_class = None

    def __init__(self, **kwargs):
        check_values(kwargs, TOKENIZER_RULES, f"{type(self).__name__} argument")
        self.init_inputs: Tuple[Any, ...] = ()
        self.init_kwargs = copy.deepcopy(kwargs)
        self.name_or_path = kwargs.pop("name_or_path", "")
        self._processor_class = kwargs.pop("processor_class", None)
        model_max_length = kwargs.pop("model_max_length", kwargs.pop("max_len", None))
        self.model_max_length = int(model_max_length) if model_max_length is not None else VERY_LARGE_INTEGER
        self.padding_side = kwargs.pop("padding_side", self.padding_side)
        self.truncation_side = kwargs.pop("truncation_side", self.truncation_side)
        for name in ("padding_side", "truncation_side"):
            if getattr(self, name) not in ("right", "left"):
                raise ValueError(f"{name} must be 'right' or 'left', got {getattr(self, name)!r}")
        self.model_input_names = list(kwargs.pop("model_input_names", self.model_input_names))
        self.clean_up_tokenization_spaces = kwargs.pop("clean_up_tokenization_spaces", True)
        self.split_special_tokens = kwargs.pop("split_special_tokens", False)
        self.chat_template = kwargs.pop("chat_template", None)
        self.verbose = kwargs.pop("verbose", False)
        self._warned: set = set()
        self._init_special_tokens(kwargs)

    # -- tokens <-> ids ------------------------------------------------------------------------
    def convert_tokens_to_ids(self, tokens: Union[None, str, List[str]]) -> Union[None, int, List[int]]:
        """Id(s) of token(s) (the unknown token's id for tokens not in the vocabulary)."""
        if tokens is None:
            return None
        if isinstance(tokens, str):
            return self._token_to_id(tokens)
        return [self._token_to_id(token) for token in tokens]

    def convert_ids_to_tokens(self, ids: Union[int, List[int]], skip_special_tokens: bool = False):
        """Token(s) of id(s); `skip_special_tokens` drops the ids of the special-token attributes."""
        if isinstance(ids, int):
            return self._id_to_token(ids)
        skip = set(self.all_special_ids) if skip_special_tokens else set()
        return [self._id_to_token(int(index)) for index in ids if int(index) not in skip]

    def _token_to_id(self, token: str) -> Optional[int]:
        raise NotImplementedError

    def _id_to_token(self, index: int) -> Optional[str]:
        raise NotImplementedError

    # -- sizes --------------------------------------------------------------------------------
    @property
    def max_len_single_sentence(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(pair=False)

    @property
    def max_len_sentences_pair(self) -> int:
        return self.model_max_length - self.num_special_tokens_to_add(pair=True)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return len(self.build_inputs_with_special_tokens([], [] if pair else None))

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(name_or_path='{self.name_or_path}', vocab_size={self.vocab_size}, "
                f"model_max_length={self.model_max_length}, is_fast={self.is_fast}, "
                f"padding_side='{self.padding_side}', truncation_side='{self.truncation_side}', "
                f"special_tokens={self.special_tokens_map}, "
                f"clean_up_tokenization_spaces={self.clean_up_tokenization_spaces})")

    # -- special-token layout (models override) -----------------------------------------------
    def build_inputs_with_special_tokens(self, token_ids_0: List[int],
                                         token_ids_1: Optional[List[int]] = None) -> List[int]:
        """Model inputs from one or two id sequences; the base adds no special tokens."""
        return token_ids_0 if token_ids_1 is None else token_ids_0 + token_ids_1

    def create_token_type_ids_from_sequences(self, token_ids_0: List[int],
                                             token_ids_1: Optional[List[int]] = None) -> List[int]:
        """0 for each id of the first sequence, 1 for each of the second."""
        return [0] * len(token_ids_0) + ([1] * len(token_ids_1) if token_ids_1 is not None else [])

    def get_special_tokens_mask(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None,
                                already_has_special_tokens: bool = False) -> List[int]:
        """1 where `build_inputs_with_special_tokens` puts a special token, 0 elsewhere.

        With `already_has_special_tokens=True`, `token_ids_0` is an encoded sequence and the mask
        marks the ids of special tokens in it.
        """
        if already_has_special_tokens:
            if token_ids_1 is not None:
                raise ValueError("token_ids_1 must be None when already_has_special_tokens=True: the sequence "
                                 "already holds both parts")
            special = set(self.all_special_ids)
            return [1 if token in special else 0 for token in token_ids_0]
        return [0] * (len(token_ids_0) + (len(token_ids_1) if token_ids_1 else 0))

    # -- encoding -----------------------------------------------------------------------------
    def __call__(self, text=None, text_pair=None, text_target=None, text_pair_target=None,
                 **kwargs) -> BatchEncoding:
        """Tokenize and prepare one or several sequences (or pairs) for the model.

        Args:
            text: a str, a list of str (a batch, or one pre-split sequence with is_split_into_words=True)
                or a list of lists of str (a batch of pre-split sequences). A batch of pairs can also
                be given as a list of [first, second] lists.
            text_pair: the second sequences, shaped like `text`.
            text_target / text_pair_target: target texts for sequence-to-sequence models; their
                input_ids are returned as `labels` (or as the whole encoding when `text` is None).
            add_special_tokens (True): add [CLS]/[SEP]-like tokens.
            padding (False): True or "longest" pads to the longest row; "max_length" to `max_length`
                (or `model_max_length`); False or "do_not_pad" leaves rows ragged.
            truncation (None): True or "longest_first" trims the longest sequence token by token;
                "only_first" / "only_second" trim one sequence of a pair; False / "do_not_truncate".
                Giving `max_length` alone (no padding) turns on "longest_first".
            max_length: length for truncation and "max_length" padding.
            stride (0): with return_overflowing_tokens, how many tokens overflowing rows repeat.
            is_split_into_words (False): the input is already split into words.
            pad_to_multiple_of: round the padded length up to a multiple of this.
            return_tensors: "pt", "np", "tf" or "jax" for tensors instead of lists.
            return_token_type_ids / return_attention_mask: default to what `model_input_names` lists.
            return_overflowing_tokens (False): fast: the truncated-away tokens as extra rows (with
                `overflow_to_sample_mapping`); slow: an `overflowing_tokens` list.
            return_special_tokens_mask, return_offsets_mapping (fast), return_length (False).
            verbose (True): log warnings.
        """
        if text is None and text_target is None:
            raise ValueError("__call__ needs `text` or `text_target`")
        encodings = self._call_one(text, text_pair, **kwargs) if text is not None else None
        if text_target is None:
            return encodings
        self._switch_to_target_mode()
        try:
            targets = self._call_one(text_target, text_pair_target, **kwargs)
        finally:
            self._switch_to_input_mode()
        if encodings is None:
            return targets
        encodings["labels"] = targets["input_ids"]
        return encodings

    def _switch_to_input_mode(self) -> None:
        """Hook for tokenizers that encode targets differently (seq2seq)."""

    def _switch_to_target_mode(self) -> None:
        """Hook for tokenizers that encode targets differently (seq2seq)."""

    def _call_one(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        _check_text(text, "text")
        if text_pair is not None:
            _check_text(text_pair, "text_pair")
        if kwargs.get("is_split_into_words", False):
            batched = isinstance(text, (list, tuple)) and bool(text) and isinstance(text[0], (list, tuple))
        else:
            batched = isinstance(text, (list, tuple))
        if not batched:
            return self.encode_plus(text, text_pair, **kwargs)
        if isinstance(text_pair, str):
            raise TypeError("when `text` is a batch, `text_pair` must be a list or tuple of the same length, "
                            "not a str")
        if text_pair is not None and len(text) != len(text_pair):
            raise ValueError(f"`text` has {len(text)} items but `text_pair` has {len(text_pair)}; "
                             "they must have the same length")
        items = list(zip(text, text_pair)) if text_pair is not None else list(text)
        return self.batch_encode_plus(items, **kwargs)

    def encode_plus(self, text, text_pair=None, **kwargs) -> BatchEncoding:
        """Encode one sequence or pair (a str, pre-split words, or ids for slow tokenizers); see `__call__`."""
        options, extra = self._encode_options(**kwargs)
        return self._encode_plus(text, text_pair, options, **extra)

    def batch_encode_plus(self, batch_text_or_text_pairs, **kwargs) -> BatchEncoding:
        """Encode a list of sequences or (first, second) pairs; see `__call__`."""
        if not isinstance(batch_text_or_text_pairs, (list, tuple)):
            raise TypeError(f"batch_text_or_text_pairs must be a list or tuple, "
                            f"got {type(batch_text_or_text_pairs).__name__}")
        if not batch_text_or_text_pairs:
            raise ValueError("cannot encode an empty batch: `text` is an empty list")
        options, extra = self._encode_options(**kwargs)
        return self._batch_encode_plus(list(batch_text_or_text_pairs), options, **extra)

    def encode(self, text, text_pair=None, add_special_tokens: bool = True, **kwargs) -> List[int]:
        """The `input_ids` of one sequence or pair (see `__call__` for the arguments)."""
        return self.encode_plus(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)["input_ids"]

    def _encode_plus(self, text, text_pair, options: EncodeOptions, **kwargs) -> BatchEncoding:
        raise NotImplementedError

    def _batch_encode_plus(self, items: List[Any], options: EncodeOptions, **kwargs) -> BatchEncoding:
        raise NotImplementedError

    def _encode_options(self, **kwargs) -> Tuple[EncodeOptions, Dict[str, Any]]:
        """Split `kwargs` into checked EncodeOptions and the rest (passed on to `tokenize`)."""
        given = {key: kwargs.pop(key) for key in list(kwargs) if key in _OPTION_NAMES}
        padding, truncation, max_length = self._get_padding_truncation_strategies(
            given.pop("padding", False), given.pop("truncation", None), given.pop("max_length", None),
            given.get("pad_to_multiple_of"), given.get("verbose", True))
        _check_int(given.get("stride", 0), "stride", minimum=0)
        if given.get("return_tensors") is not None:
            given["return_tensors"] = TensorType.parse(given["return_tensors"], "return_tensors")
        options = EncodeOptions(padding=padding, truncation=truncation, max_length=max_length, **given)
        return options, kwargs

    def _get_padding_truncation_strategies(self, padding=False, truncation=None, max_length=None,
                                           pad_to_multiple_of=None, verbose=True):
        """(PaddingStrategy, TruncationStrategy, max_length) from the user's arguments, as the reference
        resolves them, except that padding="max_length" with no length at all raises instead of silently
        not padding."""
        _check_int(max_length, "max_length", minimum=0, optional=True)
        _check_int(pad_to_multiple_of, "pad_to_multiple_of", minimum=1, optional=True)
        if max_length is not None and padding is False and truncation is None:
            self._warn_once("max_length-truncation", "max_length is set but truncation is not; truncating with "
                            "'longest_first' (pass truncation=True to say so)", verbose)
            truncation = "longest_first"
        if padding is True:
            if max_length is not None and truncation in (None, False, "do_not_truncate"):
                self._warn_once("padding-max_length", "max_length is ignored when padding=True and there is "
                                "no truncation; use padding='max_length' to pad to it", verbose)
            padding_strategy = PaddingStrategy.LONGEST
        elif padding is False or padding is None:
            padding_strategy = PaddingStrategy.DO_NOT_PAD
        else:
            padding_strategy = PaddingStrategy.parse(padding, "padding")
        if truncation is True:
            truncation_strategy = TruncationStrategy.LONGEST_FIRST
        elif truncation is False or truncation is None:
            truncation_strategy = TruncationStrategy.DO_NOT_TRUNCATE
        else:
            truncation_strategy = TruncationStrategy.parse(truncation, "truncation")

        if max_length is None:
            no_limit = self.model_max_length > LARGE_INTEGER
            if padding_strategy == PaddingStrategy.MAX_LENGTH:
                if no_limit:
                    raise ValueError("padding='max_length' needs max_length=..., as this tokenizer has no "
                                     "model_max_length; or use padding=True to pad to the longest sequence")
                max_length = self.model_max_length
            if truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE:
                if no_limit:
                    self._warn_once("truncate-no-limit", "truncation needs max_length and this tokenizer has no "
                                    "model_max_length: not truncating", verbose)
                    truncation_strategy = TruncationStrategy.DO_NOT_TRUNCATE
                else:
                    max_length = self.model_max_length
        if padding_strategy != PaddingStrategy.DO_NOT_PAD and (self.pad_token is None or self.pad_token_id < 0):
            raise ValueError("padding needs a pad token and this tokenizer has none: set one, e.g. "
                             "tokenizer.pad_token = tokenizer.eos_token, or tokenizer.add_special_tokens("
                             "{'pad_token': '[PAD]'})")
        if (truncation_strategy != TruncationStrategy.DO_NOT_TRUNCATE and padding_strategy != PaddingStrategy.DO_NOT_PAD
                and pad_to_multiple_of is not None and max_length is not None and max_length % pad_to_multiple_of):
            raise ValueError(f"with both truncation and padding, max_length ({max_length}) must be a multiple "
                             f"of pad_to_multiple_of ({pad_to_multiple_of})")
        return padding_strategy, truncation_strategy, max_length

    def _warn_once(self, key: str, message: str, verbose: bool = True) -> None:
        if verbose and key not in self._warned:
            self._warned.add(key)
            logger.warning(message)

    def _wants(self, flag: Optional[bool], key: str) -> bool:
        """An explicit return_* flag, or whether `key` is one of the model's input names."""
        return flag if flag is not None else key in self.model_input_names

    # -- from ids to model inputs (slow tokenizers; also public) ------------------------------
    def prepare_for_model(self, ids: List[int], pair_ids: Optional[List[int]] = None,
                          prepend_batch_axis: bool = False, **kwargs) -> BatchEncoding:
        """Truncate, add special tokens, build masks and pad already-tokenized ids (see `__call__`)."""
        options, _ = self._encode_options(**kwargs)
        return self._prepare(ids, pair_ids, options, prepend_batch_axis)

    def _prepare(self, ids: List[int], pair_ids: Optional[List[int]], options: EncodeOptions,
                 prepend_batch_axis: bool = False) -> BatchEncoding:
        o = options
        pair = pair_ids is not None
        if o.return_token_type_ids and not o.add_special_tokens:
            raise ValueError("return_token_type_ids=True needs add_special_tokens=True (the token types of "
                             "sequences without special tokens are undefined)")
        if o.return_overflowing_tokens and o.truncation == TruncationStrategy.LONGEST_FIRST and pair:
            raise ValueError("return_overflowing_tokens is not possible for pairs with truncation='longest_first'; "
                             "use 'only_first' or 'only_second'")
        total = len(ids) + (len(pair_ids) if pair else 0)
        total += self.num_special_tokens_to_add(pair=pair) if o.add_special_tokens else 0
        out: Dict[str, Any] = {}
        overflowing: List[int] = []
        if o.truncation != TruncationStrategy.DO_NOT_TRUNCATE and o.max_length and total > o.max_length:
            ids, pair_ids, overflowing = self.truncate_sequences(
                ids, pair_ids, num_tokens_to_remove=total - o.max_length, truncation_strategy=o.truncation,
                stride=o.stride)
        if o.return_overflowing_tokens:
            out["overflowing_tokens"] = overflowing
            out["num_truncated_tokens"] = total - o.max_length if o.max_length is not None else 0
        if o.add_special_tokens:
            sequence = self.build_inputs_with_special_tokens(ids, pair_ids)
            token_type_ids = self.create_token_type_ids_from_sequences(ids, pair_ids)
        else:
            sequence = ids + pair_ids if pair else ids
            token_type_ids = [0] * len(sequence)
        out["input_ids"] = sequence
        if self._wants(o.return_token_type_ids, "token_type_ids"):
            out["token_type_ids"] = token_type_ids
        if o.return_special_tokens_mask:
            out["special_tokens_mask"] = (self.get_special_tokens_mask(ids, pair_ids) if o.add_special_tokens
                                          else [0] * len(sequence))
        self._warn_if_too_long(sequence, o.max_length, o.verbose)
        want_mask = self._wants(o.return_attention_mask, "attention_mask")
        if o.padding != PaddingStrategy.DO_NOT_PAD or want_mask:
            out = self._pad(out, o.max_length, o.padding, o.pad_to_multiple_of, want_mask)
        if o.return_length:
            out["length"] = len(out["input_ids"])
        return BatchEncoding(out, tensor_type=o.return_tensors, prepend_batch_axis=prepend_batch_axis)

    def truncate_sequences(self, ids: List[int], pair_ids: Optional[List[int]] = None,
                           num_tokens_to_remove: int = 0,
                           truncation_strategy: Union[str, TruncationStrategy] = "longest_first",
                           stride: int = 0) -> Tuple[List[int], Optional[List[int]], List[int]]:
        """Remove `num_tokens_to_remove` ids by `truncation_strategy`, on `truncation_side`.

        Returns (ids, pair_ids, overflowing_tokens); the overflow also repeats `stride` kept ids. When
        the chosen sequence is too short, nothing is removed and an error is logged (as the reference).
        """
        if num_tokens_to_remove <= 0:
            return ids, pair_ids, []
        strategy = TruncationStrategy.parse(truncation_strategy, "truncation")
        left = self.truncation_side == "left"
        if strategy == TruncationStrategy.LONGEST_FIRST and pair_ids is not None:
            first_remove = min(abs(len(pair_ids) - len(ids)), num_tokens_to_remove)
            half = (num_tokens_to_remove - first_remove) // 2
            rest = num_tokens_to_remove - first_remove - half
            if len(ids) > len(pair_ids):
                cut_ids, cut_pair = first_remove + half, rest
            else:
                cut_ids, cut_pair = half, first_remove + rest
            return _cut(ids, cut_ids, left), _cut(pair_ids, cut_pair, left), []
        if strategy in (TruncationStrategy.ONLY_FIRST, TruncationStrategy.LONGEST_FIRST):
            target, which = ids, "first"
        elif strategy == TruncationStrategy.ONLY_SECOND and pair_ids is not None:
            target, which = pair_ids, "second"
        else:
            return ids, pair_ids, []
        if len(target) <= num_tokens_to_remove:
            logger.error("cannot remove %d tokens: the %s sequence has only %d; choose another truncation "
                         "strategy than %r", num_tokens_to_remove, which, len(target), strategy.value)
            return ids, pair_ids, []
        window = min(len(target), stride + num_tokens_to_remove)
        overflow = target[:window] if left else target[-window:]
        kept = _cut(target, num_tokens_to_remove, left)
        return (kept, pair_ids, overflow) if which == "first" else (ids, kept, overflow)

    def pad(self, encoded_inputs, padding: Union[bool, str, PaddingStrategy] = True,
            max_length: Optional[int] = None, pad_to_multiple_of: Optional[int] = None,
            return_attention_mask: Optional[bool] = None, return_tensors=None,
            verbose: bool = True) -> BatchEncoding:
        """Pad one encoding or a batch (a dict of lists, or a list of dicts) on `padding_side`.

        Tensors in give tensors of the same kind out, unless `return_tensors` says otherwise.
        """
        if isinstance(encoded_inputs, (list, tuple)) and encoded_inputs and hasattr(encoded_inputs[0], "keys"):
            encoded_inputs = {key: [row[key] for row in encoded_inputs] for key in encoded_inputs[0].keys()}
        main = self.model_input_names[0]
        if not hasattr(encoded_inputs, "keys") or main not in encoded_inputs:
            keys = list(encoded_inputs.keys()) if hasattr(encoded_inputs, "keys") else encoded_inputs
            raise ValueError(f"pad() needs an encoding or a list of encodings with {main!r}; got {keys!r}")
        encoded_inputs = dict(encoded_inputs)
        required = encoded_inputs[main]
        if required is None or (hasattr(required, "__len__") and len(required) == 0):
            if return_attention_mask:
                encoded_inputs["attention_mask"] = []
            return BatchEncoding(encoded_inputs)
        if return_tensors is None:
            return_tensors = _tensor_kind(required)
        encoded_inputs = {key: to_py_obj(value) for key, value in encoded_inputs.items()}
        strategy, _, max_length = self._get_padding_truncation_strategies(
            padding=padding, max_length=max_length, pad_to_multiple_of=pad_to_multiple_of, verbose=verbose)
        required = encoded_inputs[main]
        if not isinstance(required[0], (list, tuple)):
            padded = self._pad(encoded_inputs, max_length, strategy, pad_to_multiple_of, return_attention_mask)
            return BatchEncoding(padded, tensor_type=return_tensors)
        return BatchEncoding(self._pad_batch(encoded_inputs, max_length, strategy, pad_to_multiple_of,
                                             return_attention_mask), tensor_type=return_tensors)

    def _pad_batch(self, batch: Dict[str, List[Any]], max_length: Optional[int], strategy: PaddingStrategy,
                   pad_to_multiple_of: Optional[int], return_attention_mask: Optional[bool]) -> Dict[str, List[Any]]:
        """Pad every row of a dict of lists; LONGEST becomes MAX_LENGTH of the longest row."""
        rows = batch[self.model_input_names[0]]
        if any(len(values) != len(rows) for values in batch.values()):
            raise ValueError("every key of the batch must have the same number of rows")
        if strategy == PaddingStrategy.LONGEST:
            max_length, strategy = max(len(row) for row in rows), PaddingStrategy.MAX_LENGTH
        out: Dict[str, List[Any]] = {}
        for i in range(len(rows)):
            padded = self._pad({key: values[i] for key, values in batch.items()}, max_length, strategy,
                               pad_to_multiple_of, return_attention_mask)
            for key, value in padded.items():
                out.setdefault(key, []).append(value)
        return out

    def _pad(self, encoded: Dict[str, Any], max_length: Optional[int], strategy: PaddingStrategy,
             pad_to_multiple_of: Optional[int], return_attention_mask: Optional[bool]) -> Dict[str, Any]:
        """Pad one encoding (dict of lists) to `max_length`, adding `attention_mask` if wanted."""
        want_mask = self._wants(return_attention_mask, "attention_mask")
        main = self.model_input_names[0]
        required = encoded[main]
        if strategy == PaddingStrategy.LONGEST:
            max_length = len(required)
        if max_length is not None and pad_to_multiple_of is not None and max_length % pad_to_multiple_of:
            max_length = (max_length // pad_to_multiple_of + 1) * pad_to_multiple_of
        if want_mask and "attention_mask" not in encoded:
            encoded["attention_mask"] = [1] * len(required)
        if strategy == PaddingStrategy.DO_NOT_PAD or max_length is None or len(required) >= max_length:
            return encoded
        n = max_length - len(required)
        fills = {main: self.pad_token_id, "token_type_ids": self.pad_token_type_id, "special_tokens_mask": 1}
        if want_mask:
            fills["attention_mask"] = 0
        for key, fill in fills.items():
            if key in encoded:
                encoded[key] = ([fill] * n + list(encoded[key]) if self.padding_side == "left"
                                else list(encoded[key]) + [fill] * n)
        return encoded

    def _warn_if_too_long(self, ids: List[int], max_length: Optional[int], verbose: bool) -> None:
        if max_length is None and len(ids) > self.model_max_length:
            self._warn_once("too-long", f"Token indices sequence length is longer than the specified maximum "
                            f"sequence length for this model ({len(ids)} > {self.model_max_length}); running it "
                            "through the model will fail", verbose)

    # -- decoding -----------------------------------------------------------------------------
    def decode(self, token_ids, skip_special_tokens: bool = False,
               clean_up_tokenization_spaces: Optional[bool] = None, **kwargs) -> str:
        """Text from ids (a list, tensor or array; an int is read as one id)."""
        token_ids = to_py_obj(token_ids)
        if isinstance(token_ids, int):
            token_ids = [token_ids]
        if not isinstance(token_ids, list) or not all(isinstance(i, int) for i in token_ids):
            raise TypeError(f"decode expects a list of ints (or a 1-D tensor/array), got {token_ids!r}")
        return self._decode(token_ids, skip_special_tokens=skip_special_tokens,
                            clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs)

    def batch_decode(self, sequences, skip_special_tokens: bool = False,
                     clean_up_tokenization_spaces: Optional[bool] = None, **kwargs) -> List[str]:
        """`decode` each row of a list of id lists or a 2-D tensor/array."""
        return [self.decode(seq, skip_special_tokens=skip_special_tokens,
                            clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs)
                for seq in to_py_obj(sequences)]

    def _decode(self, token_ids: List[int], skip_special_tokens: bool = False,
                clean_up_tokenization_spaces: Optional[bool] = None, **kwargs) -> str:
        raise NotImplementedError

    def _maybe_clean_up(self, text: str, clean_up_tokenization_spaces: Optional[bool]) -> str:
        if clean_up_tokenization_spaces is None:
            clean_up_tokenization_spaces = self.clean_up_tokenization_spaces
        return self.clean_up_tokenization(text) if clean_up_tokenization_spaces else text

    @staticmethod
    def clean_up_tokenization(out_string: str) -> str:
        """Remove the spaces tokenization put before punctuation and English contractions."""
        for spaced, joined in ((" .", "."), (" ?", "?"), (" !", "!"), (" ,", ","), (" ' ", "'"), (" n't", "n't"),
                               (" 'm", "'m"), (" 's", "'s"), (" 've", "'ve"), (" 're", "'re")):
            out_string = out_string.replace(spaced, joined)
        return out_string

    # -- files --------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], *init_inputs,
                        cache_dir=None, force_download: bool = False, local_files_only: bool = False,
                        token=None, revision: Optional[str] = None, subfolder: str = "", **kwargs):
        """Load from a folder or a Hub repo id (tokenizer_config.json, special_tokens_map.json, the
        vocabulary files, tokenizer.json). Keyword arguments override tokenizer_config.json."""
        name = os.fspath(pretrained_model_name_or_path)
        init_kwargs = load_pretrained_kwargs(
            cls, name, kwargs, dict(cache_dir=cache_dir, force_download=force_download, revision=revision,
                                    local_files_only=local_files_only, token=token, subfolder=subfolder))
        init_inputs = init_inputs or tuple(init_kwargs.pop("init_inputs", ()))
        init_kwargs.pop("init_inputs", None)
        source = f"{os.path.join(name, 'tokenizer_config.json')} (or a keyword argument)"
        check_values(init_kwargs, TOKENIZER_RULES, source)
        return cls(*init_inputs, **init_kwargs)

    def save_pretrained(self, save_directory: Union[str, os.PathLike], legacy_format: Optional[bool] = None,
                        filename_prefix: Optional[str] = None, push_to_hub: bool = False,
                        **kwargs) -> Tuple[str, ...]:
        """Write tokenizer_config.json, special_tokens_map.json and the vocabulary files into
        `save_directory` (created if needed), each atomically; returns the paths written.

        `legacy_format` (fast tokenizers): None writes tokenizer.json and the slow files, False only
        tokenizer.json, True only the slow files.
        """
        save_directory = prepare_save_directory(save_directory, push_to_hub)
        with save_transaction(save_directory):  # all files replace the old ones together (saving.py)
            files = save_tokenizer_config(self, save_directory, filename_prefix)
            return self._save_pretrained(save_directory, files, legacy_format, filename_prefix)

    def _save_pretrained(self, save_directory: str, file_names: Tuple[str, ...], legacy_format: Optional[bool],
                         filename_prefix: Optional[str]) -> Tuple[str, ...]:
        raise NotImplementedError

    def _save_slow_files(self, save_directory: str, filename_prefix: Optional[str]) -> Tuple[str, ...]:
        """added_tokens.json (tokens past the vocabulary, if any) and the vocabulary files."""
        path = prefixed(save_directory, filename_prefix, "added_tokens.json")
        added = {token: index for token, index in self.added_tokens_encoder.items() if index >= self.vocab_size}
        if added:
            write_json(path, added)
        return tuple(self.save_vocabulary(save_directory, filename_prefix=filename_prefix)) + (path,)

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> Tuple[str, ...]:
        """Write the vocabulary files only; returns their paths."""
        raise NotImplementedError


def _cut(ids: List[int], n: int, left: bool) -> List[int]:
    """`ids` without `n` items on one side."""
    if n <= 0:
        return ids
    return ids[n:] if left else ids[:-n]


def _check_text(text: Any, argument: str) -> None:
    """str, list of str, or list of lists of str (empty lists allowed), as the reference accepts."""
    ok = isinstance(text, str)
    if isinstance(text, (list, tuple)):
        first = text[0] if text else None
        ok = (not text or isinstance(first, str)
              or (isinstance(first, (list, tuple)) and (not first or isinstance(first[0], str))))
    if not ok:
        raise ValueError(f"`{argument}` must be a str (one example), a list of str (a batch, or one pre-split "
                         f"example) or a list of lists of str (a batch of pre-split examples); "
                         f"got {type(text).__name__}: {text!r:.100}")


def _check_int(value: Any, argument: str, minimum: int, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{argument} must be an int >= {minimum}{' or None' if optional else ''}, got {value!r}")


def _tensor_kind(values: Any) -> Optional[str]:
    """"pt" / "np" / "tf" / "jax" when `values` (or its first row) is such a tensor, else None."""
    first = values[0] if isinstance(values, (list, tuple)) else values
    if isinstance(first, (list, tuple)):
        first = next((row for row in values if len(row)), [None])[0]
    module = type(first).__module__.split(".")[0]
    return {"torch": "pt", "numpy": "np", "tensorflow": "tf", "jax": "jax", "jaxlib": "jax"}.get(module)
