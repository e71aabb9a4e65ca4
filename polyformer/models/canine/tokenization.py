"""CANINE's tokenizer: each character is a token and its id is its Unicode code point; no vocabulary file.

Special tokens are private-use code points: [CLS] U+E000 (also BOS), [SEP] U+E001 (also EOS), [MASK]
U+E003, and padding U+0000. Inputs are laid out as `[CLS] A [SEP]` / `[CLS] A [SEP] B [SEP]`, with
token_type_ids 0 for the first part and 1 for the second.

    >>> tok = CanineTokenizer()
    >>> tok("hi")["input_ids"]
    [57344, 104, 105, 57345]
"""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from ...tokenization.encoding import AddedToken
from ...tokenization.slow import PreTrainedTokenizer

__all__ = ["CanineTokenizer"]

UNICODE_VOCAB_SIZE = 0x110000
PAD, CLS, SEP, BOS, MASK, RESERVED = 0, 0xE000, 0xE001, 0xE002, 0xE003, 0xE004
# how convert_ids_to_tokens names the special code points that are not special tokens' ids
SPECIAL_CODEPOINTS: Dict[int, str] = {CLS: "[CLS]", SEP: "[SEP]", BOS: "[BOS]", MASK: "[MASK]", PAD: "[PAD]",
                                      RESERVED: "[RESERVED]"}

_UNICODE_VOCAB: Dict[str, int] = {}  # chr(i) -> i for every code point, built on first use


def _as_token(value, lstrip: bool = False):
    return AddedToken(value, lstrip=lstrip, rstrip=False, normalized=True, special=True) if isinstance(value, str) \
        else value


class CanineTokenizer(PreTrainedTokenizer):
    """Splits text into characters and maps each to its code point (ord).

    Args:
        bos_token, cls_token ("\\ue000"), eos_token, sep_token ("\\ue001"), pad_token ("\\x00"),
            mask_token ("\\ue003", which takes the space before it, like a word).
        add_prefix_space (False): kept for compatibility; characters need no prefix space.
        model_max_length (2048): longest input; `truncation=True` cuts to it.
    """

    def __init__(self, bos_token=chr(CLS), eos_token=chr(SEP), sep_token=chr(SEP), cls_token=chr(CLS),
                 pad_token=chr(PAD), mask_token=chr(MASK), add_prefix_space: bool = False,
                 model_max_length: int = 2048, **kwargs):
        super().__init__(bos_token=_as_token(bos_token), eos_token=_as_token(eos_token), sep_token=_as_token(sep_token),
                         cls_token=_as_token(cls_token), pad_token=_as_token(pad_token),
                         mask_token=_as_token(mask_token, lstrip=True), add_prefix_space=add_prefix_space,
                         model_max_length=model_max_length, **kwargs)

    @property
    def vocab_size(self) -> int:
        return UNICODE_VOCAB_SIZE

    def get_vocab(self) -> Dict[str, int]:
        """Every code point's character (1,114,112 entries), then the added tokens."""
        if not _UNICODE_VOCAB:
            _UNICODE_VOCAB.update((chr(i), i) for i in range(UNICODE_VOCAB_SIZE))
        return {**_UNICODE_VOCAB, **self.added_tokens_encoder}

    def __len__(self) -> int:
        return UNICODE_VOCAB_SIZE + sum(1 for token in self._added_tokens_encoder if len(token) != 1)

    def _tokenize(self, text: str, **kwargs) -> List[str]:
        return list(text)

    def _convert_token_to_id(self, token: str) -> int:
        if not isinstance(token, str) or len(token) != 1:
            raise ValueError(f"invalid token: {token!r} (CANINE's tokens are single characters)")
        return ord(token)

    def _convert_id_to_token(self, index: int) -> str:
        if index in SPECIAL_CODEPOINTS:
            return SPECIAL_CODEPOINTS[index]
        if not isinstance(index, int) or not 0 <= index < UNICODE_VOCAB_SIZE:
            raise ValueError(f"invalid id: {index!r} (CANINE's ids are Unicode code points, 0 to 0x10FFFF)")
        return chr(index)

    def convert_tokens_to_string(self, tokens: List[str]) -> str:
        return "".join(tokens)

    def build_inputs_with_special_tokens(self, token_ids_0: List[int],
                                         token_ids_1: Optional[List[int]] = None) -> List[int]:
        """`[CLS] A [SEP]`, or `[CLS] A [SEP] B [SEP]`."""
        ids = [self.cls_token_id] + token_ids_0 + [self.sep_token_id]
        return ids if token_ids_1 is None else ids + token_ids_1 + [self.sep_token_id]

    def get_special_tokens_mask(self, token_ids_0: List[int], token_ids_1: Optional[List[int]] = None,
                                already_has_special_tokens: bool = False) -> List[int]:
        if already_has_special_tokens:
            return super().get_special_tokens_mask(token_ids_0, token_ids_1, already_has_special_tokens=True)
        mask = [1] + [0] * len(token_ids_0) + [1]
        return mask if token_ids_1 is None else mask + [0] * len(token_ids_1) + [1]

    def create_token_type_ids_from_sequences(self, token_ids_0: List[int],
                                             token_ids_1: Optional[List[int]] = None) -> List[int]:
        """0 for `[CLS] A [SEP]`, 1 for `B [SEP]`."""
        types = [0] * (len(token_ids_0) + 2)
        return types if token_ids_1 is None else types + [1] * (len(token_ids_1) + 1)

    def save_vocabulary(self, save_directory: str, filename_prefix: Optional[str] = None) -> Tuple[str, ...]:
        return ()  # no vocabulary file: the vocabulary is Unicode
