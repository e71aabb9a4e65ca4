"""SentencePiece models (tokenizer.model): the slow base on the `sentencepiece` library, and the
conversion of a model into the equivalent `tokenizers` pipeline for fast tokenizers.

- `read_model_info` reads the few ModelProto fields the conversion needs straight from the protobuf
  wire format, and `load_processor` can switch the model's dummy prefix off the same way, so no
  `protobuf` package is needed;
- `SentencePieceTokenizer`: vocabulary, ids, pickling and saving of a slow tokenizer; its
  `_tokenize` has the "legacy" and the newer handling of the text's first "▁" (see there);
- `llama_backend`: tokenizer.model -> `tokenizers.Tokenizer` as Llama's fast tokenizer builds it.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Dict, Iterator, List, Optional, Tuple

import sentencepiece as spm

from ..file_errors import reading
from ..hub import write_atomically
from .files import prefixed
from .encoding import replace_lone_surrogates
from .slow import PreTrainedTokenizer

logger = logging.getLogger(__name__)

SPIECE_UNDERLINE = "▁"

_UNIGRAM, _BPE = 1, 2
# A ModelProto tail that merges `normalizer_spec { add_dummy_prefix: false }` into the model: field 3
# (normalizer_spec, length-delimited, 2 bytes) holding field 3 (add_dummy_prefix, varint) = 0.
_NO_DUMMY_PREFIX = bytes([0x1A, 0x02, 0x18, 0x00])


def _varint(data: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7


def _fields(data: bytes) -> Iterator[Tuple[int, Any]]:
    """(field number, value) of a serialized protobuf message: an int for varints, bytes otherwise."""
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        wire = key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
        elif wire == 2:
            size, pos = _varint(data, pos)
            value, pos = data[pos:pos + size], pos + size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            value, pos = data[pos:pos + size], pos + size
        else:
            raise ValueError(f"not a sentencepiece model: protobuf wire type {wire} at byte {pos}")
        yield key >> 3, value


@dataclasses.dataclass
class ModelInfo:
    """What a tokenizer.model says about its training (defaults as in sentencepiece_model.proto)."""

    model_type: int = _UNIGRAM  # TrainerSpec.model_type: 1 unigram, 2 BPE, 3 word, 4 char
    byte_fallback: bool = False  # TrainerSpec.byte_fallback
    unk_piece: str = "<unk>"  # TrainerSpec.unk_piece
    add_dummy_prefix: bool = True  # NormalizerSpec.add_dummy_prefix


def read_model_info(proto: bytes) -> ModelInfo:
    """The ModelInfo of a serialized ModelProto (later occurrences of a field win, as protobuf merges)."""
    info = ModelInfo()
    try:
        for number, value in _fields(proto):
            if number == 2:  # trainer_spec
                for inner, item in _fields(value):
                    if inner == 3:
                        info.model_type = item
                    elif inner == 35:
                        info.byte_fallback = bool(item)
                    elif inner == 45:
                        info.unk_piece = item.decode("utf-8")
            elif number == 3:  # normalizer_spec
                for inner, item in _fields(value):
                    if inner == 3:
                        info.add_dummy_prefix = bool(item)
    except (IndexError, TypeError, AttributeError, UnicodeDecodeError) as err:
        raise ValueError(f"not a sentencepiece model ({err})") from err
    return info


def load_processor(vocab_file: str, sp_model_kwargs: Optional[Dict[str, Any]] = None,
                   dummy_prefix: bool = True) -> spm.SentencePieceProcessor:
    """A SentencePieceProcessor for `vocab_file`; with `dummy_prefix=False` the model's add_dummy_prefix
    is turned off (text is no longer given a leading "▁")."""
    if vocab_file is None or not os.path.isfile(vocab_file):
        raise ValueError(f"vocab_file: no sentencepiece model at {vocab_file!r}; pass the path of a tokenizer.model, "
                         "or load a saved tokenizer with from_pretrained(folder or Hub id)")
    with open(vocab_file, "rb") as f:
        proto = f.read()
    processor = spm.SentencePieceProcessor(**(sp_model_kwargs or {}))
    with reading(vocab_file, "sentencepiece model (tokenizer.model)"):
        processor.LoadFromSerializedProto(proto if dummy_prefix else proto + _NO_DUMMY_PREFIX)
    return processor


class SentencePieceTokenizer(PreTrainedTokenizer):
    """Base of the pure-Python tokenizers of a sentencepiece model.

    Subclasses set `legacy` (an attribute, before calling this `__init__`): True keeps the model's
    own dummy prefix, so every piece of text between added tokens starts a new word ("Hello<s>world"
    gives "▁world"); False turns it off and `_tokenize` adds "▁" only where the text starts with
    one (see `tokenize_with_prefix`).

    Args:
        vocab_file: the tokenizer.model.
        sp_model_kwargs: passed to `sentencepiece.SentencePieceProcessor` (e.g. enable_sampling,
            nbest_size, alpha for subword regularization).
    """

    vocab_files_names = {"vocab_file": "tokenizer.model"}
    legacy = True

    def __init__(self, vocab_file: str, sp_model_kwargs: Optional[Dict[str, Any]] = None, **kwargs):
        self.vocab_file = vocab_file
        self.sp_model_kwargs = {} if sp_model_kwargs is None else sp_model_kwargs
        self.sp_model = load_processor(vocab_file, self.sp_model_kwargs, dummy_prefix=self.legacy)
        super().__init__(sp_model_kwargs=self.sp_model_kwargs, **kwargs)

    def __getstate__(self) -> Dict[str, Any]:
        state = self.__dict__.copy()
        state["sp_model"] = self.sp_model.serialized_model_proto()
        return state

    def __setstate__(self, state: Dict[str, Any]) -> None:
        proto = state["sp_model"]
        self.__dict__.update(state)
        self.sp_model = spm.SentencePieceProcessor(**self.sp_model_kwargs)
        self.sp_model.LoadFromSerializedProto(proto)

    @property
    def vocab_size(self) -> int:
        return self.sp_model.get_piece_size()

    def get_vocab(self) -> Dict[str, int]:
        vocab = {self._id_to_token(index): index for index in range(self.vocab_size)}
        vocab.update(self.added_tokens_encoder)
        return vocab

    @property
    def unk_token_length(self) -> int:
        return len(self.sp_model.encode(str(self.unk_token)))

    def tokenize_with_prefix(self, text: str, **kwargs) -> List[str]:
        """`tokenize` for `legacy=False`: the text gets one leading "▁" (its own "▁" are read as
        spaces), which is dropped again when a special token follows it directly."""
        tokens = super().tokenize(SPIECE_UNDERLINE + text.replace(SPIECE_UNDERLINE, " "), **kwargs)
        if len(tokens) > 1 and tokens[0] == SPIECE_UNDERLINE and tokens[1] in self.all_special_tokens:
            tokens = tokens[1:]
        return tokens

    def _tokenize(self, text: str, **kwargs) -> List[str]:
        """Pieces of `text`. Without the dummy prefix, sentencepiece would drop a leading "▁" or space,
        so such text is encoded behind the unknown token's text, whose pieces are then removed. A lone
        surrogate, which sentencepiece cannot take, is encoded as U+FFFD."""
        text = replace_lone_surrogates(text)
        if self.legacy or not text.startswith((SPIECE_UNDERLINE, " ")):
            return self.sp_model.encode(text, out_type=str)
        tokens = self.sp_model.encode(str(self.unk_token) + text, out_type=str)
        skip = self.unk_token_length
        return tokens[skip:] if len(tokens) >= skip else tokens

    def _convert_token_to_id(self, token: str) -> int:
        return self.sp_model.piece_to_id(token)

    def _convert_id_to_token(self, index: int) -> str:
        return self.sp_model.id_to_piece(index)

    def _pieces_to_string(self, tokens: List[str], space_before_special: bool) -> str:
        """Decode pieces with sentencepiece, special tokens kept as they are (after a space when
        `space_before_special` and the previous token is not special); the first piece's "▁" dropped."""
        if not tokens:
            return ""
        tokens = [tokens[0][1:] if tokens[0].startswith(SPIECE_UNDERLINE) else tokens[0]] + tokens[1:]
        special = set(self.all_special_tokens)
        out, run, previous_special = "", [], False
        for i, token in enumerate(tokens):
            if token in special:
                if space_before_special and not previous_special and i:
                    out += " "
                out += self.sp_model.decode(run) + token
                run, previous_special = [], True
            else:
                run.append(token)
                previous_special = False
        return out + self.sp_model.decode(run)

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> Tuple[str]:
        """Copy the tokenizer.model (or write the loaded model when the file is gone)."""
        if not os.path.isdir(save_directory):
            raise NotADirectoryError(f"save_directory {save_directory!r} is not a folder")
        return (copy_model_file(self.vocab_file, save_directory, filename_prefix,
                                fallback=self.sp_model.serialized_model_proto),)


