"""CodeGen's tokenizers: GPT-2's byte-level BPE (polyformer/tokenization/gpt2.py), slow and fast, with decode extras.

Both return `input_ids` and `attention_mask` (token types only when asked for), add no special tokens
by default (the slow one can put `bos_token` first with `add_bos_token=True`), and decode with an
optional cut: `decode(ids, truncate_before_pattern=["^#", re.escape("<|endoftext|>"), "^'''", "\\n\\n\\n"])`
keeps what comes before the first match, the way CodeGen's samples are trimmed.

    >>> tok = CodeGenTokenizerFast.from_pretrained("Salesforce/codegen-350M-mono")
    >>> tok("Hello world")["input_ids"], tok(" Hello world")["input_ids"]
    ([15496, 995], [18435, 995])
"""

from __future__ import annotations

import re
from typing import List, Optional

from ...tokenization.gpt2 import ENDOFTEXT, EndOfTextBPETokenizer, EndOfTextBPETokenizerFast

__all__ = ["CodeGenTokenizer", "CodeGenTokenizerFast", "truncate_completion"]


def truncate_completion(completion: str, truncate_before_pattern: List[str]) -> str:
    """Cut a generated program as CodeGen does: at the second line starting with "print", then at the
    second line starting with "def", then before the earliest match of any pattern (each compiled
    with re.MULTILINE, so "^" is a line start)."""
    for repeated in ("^print", "^def"):
        starts = [match.start() for match in re.finditer(repeated, completion, re.MULTILINE)]
        if len(starts) > 1:
            completion = completion[: starts[1]]
    found = [m.start() for m in (re.compile(p, re.MULTILINE).search(completion) for p in truncate_before_pattern) if m]
    return completion[: min(found)] if found else completion


class _TruncatingDecode:
    """`decode(..., truncate_before_pattern=[...])`, for the slow and the fast tokenizer."""

    def decode(self, token_ids, skip_special_tokens: bool = False, clean_up_tokenization_spaces: Optional[bool] = None,
               truncate_before_pattern: Optional[List[str]] = None, **kwargs) -> str:
        """Text from ids; with `truncate_before_pattern` (regular expressions), cut as `truncate` says."""
        text = super().decode(token_ids, skip_special_tokens=skip_special_tokens,
                              clean_up_tokenization_spaces=clean_up_tokenization_spaces, **kwargs)
        return self.truncate(text, truncate_before_pattern) if truncate_before_pattern else text

    @staticmethod
    def truncate(completion: str, truncate_before_pattern: List[str]) -> str:
        return truncate_completion(completion, truncate_before_pattern)


class CodeGenTokenizer(_TruncatingDecode, EndOfTextBPETokenizer):
    """CodeGen's pure-Python tokenizer: GPT-2's byte-level BPE (see `EndOfTextBPETokenizer` for the
    arguments: vocab_file, merges_file, errors, the "<|endoftext|>" special tokens, pad_token,
    add_prefix_space, add_bos_token), plus `decode(..., truncate_before_pattern=[...])`."""


class CodeGenTokenizerFast(_TruncatingDecode, EndOfTextBPETokenizerFast):
    """CodeGen's fast tokenizer (same ids as `CodeGenTokenizer`).

    Args:
        vocab_file, merges_file, tokenizer_file, unk_token, bos_token, eos_token, add_prefix_space: see
            `EndOfTextBPETokenizerFast`.
        add_bos_token=True is refused: use the slow `CodeGenTokenizer` for that.
    """

    slow_tokenizer_class = CodeGenTokenizer

    def __init__(self, vocab_file: Optional[str] = None, merges_file: Optional[str] = None,
                 tokenizer_file: Optional[str] = None, unk_token=ENDOFTEXT, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT,
                 add_prefix_space: bool = False, **kwargs):
        if kwargs.get("add_bos_token", False):
            raise ValueError("CodeGenTokenizerFast cannot add a BOS token; use the slow CodeGenTokenizer "
                             "(CodeGenTokenizer.from_pretrained(...) or AutoTokenizer.from_pretrained(..., "
                             "use_fast=False))")
        super().__init__(vocab_file, merges_file, tokenizer_file=tokenizer_file, unk_token=unk_token,
                         bos_token=bos_token, eos_token=eos_token, add_prefix_space=add_prefix_space, **kwargs)
