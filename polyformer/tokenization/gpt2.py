"""GPT-2's tokenizers: byte-level BPE with "<|endoftext|>" as its unknown, begin and end token.

GPT-J checkpoints ship them (their tokenizer_config.json names `GPT2Tokenizer`, and `AutoTokenizer`
takes it for `model_type: gptj`); CodeGen's tokenizers are the same with decode extras
(polyformer/models/codegen/tokenization.py). What both share lives here:

- `EndOfTextBPETokenizer` / `EndOfTextBPETokenizerFast`: the "<|endoftext|>" defaults and, for the slow
  one, `add_bos_token` (`bos_token` before each sequence);
- `GPT2Tokenizer` / `GPT2TokenizerFast`: GPT-2's own classes.

    >>> tok = GPT2TokenizerFast.from_pretrained("EleutherAI/gpt-j-6b")
    >>> tok("Hello world")["input_ids"], tok(" Hello world")["input_ids"]
    ([15496, 995], [18435, 995])

The files, `errors`, `add_prefix_space` and the pre-split word rules are those of
`ByteLevelBPETokenizer(Fast)` (polyformer/tokenization/bpe.py).
"""

from __future__ import annotations

from typing import Any, List, Optional

from .bpe import ByteLevelBPETokenizer, ByteLevelBPETokenizerFast
from .encoding import AddedToken
from .special_tokens import special_token

__all__ = ["ENDOFTEXT", "EndOfTextBPETokenizer", "EndOfTextBPETokenizerFast", "GPT2Tokenizer", "GPT2TokenizerFast"]

ENDOFTEXT = "<|endoftext|>"


class EndOfTextBPETokenizer(ByteLevelBPETokenizer):
    """Slow byte-level BPE tokenizer with "<|endoftext|>" special tokens and `add_bos_token`.

    Args:
        vocab_file, merges_file, errors ("replace"), add_prefix_space (False): see `ByteLevelBPETokenizer`.
        unk_token, bos_token, eos_token ("<|endoftext|>"), pad_token (None): a str is made an AddedToken
            by `wrap_special_token` (subclasses differ in its flags, which save_pretrained writes).
        add_bos_token (False): start every sequence (and the second of a pair) with `bos_token`.
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: str, merges_file: str, errors: str = "replace", unk_token=ENDOFTEXT,
                 bos_token=ENDOFTEXT, eos_token=ENDOFTEXT, pad_token=None, add_prefix_space: bool = False,
                 add_bos_token: bool = False, **kwargs):
        self.add_bos_token = add_bos_token
        wrap = self.wrap_special_token
        super().__init__(vocab_file, merges_file, errors=errors, unk_token=wrap(unk_token), bos_token=wrap(bos_token),
                         eos_token=wrap(eos_token), pad_token=wrap(pad_token), add_prefix_space=add_prefix_space,
                         add_bos_token=add_bos_token, **kwargs)

    @staticmethod
    def wrap_special_token(value: Any) -> Any:
        """A special token given as a str: AddedToken(normalized=False, special=True); others unchanged."""
        return special_token(value)

    def build_inputs_with_special_tokens(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None):
        bos = [self.bos_token_id] if self.add_bos_token else []
        return bos + token_ids_0 + ([] if token_ids_1 is None else bos + token_ids_1)


class EndOfTextBPETokenizerFast(ByteLevelBPETokenizerFast):
    """Fast byte-level BPE tokenizer with "<|endoftext|>" special tokens (it never adds a BOS token).

    Args:
        vocab_file, merges_file, tokenizer_file, add_prefix_space: see `ByteLevelBPETokenizerFast`.
        unk_token, bos_token, eos_token ("<|endoftext|>").
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: Optional[str] = None, merges_file: Optional[str] = None,
                 tokenizer_file: Optional[str] = None, unk_token=ENDOFTEXT, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT,
                 add_prefix_space: bool = False, **kwargs):
        super().__init__(vocab_file, merges_file, tokenizer_file=tokenizer_file, unk_token=unk_token,
                         bos_token=bos_token, eos_token=eos_token, add_prefix_space=add_prefix_space, **kwargs)


