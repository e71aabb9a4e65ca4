"""Tokenizers shared by every model family.

- `encoding`: AddedToken, BatchEncoding, padding / truncation strategies, tensor conversion
- `base`: PreTrainedTokenizerBase (__call__, padding, truncation, tensors, decode, save/load)
- `special_tokens`: the special-token attributes (cls_token, cls_token_id, ...) and add_tokens
- `files`: tokenizer_config.json / special_tokens_map.json / added_tokens.json reading and writing
- `slow`: PreTrainedTokenizer (pure Python)      - `fast`: PreTrainedTokenizerFast (`tokenizers`)
- `wordpiece`: BERT's basic tokenizer, WordPiece, the [CLS]/[SEP] layout and its `tokenizers` pipeline
- `bpe`: GPT-2's byte-level BPE (bytes <-> characters, pre-tokenization regex, merge loop) and its pipeline
- `gpt2`: GPT2Tokenizer / GPT2TokenizerFast (and the "<|endoftext|>" bases CodeGen's tokenizers share)
- `sentencepiece`: sentencepiece models (slow base; tokenizer.model -> `tokenizers` pipeline, as Llama's)

Names are imported lazily, so `import polyformer.tokenization` loads neither `tokenizers` nor a framework.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "AddedToken": ".encoding", "BatchEncoding": ".encoding", "PaddingStrategy": ".encoding",
    "TruncationStrategy": ".encoding", "TensorType": ".encoding", "PreTrainedTokenizerBase": ".base",
    "PreTrainedTokenizer": ".slow", "PreTrainedTokenizerFast": ".fast",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name], __name__), name)
