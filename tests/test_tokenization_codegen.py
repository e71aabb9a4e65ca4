"""CodeGenTokenizer / CodeGenTokenizerFast against transformers 4.37.2 (tests/fixtures/tokenizers/codegen)."""

from __future__ import annotations

from polyformer.models.codegen.tokenization import CodeGenTokenizer, CodeGenTokenizerFast
from tokenizer_replay import Replay

CLASSES = {"slow": CodeGenTokenizer, "fast": CodeGenTokenizerFast}
REPLAY = Replay("codegen", CLASSES)


(folders, make, test_matches_reference, test_deviations_still_differ, test_constructions,
 test_save_like_reference) = REPLAY.tests()