def copy_model_file(vocab_file: Optional[str], save_directory: str, filename_prefix: Optional[str],
                    fallback=None) -> str:
    """Copy `vocab_file` to `save_directory/[prefix-]tokenizer.model` (nothing when it is that file);
    when it does not exist, write `fallback()` (the serialized model) if given."""
    path = prefixed(save_directory, filename_prefix, "tokenizer.model")
    if vocab_file and os.path.isfile(vocab_file):
        if os.path.abspath(vocab_file) != os.path.abspath(path):
            with open(vocab_file, "rb") as f:
                write_atomically(path, f.read())
    elif fallback is not None:
        write_atomically(path, fallback())
    else:
        raise ValueError("this fast tokenizer has no tokenizer.model to save (it was loaded from tokenizer.json "
                         "alone); save with legacy_format=False")
    return path


def bpe_merges_by_score(vocab: Dict[str, int], scores: List[Tuple[str, float]]) -> List[Tuple[str, str]]:
    """The merges of a sentencepiece BPE model: every split of a piece into two pieces of the
    vocabulary, best-scored piece first (ties: in id order, then by the two halves' ids)."""
    found = []
    for piece, score in scores:
        halves = [(piece[:i], piece[i:]) for i in range(1, len(piece)) if piece[:i] in vocab and piece[i:] in vocab]
        halves.sort(key=lambda pair: (vocab[pair[0]], vocab[pair[1]]))
        found += [(score, pair) for pair in halves]
    found.sort(key=lambda item: item[0], reverse=True)
    return [pair for _, pair in found]


