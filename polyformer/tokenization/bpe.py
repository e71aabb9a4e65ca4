"""Byte-level BPE, as GPT-2 introduced it: for CodeGen now, GPT-2- and BART-style tokenizers later.

Text is cut into words by `GPT2_PATTERN` (contractions, letter runs, digit runs, other runs, each
with at most one leading space, then whitespace), each word's UTF-8 bytes become printable
characters (`BYTE_TO_CHAR`, so no byte is ever unknown and a space becomes "Ġ"), and `BPE.merge`
joins neighbouring symbols by the merges file's ranks until no ranked pair is left.

- `BPE`: the merge loop with its cache (CLIP's "</w>" BPE can call `merge` on its own symbols);
- `read_vocab_json` / `read_merges` / `write_vocab_and_merges`: vocab.json and merges.txt;
- `BPEVocabulary`, `check_vocab_files`: the vocabulary half of the slow BPE tokenizers (CLIP's too);
- `DoubleSeparatorLayout`: the `<s> A </s></s> B </s>` special tokens (BART's, CLIP's);
- `ByteLevelBPETokenizer` / `ByteLevelBPETokenizerFast`: slow and fast bases of the model tokenizers;
- `byte_level_backend`: the equivalent `tokenizers` pipeline, built from vocab.json + merges.txt.
"""

from __future__ import annotations

import json
import logging
import os
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

import regex

from ..file_errors import reading
from ..hub import InvalidFileError, write_atomically
from ..saving import write_with
from .base import EncodeOptions
from .encoding import BatchEncoding, replace_lone_surrogates
from .fast import PreTrainedTokenizerFast
from .files import prefixed
from .slow import PreTrainedTokenizer

logger = logging.getLogger(__name__)

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""


def _byte_table() -> Dict[int, str]:
    """Byte -> character: printable Latin-1 bytes stand for themselves; the other 68 bytes (controls,
    space, NBSP, soft hyphen) take the code points from U+0100 on, in byte order."""
    table = {b: chr(b) for b in [*range(0x21, 0x7F), *range(0xA1, 0xAD), *range(0xAE, 0x100)]}
    others = [b for b in range(256) if b not in table]
    table.update({b: chr(0x100 + i) for i, b in enumerate(others)})
    return table


BYTE_TO_CHAR: Dict[int, str] = _byte_table()
CHAR_TO_BYTE: Dict[str, int] = {char: b for b, char in BYTE_TO_CHAR.items()}


def bytes_to_unicode() -> Dict[int, str]:
    """A copy of the byte -> character table (the name GPT-2's code gives it)."""
    return dict(BYTE_TO_CHAR)


def to_byte_chars(text: str) -> str:
    """`text`'s UTF-8 bytes, one table character each (a lone surrogate, which has none, counts as U+FFFD)."""
    return "".join(BYTE_TO_CHAR[b] for b in replace_lone_surrogates(text).encode("utf-8"))


def from_byte_chars(chars: str, errors: str = "replace") -> str:
    """Inverse of `to_byte_chars`; characters outside the table (a special token written with them)
    stand for their own UTF-8 bytes."""
    data = bytearray()
    for char in chars:
        byte = CHAR_TO_BYTE.get(char)
        if byte is None:
            data += char.encode("utf-8")
        else:
            data.append(byte)
    return data.decode("utf-8", errors=errors)


