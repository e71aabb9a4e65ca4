"""AutoTokenizer resolves the class from tokenizer_config.json, else from config.json's model_type."""

import json
import shutil
from pathlib import Path

import pytest

from polyformer import AutoTokenizer, DistilBertConfig, DistilBertTokenizer, DistilBertTokenizerFast

VOCAB = Path(__file__).parent / "fixtures" / "tokenizers" / "distilbert" / "vocab.txt"


def test_from_tokenizer_config(tmp_path):
    DistilBertTokenizer(str(VOCAB)).save_pretrained(tmp_path)
    fast = AutoTokenizer.from_pretrained(tmp_path)
    slow = AutoTokenizer.from_pretrained(tmp_path, use_fast=False)
    assert type(fast) is DistilBertTokenizerFast and type(slow) is DistilBertTokenizer
    assert fast("Hello world!")["input_ids"] == slow("Hello world!")["input_ids"] == [101, 7592, 2088, 999, 102]
    assert AutoTokenizer.from_pretrained(tmp_path, model_max_length=7).model_max_length == 7  # kwargs pass through


def test_from_model_type_when_there_is_no_tokenizer_config(tmp_path):
    shutil.copy(VOCAB, tmp_path / "vocab.txt")
    DistilBertConfig().save_pretrained(tmp_path)
    assert type(AutoTokenizer.from_pretrained(tmp_path)) is DistilBertTokenizerFast
    assert type(AutoTokenizer.from_pretrained(tmp_path, tokenizer_type="distilbert", use_fast=False)) is DistilBertTokenizer


def test_unknown_tokenizer_class_falls_back_or_fails_clearly(tmp_path):
    shutil.copy(VOCAB, tmp_path / "vocab.txt")
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"tokenizer_class": "MysteryTokenizer"}))
    with pytest.raises(FileNotFoundError, match="config.json"):
        AutoTokenizer.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "mystery"}))
    with pytest.raises(ValueError, match="unrecognised model_type 'mystery'"):
        AutoTokenizer.from_pretrained(tmp_path)
