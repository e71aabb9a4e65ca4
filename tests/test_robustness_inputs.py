"""Hostile files and careless input (issue 14, rows 9-18): each is refused with an error naming the file,
key or argument, or handled as the row says. Row numbers refer to the issue's table."""

from __future__ import annotations

import json
import logging
import time

import pytest

import polyformer
from helpers.tokenizer_zoo import FIXTURES, NAMES, pairs, tokenizer
from polyformer import (AutoImageProcessor, AutoProcessor, AutoTokenizer, CLIPImageProcessor, DistilBertConfig,
                        DistilBertModel, DistilBertTokenizer, DistilBertTokenizerFast, GenerationConfig,
                        GPT2Tokenizer, GPT2TokenizerFast, LlamaTokenizer)
from polyformer.generation.stopping import StopStringCriteria
from polyformer.hub import InvalidFileError

TINY = dict(n_layers=1, dim=32, hidden_dim=37, n_heads=2, vocab_size=99, max_position_embeddings=64)


def _write_config(folder, **values):
    config = DistilBertConfig(**TINY).to_dict()
    config.update(values)
    (folder / "config.json").write_text(json.dumps(config))
    return folder


# --- row 9: config.json values --------------------------------------------------------------------
@pytest.mark.parametrize("key,value", [("vocab_size", -5), ("vocab_size", "abc"), ("dim", 0), ("n_heads", 0),
                                       ("hidden_dim", "32"), ("sinusoidal_pos_embds", "false"),
                                       ("n_layers", True), ("dropout", 1.5), ("tie_word_embeddings", "yes"),
                                       ("pad_token_id", "0")])
def test_config_json_values_are_validated_naming_file_key_and_value(tmp_path, key, value):
    _write_config(tmp_path, **{key: value})
    with pytest.raises(ValueError) as err:
        DistilBertConfig.from_pretrained(tmp_path)
    message = str(err.value)
    assert "config.json" in message and f"{key}={value!r}" in message and "expected" in message
    with pytest.raises(ValueError, match=key):
        polyformer.AutoConfig.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=key):
        DistilBertModel.from_pretrained(tmp_path)


@pytest.mark.parametrize("config_cls,key,value", [
    ("GPTJConfig", "n_head", 0), ("CodeGenConfig", "n_ctx", -1), ("LlamaConfig", "hidden_size", "32"),
    ("LlamaConfig", "rms_norm_eps", 0), ("CanineConfig", "downsampling_rate", 0), ("MvpConfig", "d_model", 0),
    ("MvpConfig", "use_prompt", "no"), ("GroupViTTextConfig", "num_attention_heads", 0),
    ("IdeficsConfig", "cross_layer_interval", 0)])
def test_every_family_declares_its_rules(config_cls, key, value):
    cls = getattr(polyformer, config_cls)
    values = cls().to_dict()
    values[key] = value
    with pytest.raises(ValueError, match=f"{key}="):
        cls.from_dict(values)


def test_nested_configs_are_validated_with_their_key():
    with pytest.raises(ValueError, match=r"vision_config.*patch_size=0"):
        polyformer.GroupViTConfig.from_dict({"vision_config": {"patch_size": 0}})


def test_a_model_built_from_a_changed_config_is_checked_before_building():
    config = DistilBertConfig(**TINY)
    config.n_heads = 0
    with pytest.raises(ValueError, match="n_heads=0"):
        DistilBertModel(config)


def test_a_config_too_big_for_memory_is_refused_before_building(tmp_path):
    DistilBertModel(DistilBertConfig(**TINY)).save_pretrained(tmp_path)
    _write_config(tmp_path, n_layers=10**9)
    config = DistilBertConfig.from_pretrained(tmp_path)  # reading it is fine
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"n_layers.*1000000000|memory"):
        DistilBertModel.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="memory"):
        DistilBertModel(config)
    assert time.perf_counter() - start < 30  # refused up front, not after building layers
    # the estimate against a given budget, independent of this machine
    small = DistilBertConfig(**TINY)
    small.check_fits(available_bytes=10**9)
    with pytest.raises(ValueError, match="describes a model of about"):
        small.check_fits(available_bytes=10**4)