class BPE:
    """Merge ranks and the merge loop.

    `merge(symbols)` repeatedly takes the adjacent pair with the lowest rank and joins every
    occurrence of it, left to right, until no adjacent pair is ranked. A pair listed twice keeps its
    last rank. Results are cached by input (the cache is emptied when it grows past `cache_size`).
    """

    def __init__(self, merges: Iterable[Tuple[str, str]], cache_size: int = 100_000):
        self.ranks: Dict[Tuple[str, str], int] = {pair: rank for rank, pair in enumerate(merges)}
        self.cache: Dict[Tuple[str, ...], Tuple[str, ...]] = {}
        self.cache_size = cache_size

    def merge(self, symbols: Sequence[str]) -> Tuple[str, ...]:
        symbols = tuple(symbols)
        done = self.cache.get(symbols)
        if done is not None:
            return done
        word = list(symbols)
        ranks = self.ranks
        while len(word) > 1:
            pair = min(zip(word, word[1:]), key=lambda p: ranks.get(p, float("inf")))
            if pair not in ranks:
                break
            first, second = pair
            joined: List[str] = []
            i = 0
            while i < len(word):
                if word[i] == first and i + 1 < len(word) and word[i + 1] == second:
                    joined.append(first + second)
                    i += 2
                else:
                    joined.append(word[i])
                    i += 1
            word = joined
        if len(self.cache) >= self.cache_size:
            self.cache.clear()
        self.cache[symbols] = tuple(word)
        return self.cache[symbols]

    def merges(self) -> List[Tuple[str, str]]:
        """The merges by rank."""
        return sorted(self.ranks, key=self.ranks.get)


def read_vocab_json(path: str) -> Dict[str, int]:
    """vocab.json's {token: id}; an InvalidFileError naming the file when it is not that."""
    with reading(path, "vocab.json (a JSON object token -> id)"):
        with open(path, encoding="utf-8") as f:
            vocab = json.load(f)
    if not isinstance(vocab, dict):
        raise InvalidFileError(f"{path} must hold a JSON object token -> id, got {type(vocab).__name__}")
    bad = next(((token, index) for token, index in vocab.items()
                if isinstance(index, bool) or not isinstance(index, int) or index < 0), None)
    if bad is not None:
        raise InvalidFileError(f"{path}: token {bad[0]!r} has id {bad[1]!r}; ids must be non-negative integers")
    return vocab


def read_merges(path: str) -> List[Tuple[str, str]]:
    """The merges of a merges.txt: one "left right" pair a line, after an optional "#version" line."""
    with reading(path, "merges.txt"), open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    if lines and lines[0].startswith("#version"):
        lines = lines[1:]
    merges = []
    for number, line in enumerate(lines, start=1):
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2:
            raise ValueError(f"{path}, merge {number}: expected two symbols separated by a space, got {line!r}")
        merges.append((parts[0], parts[1]))
    return merges


