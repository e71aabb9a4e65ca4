"""CodeLlamaTokenizer / CodeLlamaTokenizerFast against transformers 4.37.2 (tests/fixtures/tokenizers/code_llama),
then infilling: the filling decoded from a completion drops back into the prompt, slow == fast on random
prefixes and suffixes, bad prompts and tokenizers without infilling tokens fail clearly, and a failed
infilling encode leaves the fast tokenizer as it was."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyformer.models.llama.tokenization_code_llama import CodeLlamaTokenizer, CodeLlamaTokenizerFast
from helpers.tokenizer_checks import auto_round_trip
from helpers.tokenizer_replay import Replay

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


# -- infilling beyond the recorded cases ---------------------------------------------------------
MODEL = str(REPLAY.dir / "tokenizer.model")
SLOW, FAST = CodeLlamaTokenizer(MODEL), CodeLlamaTokenizerFast(MODEL)
FILL = "<FILL_ME>"
INFILL = REPLAY.doc["infill"]  # the docs' prompt, the middle the model would write, and its ids (+ ▁<EOT>)


@pytest.mark.parametrize("tok", [SLOW, FAST], ids=["slow", "fast"])
def test_filling_drops_back_into_the_prompt(tok):
    prompt = INFILL["prompt"]
    assert tok(prompt)["input_ids"] == INFILL["prompt_ids"]
    prefix, suffix = prompt.split(FILL)
    assert tok(prefix, suffix=suffix)["input_ids"] == INFILL["prompt_ids"]
    filling = tok.decode(INFILL["completion_ids"], skip_special_tokens=True)
    assert prompt.replace(FILL, filling) == prefix + INFILL["middle"] + suffix
    assert tok.decode(INFILL["completion_ids"]).endswith("<EOT>")


def test_layout():
    prefix, suffix = "def f(x):\n    return", " x\n"
    pre, suf, mid = SLOW.prefix_id, SLOW.suffix_id, SLOW.middle_id
    plain = SLOW.encode(prefix, add_special_tokens=False)  # "▁" + prefix, as the infilling prefix
    tail = SLOW.sp_model.encode(suffix)  # no "▁" put before the suffix
    for tok in (SLOW, FAST):
        assert tok.encode(prefix + FILL + suffix) == [1, pre] + plain + [suf] + tail + [mid]
        assert tok.encode(prefix + FILL + suffix, suffix_first=True) == [1, pre, suf] + tail + [mid] + plain
        assert tok.encode(prefix + FILL + suffix, add_special_tokens=False)[0] == pre


INFILL_TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30).filter(
    lambda text: not any(token in text for token in ("<s>", "</s>", "<unk>", FILL, "<PRE>", "<SUF>", "<MID>", "<EOT>")))


@settings(max_examples=100, deadline=None)
@given(prefix=INFILL_TEXT.filter(bool), suffix=INFILL_TEXT, suffix_first=st.booleans())
def test_infilling_slow_equals_fast(prefix, suffix, suffix_first):
    """(With an empty prefix the reference's fast tokenizer adds a lone "▁" where the slow one adds nothing.)"""
    prompt = prefix + FILL + suffix
    assert SLOW.encode(prompt, suffix_first=suffix_first) == FAST.encode(prompt, suffix_first=suffix_first)


def test_bad_prompts_and_tokenizers_without_infilling():
    for tok in (SLOW, FAST):
        with pytest.raises(ValueError, match="once"):
            tok("a <FILL_ME> b <FILL_ME> c")
    for cls in (CodeLlamaTokenizer, CodeLlamaTokenizerFast):
        tok = cls(MODEL, prefix_token=None, middle_token=None, suffix_token=None, eot_token=None)
        assert tok.prefix_id is None and tok.encode("no filling") == SLOW.encode("no filling")
        with pytest.raises(ValueError, match="no infilling tokens"):
            tok("def f(<FILL_ME>)")


def test_failed_infilling_encode_leaves_the_fast_tokenizer_as_it_was():
    tok = CodeLlamaTokenizerFast(MODEL)
    line, other = REPLAY.doc["lines"][:2]
    before = tok.encode(line)
    with pytest.raises(ValueError):  # a second text is a suffix here; it is too short to cut 60 tokens from
        tok(line, other, truncation="only_second", max_length=12)
    assert tok.encode(line) == before
    assert tok.backend_tokenizer.normalizer.__getstate__() == FAST.backend_tokenizer.normalizer.__getstate__()


def test_auto_tokenizer_resolves_code_llama_by_name(tmp_path):
    fast, slow = auto_round_trip(SLOW, tmp_path, CodeLlamaTokenizerFast, CodeLlamaTokenizer)
    assert fast(INFILL["prompt"])["input_ids"] == slow(INFILL["prompt"])["input_ids"] == INFILL["prompt_ids"]
    assert fast.additional_special_tokens == slow.additional_special_tokens == ["▁<PRE>", "▁<MID>", "▁<SUF>", "▁<EOT>"]