def test_valid_and_zero_layer_configs_still_load(tmp_path):
    DistilBertModel(DistilBertConfig(**TINY)).save_pretrained(tmp_path)
    _write_config(tmp_path, n_layers=0)
    assert DistilBertModel.from_pretrained(tmp_path).config.n_layers == 0


# --- row 10: stop strings spanning several byte-level tokens ------------------------------------
@pytest.mark.parametrize("stop", ["😀", "中文", "a😀"])
def test_stop_strings_of_several_byte_tokens_stop(stop):
    tok = tokenizer("gpt2-slow")
    prefix, suffix = tok.encode("Say it: "), tok.encode(stop)
    assert len(tok.encode(stop[-1])) > 1  # the case: one character, several tokens
    ids = prefix + suffix
    criterion = StopStringCriteria(tok, [stop])
    import torch

    stops = [bool(criterion(torch.tensor([ids[:end]]), None)[0]) for end in range(len(prefix) + 1, len(ids) + 1)]
    assert stops == [False] * (len(suffix) - 1) + [True]


def test_generate_stops_at_an_emoji_spread_over_four_tokens():
    """A toy model and a byte-level tokenizer: four generated tokens decode to the four UTF-8 bytes of
    "😀"; the row stops right after the fourth, the other row runs on."""
    import torch

    from helpers.generation_models import toy_model

    model = toy_model()
    batch = {"input_ids": torch.tensor([[0, 0, 5, 9, 3, 7], [11, 4, 19, 8, 3, 14]]),
             "attention_mask": torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])}
    free = model.generate(**batch, max_new_tokens=10, pad_token_id=0)
    new = free[0, 6:].tolist()
    emoji_ids = new[1:5]
    assert len(set(emoji_ids)) == 4, new  # the toy's greedy output gives four distinct ids there
    table = {index: b"abcdefghijklmnopqrstuvwxyz"[index:index + 1] for index in range(24)}
    table.update(zip(emoji_ids, [bytes([b]) for b in "😀".encode("utf-8")]))

    class ByteTokenizer:
        def decode(self, ids, skip_special_tokens=False, clean_up_tokenization_spaces=False):
            return b"".join(table[i] for i in ids).decode("utf-8", errors="replace")

    out = model.generate(**batch, max_new_tokens=10, pad_token_id=0, stop_strings="😀", tokenizer=ByteTokenizer())
    assert out[0, 6:11].tolist() == new[:5] and (out[0, 11:] == 0).all()
    assert ByteTokenizer().decode(out[0, 6:11].tolist()).endswith("😀")


# --- row 11: slow WordPiece on one long word -----------------------------------------------------
def test_slow_wordpiece_is_linear_on_one_long_word():
    tok = tokenizer("distilbert-slow")
    assert tok("a" * 300)["input_ids"] == [tok.cls_token_id, tok.unk_token_id, tok.sep_token_id]  # > 100 chars

    def best(n, runs):
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            tok("a" * n)
            times.append(time.perf_counter() - start)
        return min(times)

    small, large = best(50_000, 3), best(400_000, 2)
    # linear: ~8x; the quadratic split it replaces took ~30x here
    assert large <= 20 * small, f"{small:.3f}s for 50k characters, {large:.3f}s for 400k"


# --- row 12: unused checkpoint weights ---------------------------------------------------------
def test_weights_the_model_has_no_place_for_are_a_warning(tmp_path, caplog):
    DistilBertModel(DistilBertConfig(**{**TINY, "n_layers": 2})).save_pretrained(tmp_path)
    with caplog.at_level(logging.INFO):
        DistilBertModel.from_pretrained(tmp_path, num_hidden_layers=1)
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "not used" in r.getMessage()]
    assert warnings and "transformer.layer.1.attention.q_lin.weight" in warnings[0].getMessage()


def test_another_heads_weights_stay_info(tmp_path, caplog):
    polyformer.DistilBertForSequenceClassification(DistilBertConfig(**TINY)).save_pretrained(tmp_path)
    with caplog.at_level(logging.INFO):
        DistilBertModel.from_pretrained(tmp_path)
    unused = [r for r in caplog.records if "not used" in r.getMessage()]
    assert unused and all(r.levelno == logging.INFO for r in unused)


