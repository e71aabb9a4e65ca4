"""CanineTokenizer against transformers 4.37.2 (tests/fixtures/tokenizers/canine, written by
scripts/fixtures/make_canine_tokenizer_fixtures.py on DistilBERT's real sentences), then properties:
ids are code points on any Unicode text, decode gives the text back, the pair layout, AutoTokenizer's
fallback to the slow class (CANINE has no fast tokenizer), saving, and bad ids."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyformer import AutoTokenizer, CanineConfig, CanineTokenizer
from helpers.tokenizer_replay import Replay

REPLAY = Replay("canine", {"slow": CanineTokenizer})
# (test_deviations_still_differ checks the decoder families' common deviations, which CANINE has not)
folders, make, test_matches_reference, _, test_constructions, test_save_like_reference = REPLAY.tests()

TOK = CanineTokenizer()
CLS, SEP = 0xE000, 0xE001
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)  # any Unicode but lone surrogates


@settings(max_examples=100, deadline=None)
@given(first=TEXT, second=TEXT)
def test_ids_are_code_points_and_decode_gives_the_text_back(first, second):
    """(Texts without the special characters: those are cut out as special tokens, and clean-up off.)"""
    first, second = (t.translate({CLS: None, SEP: None, 0xE003: None, 0: None}) for t in (first, second))
    enc = TOK(first, second, return_special_tokens_mask=True)
    a, b = [ord(c) for c in first], [ord(c) for c in second]
    assert enc["input_ids"] == [CLS, *a, SEP, *b, SEP]
    assert enc["token_type_ids"] == [0] * (len(a) + 2) + [1] * (len(b) + 1)
    assert enc["special_tokens_mask"] == [1] + [0] * len(a) + [1] + [0] * len(b) + [1]
    assert TOK.decode(enc["input_ids"], skip_special_tokens=True, clean_up_tokenization_spaces=False) == first + second


def test_every_distilbert_sentence_encodes_to_its_code_points():
    """The fixture records 100 of DistilBERT's 300 sentences; the rest follow the same rule."""
    for line in REPLAY.doc["lines"]:
        assert TOK(line)["input_ids"] == [CLS, *map(ord, line), SEP]


def test_auto_tokenizer_falls_back_to_the_slow_class(tmp_path):
    CanineConfig(hidden_size=16, num_attention_heads=4).save_pretrained(tmp_path)
    with pytest.raises(OSError, match="none of"):  # config.json alone, as the reference: no tokenizer files
        AutoTokenizer.from_pretrained(tmp_path)
    TOK.save_pretrained(tmp_path)
    assert not any(p.name.startswith("vocab") for p in tmp_path.iterdir())  # no vocabulary file
    assert json.loads((tmp_path / "tokenizer_config.json").read_text())["tokenizer_class"] == "CanineTokenizer"
    for use_fast in (True, False):
        tok = AutoTokenizer.from_pretrained(tmp_path, use_fast=use_fast)
        assert type(tok) is CanineTokenizer and tok("hi")["input_ids"] == [CLS, 104, 105, SEP]
    (tmp_path / "tokenizer_config.json").unlink()  # now config.json's model_type decides
    assert type(AutoTokenizer.from_pretrained(tmp_path)) is CanineTokenizer


def test_bad_ids_and_tokens_name_the_problem():
    with pytest.raises(ValueError, match="code points"):
        TOK.decode([65, 0x110000])
    with pytest.raises(ValueError, match="single characters"):
        TOK.convert_tokens_to_ids(["ab"])
    assert TOK.convert_ids_to_tokens([0xE002, 0xE004, 0xE000]) == ["[BOS]", "[RESERVED]", "\ue000"]
