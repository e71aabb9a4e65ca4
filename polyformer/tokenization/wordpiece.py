"""BERT's tokenization pieces, for any WordPiece model (BERT, DistilBERT, ...).

- `BasicTokenizer`: clean the text, split CJK characters, lower-case / strip accents, split on
  whitespace and punctuation;
- `WordpieceTokenizer`: greedy longest-match-first sub-words, continuations prefixed "##";
- `BertSpecialTokensMixin`: the `[CLS] A [SEP] (B [SEP])` layout, for slow and fast tokenizers;
- `load_vocab` / `save_vocab`: vocab.txt (one token per line, the line number is the id);
- `wordpiece_backend` / `sync_bert_normalizer`: the equivalent `tokenizers` pipeline for fast tokenizers.
"""

from __future__ import annotations

import json
import logging
import os
import unicodedata
from typing import Dict, Iterable, List, Optional, Tuple

from ..file_errors import reading
from ..hub import write_atomically

logger = logging.getLogger(__name__)

# CJK Unified Ideographs and their extensions / compatibility blocks: each is split into its own word.
# (Hiragana, Katakana and Hangul are not in these blocks: they are written with spaces or are syllabic.)
_CJK_RANGES = ((0x4E00, 0x9FFF), (0x3400, 0x4DBF), (0x20000, 0x2A6DF), (0x2A700, 0x2B73F), (0x2B740, 0x2B81F),
               (0x2B820, 0x2CEAF), (0xF900, 0xFAFF), (0x2F800, 0x2FA1F))


def is_cjk(char: str) -> bool:
    code = ord(char)
    return any(low <= code <= high for low, high in _CJK_RANGES)


def is_whitespace(char: str) -> bool:
    """Space, tab, newline, carriage return, or any Unicode space separator (Zs)."""
    return char in " \t\n\r" or unicodedata.category(char) == "Zs"


def is_control(char: str) -> bool:
    """A control / format / unassigned character (category C*), except tab, newline and CR."""
    return char not in "\t\n\r" and unicodedata.category(char).startswith("C")


def is_punctuation(char: str) -> bool:
    """Unicode punctuation (P*), plus every non-alphanumeric printable ASCII character ($, ^, `, ...)."""
    code = ord(char)
    if 33 <= code <= 47 or 58 <= code <= 64 or 91 <= code <= 96 or 123 <= code <= 126:
        return True
    return unicodedata.category(char).startswith("P")


def strip_accents(text: str) -> str:
    """Decompose (NFD) and drop the combining marks (Mn)."""
    return "".join(ch for ch in unicodedata.normalize("NFD", text) if unicodedata.category(ch) != "Mn")


class BasicTokenizer:
    """BERT's pre-tokenization: text -> words and punctuation marks.

    Steps: drop NUL, U+FFFD and control characters and turn whitespace into spaces; put spaces around
    CJK ideographs (`tokenize_chinese_chars`); NFC; split on whitespace; for each word not in
    `never_split`: lower-case and strip accents (`strip_accents=None` follows `do_lower_case`, as
    original BERT), then split off each punctuation character (`do_split_on_punc`).
    """

    def __init__(self, do_lower_case: bool = True, never_split: Optional[Iterable[str]] = None,
                 tokenize_chinese_chars: bool = True, strip_accents: Optional[bool] = None,
                 do_split_on_punc: bool = True):
        self.do_lower_case = do_lower_case
        self.never_split = set(never_split or ())
        self.tokenize_chinese_chars = tokenize_chinese_chars
        self.strip_accents = strip_accents
        self.do_split_on_punc = do_split_on_punc

    def tokenize(self, text: str, never_split: Optional[Iterable[str]] = None) -> List[str]:
        never_split = self.never_split.union(never_split) if never_split else self.never_split
        text = "".join(" " if is_whitespace(ch) else ch for ch in text
                       if ch not in "\x00\ufffd" and not is_control(ch))
        if self.tokenize_chinese_chars:
            text = "".join(f" {ch} " if is_cjk(ch) else ch for ch in text)
        words: List[str] = []
        for word in unicodedata.normalize("NFC", text).split():
            if word not in never_split:
                if self.do_lower_case:
                    word = word.lower()
                    if self.strip_accents is not False:
                        word = strip_accents(word)
                elif self.strip_accents:
                    word = strip_accents(word)
            words.extend(self._split_on_punctuation(word, never_split))
        return " ".join(words).split()

    def _split_on_punctuation(self, word: str, never_split: Iterable[str]) -> List[str]:
        if not self.do_split_on_punc or word in never_split:
            return [word]
        # Runs of non-punctuation are collected as lists of characters and joined once: growing a string
        # held in a list (`pieces[-1] += ch`) copies it each time, quadratic on one long word.
        pieces: List[str] = []
        run: List[str] = []
        for ch in word:
            if is_punctuation(ch):
                if run:
                    pieces.append("".join(run))
                    run = []
                pieces.append(ch)
            else:
                run.append(ch)
        if run:
            pieces.append("".join(run))
        return pieces


