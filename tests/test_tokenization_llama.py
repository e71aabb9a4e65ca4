"""LlamaTokenizer / LlamaTokenizerFast against transformers 4.37.2 (tests/fixtures/tokenizers/llama), then
properties (slow == fast, decode(encode(x)) == x), the legacy flag, sp_model_kwargs, pickling, the
tokenizer.model reader and conversion (BPE and unigram), saving, AutoTokenizer and bad input."""

from __future__ import annotations

import copy
import io
import logging
import pickle

import pytest
import sentencepiece as spm
from hypothesis import given, settings
from hypothesis import strategies as st

from polyformer.models.llama.tokenization import LlamaTokenizer, LlamaTokenizerFast
from polyformer.tokenization.sentencepiece import load_processor, read_model_info
from helpers.tokenizer_checks import auto_round_trip
from helpers.tokenizer_replay import Replay

CLASSES = {"slow": LlamaTokenizer, "fast": LlamaTokenizerFast}
REPLAY = Replay("llama", CLASSES)

(folders, make, test_matches_reference, test_deviations_still_differ, test_constructions,
 test_save_like_reference) = REPLAY.tests()


# -- properties and behaviour beyond the recorded cases ---------------------------------------
MODEL = str(REPLAY.dir / "tokenizer.model")
SLOW, FAST = LlamaTokenizer(MODEL, legacy=True), LlamaTokenizerFast(MODEL)
NOT_LEGACY = LlamaTokenizer(MODEL, legacy=False)
SPECIALS = ("<s>", "</s>", "<unk>")
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=60).filter(
    lambda text: not any(token in text for token in SPECIALS))
SETTINGS = settings(max_examples=150, deadline=None)


@SETTINGS
@given(text=TEXT)
def test_slow_equals_fast(text):
    """Without special tokens in the text, legacy only changes nothing: all three agree."""
    ids = FAST.encode(text)
    assert SLOW.encode(text) == ids == NOT_LEGACY.encode(text)
    assert SLOW.tokenize(text) == FAST.tokenize(text)


@SETTINGS
@given(text=TEXT.filter(lambda text: not text[:1].isspace() and "▁" not in text))
def test_decode_gives_the_text_back(text):
    """Byte fallback makes every character encodable; decode drops the prefix "▁" again (so a text
    starting with whitespace loses one space, as in the reference). A "▁" in the text is sentencepiece's
    space marker and decodes as a space (4.37.2: "a▁b" -> "a b", "▁" -> ""), so such texts are left out."""
    for tok in (SLOW, FAST, NOT_LEGACY):
        assert tok.decode(tok.encode(text), skip_special_tokens=True) == text


def test_legacy_flag():
    """legacy=True starts a new word after a special token (and decodes its pieces as one), False does not."""
    plain = NOT_LEGACY.sp_model.encode("Hello", out_type=str)
    assert SLOW.tokenize("<s>Hello") == ["<s>", "▁"] + plain and NOT_LEGACY.tokenize("<s>Hello") == ["<s>"] + plain
    ids = SLOW.encode("Hello there") + [SLOW.eos_token_id] + SLOW.encode("again", add_special_tokens=False)
    assert SLOW.decode(ids) == "<s> Hello there</s>again" and NOT_LEGACY.decode(ids) == "<s> Hello there</s> again"


def test_legacy_none_warns_and_means_legacy(caplog):
    with caplog.at_level(logging.WARNING, logger="polyformer.models.llama.tokenization"):
        tok = LlamaTokenizer(MODEL)
    assert tok.legacy is True and "legacy" in caplog.text


def test_sp_model_kwargs_reach_sentencepiece(tmp_path):
    kwargs = {"enable_sampling": True, "alpha": 0.3, "nbest_size": -1}
    tok = LlamaTokenizer(MODEL, legacy=True, sp_model_kwargs=kwargs)
    text = REPLAY.doc["lines"][-1]  # prose
    samples = {tuple(tok.tokenize(text)) for _ in range(20)}  # BPE-dropout: several segmentations
    assert len(samples) > 1
    assert len({tok.convert_tokens_to_string(list(sample)) for sample in samples}) == 1
    tok.save_pretrained(tmp_path)
    assert LlamaTokenizer.from_pretrained(tmp_path).sp_model_kwargs == kwargs


def test_pickle_and_copy_keep_the_model():
    for tok in (SLOW, NOT_LEGACY, FAST):
        for again in (pickle.loads(pickle.dumps(tok)), copy.deepcopy(tok)):
            assert again.tokenize(" Hello <s>world") == tok.tokenize(" Hello <s>world")


def test_model_reader():
    with open(MODEL, "rb") as f:
        info = read_model_info(f.read())
    assert (info.model_type, info.byte_fallback, info.unk_piece, info.add_dummy_prefix) == (2, True, "<unk>", True)
    assert load_processor(MODEL).encode("Hello", out_type=str)[0].startswith("▁")
    assert not load_processor(MODEL, dummy_prefix=False).encode("Hello", out_type=str)[0].startswith("▁")
    with pytest.raises(ValueError, match="not a sentencepiece model"):
        read_model_info(b"\x0f\xff\xff")


def test_unigram_model_converts(tmp_path):
    lines = REPLAY.doc["lines"] + REPLAY.doc["snippets"]
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(sentence_iterator=iter(lines), model_writer=out, model_type="unigram",
                                   vocab_size=400, byte_fallback=True, normalization_rule_name="identity",
                                   remove_extra_whitespaces=False, num_threads=1, minloglevel=2)
    (tmp_path / "tokenizer.model").write_bytes(out.getvalue())
    slow, fast = (cls(str(tmp_path / "tokenizer.model"), legacy=True) for cls in CLASSES.values())
    assert read_model_info(out.getvalue()).model_type == 1
    assert slow(lines)["input_ids"] == fast(lines)["input_ids"]


def test_saving_without_tokenizer_model(tmp_path):
    tok = LlamaTokenizerFast(tokenizer_file=str(REPLAY.dir / "tokenizer.json"))
    assert not tok.can_save_slow_tokenizer
    with pytest.raises(ValueError, match="legacy"):
        tok.save_pretrained(tmp_path, legacy_format=True)
    names = {path.split("/")[-1] for path in tok.save_pretrained(tmp_path)}
    assert "tokenizer.json" in names and "tokenizer.model" not in names
    assert LlamaTokenizerFast.from_pretrained(tmp_path).encode("Hello there") == FAST.encode("Hello there")


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="tokenizer.model"):
        LlamaTokenizer(str(tmp_path / "missing.model"))
    with pytest.raises(ValueError, match="tokenizer_file"):
        LlamaTokenizerFast()
    (tmp_path / "tokenizer.model").write_bytes(b"not a model")
    with pytest.raises(Exception):
        LlamaTokenizer(str(tmp_path / "tokenizer.model"))
    tok = LlamaTokenizerFast(MODEL)
    tok.bos_token = None
    with pytest.raises(ValueError, match="bos_token"):
        tok.update_post_processor()


def test_auto_tokenizer(tmp_path):
    fast, slow = auto_round_trip(SLOW, tmp_path, LlamaTokenizerFast, LlamaTokenizer)
    assert fast.padding_side == "left" and slow.padding_side == "right"  # as the reference's classes
    text = REPLAY.doc["snippets"][1]
    assert fast(text) == slow(text) == SLOW(text)
