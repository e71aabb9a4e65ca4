"""CLIP's tokenizers (GroupViT uses them): a byte-level BPE whose words end in "</w>", slow (pure
Python) and fast (`tokenizers`).

Both wrap a text as `<|startoftext|> A <|endoftext|>` (a pair as `<|startoftext|> A <|endoftext|>
<|endoftext|> B <|endoftext|>`), pad with `<|endoftext|>`, return `input_ids` and `attention_mask`, and
lower-case the text. Words come from `CLIP_PATTERN` ("'s"-style contractions, letter runs, single
digits, other runs); each word's UTF-8 bytes become printable characters (see tokenization/bpe.py), its
last symbol gets "</w>", and the merges join them. Decoding turns "</w>" back into spaces.

Text cleanup, as transformers 4.37: with `ftfy` installed the slow tokenizer runs `ftfy.fix_text`,
collapses whitespace and lower-cases; without it (the usual case) it runs BERT's basic cleanup (control
characters dropped, CJK ideographs spaced, NFC, lower-cased, no accent stripping, no punctuation split).
The fast tokenizer does NFC, whitespace collapsing and lower-casing only, so the two can differ on
control characters and CJK text, exactly as the reference's do.

    >>> tok = CLIPTokenizerFast.from_pretrained("openai/clip-vit-base-patch32")
    >>> tok("a photo of a cat")["input_ids"]
    [49406, 320, 1125, 539, 320, 2368, 49407]
"""

from __future__ import annotations

import logging
import os
import re
from typing import Dict, List, Optional, Tuple

import regex

from ...saving import write_with
from ...tokenization.bpe import (BPEVocabulary, DoubleSeparatorLayout, check_vocab_files, from_byte_chars,
                                 read_vocab_json, to_byte_chars, write_vocab_and_merges)
from ...tokenization.encoding import AddedToken
from ...tokenization.fast import PreTrainedTokenizerFast
from ...tokenization.slow import PreTrainedTokenizer
from ...tokenization.wordpiece import BasicTokenizer

__all__ = ["CLIPTokenizer", "CLIPTokenizerFast", "CLIP_PATTERN", "read_clip_merges", "clip_backend"]

logger = logging.getLogger(__name__)

SOT, EOT, END_OF_WORD = "<|startoftext|>", "<|endoftext|>", "</w>"
CLIP_WORDS = r"""'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+"""
CLIP_PATTERN = r"<\|startoftext\|>|<\|endoftext\|>|" + CLIP_WORDS
# The reference reads at most this many merges (CLIP's 49408 tokens: 512 byte symbols, these, 2 specials).
MAX_MERGES = 49152 - 256 - 2


