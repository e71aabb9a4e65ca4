"""Llama's tokenizers: a sentencepiece BPE model with byte fallback (tokenizer.model), slow
(`sentencepiece` library) and fast (`tokenizers`: tokenizer.json, or converted from tokenizer.model).

Both put `<s>` first (`add_bos_token=True`) and no `</s>` (`add_eos_token=False`), return
`input_ids` and `attention_mask`, and decode without cleaning up spaces. The fast tokenizer pads on the
left, as the reference's does.

    >>> tok = LlamaTokenizerFast.from_pretrained("hf-internal-testing/llama-tokenizer")
    >>> tok.encode("Hello this is a test")
    [1, 15043, 445, 338, 263, 1243]
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, List, Optional, Tuple

from tokenizers import processors

from ...tokenization.fast import PreTrainedTokenizerFast
from ...tokenization.sentencepiece import SentencePieceTokenizer, copy_model_file, llama_backend
from ...tokenization.special_tokens import special_token

__all__ = ["LlamaTokenizer", "LlamaTokenizerFast", "BosEosLayout", "BosEosTypes"]

logger = logging.getLogger(__name__)


class BosEosLayout:
    """`<s> A </s>` and `<s> A </s> <s> B </s>`, each of `<s>` / `</s>` only when `add_bos_token` /
    `add_eos_token` say so."""

    def _bos_eos(self) -> Tuple[List[int], List[int]]:
        return ([self.bos_token_id] if self.add_bos_token else []), ([self.eos_token_id] if self.add_eos_token else [])

    def build_inputs_with_special_tokens(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None):
        bos, eos = self._bos_eos()
        return bos + token_ids_0 + eos + ([] if token_ids_1 is None else bos + token_ids_1 + eos)

    def get_special_tokens_mask(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None,
                                already_has_special_tokens: bool = False) -> List[int]:
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        bos, eos = ([1] * len(ids) for ids in self._bos_eos())
        mask = bos + [0] * len(token_ids_0) + eos
        return mask if token_ids_1 is None else mask + bos + [0] * len(token_ids_1) + eos


class BosEosTypes(BosEosLayout):
    """`BosEosLayout` with token types 0 for the first part (its special tokens included), 1 for the
    second. (The reference's fast tokenizers keep the base's types, which leave `<s>` / `</s>` out.)"""

    def create_token_type_ids_from_sequences(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None):
        extra = sum(map(len, self._bos_eos()))
        types = [0] * (len(token_ids_0) + extra)
        return types if token_ids_1 is None else types + [1] * (len(token_ids_1) + extra)


class LlamaTokenizer(BosEosTypes, SentencePieceTokenizer):
    """Llama's pure-Python tokenizer, on the `sentencepiece` library.

    Args:
        vocab_file: the tokenizer.model.
        unk_token ("<unk>"), bos_token ("<s>"), eos_token ("</s>"), pad_token (None).
        sp_model_kwargs: passed to `sentencepiece.SentencePieceProcessor`.
        add_bos_token (True) / add_eos_token (False): put `<s>` before / `</s>` after each sequence.
        clean_up_tokenization_spaces (False).
        use_default_system_prompt (False), spaces_between_special_tokens (False): kept and saved,
            as the reference keeps them.
        legacy (None, read as True with a warning, as transformers 4.37 does): True tokenizes the text
            after a special token as a new word ("<s>Hello" -> "▁Hello"), and decode puts a space
            before a special token that follows text. False keeps text right after a special token
            glued to it ("<s>Hello" -> "Hello"), adding "▁" only at the very start.
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: Optional[str] = None, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                 pad_token=None, sp_model_kwargs: Optional[Dict[str, Any]] = None, add_bos_token: bool = True,
                 add_eos_token: bool = False, clean_up_tokenization_spaces: bool = False,
                 use_default_system_prompt: bool = False, spaces_between_special_tokens: bool = False,
                 legacy: Optional[bool] = None, **kwargs):
        if legacy is None:
            logger.warning("%s: legacy=None, so the legacy behaviour (legacy=True) is used, as in transformers "
                           "4.37; pass legacy=False for the newer handling of text after special tokens",
                           type(self).__name__)
            legacy = True
        self.legacy = legacy
        self.add_bos_token = add_bos_token
        self.add_eos_token = add_eos_token
        self.use_default_system_prompt = use_default_system_prompt
        kwargs.pop("from_slow", None)
        super().__init__(vocab_file, sp_model_kwargs, bos_token=special_token(bos_token),
                         eos_token=special_token(eos_token), unk_token=special_token(unk_token),
                         pad_token=special_token(pad_token), add_bos_token=add_bos_token, add_eos_token=add_eos_token,
                         clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                         use_default_system_prompt=use_default_system_prompt,
                         spaces_between_special_tokens=spaces_between_special_tokens, legacy=legacy, **kwargs)

    def tokenize(self, text: str, add_special_tokens: bool = False, **kwargs) -> List[str]:
        if self.legacy or not text:
            return super().tokenize(text, **kwargs)
        return self.tokenize_with_prefix(text, **kwargs)

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return self._pieces_to_string(tokens, space_before_special=self.legacy)


