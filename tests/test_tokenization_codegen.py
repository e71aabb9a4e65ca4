"""CodeGenTokenizer / CodeGenTokenizerFast against transformers 4.37.2 (tests/fixtures/tokenizers/codegen),
then properties (slow == fast, decode(encode(x)) == x on any Unicode), the byte-level BPE pieces, the
prefix-space rules, truncate_before_pattern, saving, AutoTokenizer and bad input."""

from __future__ import annotations

import copy
import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from polyformer.models.codegen.tokenization import CodeGenTokenizer, CodeGenTokenizerFast, truncate_completion
from polyformer.tokenization.bpe import BPE, BYTE_TO_CHAR, from_byte_chars, read_merges, to_byte_chars
from helpers.tokenizer_checks import ANY_TEXT, assert_slow_equals_fast, auto_round_trip
from helpers.tokenizer_replay import Replay

CLASSES = {"slow": CodeGenTokenizer, "fast": CodeGenTokenizerFast}
REPLAY = Replay("codegen", CLASSES)


(folders, make, test_matches_reference, test_deviations_still_differ, test_constructions,
 test_save_like_reference) = REPLAY.tests()


# -- properties and behaviour beyond the recorded cases ---------------------------------------
VOCAB, MERGES = str(REPLAY.dir / "vocab.json"), str(REPLAY.dir / "merges.txt")
SETTINGS = settings(max_examples=150, deadline=None)
SLOW, FAST = CodeGenTokenizer(VOCAB, MERGES), CodeGenTokenizerFast(VOCAB, MERGES)


@SETTINGS
@given(text=ANY_TEXT)
def test_slow_equals_fast_and_decode_gives_the_text_back(text):
    assert_slow_equals_fast(SLOW, FAST, text)


PREFIXED_FAST = CodeGenTokenizerFast(VOCAB, MERGES, add_prefix_space=True)


@SETTINGS
@given(words=st.lists(st.text("abcdéX.,(0", min_size=1, max_size=8), min_size=1, max_size=6))
def test_prefix_space_per_call_on_slow_is_construction_time_on_fast(words):
    """(Words without whitespace: a pre-split word holding spaces, or an empty text, is encoded
    differently by the reference's slow and fast tokenizers too.)"""
    text = " ".join(words)
    ids = SLOW(" " + text)["input_ids"]
    assert SLOW(text, add_prefix_space=True)["input_ids"] == PREFIXED_FAST(text)["input_ids"] == ids
    assert SLOW(words, is_split_into_words=True)["input_ids"] == ids
    assert PREFIXED_FAST(words, is_split_into_words=True)["input_ids"] == ids


def test_prefix_space_errors_on_fast():
    with pytest.raises(TypeError, match="add_prefix_space at construction"):
        FAST("Hello world", add_prefix_space=True)
    with pytest.raises(ValueError, match="add_prefix_space=True"):
        FAST(["Hello", "world"], is_split_into_words=True)
    with pytest.raises(ValueError, match="slow CodeGenTokenizer"):
        CodeGenTokenizerFast(VOCAB, MERGES, add_bos_token=True)


def test_byte_table_is_printable_and_reversible():
    chars = list(BYTE_TO_CHAR.values())
    assert len(set(chars)) == 256 and all(c.isprintable() and not c.isspace() for c in chars)
    assert BYTE_TO_CHAR[ord(" ")] == "Ġ" and BYTE_TO_CHAR[ord("\n")] == "Ċ" and BYTE_TO_CHAR[ord("A")] == "A"
    text = "héllo\t🤗 \x00"
    assert from_byte_chars(to_byte_chars(text)) == text
    assert from_byte_chars("æ") == "\ufffd"  # half a character: replaced, as errors="replace"
    with pytest.raises(UnicodeDecodeError):
        from_byte_chars("æ", errors="strict")


def test_merge_loop():
    assert BPE([("a", "a")]).merge("aaa") == ("aa", "a")  # left to right, without overlap
    assert BPE([("b", "c"), ("a", "b")]).merge("abc") == ("a", "bc")  # lowest rank first
    assert BPE([("a", "b"), ("ab", "c")]).merge("abcab") == ("abc", "ab")
    assert BPE([]).merge("xyz") == ("x", "y", "z") and BPE([("x", "y")]).merge("") == ()
    bpe = BPE([("a", "b"), ("c", "d"), ("a", "b")])  # a pair listed twice keeps its last rank
    assert bpe.ranks[("a", "b")] == 2 and bpe.merge("abcd") == ("ab", "cd")


def test_bad_files(tmp_path):
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n", encoding="utf-8")
    with pytest.raises(ValueError, match="two symbols"):
        read_merges(str(tmp_path / "merges.txt"))
    with pytest.raises(ValueError, match="vocab.json and merges.txt"):
        CodeGenTokenizer(str(tmp_path / "missing.json"), MERGES)
    with pytest.raises(ValueError, match="tokenizer_file"):
        CodeGenTokenizerFast(None, MERGES)


def test_save_vocabulary_writes_the_reference_layout(tmp_path):
    vocab_file, merges_file = SLOW.save_vocabulary(str(tmp_path), filename_prefix="p")
    assert Path(vocab_file).name == "p-vocab.json" and Path(merges_file).name == "p-merges.txt"
    encoder = json.loads(Path(VOCAB).read_text(encoding="utf-8"))
    assert Path(vocab_file).read_text(encoding="utf-8") == json.dumps(encoder, indent=2, sort_keys=True,
                                                                      ensure_ascii=False) + "\n"
    assert Path(merges_file).read_text(encoding="utf-8") == Path(MERGES).read_text(encoding="utf-8")
    fast_files = FAST.save_vocabulary(str(tmp_path), filename_prefix="f")
    again = CodeGenTokenizer(*fast_files)
    assert again.encode(REPLAY.doc["lines"][0]) == SLOW.encode(REPLAY.doc["lines"][0])
    with pytest.raises(NotADirectoryError):
        SLOW.save_vocabulary(vocab_file)


def test_truncate_before_pattern():
    patterns = ["^#", re.escape("<|endoftext|>"), "^'''", "\n\n\n"]
    code = "def f():\n    return 1\n"
    assert truncate_completion(code + "# trailing comment\nx = 2\n", patterns) == code
    assert truncate_completion(code + "\n\n\nmore", patterns) == code.rstrip("\n")
    assert truncate_completion("print(1)\nprint(2)\n", patterns) == "print(1)\n"
    assert truncate_completion(code + code, patterns) == code
    assert truncate_completion(code, patterns) == code and truncate_completion(code, []) == code
    ids = SLOW.encode(code + "<|endoftext|>junk")
    for tok in (SLOW, FAST):
        assert tok.decode(ids, truncate_before_pattern=patterns) == code
        assert tok.batch_decode(np.array([ids]), truncate_before_pattern=patterns) == [code]
        assert tok.decode(torch.tensor(ids), truncate_before_pattern=patterns) == code


def test_auto_tokenizer_and_copies(tmp_path):
    fast, slow = auto_round_trip(SLOW, tmp_path, CodeGenTokenizerFast, CodeGenTokenizer)
    text = REPLAY.doc["snippets"][0]
    for tok in (fast, slow, pickle.loads(pickle.dumps(slow)), copy.deepcopy(fast)):
        assert tok(text) == SLOW(text)
