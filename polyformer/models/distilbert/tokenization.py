"""DistilBERT's tokenizers: BERT's uncased WordPiece, slow (pure Python) and fast (`tokenizers`).

Both return only `input_ids` and `attention_mask` (DistilBERT takes no token types) and lay out
inputs as `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]`.

    >>> tok = DistilBertTokenizerFast.from_pretrained("distilbert-base-uncased")
    >>> tok("Hello world!")["input_ids"]
    [101, 7592, 2088, 999, 102]
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from ...tokenization.fast import PreTrainedTokenizerFast
from ...tokenization.slow import PreTrainedTokenizer
from ...tokenization.wordpiece import (BasicTokenizer, BertSpecialTokensMixin, WordpieceTokenizer, load_vocab,
                                       save_vocab, sync_bert_normalizer, vocab_from_tokenizer_json,
                                       wordpiece_backend)

__all__ = ["DistilBertTokenizer", "DistilBertTokenizerFast"]


class DistilBertTokenizer(BertSpecialTokensMixin, PreTrainedTokenizer):
    """DistilBERT's pure-Python tokenizer: BERT's basic tokenization, then greedy WordPiece.

    Args:
        vocab_file: vocab.txt, one token per line. (A folder saved by transformers 5.x has only
            tokenizer.json: `from_pretrained` then reads the vocabulary from it.)
        do_lower_case (True): lower-case the input.
        do_basic_tokenize (True): split on whitespace and punctuation (and lower-case, strip accents,
            split CJK) before WordPiece. With False, the text is not lower-cased either, as in the reference.
        never_split: words the basic tokenizer keeps whole (as they are: the text is lower-cased
            before, so give them in lower case).
        unk_token, sep_token, pad_token, cls_token, mask_token: "[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]".
        tokenize_chinese_chars (True): make each CJK ideograph a word.
        strip_accents (None): strip accents; None follows `do_lower_case`.
        clean_up_tokenization_spaces (True): decode removes spaces before punctuation.
    """

    vocab_files_names = {"vocab_file": "vocab.txt"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: Optional[str] = None, do_lower_case: bool = True, do_basic_tokenize: bool = True,
                 never_split: Optional[List[str]] = None, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                 cls_token="[CLS]", mask_token="[MASK]", tokenize_chinese_chars: bool = True,
                 strip_accents: Optional[bool] = None, clean_up_tokenization_spaces: bool = True, **kwargs):
        if vocab_file is not None and os.path.isfile(vocab_file):
            self.vocab = load_vocab(vocab_file)
        elif vocab_file is None and kwargs.get("tokenizer_file") and os.path.isfile(kwargs["tokenizer_file"]):
            self.vocab = vocab_from_tokenizer_json(kwargs["tokenizer_file"])
        else:
            raise ValueError(f"vocab_file: no vocabulary file at {vocab_file!r}; pass the path of a vocab.txt, "
                             "or load a saved tokenizer with DistilBertTokenizer.from_pretrained(folder or Hub id)")
        self.ids_to_tokens: Dict[int, str] = {index: token for token, index in self.vocab.items()}
        self.do_lower_case = do_lower_case
        self.do_basic_tokenize = do_basic_tokenize
        self.basic_tokenizer = BasicTokenizer(do_lower_case=do_lower_case, never_split=never_split,
                                              tokenize_chinese_chars=tokenize_chinese_chars,
                                              strip_accents=strip_accents) if do_basic_tokenize else None
        self.wordpiece_tokenizer = WordpieceTokenizer(self.vocab, unk_token=str(unk_token))
        super().__init__(do_lower_case=do_lower_case, do_basic_tokenize=do_basic_tokenize, never_split=never_split,
                         unk_token=unk_token, sep_token=sep_token, pad_token=pad_token, cls_token=cls_token,
                         mask_token=mask_token, tokenize_chinese_chars=tokenize_chinese_chars,
                         strip_accents=strip_accents, clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                         **kwargs)

    def _lowercases_text(self) -> bool:
        # The reference lower-cases through its basic tokenizer's setting, so not without one.
        return self.do_lower_case and self.do_basic_tokenize

    @property
    def vocab_size(self) -> int:
        return len(self.vocab)

    def get_vocab(self) -> Dict[str, int]:
        return dict(self.vocab, **self.added_tokens_encoder)

    def _tokenize(self, text: str, split_special_tokens: bool = False) -> List[str]:
        if not self.do_basic_tokenize:
            return self.wordpiece_tokenizer.tokenize(text)
        tokens: List[str] = []
        never_split = None if split_special_tokens else self.all_special_tokens
        for word in self.basic_tokenizer.tokenize(text, never_split=never_split):
            if word in self.basic_tokenizer.never_split:
                tokens.append(word)
            else:
                tokens.extend(self.wordpiece_tokenizer.tokenize(word))
        return tokens

    def _convert_token_to_id(self, token: str) -> int:
        return self.vocab.get(token, self.vocab.get(self.unk_token))

    def _convert_id_to_token(self, index: int) -> str:
        return self.ids_to_tokens.get(index, self.unk_token)

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        """Join WordPiece tokens: continuation pieces ("##...") are glued to the previous token."""
        return " ".join(tokens).replace(" ##", "").strip()

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> Tuple[str]:
        return save_vocab(self.vocab, save_directory, filename_prefix)


class DistilBertTokenizerFast(BertSpecialTokensMixin, PreTrainedTokenizerFast):
    """DistilBERT's fast tokenizer, backed by `tokenizers` (same ids as `DistilBertTokenizer`).

    Args:
        vocab_file: vocab.txt; used when there is no `tokenizer_file`.
        tokenizer_file: a tokenizer.json. When `do_lower_case`, `strip_accents` or
            `tokenize_chinese_chars` differ from its normalizer's, the normalizer is rebuilt with them.
        do_lower_case, unk_token, sep_token, pad_token, cls_token, mask_token, tokenize_chinese_chars,
            strip_accents: as `DistilBertTokenizer`.
        clean_text (True), wordpieces_prefix ("##"): options of the backend built from `vocab_file`.
    """

    vocab_files_names = {"vocab_file": "vocab.txt", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]
    slow_tokenizer_class = DistilBertTokenizer

    def __init__(self, vocab_file: Optional[str] = None, tokenizer_file: Optional[str] = None,
                 do_lower_case: bool = True, unk_token="[UNK]", sep_token="[SEP]", pad_token="[PAD]",
                 cls_token="[CLS]", mask_token="[MASK]", tokenize_chinese_chars: bool = True,
                 strip_accents: Optional[bool] = None, **kwargs):
        super().__init__(vocab_file, tokenizer_file=tokenizer_file, do_lower_case=do_lower_case, unk_token=unk_token,
                         sep_token=sep_token, pad_token=pad_token, cls_token=cls_token, mask_token=mask_token,
                         tokenize_chinese_chars=tokenize_chinese_chars, strip_accents=strip_accents, **kwargs)
        sync_bert_normalizer(self.backend_tokenizer, lowercase=do_lower_case, strip_accents=strip_accents,
                             handle_chinese_chars=tokenize_chinese_chars)
        self.do_lower_case = do_lower_case

    def _backend_from_vocab(self, vocab_file: Optional[str] = None, *, do_lower_case: bool = True, unk_token="[UNK]",
                            sep_token="[SEP]", cls_token="[CLS]", tokenize_chinese_chars: bool = True,
                            strip_accents: Optional[bool] = None, **kwargs):
        if vocab_file is None or not os.path.isfile(vocab_file):
            raise ValueError(f"DistilBertTokenizerFast needs tokenizer_file=... (tokenizer.json) or vocab_file=... "
                             f"(vocab.txt); no file at vocab_file={vocab_file!r}")
        return wordpiece_backend(load_vocab(vocab_file), unk_token=str(unk_token), cls_token=str(cls_token),
                                 sep_token=str(sep_token), lowercase=do_lower_case, strip_accents=strip_accents,
                                 handle_chinese_chars=tokenize_chinese_chars, clean_text=kwargs.get("clean_text", True),
                                 prefix=kwargs.get("wordpieces_prefix", "##"))

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> Tuple[str]:
        return save_vocab(self.backend_tokenizer.get_vocab(with_added_tokens=False), save_directory, filename_prefix)