class LlamaTokenizerFast(BosEosLayout, PreTrainedTokenizerFast):
    """Llama's fast tokenizer, backed by `tokenizers` (same ids as `LlamaTokenizer` with legacy=True).

    Args:
        vocab_file: the tokenizer.model; converted when there is no `tokenizer_file`, and copied by
            `save_pretrained` so the slow tokenizer can be loaded from the saved folder.
        tokenizer_file: a tokenizer.json.
        clean_up_tokenization_spaces (False), unk_token ("<unk>"), bos_token ("<s>"), eos_token ("</s>"),
        add_bos_token (True), add_eos_token (False), use_default_system_prompt (False): as `LlamaTokenizer`.
            Setting `add_bos_token` / `add_eos_token` (or calling `update_post_processor()` after
            changing `bos_token` / `eos_token`) rebuilds the backend's post-processor.
    """

    vocab_files_names = {"vocab_file": "tokenizer.model", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]
    slow_tokenizer_class = LlamaTokenizer
    padding_side = "left"

    def __init__(self, vocab_file: Optional[str] = None, tokenizer_file: Optional[str] = None,
                 clean_up_tokenization_spaces: bool = False, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                 add_bos_token: bool = True, add_eos_token: bool = False, use_default_system_prompt: bool = False,
                 **kwargs):
        super().__init__(vocab_file=vocab_file, tokenizer_file=tokenizer_file, unk_token=unk_token, bos_token=bos_token,
                         eos_token=eos_token, clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                         add_bos_token=add_bos_token, add_eos_token=add_eos_token,
                         use_default_system_prompt=use_default_system_prompt, **kwargs)
        self._add_bos_token = add_bos_token
        self._add_eos_token = add_eos_token
        self.use_default_system_prompt = use_default_system_prompt
        self.vocab_file = vocab_file
        self.update_post_processor()

    def _backend_from_vocab(self, vocab_file: Optional[str] = None, **kwargs):
        if vocab_file is None or not os.path.isfile(vocab_file):
            raise ValueError(f"{type(self).__name__} needs tokenizer_file=... (tokenizer.json) or vocab_file=... "
                             f"(tokenizer.model); no file at vocab_file={vocab_file!r}")
        return llama_backend(vocab_file)

    @property
    def can_save_slow_tokenizer(self) -> bool:
        return bool(self.vocab_file) and os.path.isfile(self.vocab_file)

    add_bos_token = property(lambda self: self._add_bos_token, lambda self, on: self._set_flag("_add_bos_token", on),
                             doc="Whether encodings start with `<s>` (setting it rebuilds the post-processor).")
    add_eos_token = property(lambda self: self._add_eos_token, lambda self, on: self._set_flag("_add_eos_token", on),
                             doc="Whether encodings end with `</s>` (setting it rebuilds the post-processor).")

    def _set_flag(self, name: str, value: bool) -> None:
        setattr(self, name, value)
        self.update_post_processor()

    def update_post_processor(self) -> None:
        """Make the backend add `<s>` / `</s>` as `add_bos_token` / `add_eos_token` say."""
        bos, eos = self.bos_token, self.eos_token
        if bos is None and self.add_bos_token:
            raise ValueError("add_bos_token=True needs a bos_token")
        if eos is None and self.add_eos_token:
            raise ValueError("add_eos_token=True needs an eos_token")
        first = [f"{bos}:0"] * self.add_bos_token + ["$A:0"] + [f"{eos}:0"] * self.add_eos_token
        second = [f"{bos}:1"] * self.add_bos_token + ["$B:1"] + [f"{eos}:1"] * self.add_eos_token
        specials = [(bos, self.bos_token_id)] * self.add_bos_token + [(eos, self.eos_token_id)] * self.add_eos_token
        self.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single=" ".join(first), pair=" ".join(first + second), special_tokens=specials)

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> Tuple[str]:
        if not self.can_save_slow_tokenizer:
            raise ValueError(f"{type(self).__name__} was not loaded with a tokenizer.model, so it cannot save one "
                             "for the slow tokenizer; save with legacy_format=False")
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a folder")
        return (copy_model_file(self.vocab_file, save_directory, filename_prefix),)