# --- row 13: fast truncation stride -----------------------------------------------------------------
@pytest.mark.parametrize("name,stride", [("distilbert-fast", 4), ("distilbert-fast", 9), ("gpt2-fast", 6)])
def test_fast_stride_too_large_is_a_value_error(name, stride):
    tok = tokenizer(name)
    with pytest.raises(ValueError, match=rf"stride={stride}.*max_length=6"):
        tok("a b c d e f g h i j k l", truncation=True, max_length=6, stride=stride, return_overflowing_tokens=True)
    ok = tok("a b c d e f g h i j k l", truncation=True, max_length=6, stride=1, return_overflowing_tokens=True)
    assert len(ok["input_ids"]) > 1


# --- row 14: preprocessor_config.json ----------------------------------------------------------------
@pytest.mark.parametrize("key,value", [("size", {"shortest_edge": 10**6}), ("size", 10**6),
                                       ("crop_size", {"height": -3, "width": 224}), ("crop_size", 0),
                                       ("do_resize", "yes"), ("rescale_factor", "x"), ("image_std", [0, 1, 1])])
def test_preprocessor_config_values_are_refused_with_the_key(tmp_path, key, value):
    values = CLIPImageProcessor().to_dict()
    values[key] = value
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(values))
    with pytest.raises(ValueError, match=key):
        CLIPImageProcessor.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match=key):
        AutoImageProcessor.from_pretrained(tmp_path)


def test_idefics_image_size_is_refused(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps(
        {"image_processor_type": "IdeficsImageProcessor", "image_size": 10**6}))
    with pytest.raises(ValueError, match="image_size"):
        AutoImageProcessor.from_pretrained(tmp_path)


# --- row 15: Auto classes load only their own kind -------------------------------------------------
def _distilbert_folder(folder):
    DistilBertTokenizer(str(FIXTURES / "distilbert" / "vocab.txt")).save_pretrained(folder)
    _write_config(folder)
    return folder


@pytest.mark.parametrize("class_name", ["DistilBertModel", "DistilBertModelFast", "AutoTokenizer", "GenerationConfig",
                                        "CLIPImageProcessor"])
def test_tokenizer_class_of_another_kind_is_refused(tmp_path, class_name):
    folder = _distilbert_folder(tmp_path)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["tokenizer_class"] = class_name
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"tokenizer_class=.*not a tokenizer class"):
        AutoTokenizer.from_pretrained(folder)


def test_image_processor_type_and_processor_class_of_another_kind_are_refused(tmp_path):
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"image_processor_type": "DistilBertModel"}))
    with pytest.raises(ValueError, match=r"image_processor_type='DistilBertModel'.*not a image processor class"):
        AutoImageProcessor.from_pretrained(tmp_path)
    (tmp_path / "preprocessor_config.json").write_text(json.dumps({"processor_class": "DistilBertTokenizer"}))
    with pytest.raises(ValueError, match=r"processor_class='DistilBertTokenizer'.*not a processor class"):
        AutoProcessor.from_pretrained(tmp_path)


# --- row 16: added_tokens_decoder ids -----------------------------------------------------------------
@pytest.mark.parametrize("index,content,match", [("-5", "<new>", "id -5 "), (str(10**10), "<new>", "id 10000000000 "),
                                                 ("7", "<new>", "id 7 is given to '<new>'"),
                                                 ("abc", "<new>", "id 'abc'")])
@pytest.mark.parametrize("cls", [DistilBertTokenizer, DistilBertTokenizerFast])
def test_added_tokens_decoder_ids_are_checked(tmp_path, cls, index, content, match):
    folder = _distilbert_folder(tmp_path)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config["added_tokens_decoder"][index] = {"content": content, "lstrip": False, "normalized": True,
                                            "rstrip": False, "single_word": False, "special": False}
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=match):
        cls.from_pretrained(folder)


def test_added_tokens_decoder_in_the_vocabulary_or_appended_still_loads(tmp_path):
    folder = _distilbert_folder(tmp_path)
    slow = DistilBertTokenizer.from_pretrained(folder)
    slow.add_tokens(["<brand-new>"])
    slow.save_pretrained(folder)
    for cls in (DistilBertTokenizer, DistilBertTokenizerFast):
        assert cls.from_pretrained(folder).convert_tokens_to_ids("<brand-new>") == len(slow) - 1


# --- row 17: corrupt files and bad values ------------------------------------------------------------
def _saved(tmp_path, name):
    tok = tokenizer(name)
    tok.save_pretrained(tmp_path)
    return tmp_path


