"""CLIPTokenizer / CLIPTokenizerFast against transformers 4.37.2 (tests/fixtures/tokenizers/clip: a CLIP-format BPE
with "</w>" trained on the standard library), then properties: slow == fast on cleaned text, decode(encode(x)),
the layout, padding with <|endoftext|>, the text cleanup, AutoTokenizer-free loading of a saved folder."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from polyformer.models.clip.tokenization import CLIPTokenizer, CLIPTokenizerFast
from helpers.tokenizer_checks import auto_round_trip
from helpers.tokenizer_replay import Replay

CLASSES = {"slow": CLIPTokenizer, "fast": CLIPTokenizerFast}
REPLAY = Replay("clip", CLASSES)

(folders, make, test_matches_reference, test_deviations_still_differ, test_constructions,
 test_save_like_reference) = REPLAY.tests()


# -- properties and behaviour beyond the recorded cases ---------------------------------------
VOCAB, MERGES = str(REPLAY.dir / "vocab.json"), str(REPLAY.dir / "merges.txt")
SLOW, FAST = CLIPTokenizer(VOCAB, MERGES), CLIPTokenizerFast(VOCAB, MERGES)
SETTINGS = settings(max_examples=150, deadline=None)
# Text both cleanups treat alike: no control characters, CJK or "<" (special tokens in other cases).
TEXT = st.text(st.characters(whitelist_categories=("Lu", "Ll", "Nd", "Po", "Ps", "Pe", "Zs", "Sm"),
                             max_codepoint=0x24F, blacklist_characters="<"), max_size=60)
WORDS = st.lists(st.text("abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12), max_size=10)


@SETTINGS
@given(text=TEXT)
def test_slow_equals_fast(text):
    assert SLOW.encode(text) == FAST.encode(text)
    assert SLOW.tokenize(text) == FAST.tokenize(text)


@SETTINGS
@given(words=WORDS)
def test_decode_gives_the_words_back(words):
    text = " ".join(words)
    for tok in (SLOW, FAST):
        ids = tok.encode(text)
        assert ids[0] == tok.bos_token_id == SLOW.convert_tokens_to_ids("<|startoftext|>")
        assert ids[-1] == tok.eos_token_id == tok.pad_token_id
        assert tok.decode(ids, skip_special_tokens=True) == text
        assert tok.decode(ids) == (f"<|startoftext|>{text} <|endoftext|>" if words else "<|startoftext|><|endoftext|>")


def test_vocabulary_has_clip_layout():
    vocab = json.loads((REPLAY.dir / "vocab.json").read_text(encoding="utf-8"))
    tokens = sorted(vocab, key=vocab.get)
    assert tokens[256:512] == [t + "</w>" for t in tokens[:256]] and tokens[-2:] == ["<|startoftext|>", "<|endoftext|>"]
    merges = SLOW.bpe_ranks
    assert len(tokens) == 512 + len(merges) + 2 and any(right.endswith("</w>") for _, right in merges)


def test_cleanup_and_words():
    assert SLOW.tokenize("HELLO\tWorld") == SLOW.tokenize("hello world")
    assert SLOW.clean_text("ΟΔΟΣ  Ünï\x00") == "οδος ünï"  # whole-word lower-casing (final sigma), no accent strip
    digits = SLOW.tokenize("2024")
    assert digits == ["2</w>", "0</w>", "2</w>", "4</w>"] == FAST.tokenize("2024")
    assert SLOW.bpe("a") == "a</w>" and SLOW.bpe("<|endoftext|>") == "<|endoftext|>"


def test_batch_padding_and_tensors():
    for tok in (SLOW, FAST):
        out = tok(["a photo of a cat", "a dog"], padding=True, return_tensors="pt")
        assert out["input_ids"].shape[0] == 2 and list(out) == ["input_ids", "attention_mask"]
        short = out["input_ids"][1]
        assert (short[out["attention_mask"][1] == 0] == tok.pad_token_id).all()


def test_auto_tokenizer_and_saved_folder(tmp_path):
    fast, slow = auto_round_trip(SLOW, tmp_path, CLIPTokenizerFast, CLIPTokenizer)
    text = REPLAY.doc["lines"][3]
    assert fast(text) == slow(text) == SLOW(text)


def test_bad_files(tmp_path):
    with pytest.raises(ValueError, match="merges_file: no file"):
        CLIPTokenizer(VOCAB, str(tmp_path / "missing.txt"))
    (tmp_path / "merges.txt").write_text("#version: 0.2\na b c\n", encoding="utf-8")
    with pytest.raises(ValueError, match="line 2: expected two symbols"):
        CLIPTokenizer(VOCAB, str(tmp_path / "merges.txt"))
    old = json.loads((REPLAY.dir / "tokenizer.json").read_text(encoding="utf-8"))
    old["pre_tokenizer"] = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    (tmp_path / "tokenizer.json").write_text(json.dumps(old), encoding="utf-8")
    with pytest.raises(ValueError, match="from_slow=True"):
        CLIPTokenizerFast(tokenizer_file=str(tmp_path / "tokenizer.json"))