def read_clip_merges(path: str) -> List[Tuple[str, str]]:
    """The merges of a CLIP merges.txt as the reference reads them: the first line is a header (skipped
    whatever it says), then at most `MAX_MERGES` "left right" lines."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().strip().split("\n")[1:MAX_MERGES + 1]
    merges = []
    for number, line in enumerate(lines, start=2):
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}, line {number}: expected two symbols separated by a space, got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


def clip_backend(vocab: Dict[str, int], merges: List[Tuple[str, str]], unk_token: str, bos: Tuple[str, int],
                 eos: Tuple[str, int]):
    """A `tokenizers.Tokenizer` built as transformers 4.37 converts a CLIPTokenizer."""
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, continuing_subword_prefix="",
                                   end_of_word_suffix=END_OF_WORD, fuse_unk=False, unk_token=unk_token))
    backend.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Replace(Regex(r"\s+"), " "),
                                               normalizers.Lowercase()])
    backend.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(CLIP_WORDS), behavior="removed", invert=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False)])
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.RobertaProcessing(eos, bos, trim_offsets=False, add_prefix_space=False)
    return backend


def _fixed_token(token):
    return AddedToken(token, lstrip=False, rstrip=False) if isinstance(token, str) else token


class _ClipLayout(DoubleSeparatorLayout):
    """`<|startoftext|> A <|endoftext|>` (+ `<|endoftext|> B <|endoftext|>`), token types all 0."""

    layout_tokens = ("bos_token_id", "eos_token_id")


class CLIPTokenizer(_ClipLayout, BPEVocabulary, PreTrainedTokenizer):
    """CLIP's pure-Python tokenizer.

    Args:
        vocab_file: vocab.json, token -> id.
        merges_file: merges.txt (its first line is a header).
        errors ("replace"): how invalid UTF-8 is decoded (see `bytes.decode`).
        unk_token ("<|endoftext|>"), bos_token ("<|startoftext|>"), eos_token ("<|endoftext|>"),
        pad_token ("<|endoftext|>"): see `PreTrainedTokenizer` for these and the other arguments.
    """

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file: str, merges_file: str, errors: str = "replace", unk_token=EOT, bos_token=SOT,
                 eos_token=EOT, pad_token=EOT, **kwargs):
        check_vocab_files(type(self).__name__, vocab_file=vocab_file, merges_file=merges_file)
        try:
            import ftfy
        except ImportError:
            ftfy = None
        self.fix_text = ftfy.fix_text if ftfy is not None else None
        self.nlp = BasicTokenizer(strip_accents=False, do_split_on_punc=False)
        self._read_vocabulary(vocab_file, read_clip_merges(merges_file))
        self.errors = errors
        self.pattern = regex.compile(CLIP_PATTERN, regex.IGNORECASE)
        super().__init__(errors=errors, unk_token=_fixed_token(unk_token), bos_token=_fixed_token(bos_token),
                         eos_token=_fixed_token(eos_token), pad_token=pad_token, **kwargs)

    def _word_symbols(self, word: str) -> Tuple[str, ...]:
        """The BPE symbols of one word (already in byte characters); "</w>" ends its last symbol."""
        if word in (SOT, EOT):  # the reference's cache holds these two as they are
            return (word,)
        return self._merger.merge((*word[:-1], word[-1] + END_OF_WORD))

    def bpe(self, token: str) -> str:
        """The BPE symbols of one word, space-separated (the reference's method)."""
        return " ".join(self._word_symbols(token))

    def clean_text(self, text: str) -> str:
        """The reference's cleanup: ftfy when installed, else BERT's basic cleanup; lower-cased."""
        if self.fix_text is None:
            return " ".join(self.nlp.tokenize(text))
        return re.sub(r"\s+", " ", self.fix_text(text)).strip().lower()

    def _tokenize(self, text: str, **kwargs) -> List[str]:
        tokens: List[str] = []
        for word in self.pattern.findall(self.clean_text(text)):
            tokens.extend(self._word_symbols(to_byte_chars(word)))
        return tokens

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return from_byte_chars("".join(tokens), self.errors).replace(END_OF_WORD, " ").strip()

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> Tuple[str, str]:
        return write_vocab_and_merges(self.encoder, self._merger.merges(), save_directory, filename_prefix)


class CLIPTokenizerFast(_ClipLayout, PreTrainedTokenizerFast):
    """CLIP's fast tokenizer, backed by `tokenizers`.

    Args:
        vocab_file, merges_file: used (converted as the reference converts the slow tokenizer) when there
            is no `tokenizer_file`.
        tokenizer_file: a tokenizer.json; its pre-tokenizer must be a Sequence (the layout transformers
            has written since 4.17), else a ValueError says to load with `from_slow=True`.
        unk_token, bos_token, eos_token, pad_token: as `CLIPTokenizer`.
    """

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt", "tokenizer_file": "tokenizer.json"}
    model_input_names = ["input_ids", "attention_mask"]
    slow_tokenizer_class = CLIPTokenizer

    def __init__(self, vocab_file: Optional[str] = None, merges_file: Optional[str] = None,
                 tokenizer_file: Optional[str] = None, unk_token=EOT, bos_token=SOT, eos_token=EOT, pad_token=EOT,
                 **kwargs):
        super().__init__(vocab_file, merges_file, tokenizer_file=tokenizer_file, unk_token=unk_token,
                         bos_token=bos_token, eos_token=eos_token, pad_token=pad_token, **kwargs)
        from tokenizers import pre_tokenizers

        if not isinstance(self.backend_tokenizer.pre_tokenizer, pre_tokenizers.Sequence):
            raise ValueError("tokenizer_file holds a CLIP tokenizer in the layout of transformers < 4.17, which "
                             "tokenizes differently; rebuild it from vocab.json and merges.txt with "
                             "CLIPTokenizerFast.from_pretrained(folder, from_slow=True)")

    def _backend_from_vocab(self, vocab_file: Optional[str] = None, merges_file: Optional[str] = None, *,
                            unk_token=EOT, bos_token=SOT, eos_token=EOT, **kwargs):
        check_vocab_files(type(self).__name__, vocab_file=vocab_file, merges_file=merges_file)
        vocab = read_vocab_json(vocab_file)

        def special(token) -> Tuple[str, int]:  # a token missing from vocab.json will be added next
            return str(token), vocab.get(str(token), len(vocab))

        return clip_backend(vocab, read_clip_merges(merges_file), str(unk_token), special(bos_token),
                            special(eos_token))

    def _decode(self, token_ids: List[int], skip_special_tokens: bool = False,
                clean_up_tokenization_spaces: Optional[bool] = None, **kwargs) -> str:
        text = super()._decode(token_ids, skip_special_tokens=skip_special_tokens, clean_up_tokenization_spaces=False)
        return self._maybe_clean_up(text.replace(END_OF_WORD, " ").strip(), clean_up_tokenization_spaces)

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> Tuple[str, ...]:
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a folder")
        model = self.backend_tokenizer.model
        return tuple(write_with(save_directory, lambda folder: model.save(folder, filename_prefix)))