def _gpt2_special_token(value: Any) -> Any:
    """GPT-2's wrapping: AddedToken(lstrip=False, rstrip=False), so normalized (it is marked special when
    registered); tokenizer_config.json and special_tokens_map.json then say `"normalized": true`."""
    return AddedToken(value, lstrip=False, rstrip=False) if isinstance(value, str) else value


class GPT2Tokenizer(EndOfTextBPETokenizer):
    """GPT-2's pure-Python tokenizer (byte-level BPE, vocab.json + merges.txt).

    Args:
        vocab_file, merges_file: vocab.json and merges.txt.
        errors ("replace"): how invalid UTF-8 is decoded (see `bytes.decode`).
        unk_token, bos_token, eos_token ("<|endoftext|>"), pad_token (None).
        add_prefix_space (False): put a space before the text, so its first word is tokenized like any
            other; also settable per call. Pre-split words (`is_split_into_words=True`) always get one each.
        add_bos_token (False): start every sequence (and the second of a pair) with `bos_token`.
    """

    wrap_special_token = staticmethod(_gpt2_special_token)

    def get_special_tokens_mask(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None,
                                already_has_special_tokens: bool = False) -> List[int]:
        if already_has_special_tokens or not self.add_bos_token:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1,
                                                   already_has_special_tokens=already_has_special_tokens)
        mask = [1] + [0] * len(token_ids_0)
        return mask if token_ids_1 is None else mask + [1] + [0] * len(token_ids_1)


class GPT2TokenizerFast(EndOfTextBPETokenizerFast):
    """GPT-2's fast tokenizer (same ids as `GPT2Tokenizer`, plus offsets).

    Args:
        vocab_file, merges_file: used when there is no `tokenizer_file`.
        tokenizer_file: a tokenizer.json.
        unk_token, bos_token, eos_token ("<|endoftext|>").
        add_prefix_space (False): as the slow tokenizer's, but fixed at construction; pre-split input
            (`is_split_into_words=True`) needs it True.
        add_bos_token (False): when the backend is built from vocab.json + merges.txt (no tokenizer.json),
            put `bos_token` first, as the reference's conversion does: before the first sequence only, the
            second of a pair getting token type 1 (the slow tokenizer puts it before each). A tokenizer.json
            keeps its own post-processor; the flag is kept and saved either way.
    """

    slow_tokenizer_class = GPT2Tokenizer

    def __init__(self, vocab_file: Optional[str] = None, merges_file: Optional[str] = None,
                 tokenizer_file: Optional[str] = None, unk_token=ENDOFTEXT, bos_token=ENDOFTEXT, eos_token=ENDOFTEXT,
                 add_prefix_space: bool = False, **kwargs):
        super().__init__(vocab_file, merges_file, tokenizer_file=tokenizer_file, unk_token=unk_token,
                         bos_token=bos_token, eos_token=eos_token, add_prefix_space=add_prefix_space, **kwargs)
        self.add_bos_token = kwargs.get("add_bos_token", False)

    def _backend_from_vocab(self, vocab_file: Optional[str] = None, merges_file: Optional[str] = None, *,
                            add_prefix_space: bool = False, add_bos_token: bool = False, bos_token=ENDOFTEXT,
                            **kwargs):
        backend = super()._backend_from_vocab(vocab_file, merges_file, add_prefix_space=add_prefix_space)
        if add_bos_token and bos_token is not None:
            from tokenizers import processors

            bos = str(bos_token)
            bos_id = backend.token_to_id(bos)
            if bos_id is None:  # not in vocab.json: the first special token added, it takes the next id
                bos_id = backend.get_vocab_size(with_added_tokens=True)
            backend.post_processor = processors.TemplateProcessing(
                single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 $B:1", special_tokens=[(bos, bos_id)])
        return backend