def llama_backend(vocab_file: str):
    """The `tokenizers.Tokenizer` Llama's fast tokenizer uses for a tokenizer.model: the model's
    pieces and scores (ids 0-2 named <unk>, <s>, </s>) as BPE (merges from the scores) or Unigram, with
    byte fallback; "▁" put before the text and for every space; decoding undoes both."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, normalizers

    processor = load_processor(vocab_file)
    with open(vocab_file, "rb") as f:
        info = read_model_info(f.read())
    size = processor.get_piece_size()
    scores = [("<unk>", 0.0), ("<s>", 0.0), ("</s>", 0.0)][:size]
    scores += [(processor.id_to_piece(i), processor.get_score(i)) for i in range(len(scores), size)]
    if info.model_type == _UNIGRAM:
        backend = Tokenizer(models.Unigram(scores, 0, byte_fallback=True))
    elif info.model_type == _BPE:
        pieces = {processor.id_to_piece(i): i for i in range(size)}
        merges = bpe_merges_by_score(pieces, scores)
        vocab = {piece: i for i, (piece, _) in enumerate(scores)}
        backend = Tokenizer(models.BPE(vocab, merges, unk_token=info.unk_piece, fuse_unk=True, byte_fallback=True))
        backend.add_special_tokens([AddedToken(token, normalized=False, special=True)
                                    for token in ("<unk>", "<s>", "</s>")])
    else:
        raise ValueError(f"{vocab_file}: a sentencepiece model of type {info.model_type} (not unigram nor BPE) "
                         "cannot be converted to a fast tokenizer")
    backend.normalizer = llama_normalizer()
    backend.decoder = decoders.Sequence([decoders.Replace(SPIECE_UNDERLINE, " "), decoders.ByteFallback(),
                                         decoders.Fuse(), decoders.Strip(content=" ", left=1, right=0)])
    return backend


def llama_normalizer():
    """"▁" before the text, and in place of every space."""
    from tokenizers import normalizers

    return normalizers.Sequence([normalizers.Prepend(prepend=SPIECE_UNDERLINE),
                                 normalizers.Replace(pattern=" ", content=SPIECE_UNDERLINE)])
