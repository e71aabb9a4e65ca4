"""MvpTokenizer / MvpTokenizerFast against transformers 4.37.2 (tests/fixtures/tokenizers/mvp, a byte-level BPE
trained on the standard library with BART's special ids), then properties: slow == fast, decode(encode(x)) == x,
the `<s> A </s></s> B </s>` layout, `<mask>`, the prefix-space rules, AutoTokenizer."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyformer.models.mvp.tokenization import MvpTokenizer, MvpTokenizerFast
from helpers.tokenizer_checks import auto_round_trip
from helpers.tokenizer_replay import Replay

CLASSES = {"slow": MvpTokenizer, "fast": MvpTokenizerFast}
NOT_NORMALIZED = ("the reference's tokenizers 0.15 re-adds the special tokens of a tokenizer built from tokenizer.json "
                  "alone as not normalized (bos, eos, unk, pad, mask: the first of each content); tokenizers >= 0.19 "
                  "keeps an added token's flags, so polyformer keeps the file's (normalized=true). No normalizer "
                  "is set, so matching is the same")


def _normalized(tokens):
    return [{**token, "normalized": True} for token in tokens] if isinstance(tokens, list) else \
        {name: {**token, "normalized": True} for name, token in tokens.items()}


SAVED_DEVIATIONS = {
    ("json_only", "special_tokens_map.json"): (NOT_NORMALIZED, _normalized),
    ("json_only", "tokenizer.json"): (NOT_NORMALIZED, lambda data: {**data, "added_tokens": _normalized(data["added_tokens"])}),
    ("json_only", "tokenizer_config.json"): (
        NOT_NORMALIZED, lambda data: {**data, "added_tokens_decoder": _normalized(data["added_tokens_decoder"])}),
}
REPLAY = Replay("mvp", CLASSES, saved_deviations=SAVED_DEVIATIONS)

(folders, make, test_matches_reference, test_deviations_still_differ, test_constructions,
 test_save_like_reference) = REPLAY.tests()


# -- properties and behaviour beyond the recorded cases ---------------------------------------
VOCAB, MERGES = str(REPLAY.dir / "vocab.json"), str(REPLAY.dir / "merges.txt")
SPECIALS = ("<s>", "</s>", "<pad>", "<unk>", "<mask>")
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60).filter(
    lambda text: not any(token in text for token in SPECIALS))
SETTINGS = settings(max_examples=150, deadline=None)
SLOW, FAST = MvpTokenizer(VOCAB, MERGES), MvpTokenizerFast(VOCAB, MERGES)


@SETTINGS
@given(text=TEXT, pair=TEXT.filter(bool))  # an empty pair counts as none
def test_slow_equals_fast_and_decode_gives_the_text_back(text, pair):
    ids = SLOW.encode(text)
    assert FAST.encode(text) == ids and ids[0] == 0 and ids[-1] == 2
    assert SLOW.encode(text, pair) == FAST.encode(text, pair) == ids + [2] + SLOW.encode(pair)[1:]
    for tok in (SLOW, FAST):
        assert tok.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False) == text


def test_layout_and_mask():
    for tok in (SLOW, FAST):
        body = tok.encode("Hello world", add_special_tokens=False)
        assert tok("Hello world", "again")["input_ids"] == [0, *body, 2, 2, *tok.encode("again")[1:-1], 2]
        assert "token_type_ids" not in tok("Hello world") and tok.model_input_names == ["input_ids", "attention_mask"]
        hello = tok.encode("Hello", add_special_tokens=False)
        assert tok.encode("Hello <mask>", add_special_tokens=False) == hello + [tok.mask_token_id]  # the space is eaten
        assert tok.mask_token == "<mask>" and tok.mask_token_id == len(tok) - 1
        assert (tok.bos_token_id, tok.pad_token_id, tok.eos_token_id, tok.unk_token_id) == (0, 1, 2, 3)
    assert SLOW(" Hello")["input_ids"] == SLOW("Hello", add_prefix_space=True)["input_ids"] != SLOW("Hello")["input_ids"]


def test_prefix_space_on_fast_is_set_at_init():
    with pytest.raises(ValueError, match="add_prefix_space=True"):
        FAST(["Hello", "world"], is_split_into_words=True)
    prefixed = MvpTokenizerFast(VOCAB, MERGES, add_prefix_space=True)
    assert prefixed(["Hello", "world"], is_split_into_words=True)["input_ids"] == SLOW(" Hello world")["input_ids"]


def test_auto_tokenizer(tmp_path):
    fast, slow = auto_round_trip(SLOW, tmp_path, MvpTokenizerFast, MvpTokenizer)
    text = REPLAY.doc["lines"][3]
    assert fast(text) == slow(text) == SLOW(text)
