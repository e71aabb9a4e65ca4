"""CodeLlamaTokenizer / CodeLlamaTokenizerFast against transformers 4.37.2 (tests/fixtures/tokenizers/code_llama)."""

from __future__ import annotations

from polyformer.models.llama.tokenization_code_llama import CodeLlamaTokenizer, CodeLlamaTokenizerFast
from tokenizer_replay import Replay

CLASSES = {"slow": CodeLlamaTokenizer, "fast": CodeLlamaTokenizerFast}
LEAK = ("the reference's CodeLlamaTokenizerFast leaves its infilling normalizer and post-processor set when an "
        "infilling encode fails (here step 6's truncation error), so later calls lose <s> and the leading '▁'; "
        "polyformer restores them in a finally")
GROWTH = ("the reference appends the infilling tokens to additional_special_tokens at every construction (twice "
          "when the fast tokenizer is built from tokenizer.model), so its lists repeat them and grow with each "
          "save and load; polyformer keeps each token once")
INFILL = ["▁<PRE>", "▁<MID>", "▁<SUF>", "▁<EOT>"]
DEVIATIONS = {
    ("truncation.right", 7, "fast"): (LEAK, "slow"),
    ("truncation.left", 7, "fast"): (LEAK, "slow"),
    ("truncation.right", 8, "fast"): (LEAK + " (max_length=1 leaves only <s>, as LlamaTokenizerFast gives)",
                                      {"__encoding__": {"input_ids": [1], "attention_mask": [1]}}),
    ("truncation.left", 8, "fast"): (LEAK + " (max_length=1 leaves only <s>, as LlamaTokenizerFast gives)",
                                     {"__encoding__": {"input_ids": [1], "attention_mask": [1]}}),
    **{("special", step, "fast"): (GROWTH, "slow") for step in range(22, 27)},
    ("reload.saved_slow", 1, "slow"): (GROWTH, INFILL),
    ("reload.saved_slow", 1, "fast"): (GROWTH, INFILL),
    ("reload.saved_fast", 1, "slow"): (GROWTH, INFILL),
    ("reload.saved_fast", 1, "fast"): (GROWTH, INFILL),
    ("reload.json_only", 1, "fast"): (GROWTH, INFILL),
    ("special", 0, "fast"): ("the reference's fast build_inputs_with_special_tokens adds an int to a list "
                             "(TypeError); polyformer builds <s> A like the slow one", "slow"),
    ("special", 1, "fast"): ("same as above, for a pair", "slow"),
    ("special", 8, "fast"): ("the broken build_inputs_with_special_tokens above, inside prepare_for_model", "slow"),
}


def once(config: dict) -> dict:
    """The saved config with each additional special token once."""
    return {**config, "additional_special_tokens": list(dict.fromkeys(config["additional_special_tokens"]))}


SAVED_DEVIATIONS = {("saved_fast", name): (GROWTH, once) for name in ("special_tokens_map.json",
                                                                       "tokenizer_config.json")}
REPLAY = Replay("code_llama", CLASSES, DEVIATIONS, SAVED_DEVIATIONS)


(folders, make, test_matches_reference, test_deviations_still_differ, test_constructions,
 test_save_like_reference) = REPLAY.tests()