def write_vocab_and_merges(vocab: Dict[str, int], merges: Sequence[Tuple[str, str]], save_directory: str,
                           filename_prefix: Optional[str] = None) -> Tuple[str, str]:
    """Write `[prefix-]vocab.json` (sorted keys, indented) and `[prefix-]merges.txt` ("#version: 0.2"
    then one merge a line), each atomically, as the reference's slow tokenizers do."""
    if not os.path.isdir(save_directory):
        raise NotADirectoryError(f"save_directory {save_directory!r} is not a folder")
    vocab_file = prefixed(save_directory, filename_prefix, "vocab.json")
    merges_file = prefixed(save_directory, filename_prefix, "merges.txt")
    text = json.dumps(vocab, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    write_atomically(vocab_file, text.encode("utf-8"))
    lines = "".join(f"{left} {right}\n" for left, right in merges)
    write_atomically(merges_file, ("#version: 0.2\n" + lines).encode("utf-8"))
    return vocab_file, merges_file


def byte_level_backend(vocab: Dict[str, int], merges: List[Tuple[str, str]], add_prefix_space: bool):
    """A `tokenizers.Tokenizer` doing what `ByteLevelBPETokenizer` does (no special tokens added)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors

    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges, dropout=None, continuing_subword_prefix="",
                                   end_of_word_suffix="", fuse_unk=False))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=add_prefix_space)
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    return backend


def set_component_option(backend, component: str, module, **wanted) -> None:
    """Rebuild `backend.<component>` (e.g. its pre_tokenizer) when its serialized options differ from
    `wanted` (the init arguments win over tokenizer.json, as in the reference)."""
    current = getattr(backend, component)
    if current is None:
        return
    state = json.loads(current.__getstate__())
    if all(state.get(key, value) == value for key, value in wanted.items()):
        return
    kind = state.pop("type")
    setattr(backend, component, getattr(module, kind)(**{**state, **wanted}))


def check_vocab_files(tokenizer: str, **paths: Optional[str]) -> None:
    """Fail, naming the argument, when a vocab.json / merges.txt path given to `tokenizer` is not a file."""
    for name, path in paths.items():
        if path is None or not os.path.isfile(path):
            raise ValueError(f"{name}: no file at {path!r}; pass the paths of vocab.json and merges.txt, or load a "
                             f"saved tokenizer with {tokenizer}.from_pretrained(folder or Hub id)")


class BPEVocabulary:
    """The vocabulary of a slow BPE tokenizer (byte-level BPE, CLIP's): `encoder` (vocab.json, token -> id),
    `decoder` (id -> token) and `_merger` (the `BPE` of the merges), set by `_read_vocabulary`."""

    def _read_vocabulary(self, vocab_file: str, merges: List[Tuple[str, str]]) -> None:
        self.encoder = read_vocab_json(vocab_file)
        self.decoder = {index: token for token, index in self.encoder.items()}
        self._merger = BPE(merges)

    @property
    def bpe_ranks(self) -> Dict[Tuple[str, str], int]:
        return self._merger.ranks

    @property
    def vocab_size(self) -> int:
        return len(self.encoder)

    def get_vocab(self) -> Dict[str, int]:
        return dict(self.encoder, **self.added_tokens_encoder)

    def _convert_token_to_id(self, token: str) -> int:
        return self.encoder.get(token, self.encoder.get(self.unk_token))

    def _convert_id_to_token(self, index: int) -> Optional[str]:
        return self.decoder.get(index)


class DoubleSeparatorLayout:
    """`<s> A </s>` and `<s> A </s></s> B </s>` (BART's, CLIP's), token types all 0; for slow and fast
    tokenizers. `layout_tokens` names the ids of `<s>` and `</s>`: cls / sep (BART), bos / eos (CLIP)."""

    layout_tokens = ("cls_token_id", "sep_token_id")

    def build_inputs_with_special_tokens(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None):
        start, end = (getattr(self, name) for name in self.layout_tokens)
        ids = [start] + token_ids_0 + [end]
        return ids if token_ids_1 is None else ids + [end] + token_ids_1 + [end]

    def create_token_type_ids_from_sequences(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None):
        return [0] * len(self.build_inputs_with_special_tokens(token_ids_0, token_ids_1))

    def get_special_tokens_mask(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None,
                                already_has_special_tokens: bool = False) -> List[int]:
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        mask = [1] + [0] * len(token_ids_0) + [1]
        return mask if token_ids_1 is None else mask + [1] + [0] * len(token_ids_1) + [1]


class ByteLevelBPETokenizer(BPEVocabulary, PreTrainedTokenizer):
    """Pure-Python byte-level BPE tokenizer (vocab.json + merges.txt).

    Args:
        vocab_file: vocab.json, token -> id.
        merges_file: merges.txt.
        errors ("replace"): how invalid UTF-8 is decoded (see `bytes.decode`).
        add_prefix_space (False): put a space before the text, so its first word is tokenized like
            any other; also settable per call (`tok(text, add_prefix_space=True)`). Pre-split words
            (`is_split_into_words=True`) always get one each.
        Special tokens and the rest: see `PreTrainedTokenizer`.
    """

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt"}

    def __init__(self, vocab_file: str, merges_file: str, errors: str = "replace", add_prefix_space: bool = False,
                 **kwargs):
        check_vocab_files(type(self).__name__, vocab_file=vocab_file, merges_file=merges_file)
        self._read_vocabulary(vocab_file, read_merges(merges_file))
        self.errors = errors
        self.add_prefix_space = add_prefix_space
        self.pattern = regex.compile(GPT2_PATTERN)
        super().__init__(errors=errors, add_prefix_space=add_prefix_space, **kwargs)

    @property
    def bpe(self) -> BPE:
        """The merges and the merge loop."""
        return self._merger

    def prepare_for_tokenization(self, text: str, is_split_into_words: bool = False, **kwargs):
        if kwargs.pop("add_prefix_space", self.add_prefix_space) or is_split_into_words:
            text = " " + text
        return text, kwargs

    def _tokenize(self, text: str, **kwargs) -> List[str]:
        tokens: List[str] = []
        for word in self.pattern.findall(text):
            tokens.extend(self.bpe.merge(to_byte_chars(word)))
        return tokens

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return from_byte_chars("".join(tokens), self.errors)

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> Tuple[str, str]:
        merges = self.bpe.merges()
        if [self.bpe.ranks[pair] for pair in merges] != list(range(len(merges))):
            logger.warning("BPE merge ranks are not consecutive; merges.txt gives each merge its line number")
        return write_vocab_and_merges(self.encoder, merges, save_directory, filename_prefix)


class ByteLevelBPETokenizerFast(PreTrainedTokenizerFast):
    """`tokenizers`-backed byte-level BPE tokenizer (tokenizer.json, or vocab.json + merges.txt).

    Args:
        vocab_file, merges_file: used when there is no `tokenizer_file`.
        tokenizer_file: a tokenizer.json.
        add_prefix_space (False): as the slow tokenizer, but fixed at construction (it rewrites the
            backend's pre-tokenizer); pre-split input (`is_split_into_words=True`) needs it True.
    """

    vocab_files_names = {"vocab_file": "vocab.json", "merges_file": "merges.txt", "tokenizer_file": "tokenizer.json"}

    def __init__(self, vocab_file: Optional[str] = None, merges_file: Optional[str] = None,
                 tokenizer_file: Optional[str] = None, add_prefix_space: bool = False, **kwargs):
        super().__init__(vocab_file, merges_file, tokenizer_file=tokenizer_file, add_prefix_space=add_prefix_space,
                         **kwargs)
        from tokenizers import pre_tokenizers

        set_component_option(self.backend_tokenizer, "pre_tokenizer", pre_tokenizers, add_prefix_space=add_prefix_space)
        self.add_prefix_space = add_prefix_space

    def _backend_from_vocab(self, vocab_file: Optional[str] = None, merges_file: Optional[str] = None, *,
                            add_prefix_space: bool = False, **kwargs):
        for name, path in (("vocab_file", vocab_file), ("merges_file", merges_file)):
            if path is None or not os.path.isfile(path):
                raise ValueError(f"{type(self).__name__} needs tokenizer_file=... (tokenizer.json) or vocab_file=... "
                                 f"and merges_file=... (vocab.json, merges.txt); no file at {name}={path!r}")
        return byte_level_backend(read_vocab_json(vocab_file), read_merges(merges_file), add_prefix_space)

    def _batch_encode_plus(self, items: List, options: EncodeOptions, **kwargs) -> BatchEncoding:
        if "add_prefix_space" in kwargs:
            raise TypeError(f"{type(self).__name__} takes add_prefix_space at construction only "
                            f"({type(self).__name__}.from_pretrained(..., add_prefix_space=True)); the slow "
                            "tokenizer also takes it per call")
        if options.is_split_into_words and not self.add_prefix_space:
            raise ValueError(f"{type(self).__name__} needs add_prefix_space=True at construction to encode pre-split "
                             "words (is_split_into_words=True)")
        return super()._batch_encode_plus(items, options, **kwargs)

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> Tuple[str, ...]:
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a folder")
        model = self.backend_tokenizer.model
        return tuple(write_with(save_directory, lambda folder: model.save(folder, filename_prefix)))
