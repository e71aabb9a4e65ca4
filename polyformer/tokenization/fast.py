"""`PreTrainedTokenizerFast`: tokenizers backed by the Rust `tokenizers` library.

The backend (a `tokenizers.Tokenizer`) comes from, in order: `tokenizer_object`, `tokenizer_file`
(a tokenizer.json), or the model's own builder `_backend_from_vocab` (e.g. a WordPiece tokenizer from
vocab.txt). The backend normalizes, splits, adds special tokens, truncates, pads and tracks offsets;
this class sets its truncation / padding for each call and turns its `Encoding`s into a BatchEncoding.
"""

from __future__ import annotations

import copy
import logging
from typing import Any, Dict, List, Optional, Tuple, Union

from tokenizers import AddedToken as BackendAddedToken
from tokenizers import Tokenizer

from ..file_errors import reading
from ..hub import write_atomically
from .base import EncodeOptions, PreTrainedTokenizerBase
from .encoding import (AddedToken, BatchEncoding, PaddingStrategy, TruncationStrategy, as_added_token, is_added_token,
                       replace_lone_surrogates)
from .files import prefixed
from .special_tokens import check_added_token_ids

__all__ = ["PreTrainedTokenizerFast"]

logger = logging.getLogger(__name__)


class PreTrainedTokenizerFast(PreTrainedTokenizerBase):
    """Base class of the `tokenizers`-backed tokenizers.

    Args:
        tokenizer_object: a `tokenizers.Tokenizer` to use (copied).
        tokenizer_file: path of a tokenizer.json.
        from_slow: ignore `tokenizer_file` and build the backend from the vocabulary files.
        added_tokens_decoder: {id: AddedToken} restored from tokenizer_config.json.
        Other arguments: see `PreTrainedTokenizerBase`; subclasses take their vocabulary files.
    """

    vocab_files_names = {"tokenizer_file": "tokenizer.json"}

    def __init__(self, *args, **kwargs):
        tokenizer_object = kwargs.pop("tokenizer_object", None)
        tokenizer_file = kwargs.pop("tokenizer_file", None)
        from_slow = kwargs.pop("from_slow", False)
        kwargs.pop("__slow_tokenizer", None)
        added_tokens_decoder = kwargs.pop("added_tokens_decoder", {})
        if tokenizer_object is not None:
            backend = copy.deepcopy(tokenizer_object)
        elif tokenizer_file is not None and not from_slow:
            with reading(tokenizer_file, "tokenizer.json (a `tokenizers` tokenizer)"):
                backend = Tokenizer.from_file(tokenizer_file)
        else:
            backend = self._backend_from_vocab(*args, **kwargs)
            if self.slow_tokenizer_class is not None:
                # as the reference, which converts a slow tokenizer: keep that tokenizer's options (its
                # defaults, and special tokens as it made them), which save_pretrained writes
                kwargs.update(self.slow_tokenizer_class(*args, **kwargs).init_kwargs)
        self._tokenizer: Tokenizer = backend
        # A tokenizer.json may enable truncation / padding; as in the reference, they become defaults
        # of the init arguments (saved back), while each call sets the backend's own from its arguments.
        truncation = backend.truncation
        if truncation is not None:
            kwargs.setdefault("max_length", truncation["max_length"])
            kwargs.setdefault("truncation_side", truncation["direction"])
            kwargs.setdefault("stride", truncation["stride"])
            kwargs.setdefault("truncation_strategy", truncation["strategy"])
        padding = backend.padding
        if padding is not None:
            kwargs.setdefault("pad_token", padding["pad_token"])
            kwargs.setdefault("pad_token_type_id", padding["pad_type_id"])
            kwargs.setdefault("padding_side", padding["direction"])
            kwargs.setdefault("max_length", padding["length"])
            kwargs.setdefault("pad_to_multiple_of", padding["pad_to_multiple_of"])
        super().__init__(**kwargs)
        if added_tokens_decoder:
            added = {index: token.content for index, token in backend.get_added_tokens_decoder().items()}
            check_added_token_ids(added_tokens_decoder, backend.get_vocab_size(with_added_tokens=True),
                                  lambda i, content: None if added.get(i, backend.id_to_token(i)) in (None, content)
                                  else added.get(i, backend.id_to_token(i)))
        self._add_missing_tokens(added_tokens_decoder)

    def _backend_from_vocab(self, *args, **kwargs) -> Tokenizer:
        """Build the backend from vocabulary files (models override)."""
        raise ValueError(f"{type(self).__name__} needs tokenizer_file=... (a tokenizer.json) or "
                         "tokenizer_object=... (a tokenizers.Tokenizer)")

    def _add_missing_tokens(self, added_tokens_decoder: Dict[int, Any]) -> None:
        """Add the saved added tokens the backend lacks (or has with other options) and the special
        tokens it lacks, in id order, in runs of special / non-special tokens."""
        known = {token.content: token.__getstate__() for token in self.added_tokens_decoder.values()}
        missing: List[Any] = [token for _, token in sorted(added_tokens_decoder.items())
                              if known.get(str(token)) != as_added_token(token).__getstate__()]
        contents = set(known) | {str(token) for token in missing}
        missing += [token for token in self.all_special_tokens_extended if str(token) not in contents]
        specials = set(self.all_special_tokens)
        run: List[Any] = []
        run_special = None
        for token in missing:
            special = str(token) in specials or (is_added_token(token) and token.special)
            if run and special != run_special:
                self._add_tokens(run, special_tokens=run_special)
                run = []
            run.append(token)
            run_special = special
        if run:
            self._add_tokens(run, special_tokens=run_special)

    @property
    def is_fast(self) -> bool:
        return True

    @property
    def can_save_slow_tokenizer(self) -> bool:
        """Whether `save_pretrained` can also write the slow tokenizer's vocabulary files."""
        return self.slow_tokenizer_class is not None

    @property
    def backend_tokenizer(self) -> Tokenizer:
        """The `tokenizers.Tokenizer` doing the work."""
        return self._tokenizer

    @property
    def decoder(self):
        return self._tokenizer.decoder

    @property
    def vocab_size(self) -> int:
        """Size of the base vocabulary (without added tokens)."""
        return self._tokenizer.get_vocab_size(with_added_tokens=False)

    def get_vocab(self) -> Dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    @property
    def vocab(self) -> Dict[str, int]:
        return self.get_vocab()

    def __len__(self) -> int:
        return self._tokenizer.get_vocab_size(with_added_tokens=True)

    @property
    def added_tokens_decoder(self) -> Dict[int, AddedToken]:
        return {index: AddedToken(**token.__getstate__())
                for index, token in sorted(self._tokenizer.get_added_tokens_decoder().items())}

    def _add_tokens(self, new_tokens: List[Any], special_tokens: bool = False) -> int:
        tokens = [BackendAddedToken(**token.__getstate__()) if is_added_token(token) else token
                  for token in new_tokens]
        if special_tokens:
            return self._tokenizer.add_special_tokens(tokens)
        return self._tokenizer.add_tokens(tokens)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self._tokenizer.num_special_tokens_to_add(pair)

    def _token_to_id(self, token: str) -> Optional[int]:
        index = self._tokenizer.token_to_id(token)
        return self.unk_token_id if index is None else index

    def _id_to_token(self, index: int) -> Optional[str]:
        renamed = self._renamed_added_tokens()
        return renamed[index] if index in renamed else self._tokenizer.id_to_token(index)

    def _renamed_added_tokens(self) -> Dict[int, str]:
        """{id: content} of the added tokens whose vocabulary string is not their content: tokenizers >= 0.19
        stores a normalized added token under its normalized form (e.g. "▁newword" or lower-cased),
        where 0.15 (the reference's) keeps the content, which ids convert and decode to."""
        backend = self._tokenizer
        return {index: token.content for index, token in backend.get_added_tokens_decoder().items()
                if backend.id_to_token(index) != token.content}

    def tokenize(self, text: str, pair: Optional[str] = None, add_special_tokens: bool = False,
                 **kwargs) -> List[str]:
        return self.encode_plus(text, pair, add_special_tokens=add_special_tokens, **kwargs).tokens()

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return self._tokenizer.decoder.decode(tokens)

    # -- encoding -----------------------------------------------------------------------------
    def _set_truncation_and_padding(self, options: EncodeOptions) -> None:
        """Configure the backend for this call (only touching it when something changes)."""
        current = self._tokenizer.truncation
        if options.truncation == TruncationStrategy.DO_NOT_TRUNCATE:
            if current is not None:
                self._tokenizer.no_truncation()
        else:
            target = {"max_length": options.max_length, "stride": options.stride,
                      "strategy": options.truncation.value, "direction": self.truncation_side}
            if current is None or {key: current.get(key) for key in target} != target:
                self._tokenizer.enable_truncation(**target)
        current = self._tokenizer.padding
        if options.padding == PaddingStrategy.DO_NOT_PAD:
            if current is not None:
                self._tokenizer.no_padding()
        else:
            target = {"length": options.max_length if options.padding == PaddingStrategy.MAX_LENGTH else None,
                      "direction": self.padding_side, "pad_id": self.pad_token_id, "pad_token": self.pad_token,
                      "pad_type_id": self.pad_token_type_id, "pad_to_multiple_of": options.pad_to_multiple_of}
            if current != target:
                self._tokenizer.enable_padding(**target)

    def _check_stride(self, options: EncodeOptions, pair: bool) -> None:
        """Refuse a truncation `stride` that leaves no room to move forward: the backend panics (a Rust
        PanicException, which `except Exception` does not catch) when stride >= the room left for text."""
        if options.truncation == TruncationStrategy.DO_NOT_TRUNCATE or options.max_length is None:
            return
        specials = self.num_special_tokens_to_add(pair) if options.add_special_tokens else 0
        room = options.max_length - specials
        if options.stride and options.stride >= room:
            raise ValueError(
                f"stride={options.stride} must be smaller than max_length={options.max_length} minus the "
                f"{specials} special tokens added ({room}): each overflowing window has to move forward")

    def _batch_encode_plus(self, items: List[Any], options: EncodeOptions, **kwargs) -> BatchEncoding:
        if kwargs:
            logger.warning("Keyword arguments %s not recognized.", kwargs)
        items = [tuple(item) if isinstance(item, list) and _is_pair(item, options.is_split_into_words) else item
                 for item in items]
        self._check_stride(options, pair=any(isinstance(item, tuple) for item in items))
        self._set_truncation_and_padding(options)
        items = replace_lone_surrogates(items)  # the backend refuses them; the slow tokenizers read U+FFFD
        try:
            encodings = self._tokenizer.encode_batch(items, add_special_tokens=options.add_special_tokens,
                                                     is_pretokenized=options.is_split_into_words)
        except (KeyboardInterrupt, SystemExit, GeneratorExit):
            raise
        except BaseException as err:  # noqa: B036 - the backend's errors are plain Exceptions (e.g.
            # truncation too short) or a Rust panic, whose PanicException derives from BaseException
            raise ValueError(f"tokenizers could not encode the input: {err}") from err
        data: Dict[str, List[Any]] = {}
        rows: List[Any] = []
        sample_of_row: List[int] = []
        for sample, encoding in enumerate(encodings):
            group = [encoding] + (list(encoding.overflowing) if options.return_overflowing_tokens else [])
            for row in group:
                for key, value in self._encoding_to_dict(row, options).items():
                    data.setdefault(key, []).append(value)
            rows += group
            sample_of_row += [sample] * len(group)
        if options.return_overflowing_tokens:
            data["overflow_to_sample_mapping"] = sample_of_row
        for ids in data["input_ids"]:
            self._warn_if_too_long(ids, options.max_length, options.verbose)
        return BatchEncoding(data, rows, tensor_type=options.return_tensors)

    def _encoding_to_dict(self, encoding, options: EncodeOptions) -> Dict[str, Any]:
        out = {"input_ids": encoding.ids}
        if self._wants(options.return_token_type_ids, "token_type_ids"):
            out["token_type_ids"] = encoding.type_ids
        if self._wants(options.return_attention_mask, "attention_mask"):
            out["attention_mask"] = encoding.attention_mask
        if options.return_special_tokens_mask:
            out["special_tokens_mask"] = encoding.special_tokens_mask
        if options.return_offsets_mapping:
            out["offset_mapping"] = encoding.offsets
        if options.return_length:
            out["length"] = len(encoding.ids)
        return out

    def _encode_plus(self, text, text_pair, options: EncodeOptions, **kwargs) -> BatchEncoding:
        # as the reference, an empty text_pair ("") counts as no pair
        batched = self._batch_encode_plus([(text, text_pair)] if text_pair else [text], options, **kwargs)
        if options.return_tensors is not None or options.return_overflowing_tokens:
            return batched
        # one sequence: drop the batch axis of the list values (`length` stays a one-item list, as the
        # reference returns it)
        single = {key: value[0] if value and isinstance(value[0], list) else value for key, value in batched.items()}
        return BatchEncoding(single, batched.encodings)

    # -- decoding -----------------------------------------------------------------------------
    def _decode(self, token_ids: List[int], skip_special_tokens: bool = False,
                clean_up_tokenization_spaces: Optional[bool] = None, **kwargs) -> str:
        renamed = self._renamed_added_tokens()
        if renamed.keys().isdisjoint(token_ids):
            text = self._tokenizer.decode(token_ids, skip_special_tokens=skip_special_tokens)
        else:  # what the backend's decode does, with the added tokens' contents
            skip = {index for index, token in self._tokenizer.get_added_tokens_decoder().items()
                    if token.special and skip_special_tokens}
            tokens = [self._id_to_token(index) for index in token_ids if index not in skip]
            tokens = [token for token in tokens if token is not None]
            decoder = self._tokenizer.decoder
            text = decoder.decode(tokens) if decoder is not None else " ".join(tokens)
        return self._maybe_clean_up(text, clean_up_tokenization_spaces)

    # -- files --------------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: str, file_names: Tuple[str, ...], legacy_format: Optional[bool],
                         filename_prefix: Optional[str]) -> Tuple[str, ...]:
        if legacy_format is True and not self.can_save_slow_tokenizer:
            raise ValueError(f"{type(self).__name__} has no slow (legacy) format; use legacy_format=None or False")
        if legacy_format in (None, True) and self.can_save_slow_tokenizer:
            file_names += self._save_slow_files(save_directory, filename_prefix)
        if legacy_format in (None, False):
            path = prefixed(save_directory, filename_prefix, "tokenizer.json")
            write_atomically(path, self._tokenizer.to_str(pretty=True).encode("utf-8"))
            file_names += (path,)
        return file_names


def _is_pair(item: List[Any], is_split_into_words: bool) -> bool:
    """Whether a list batch item is a (first, second) pair rather than one pre-split sequence."""
    if is_split_into_words:
        return len(item) == 2 and all(isinstance(part, (list, tuple)) for part in item)
    return len(item) == 2
