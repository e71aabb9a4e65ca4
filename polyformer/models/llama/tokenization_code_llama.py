"""Code Llama's tokenizers: Llama's, plus infilling.

A prompt holding `fill_token` ("<FILL_ME>") once, or a prompt and a `suffix=`, is encoded in the
format Code Llama was trained on for filling in the middle:

    <s> ▁<PRE> {prefix} ▁<SUF> {suffix} ▁<MID>            (suffix_first=False, the default)
    <s> ▁<PRE> ▁<SUF> {suffix} ▁<MID> {prefix}            (suffix_first=True)

where the prefix is tokenized with one leading "▁" and the suffix without. The model then generates
the middle, ending with `▁<EOT>`; `decode(middle_ids, skip_special_tokens=True)` is the filling:

    >>> tok = CodeLlamaTokenizer.from_pretrained("codellama/CodeLlama-7b-hf")
    >>> prompt = "def remove_non_ascii(s: str) -> str:\\n    ''' <FILL_ME>\\n    return result\\n"
    >>> ids = tok(prompt, return_tensors="pt").input_ids
    >>> filling = tok.decode(model.generate(ids)[0, ids.shape[1]:], skip_special_tokens=True)
    >>> prompt.replace("<FILL_ME>", filling)
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from tokenizers import normalizers, processors

from ...tokenization.encoding import BatchEncoding
from ...tokenization.sentencepiece import SPIECE_UNDERLINE, SentencePieceTokenizer, llama_normalizer
from ...tokenization.special_tokens import special_token
from .tokenization import BosEosTypes, LlamaTokenizerFast

__all__ = ["CodeLlamaTokenizer", "CodeLlamaTokenizerFast"]

INFILL_TOKENS = {"prefix_token": "▁<PRE>", "middle_token": "▁<MID>", "suffix_token": "▁<SUF>", "eot_token": "▁<EOT>"}


class InfillingMixin:
    """The infilling tokens (`prefix_token`, `middle_token`, `suffix_token`, `eot_token`, each None
    when the model has none), their ids, and the splitting of a prompt on `fill_token`."""

    def _init_infilling(self, tokens: Dict[str, Optional[str]], fill_token: Optional[str],
                        additional_special_tokens: Optional[List[Any]]) -> List[Any]:
        """Keep the tokens; return the additional special tokens with the infilling ones appended, each
        once (the reference appends them again at every load, so the lists it saves grow)."""
        self._infill = dict(tokens)
        self.fill_token = fill_token
        unique: Dict[str, Any] = {}
        for token in list(additional_special_tokens or []) + [t for t in tokens.values() if t is not None]:
            unique.setdefault(str(token), token)
        return list(unique.values())

    prefix_token = property(lambda self: self._infill["prefix_token"])
    middle_token = property(lambda self: self._infill["middle_token"])
    suffix_token = property(lambda self: self._infill["suffix_token"])
    eot_token = property(lambda self: self._infill["eot_token"])
    prefix_id = property(lambda self: self._infill_id("prefix_token"))
    middle_id = property(lambda self: self._infill_id("middle_token"))
    suffix_id = property(lambda self: self._infill_id("suffix_token"))
    eot_id = property(lambda self: self._infill_id("eot_token"))

    def _infill_id(self, name: str) -> Optional[int]:
        token = self._infill[name]
        return None if token is None else self.convert_tokens_to_ids(token)

    def _split_prompt(self, text: Any, suffix: Optional[str]) -> Tuple[Any, Optional[str]]:
        """(prefix, suffix) of a prompt holding `fill_token` when no suffix is given."""
        if suffix is not None or self.fill_token is None or not isinstance(text, str) or self.fill_token not in text:
            return text, suffix
        parts = text.split(self.fill_token)
        if len(parts) != 2:
            raise ValueError(f"an infilling prompt holds {self.fill_token!r} once (where the model fills in); this one "
                             f"holds it {len(parts) - 1} times")
        return parts[0], parts[1]

    def _check_infilling(self) -> None:
        if None in (self.prefix_id, self.middle_id, self.suffix_id):
            raise ValueError(f"{type(self).__name__} has no infilling tokens (prefix_token={self.prefix_token!r}, "
                             f"middle_token={self.middle_token!r}, suffix_token={self.suffix_token!r}), so it cannot "
                             f"encode a prefix and a suffix (a prompt with {self.fill_token!r} or suffix=...)")


class CodeLlamaTokenizer(InfillingMixin, BosEosTypes, SentencePieceTokenizer):
    """Code Llama's pure-Python tokenizer (`LlamaTokenizer` with legacy=False, plus infilling).

    Args:
        vocab_file: the tokenizer.model.
        unk_token ("<unk>"), bos_token ("<s>"), eos_token ("</s>").
        prefix_token ("▁<PRE>"), middle_token ("▁<MID>"), suffix_token ("▁<SUF>"), eot_token ("▁<EOT>"):
            the infilling tokens, added to the additional special tokens (None: the model has none).
        fill_token ("<FILL_ME>"): where a prompt is split into prefix and suffix.
        suffix_first (False): kept and saved; the suffix-first format is asked for per call
            (`tok(prompt, suffix_first=True)`), as in the reference.
        sp_model_kwargs, add_bos_token (True), add_eos_token (False), clean_up_tokenization_spaces (False),
        additional_special_tokens, use_default_system_prompt (False): as `LlamaTokenizer`.
    """

    model_input_names = ["input_ids", "attention_mask"]
    legacy = False

    def __init__(self, vocab_file: str, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                 prefix_token=INFILL_TOKENS["prefix_token"], middle_token=INFILL_TOKENS["middle_token"],
                 suffix_token=INFILL_TOKENS["suffix_token"], eot_token=INFILL_TOKENS["eot_token"],
                 fill_token="<FILL_ME>", suffix_first: bool = False, sp_model_kwargs: Optional[Dict[str, Any]] = None,
                 add_bos_token: bool = True, add_eos_token: bool = False, clean_up_tokenization_spaces: bool = False,
                 additional_special_tokens: Optional[List[Any]] = None, use_default_system_prompt: bool = False,
                 **kwargs):
        infill = dict(prefix_token=prefix_token, middle_token=middle_token, suffix_token=suffix_token,
                      eot_token=eot_token)
        additional_special_tokens = self._init_infilling(infill, fill_token, additional_special_tokens)
        self.add_bos_token = add_bos_token
        self.add_eos_token = add_eos_token
        self.suffix_first = suffix_first
        self.use_default_system_prompt = use_default_system_prompt
        super().__init__(vocab_file, sp_model_kwargs, bos_token=special_token(bos_token),
                         eos_token=special_token(eos_token), unk_token=special_token(unk_token),
                         add_bos_token=add_bos_token, add_eos_token=add_eos_token, **infill, fill_token=fill_token,
                         suffix_first=suffix_first, clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                         additional_special_tokens=additional_special_tokens,
                         use_default_system_prompt=use_default_system_prompt, **kwargs)

    def tokenize(self, prefix: str, suffix: Optional[str] = None, suffix_first: Optional[bool] = False,
                 **kwargs) -> List[str]:
        """Tokens of `prefix`; with a suffix (given, or after `fill_token` in `prefix`) the infilling
        layout of the module docstring (`suffix_first=None` follows the tokenizer's `suffix_first`)."""
        prefix, suffix = self._split_prompt(prefix, suffix)
        if not suffix:
            return self.tokenize_with_prefix(prefix, **kwargs) if prefix else super().tokenize(prefix, **kwargs)
        self._check_infilling()
        if prefix:
            prefix = SPIECE_UNDERLINE + prefix.replace(SPIECE_UNDERLINE, " ")
        prefix_tokens, suffix_tokens = self._tokenize(prefix), self._tokenize(suffix)
        if self.suffix_first if suffix_first is None else suffix_first:
            return [self.prefix_token, self.suffix_token] + suffix_tokens + [self.middle_token] + prefix_tokens
        return [self.prefix_token] + prefix_tokens + [self.suffix_token] + suffix_tokens + [self.middle_token]

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return self._pieces_to_string(tokens, space_before_special=False)


class CodeLlamaTokenizerFast(InfillingMixin, LlamaTokenizerFast):
    """Code Llama's fast tokenizer (same ids as `CodeLlamaTokenizer`).

    Args: as `LlamaTokenizerFast`, plus the infilling tokens and `fill_token` of `CodeLlamaTokenizer`.
    The suffix-first format is asked for per call: `tok(prompt, suffix_first=True)`.
    """

    slow_tokenizer_class = CodeLlamaTokenizer

    def __init__(self, vocab_file: Optional[str] = None, tokenizer_file: Optional[str] = None,
                 clean_up_tokenization_spaces: bool = False, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                 prefix_token=INFILL_TOKENS["prefix_token"], middle_token=INFILL_TOKENS["middle_token"],
                 suffix_token=INFILL_TOKENS["suffix_token"], eot_token=INFILL_TOKENS["eot_token"],
                 fill_token="<FILL_ME>", additional_special_tokens: Optional[List[Any]] = None,
                 add_bos_token: bool = True, add_eos_token: bool = False, use_default_system_prompt: bool = False,
                 **kwargs):
        infill = dict(prefix_token=prefix_token, middle_token=middle_token, suffix_token=suffix_token,
                      eot_token=eot_token)
        additional_special_tokens = self._init_infilling(infill, fill_token, additional_special_tokens)
        super().__init__(vocab_file, tokenizer_file, clean_up_tokenization_spaces=clean_up_tokenization_spaces,
                         unk_token=unk_token, bos_token=bos_token, eos_token=eos_token, add_bos_token=add_bos_token,
                         add_eos_token=add_eos_token, use_default_system_prompt=use_default_system_prompt,
                         additional_special_tokens=additional_special_tokens, **infill, fill_token=fill_token,
                         **kwargs)

    def set_infilling_processor(self, reset: bool, suffix_first: bool = False, add_special_tokens: bool = True) -> None:
        """Set the backend up for one infilling encode (prefix as the first sequence, suffix as the
        second: no "▁" put before the suffix, the layout of the module docstring as post-processor), or
        with `reset=True` back to plain Llama encoding."""
        if reset:
            self.backend_tokenizer.normalizer = llama_normalizer()
            self.update_post_processor()
            return
        self.backend_tokenizer.normalizer = normalizers.Replace(pattern=" ", content=SPIECE_UNDERLINE)
        bos = [self.bos_token] if self.add_bos_token and add_special_tokens else []
        eos = [self.eos_token] if self.add_eos_token and add_special_tokens else []
        pre, suf, mid = self.prefix_token, self.suffix_token, self.middle_token
        layout = [pre, suf, "$B", mid, "$A"] if suffix_first else [pre, "$A", suf, "$B", mid]
        specials = [(token, self.convert_tokens_to_ids(token)) for token in bos + [pre, suf, mid] + eos]
        self.backend_tokenizer.post_processor = processors.TemplateProcessing(
            single="$A", pair=bos + layout + eos, special_tokens=specials)

    def encode_plus(self, text, text_pair=None, suffix_first: bool = False, add_special_tokens: bool = True,
                    **kwargs) -> BatchEncoding:
        """As `PreTrainedTokenizerFast.encode_plus`; a `suffix=` (or `text_pair`), or `fill_token` in
        `text`, gives the infilling layout of the module docstring."""
        text, text_pair = self._split_prompt(text, kwargs.pop("suffix", text_pair))
        if not text_pair:
            return super().encode_plus(text, text_pair, add_special_tokens=add_special_tokens, **kwargs)
        self._check_infilling()
        self.set_infilling_processor(False, suffix_first=suffix_first, add_special_tokens=add_special_tokens)
        try:
            return super().encode_plus(" " + text, text_pair, add_special_tokens=True, **kwargs)
        finally:
            self.set_infilling_processor(True)
