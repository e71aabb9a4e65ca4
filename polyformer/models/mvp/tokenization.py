"""MVP's tokenizers: BART's (RoBERTa's) byte-level BPE, slow (pure Python) and fast (`tokenizers`).

One sequence is `<s> A </s>`, a pair `<s> A </s></s> B </s>`; token type ids are all zeros. `<mask>` takes
the space before it (lstrip), so "Hello <mask>" ends in the one token `<mask>`. A leading space changes
the first word's ids (`add_prefix_space=True` adds one):

    >>> tok = MvpTokenizerFast.from_pretrained("RUCAIBox/mvp")
    >>> tok("Hello world")["input_ids"], tok(" Hello world")["input_ids"]
    ([0, 31414, 232, 2], [0, 20920, 232, 2])
"""

from __future__ import annotations

from typing import Optional

from ...tokenization.bpe import (ByteLevelBPETokenizer, ByteLevelBPETokenizerFast, DoubleSeparatorLayout,
                                 read_vocab_json, set_component_option)
from ...tokenization.encoding import AddedToken
from ...tokenization.special_tokens import special_token

__all__ = ["MvpTokenizer", "MvpTokenizerFast"]

def _mask(token):
    """The mask token swallows the whitespace before it."""
    return AddedToken(token, lstrip=True, rstrip=False, special=True) if isinstance(token, str) else token


class MvpTokenizer(DoubleSeparatorLayout, ByteLevelBPETokenizer):
    """MVP's pure-Python tokenizer (vocab.json + merges.txt; see `ByteLevelBPETokenizer` for `errors`).

    Args:
        bos_token / cls_token ("<s>"), eos_token / sep_token ("</s>"), unk_token ("<unk>"), pad_token ("<pad>"),
        mask_token ("<mask>", swallowing the space before it).
        add_prefix_space (False): put a space before a text that does not start with one (also per call;
            pre-split words always get one).
    """

    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: str, merges_file: str, errors: str = "replace", bos_token="<s>", eos_token="</s>",
                 sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                 add_prefix_space: bool = False, **kwargs):
        given = dict(bos_token=bos_token, eos_token=eos_token, sep_token=sep_token, cls_token=cls_token,
                     unk_token=unk_token, pad_token=pad_token)
        super().__init__(vocab_file, merges_file, errors=errors, mask_token=_mask(mask_token),
                         add_prefix_space=add_prefix_space, **{k: special_token(v) for k, v in given.items()}, **kwargs)

    def prepare_for_tokenization(self, text: str, is_split_into_words: bool = False, **kwargs):
        add_prefix_space = kwargs.pop("add_prefix_space", self.add_prefix_space)
        if (is_split_into_words or add_prefix_space) and text and not text[0].isspace():
            text = " " + text
        return text, kwargs


class MvpTokenizerFast(DoubleSeparatorLayout, ByteLevelBPETokenizerFast):
    """MVP's fast tokenizer (same ids as `MvpTokenizer`).

    Args:
        vocab_file, merges_file, tokenizer_file, add_prefix_space: see `ByteLevelBPETokenizerFast`.
        Special tokens as `MvpTokenizer`.
        trim_offsets (True): offsets leave out the space a token starts with.
    """

    model_input_names = ["input_ids", "attention_mask"]
    slow_tokenizer_class = MvpTokenizer

    def __init__(self, vocab_file: Optional[str] = None, merges_file: Optional[str] = None,
                 tokenizer_file: Optional[str] = None, errors: str = "replace", bos_token="<s>", eos_token="</s>",
                 sep_token="</s>", cls_token="<s>", unk_token="<unk>", pad_token="<pad>", mask_token="<mask>",
                 add_prefix_space: bool = False, trim_offsets: bool = True, **kwargs):
        given = dict(bos_token=bos_token, eos_token=eos_token, sep_token=sep_token, cls_token=cls_token,
                     unk_token=unk_token, pad_token=pad_token)
        given = {k: AddedToken(v, lstrip=False, rstrip=False) if isinstance(v, str) else v for k, v in given.items()}
        super().__init__(vocab_file, merges_file, tokenizer_file=tokenizer_file, errors=errors,
                         mask_token=_mask_fast(mask_token), add_prefix_space=add_prefix_space, trim_offsets=trim_offsets,
                         **given, **kwargs)
        _set_post_processor_options(self.backend_tokenizer, add_prefix_space=add_prefix_space, trim_offsets=trim_offsets)

    def _backend_from_vocab(self, vocab_file=None, merges_file=None, *, add_prefix_space: bool = False,
                            trim_offsets: bool = True, sep_token="</s>", cls_token="<s>", **kwargs):
        """As the reference converts the slow tokenizer: byte-level BPE, then `<s> A </s></s> B </s>`."""
        from tokenizers import processors

        backend = super()._backend_from_vocab(vocab_file, merges_file, add_prefix_space=add_prefix_space)
        vocab = read_vocab_json(vocab_file)
        sep, cls = str(sep_token), str(cls_token)
        backend.post_processor = processors.RobertaProcessing((sep, vocab.get(sep)), (cls, vocab.get(cls)),
                                                              trim_offsets=True, add_prefix_space=add_prefix_space)
        return backend

    @property
    def mask_token(self) -> Optional[str]:
        value = self._special_tokens.get("mask_token")
        return None if value is None else str(value)

    @mask_token.setter
    def mask_token(self, value) -> None:
        self._special_tokens["mask_token"] = _mask_fast(value)


def _mask_fast(token):
    return AddedToken(token, lstrip=True, rstrip=False) if isinstance(token, str) else token


def _set_post_processor_options(backend, **wanted) -> None:
    """The init arguments win over a tokenizer.json's post-processor options, as in the reference."""
    import json

    from tokenizers import processors

    current = backend.post_processor
    state = json.loads(current.__getstate__()) if current is not None else {}
    if state.get("type") != "RobertaProcessing":
        set_component_option(backend, "post_processor", processors, **wanted)
    elif any(state.get(key, value) != value for key, value in wanted.items()):
        options = {key: state[key] for key in ("trim_offsets", "add_prefix_space") if key in state}
        backend.post_processor = processors.RobertaProcessing(tuple(state["sep"]), tuple(state["cls"]),
                                                              **{**options, **wanted})