class WordpieceTokenizer:
    """Greedy longest-match-first WordPiece: each word becomes the longest vocabulary prefix, then
    the longest "##"-prefixed continuation, and so on; a word that cannot be covered, or is longer
    than `max_input_chars_per_word` characters, becomes `unk_token`."""

    def __init__(self, vocab: Dict[str, int], unk_token: str, max_input_chars_per_word: int = 100,
                 prefix: str = "##"):
        self.vocab = vocab
        self.unk_token = unk_token
        self.max_input_chars_per_word = max_input_chars_per_word
        self.prefix = prefix

    def tokenize(self, text: str) -> List[str]:
        tokens: List[str] = []
        for word in text.split():
            tokens.extend(self._word(word))
        return tokens

    def _word(self, word: str) -> List[str]:
        if len(word) > self.max_input_chars_per_word:
            return [self.unk_token]
        pieces: List[str] = []
        start = 0
        while start < len(word):
            for end in range(len(word), start, -1):
                piece = word[start:end] if start == 0 else self.prefix + word[start:end]
                if piece in self.vocab:
                    break
            else:
                return [self.unk_token]
            pieces.append(piece)
            start = end
        return pieces


class BertSpecialTokensMixin:
    """`[CLS] A [SEP]` and `[CLS] A [SEP] B [SEP]`, with token types 0 for the first part and 1 for
    `B [SEP]`; for slow and fast tokenizers of BERT-like models."""

    def build_inputs_with_special_tokens(self, token_ids_0: List[int],
                                         token_ids_1: Optional[List[int]] = None) -> List[int]:
        first = [self.cls_token_id] + token_ids_0 + [self.sep_token_id]
        return first if token_ids_1 is None else first + token_ids_1 + [self.sep_token_id]

    def create_token_type_ids_from_sequences(self, token_ids_0: List[int],
                                             token_ids_1: Optional[List[int]] = None) -> List[int]:
        first = [0] * (len(token_ids_0) + 2)
        return first if token_ids_1 is None else first + [1] * (len(token_ids_1) + 1)

    def get_special_tokens_mask(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None,
                                already_has_special_tokens: bool = False) -> List[int]:
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        first = [1] + [0] * len(token_ids_0) + [1]
        return first if token_ids_1 is None else first + [0] * len(token_ids_1) + [1]


def load_vocab(vocab_file: str) -> Dict[str, int]:
    """token -> id from a vocab.txt (line i holds token i)."""
    with reading(vocab_file, "vocab.txt (one token a line, UTF-8)"), open(vocab_file, encoding="utf-8") as f:
        return {line.rstrip("\n"): index for index, line in enumerate(f)}


def vocab_from_tokenizer_json(path: str) -> Dict[str, int]:
    """The WordPiece vocabulary of a tokenizer.json (for folders saved without vocab.txt)."""
    with reading(path, "tokenizer.json"), open(path, encoding="utf-8") as f:
        data = json.load(f)
    model = data.get("model", {}) if isinstance(data, dict) else {}
    if model.get("type") != "WordPiece" or not isinstance(model.get("vocab"), dict):
        raise ValueError(f"{path} does not hold a WordPiece vocabulary (model type {model.get('type')!r})")
    return dict(sorted(model["vocab"].items(), key=lambda item: item[1]))


def save_vocab(vocab: Dict[str, int], save_directory: str, filename_prefix: Optional[str] = None,
               filename: str = "vocab.txt") -> Tuple[str]:
    """Write `vocab` ordered by id as `save_directory/[prefix-]vocab.txt` (or to `save_directory` if it is
    a file path), atomically; returns the path."""
    if os.path.isdir(save_directory):
        path = os.path.join(save_directory, f"{filename_prefix}-{filename}" if filename_prefix else filename)
    else:
        path = f"{filename_prefix}-{save_directory}" if filename_prefix else save_directory
    ordered = sorted(vocab.items(), key=lambda item: item[1])
    if [index for _, index in ordered] != list(range(len(ordered))):
        logger.warning("vocabulary ids are not consecutive; %s gives each token its line number", path)
    write_atomically(path, "".join(token + "\n" for token, _ in ordered).encode("utf-8"))
    return (path,)


def wordpiece_backend(vocab: Dict[str, int], *, unk_token: str, cls_token: str, sep_token: str,
                      lowercase: bool, strip_accents: Optional[bool], handle_chinese_chars: bool,
                      clean_text: bool = True, prefix: str = "##"):
    """A `tokenizers.Tokenizer` doing what BasicTokenizer + WordpieceTokenizer + the BERT layout do."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors

    for token in (unk_token, cls_token, sep_token):
        if token not in vocab:
            raise ValueError(f"special token {token!r} is not in the vocabulary")
    backend = Tokenizer(models.WordPiece(vocab, unk_token=unk_token, continuing_subword_prefix=prefix,
                                         max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(clean_text=clean_text, handle_chinese_chars=handle_chinese_chars,
                                                    strip_accents=strip_accents, lowercase=lowercase)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.post_processor = processors.TemplateProcessing(
        single=f"{cls_token}:0 $A:0 {sep_token}:0", pair=f"{cls_token}:0 $A:0 {sep_token}:0 $B:1 {sep_token}:1",
        special_tokens=[(cls_token, vocab[cls_token]), (sep_token, vocab[sep_token])])
    backend.decoder = decoders.WordPiece(prefix=prefix)
    return backend


def sync_bert_normalizer(backend, lowercase: bool, strip_accents: Optional[bool], handle_chinese_chars: bool) -> None:
    """Rebuild the backend's normalizer when its serialized options differ from the given ones (the
    init arguments win over tokenizer.json, as in the reference)."""
    if backend.normalizer is None:
        return
    from tokenizers import normalizers

    state = json.loads(backend.normalizer.__getstate__())
    wanted = {"lowercase": lowercase, "strip_accents": strip_accents, "handle_chinese_chars": handle_chinese_chars}
    if all(state.get(key, value) == value for key, value in wanted.items()):
        return
    kind = state.pop("type")
    backend.normalizer = getattr(normalizers, kind)(**{**state, **wanted})
