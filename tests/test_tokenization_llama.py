"""LlamaTokenizer / LlamaTokenizerFast against transformers 4.37.2 (tests/fixtures/tokenizers/llama)."""

from __future__ import annotations

from polyformer.models.llama.tokenization import LlamaTokenizer, LlamaTokenizerFast
from tokenizer_replay import Replay

CLASSES = {"slow": LlamaTokenizer, "fast": LlamaTokenizerFast}
REPLAY = Replay("llama", CLASSES)


(folders, make, test_matches_reference, test_deviations_still_differ, test_constructions,
 test_save_like_reference) = REPLAY.tests()
