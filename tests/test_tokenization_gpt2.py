"""GPT2Tokenizer / GPT2TokenizerFast against transformers 4.37.2 (tests/fixtures/tokenizers/gpt2: CodeGen's trained
byte-level BPE), AutoTokenizer on GPT-J folders saved by 4.37.2 (the "auto" section: tokenizer_config.json naming
GPT2Tokenizer, config.json's model_type gptj alone, config.json's tokenizer_class, the Hub's pre-4.34 layout, another
family's folder naming GPT2Tokenizer), then properties (slow == fast, decode(encode(x)) == x), add_bos_token, the
classes shared with CodeGen, and GPTJForCausalLM + AutoTokenizer generating from such a folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hypothesis import given, settings

import polyformer
from polyformer import (AutoModelForCausalLM, AutoTokenizer, CodeGenTokenizer, CodeGenTokenizerFast, GPT2Tokenizer,
                        GPT2TokenizerFast, GPTJConfig, GPTJForCausalLM)
from helpers.tokenizer_checks import ANY_TEXT, assert_slow_equals_fast
from helpers.tokenizer_replay import Replay, file_content

CLASSES = {"slow": GPT2Tokenizer, "fast": GPT2TokenizerFast}
BOS_MASK = ("get_special_tokens_mask without already_has_special_tokens is an AssertionError on the reference's fast "
            "tokenizers; polyformer's answers from build_inputs_with_special_tokens, which on the fast tokenizer adds "
            "no token (its backend puts the BOS), as the reference's")
DEVIATIONS = {("bos", 3, "fast"): (BOS_MASK, [0, 0, 0]), ("bos", 4, "fast"): (BOS_MASK, [0, 0, 0, 0, 0])}
REPLAY = Replay("gpt2", CLASSES, DEVIATIONS)

(folders, make, test_matches_reference, test_deviations_still_differ, test_constructions,
 test_save_like_reference) = REPLAY.tests()


# -- AutoTokenizer on model folders ----------------------------------------------------------------
class SlowAutoTokenizer:
    """`AutoTokenizer.from_pretrained(..., use_fast=False)` (what the script recorded as the "slow" kind)."""

    @staticmethod
    def from_pretrained(name, **kwargs):
        return AutoTokenizer.from_pretrained(name, use_fast=False, **kwargs)


AUTO = Replay("gpt2", {"slow": SlowAutoTokenizer, "fast": AutoTokenizer}, section="auto")


model_folders, make_auto = AUTO.fixtures("model_folders", "make_auto")


@pytest.mark.parametrize("name", sorted(AUTO.doc["classes"]))
def test_auto_tokenizer_picks_the_reference_class(name, make_auto):
    for kind, expected in AUTO.doc["classes"][name].items():
        assert type(make_auto(name, kind)).__name__ == expected, (name, kind)
        assert type(make_auto(name, kind)) is getattr(polyformer, expected)


@pytest.mark.parametrize("case,kind", AUTO.params())
def test_auto_tokenizer_matches_reference(case, kind, make_auto):
    AUTO.run_case(case, kind, make_auto)


def test_gptj_folder_generates_with_auto_tokenizer(model_folders, tmp_path):
    """The GPT-J folder (config.json + tokenizer files saved by 4.37.2) with random weights saved into it:
    AutoModelForCausalLM + AutoTokenizer generate from left-padded prompts and decode back to text."""
    folder = tmp_path / "gptj"
    folder.mkdir()
    for path in Path(model_folders["gptj"]).iterdir():
        (folder / path.name).write_bytes(path.read_bytes())
    torch.manual_seed(0)
    GPTJForCausalLM(GPTJConfig.from_pretrained(folder)).save_pretrained(folder)
    model, tokenizer = AutoModelForCausalLM.from_pretrained(folder), AutoTokenizer.from_pretrained(folder)
    assert type(model) is GPTJForCausalLM and type(tokenizer) is GPT2TokenizerFast
    tokenizer.pad_token, tokenizer.padding_side = tokenizer.eos_token, "left"
    prompts = ["def add(a, b):", "Hello world, this is a longer prompt"]
    inputs = tokenizer(prompts, padding=True, return_tensors="pt")
    out = model.generate(**inputs, max_new_tokens=5, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    width = inputs["input_ids"].shape[1]
    assert out.shape == (2, width + 5) and torch.equal(out[:, :width], inputs["input_ids"])
    texts = tokenizer.batch_decode(out, skip_special_tokens=True)
    assert all(text.startswith(prompt) for text, prompt in zip(texts, prompts))
    slow = AutoTokenizer.from_pretrained(folder, use_fast=False)
    assert slow.batch_decode(out, skip_special_tokens=True) == texts


# -- properties and behaviour beyond the recorded cases ---------------------------------------
VOCAB, MERGES = str(REPLAY.dir / "vocab.json"), str(REPLAY.dir / "merges.txt")
SETTINGS = settings(max_examples=100, deadline=None)
SLOW, FAST = GPT2Tokenizer(VOCAB, MERGES), GPT2TokenizerFast(VOCAB, MERGES)


@SETTINGS
@given(text=ANY_TEXT)
def test_slow_equals_fast_and_decode_gives_the_text_back(text):
    assert_slow_equals_fast(SLOW, FAST, text)


def test_same_ids_as_codegen_but_gpt2_special_token_flags():
    """GPT-2's and CodeGen's tokenizers share their code (tokenization/gpt2.py), not their classes: same ids,
    but GPT-2's special tokens are normalized (as 4.37 saves them) and CodeGen's are not."""
    text = "def f(x):\n    return x  # <|endoftext|> done"
    assert SLOW.encode(text) == CodeGenTokenizer(VOCAB, MERGES).encode(text) == FAST.encode(text)
    assert not isinstance(SLOW, CodeGenTokenizer) and not isinstance(CodeGenTokenizer(VOCAB, MERGES), GPT2Tokenizer)
    assert not isinstance(FAST, CodeGenTokenizerFast)
    assert SLOW.added_tokens_decoder[1499].normalized and FAST.added_tokens_decoder[1499].normalized
    assert not CodeGenTokenizer(VOCAB, MERGES).added_tokens_decoder[1499].normalized
    assert not hasattr(SLOW, "truncate") and "truncate_before_pattern" not in GPT2Tokenizer.decode.__code__.co_varnames


def test_add_bos_token_before_each_sequence_slow_before_the_first_fast(tmp_path):
    slow, fast = GPT2Tokenizer(VOCAB, MERGES, add_bos_token=True), GPT2TokenizerFast(VOCAB, MERGES, add_bos_token=True)
    first, second = SLOW.encode("Hello world"), SLOW.encode("again")
    assert slow.encode("Hello world") == fast.encode("Hello world") == [1499] + first
    assert slow.encode("Hello world", "again") == [1499] + first + [1499] + second
    assert fast.encode("Hello world", "again") == [1499] + first + second
    mask = [1] + [0] * len(first)
    assert slow("Hello world", "again", return_special_tokens_mask=True)["special_tokens_mask"] == \
        mask + [1] + [0] * len(second)
    assert fast("Hello world", "again", return_special_tokens_mask=True)["special_tokens_mask"] == \
        mask + [0] * len(second)
    assert fast.add_bos_token is True
    fast.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text(encoding="utf-8"))
    assert config["add_bos_token"] is True and config["tokenizer_class"] == "GPT2Tokenizer"
    assert AutoTokenizer.from_pretrained(tmp_path, use_fast=False).encode("Hello world") == [1499] + first
    assert AutoTokenizer.from_pretrained(tmp_path).encode("Hello world") == [1499] + first  # tokenizer.json keeps it


def test_prefix_space_rules_and_errors():
    prefixed = GPT2TokenizerFast(VOCAB, MERGES, add_prefix_space=True)
    assert SLOW("Hello world", add_prefix_space=True)["input_ids"] == prefixed("Hello world")["input_ids"] \
        == SLOW(" Hello world")["input_ids"]
    with pytest.raises(TypeError, match="add_prefix_space at construction"):
        FAST("Hello world", add_prefix_space=True)
    with pytest.raises(ValueError, match="add_prefix_space=True"):
        FAST(["Hello", "world"], is_split_into_words=True)
    with pytest.raises(ValueError, match="vocab.json and merges.txt"):
        GPT2Tokenizer("missing.json", MERGES)
    with pytest.raises(ValueError, match="tokenizer_file"):
        GPT2TokenizerFast(None, MERGES)


def test_auto_tokenizer_names_and_types(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gptj"}), encoding="utf-8")
    for name in ("vocab.json", "merges.txt"):
        (tmp_path / name).write_bytes((REPLAY.dir / name).read_bytes())
    assert type(AutoTokenizer.from_pretrained(tmp_path)) is GPT2TokenizerFast
    assert type(AutoTokenizer.from_pretrained(tmp_path, use_fast=False)) is GPT2Tokenizer
    assert type(AutoTokenizer.from_pretrained(tmp_path, tokenizer_type="gptj", use_fast=False)) is GPT2Tokenizer
    assert {"GPT2Tokenizer", "GPT2TokenizerFast"} <= set(polyformer.__all__)


@pytest.mark.parametrize("use_fast", [True, False])
def test_gptj_folder_saves_back_the_files_4_37_wrote(model_folders, tmp_path, use_fast):
    """Loading the GPT-J folder through AutoTokenizer and saving it again rewrites 4.37.2's tokenizer files."""
    source = Path(model_folders["gptj"])
    AutoTokenizer.from_pretrained(source, use_fast=use_fast).save_pretrained(tmp_path)
    written = sorted(path.name for path in tmp_path.iterdir())
    expected = sorted(path.name for path in source.iterdir() if path.name != "config.json")
    assert written == (expected if use_fast else [name for name in expected if name != "tokenizer.json"])
    for name in written:
        assert file_content(tmp_path / name) == file_content(source / name), name
