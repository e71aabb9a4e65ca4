"""`PreTrainedTokenizer`: the pure-Python ("slow") tokenizer base.

A model's slow tokenizer implements `_tokenize` (text -> tokens, without added tokens),
`_convert_token_to_id`, `_convert_id_to_token`, `vocab_size`, `get_vocab` and `save_vocabulary`; this
class adds the rest: added tokens (split out of the text first and never split), ids, batching and
decoding. Padding, truncation and tensors come from `PreTrainedTokenizerBase`.
"""

from __future__ import annotations

import itertools
import logging
import re
from typing import Any, Dict, List, Optional, Tuple, Union

from .base import EncodeOptions, PreTrainedTokenizerBase
from .encoding import AddedToken, BatchEncoding, PaddingStrategy, as_added_token, is_added_token
from .special_tokens import added_token_id, check_added_token_ids

__all__ = ["PreTrainedTokenizer"]

logger = logging.getLogger(__name__)


class PreTrainedTokenizer(PreTrainedTokenizerBase):
    """Base class of the pure-Python tokenizers (see `PreTrainedTokenizerBase` for the arguments;
    `added_tokens_decoder`, {id: AddedToken}, restores saved added tokens)."""

    def __init__(self, **kwargs):
        self._added_tokens_decoder: Dict[int, AddedToken] = {}
        saved = kwargs.pop("added_tokens_decoder", {})
        for index, token in saved.items():
            self._added_tokens_decoder[added_token_id(index, token)] = as_added_token(token)
        self._added_tokens_encoder: Dict[str, int] = {t.content: i for i, t in self._added_tokens_decoder.items()}
        self._split_pattern: Optional[re.Pattern] = None  # added tokens, rebuilt when they change
        self._lowercase_pattern = None  # (tokens kept as they are, their pattern)
        super().__init__(**kwargs)
        if saved:
            size = self.vocab_size
            check_added_token_ids(saved, size, lambda i, content: None if i >= size or self._convert_token_to_id(
                content) == i else self._convert_id_to_token(i))
        # special tokens missing from the vocabulary are added at its end (a str already there is kept)
        self._add_tokens([token for token in self.all_special_tokens_extended
                          if not (isinstance(token, str) and token in self._added_tokens_encoder)],
                         special_tokens=True)

    @property
    def is_fast(self) -> bool:
        return False

    @property
    def vocab_size(self) -> int:
        raise NotImplementedError

    def get_vocab(self) -> Dict[str, int]:
        raise NotImplementedError

    def __len__(self) -> int:
        return len(set(self.get_vocab()))

    @property
    def added_tokens_decoder(self) -> Dict[int, AddedToken]:
        return dict(sorted(self._added_tokens_decoder.items()))

    @added_tokens_decoder.setter
    def added_tokens_decoder(self, value: Dict[int, Union[str, AddedToken]]) -> None:
        for index, token in value.items():
            if not isinstance(index, int) or not (isinstance(token, str) or is_added_token(token)):
                raise ValueError(f"added_tokens_decoder must map int to str or AddedToken, got {index!r}: {token!r}")
            token = as_added_token(token)
            self._added_tokens_decoder[index] = token
            self._added_tokens_encoder[token.content] = index
        self._split_pattern = None

    def get_added_vocab(self) -> Dict[str, int]:
        return self._added_tokens_encoder

    def _lowercases_text(self) -> bool:
        """Whether `tokenize` lower-cases the text (outside special tokens) before anything else, and
        added tokens are lower-cased when added. Tokenizers with `do_lower_case` do."""
        return bool(getattr(self, "do_lower_case", False))

    def _add_tokens(self, new_tokens: List[Any], special_tokens: bool = False) -> int:
        """Give each new token an id (the next free one unless its text is already in the vocabulary)."""
        vocab = dict(self.get_vocab())
        next_id = len(vocab)
        added = 0
        for token in new_tokens:
            if not isinstance(token, str) and not is_added_token(token):
                raise TypeError(f"token {token!r} must be a str or an AddedToken")
            if str(token) == "":
                continue
            if isinstance(token, str):
                if token in self._added_tokens_encoder:
                    continue
                special = token in self.all_special_tokens or special_tokens
                token = AddedToken(token, rstrip=False, lstrip=False, normalized=not special, special=special)
            else:
                token = as_added_token(token)
                if special_tokens:
                    token.special = True
            if not token.special and token.normalized and self._lowercases_text():
                token.content = token.content.lower()
            if token.content in vocab:
                index = vocab[token.content]
            else:
                index = vocab[token.content] = next_id + added
                added += 1
            if token.special and str(token) not in self.all_special_tokens:
                self._additional_special_tokens.append(token)
            self._added_tokens_decoder[index] = token
            self._added_tokens_encoder[token.content] = index
        self._split_pattern = None
        return added

    # -- text -> tokens -> ids ----------------------------------------------------------------
    def prepare_for_tokenization(self, text: str, is_split_into_words: bool = False,
                                 **kwargs) -> Tuple[str, Dict[str, Any]]:
        """Hook to transform the text before tokenization; returns (text, unused kwargs)."""
        return text, kwargs

    def tokenize(self, text: str, **kwargs) -> List[str]:
        """Split `text` into tokens: added tokens are cut out first and kept whole (honouring their
        lstrip / rstrip / single_word), the pieces between them go through `_tokenize`."""
        split_special_tokens = kwargs.pop("split_special_tokens", self.split_special_tokens)
        text, kwargs = self.prepare_for_tokenization(text, **kwargs)
        if kwargs:
            logger.warning("Keyword arguments %s not recognized.", kwargs)
        if self._lowercases_text():
            text = self._lowercase_outside_added_tokens(text)
        if split_special_tokens:
            return self._tokenize(text)
        pieces = self._split_on_added_tokens(text)
        for i, piece in enumerate(pieces):
            token = self._added_tokens_decoder.get(self._added_tokens_encoder.get(piece, -1))
            if token is None:
                continue
            left = pieces[i - 1] if i > 0 else None
            right = pieces[i + 1] if i < len(pieces) - 1 else None
            if token.rstrip and right:
                pieces[i + 1] = right.lstrip()
            if token.lstrip and left:
                pieces[i - 1] = left.rstrip()
            # single_word looks at the neighbours before stripping, as the reference does
            if token.single_word and left and left[-1] != " ":
                pieces[i - 1] += piece
                pieces[i] = ""
            elif token.single_word and right and right[0] != " ":
                pieces[i + 1] = piece + pieces[i + 1]
                pieces[i] = ""
        tokens: List[str] = []
        for piece in pieces:
            if not piece:
                continue
            tokens.extend([piece] if piece in self._added_tokens_encoder else self._tokenize(piece))
        return tokens

    def _lowercase_outside_added_tokens(self, text: str) -> str:
        """Lower-case `text` one character at a time (as the reference does, so a final Greek sigma
        becomes "σ"), except inside special tokens and normalized added tokens."""
        keep = set(self.all_special_tokens)
        keep.update(t.content for t in self._added_tokens_decoder.values() if not t.special and t.normalized)
        keep.discard("")
        if not keep:
            return "".join(ch.lower() for ch in text)
        key = frozenset(keep)
        if self._lowercase_pattern is None or self._lowercase_pattern[0] != key:
            alternatives = "|".join(re.escape(t) for t in sorted(keep, key=len, reverse=True))
            self._lowercase_pattern = (key, re.compile(f"({alternatives})"))
        parts = self._lowercase_pattern[1].split(text)
        return "".join(part if i % 2 else "".join(ch.lower() for ch in part) for i, part in enumerate(parts))

    def _split_on_added_tokens(self, text: str) -> List[str]:
        """Cut `text` around every added token (leftmost, then longest match), keeping the tokens."""
        if self._split_pattern is None:
            contents = sorted((c for c in self._added_tokens_encoder if c), key=len, reverse=True)
            self._split_pattern = re.compile("(" + "|".join(map(re.escape, contents)) + ")") if contents else False
        if not self._split_pattern or not text:
            return [text]
        return [piece for piece in self._split_pattern.split(text) if piece]

    def _tokenize(self, text: str, **kwargs) -> List[str]:
        """Tokens of a piece of text that holds no added token (each model implements it)."""
        raise NotImplementedError

    def _token_to_id(self, token: str) -> int:
        if token in self._added_tokens_encoder:
            return self._added_tokens_encoder[token]
        return self._convert_token_to_id(token)

    def _convert_token_to_id(self, token: str) -> int:
        raise NotImplementedError

    def _id_to_token(self, index: int) -> str:
        if index in self._added_tokens_decoder:
            return self._added_tokens_decoder[index].content
        return self._convert_id_to_token(index)

    def _convert_id_to_token(self, index: int) -> str:
        raise NotImplementedError

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return " ".join(tokens)

    # -- encoding -----------------------------------------------------------------------------
    def _text_to_ids(self, text: Any, is_split_into_words: bool, **kwargs) -> List[int]:
        """Ids of a str, of pre-split words (each tokenized alone), of tokens, or ids as they are."""
        if isinstance(text, str):
            return self.convert_tokens_to_ids(self.tokenize(text, **kwargs))
        if is_split_into_words and isinstance(text, (list, tuple)) and not text:
            return []  # no words (the reference's slow tokenizer fails here; its fast one gives [CLS] [SEP])
        if isinstance(text, (list, tuple)) and text and isinstance(text[0], str):
            if is_split_into_words:
                words = (self.tokenize(word, is_split_into_words=True, **kwargs) for word in text)
                return self.convert_tokens_to_ids(list(itertools.chain.from_iterable(words)))
            return self.convert_tokens_to_ids(list(text))
        if isinstance(text, (list, tuple)) and text and isinstance(text[0], int):
            return list(text)
        raise ValueError(f"input {text!r:.100} is not valid: expected a str, a non-empty list of str"
                         f"{'' if is_split_into_words else ' or a non-empty list of int'}")

    def _encode_plus(self, text, text_pair, options: EncodeOptions, **kwargs) -> BatchEncoding:
        _no_offsets(options)
        first = self._text_to_ids(text, options.is_split_into_words, **kwargs)
        second = self._text_to_ids(text_pair, options.is_split_into_words, **kwargs) if text_pair is not None else None
        return self._prepare(first, second, options, prepend_batch_axis=True)

    def _batch_encode_plus(self, items: List[Any], options: EncodeOptions, **kwargs) -> BatchEncoding:
        _no_offsets(options)
        rows = EncodeOptions(**{**options.__dict__, "padding": PaddingStrategy.DO_NOT_PAD, "pad_to_multiple_of": None,
                                "return_attention_mask": False, "return_tensors": None})
        batch: Dict[str, List[Any]] = {}
        for item in items:
            if not isinstance(item, (list, tuple)) or (options.is_split_into_words
                                                       and not (item and isinstance(item[0], (list, tuple)))):
                first, second = item, None
            elif len(item) == 2:
                first, second = item
            else:
                raise ValueError(f"a batch item must be a text or a (text, text_pair) pair; got {item!r:.100}")
            first = self._text_to_ids(first, options.is_split_into_words, **kwargs)
            second = self._text_to_ids(second, options.is_split_into_words, **kwargs) if second is not None else None
            for key, value in self._prepare(first, second, rows).items():
                batch.setdefault(key, []).append(value)
        batch = self._pad_batch(batch, options.max_length, options.padding, options.pad_to_multiple_of,
                                options.return_attention_mask)
        return BatchEncoding(batch, tensor_type=options.return_tensors)

    # -- decoding -----------------------------------------------------------------------------
    def _decode(self, token_ids: List[int], skip_special_tokens: bool = False,
                clean_up_tokenization_spaces: Optional[bool] = None, spaces_between_special_tokens: bool = True,
                **kwargs) -> str:
        """Join tokens with `convert_tokens_to_string`; added (non-special) tokens stand apart."""
        tokens = self.convert_ids_to_tokens(token_ids, skip_special_tokens=skip_special_tokens)
        specials = set(self.all_special_tokens)
        apart = {content for content in self._added_tokens_encoder if content not in specials}
        apart |= {t for t in self.additional_special_tokens if self.convert_tokens_to_ids(t) >= self.vocab_size}
        texts: List[str] = []
        run: List[str] = []
        for token in tokens:
            if token in apart:
                if run and (joined := self.convert_tokens_to_string(run)):
                    texts.append(joined)
                run = []
                texts.append(token)
            else:
                run.append(token)
        if run:
            texts.append(self.convert_tokens_to_string(run))
        text = (" " if spaces_between_special_tokens else "").join(texts)
        return self._maybe_clean_up(text, clean_up_tokenization_spaces)

    # -- files --------------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: str, file_names: Tuple[str, ...], legacy_format: Optional[bool],
                         filename_prefix: Optional[str]) -> Tuple[str, ...]:
        if legacy_format is False:
            raise ValueError("legacy_format=False (tokenizer.json only) needs a fast tokenizer")
        return file_names + self._save_slow_files(save_directory, filename_prefix)


def _no_offsets(options: EncodeOptions) -> None:
    if options.return_offsets_mapping:
        raise NotImplementedError("return_offsets_mapping needs a fast tokenizer (the *Fast class); "
                                  "pure-Python tokenizers do not track character offsets")