@pytest.mark.parametrize("name,filename,content", [
    ("gpt2-fast", "tokenizer.json", b'{"version": "1.0", "model": {'),
    ("llama-fast", "tokenizer.json", b"\x00garbage"),
    ("gpt2-slow", "vocab.json", b'{"a": 1,'),
    ("gpt2-slow", "vocab.json", b'{"a": "one"}'),
    ("gpt2-slow", "merges.txt", b"#version: 0.2\n\xff\xfe a\n"),
    ("distilbert-slow", "vocab.txt", b"[PAD]\n\xe9t\xe9\n"),
    ("llama-slow", "tokenizer.model", b"not a sentencepiece model"),
    ("gpt2-slow", "tokenizer_config.json", b"[" * 100_000 + b"]" * 100_000),
])
def test_corrupt_files_name_the_file(tmp_path, name, filename, content):
    folder = _saved(tmp_path, name)
    (folder / filename).write_bytes(content)
    cls = type(tokenizer(name))
    with pytest.raises(InvalidFileError, match=filename.replace(".", r"\.")):
        cls.from_pretrained(folder)


@pytest.mark.parametrize("key,value", [("model_max_length", -1), ("model_max_length", "abc"),
                                       ("do_lower_case", "no"), ("clean_up_tokenization_spaces", "false")])
def test_tokenizer_config_values_are_checked(tmp_path, key, value):
    folder = _distilbert_folder(tmp_path)
    config = json.loads((folder / "tokenizer_config.json").read_text())
    config[key] = value
    (folder / "tokenizer_config.json").write_text(json.dumps(config))
    for cls in (DistilBertTokenizer, DistilBertTokenizerFast):
        with pytest.raises(ValueError, match=rf"tokenizer_config\.json.*{key}="):
            cls.from_pretrained(folder)


@pytest.mark.parametrize("key,value", [("max_length", "abc"), ("top_k", -1), ("do_sample", "yes"),
                                       ("eos_token_id", "2"), ("temperature", "hot")])
def test_generation_config_values_name_the_file_and_key(tmp_path, key, value):
    (tmp_path / "generation_config.json").write_text(json.dumps({key: value}))
    with pytest.raises(ValueError, match=rf"generation_config\.json.*{key}="):
        GenerationConfig.from_pretrained(tmp_path)


# --- row 18: lone surrogates --------------------------------------------------------------------------
@pytest.mark.parametrize("family", sorted(pairs()))
def test_lone_surrogates_are_read_as_replacement_characters(family):
    slow_name, fast_name = pairs()[family]
    slow, fast = tokenizer(slow_name), tokenizer(fast_name)
    text = "ok \ud800 then \udfff end"
    replaced = text.replace("\ud800", "\ufffd").replace("\udfff", "\ufffd")
    expected = fast(replaced)["input_ids"]
    assert fast(text)["input_ids"] == expected
    assert fast([text, "x \udc00"])["input_ids"][0] == expected
    assert fast("ok", "\ud800")["input_ids"] == fast("ok", "\ufffd")["input_ids"]
    # the slow tokenizer reads them as U+FFFD too (CLIP's and DistilBERT's drop both, as 4.37's do)
    assert slow(text)["input_ids"] == slow(replaced)["input_ids"]


def test_zoo_covers_every_tokenizer():
    assert len(NAMES) == 15 and {type(tokenizer(n)).__name__ for n in NAMES} >= {
        "GPT2Tokenizer", "GPT2TokenizerFast", "LlamaTokenizer", "CanineTokenizer"}
    assert GPT2Tokenizer and GPT2TokenizerFast and LlamaTokenizer


def test_a_model_with_a_bad_generation_config_fails_on_load_naming_it(tmp_path):
    config = polyformer.GPTJConfig(n_embd=32, n_layer=1, n_head=2, rotary_dim=4, vocab_size=99, n_positions=64)
    polyformer.GPTJForCausalLM(config).save_pretrained(tmp_path)
    (tmp_path / "generation_config.json").write_text(json.dumps({"max_length": "abc"}))
    with pytest.raises(ValueError, match=r"generation_config\.json.*max_length='abc'"):
        polyformer.GPTJForCausalLM.from_pretrained(tmp_path)
