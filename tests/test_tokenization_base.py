"""The shared tokenizer machinery: BatchEncoding, argument checking, padding / truncation helpers, added
tokens, tensors, and reading / writing tokenizer files (including older and Hub-cache layouts).

Uses two small tokenizers defined here (a pure-Python character tokenizer and a `tokenizers` WordLevel
one) so that the base classes are tested apart from any model, plus DistilBERT's on the real vocabulary.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from polyformer.models.distilbert.tokenization import DistilBertTokenizer, DistilBertTokenizerFast
from polyformer.tokenization.base import PreTrainedTokenizerBase
from polyformer.tokenization.encoding import AddedToken, BatchEncoding, PaddingStrategy
from polyformer.tokenization.fast import PreTrainedTokenizerFast
from polyformer.tokenization.slow import PreTrainedTokenizer

VOCAB = Path(__file__).parent / "fixtures" / "tokenizers" / "distilbert" / "vocab.txt"
REPO = Path(__file__).resolve().parents[1]


class CharTokenizer(PreTrainedTokenizer):
    """One token per character: the smallest slow tokenizer (no special-token layout)."""

    vocab_files_names = {"vocab_file": "chars.txt"}
    model_input_names = ["input_ids", "attention_mask"]

    def __init__(self, vocab_file=None, pad_token="<pad>", unk_token="<unk>", **kwargs):
        chars = Path(vocab_file).read_text(encoding="utf-8") if vocab_file else "abcdefghijklmnopqrstuvwxyz ."
        self.vocab = {token: i for i, token in enumerate(["<pad>", "<unk>"] + list(chars))}
        self.inverse = {i: token for token, i in self.vocab.items()}
        super().__init__(pad_token=pad_token, unk_token=unk_token, **kwargs)

    @property
    def vocab_size(self):
        return len(self.vocab)

    def get_vocab(self):
        return dict(self.vocab, **self.added_tokens_encoder)

    def _tokenize(self, text, **kwargs):
        return list(text)

    def _convert_token_to_id(self, token):
        return self.vocab.get(token, 1)

    def _convert_id_to_token(self, index):
        return self.inverse.get(index, "<unk>")

    def convert_tokens_to_string(self, tokens):
        return "".join(tokens)

    def save_vocabulary(self, save_directory, filename_prefix=None):
        path = os.path.join(save_directory, "chars.txt")
        Path(path).write_text("".join(list(self.vocab)[2:]), encoding="utf-8")
        return (path,)


def word_level(**kwargs) -> PreTrainedTokenizerFast:
    """A fast tokenizer built from a `tokenizers` object (no model subclass)."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    words = ["[PAD]", "[UNK]", "hello", "world", "good", "morning", ",", "!"]
    backend = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]", **kwargs)


@pytest.fixture(scope="module")
def slow():
    return DistilBertTokenizer(str(VOCAB), model_max_length=512)


@pytest.fixture(scope="module")
def fast():
    return DistilBertTokenizerFast(str(VOCAB), model_max_length=512)


@pytest.fixture(params=["slow", "fast"])
def tok(request, slow, fast):
    return {"slow": slow, "fast": fast}[request.param]


# -- BatchEncoding ----------------------------------------------------------------------------------
def test_batch_encoding_is_a_dict_with_attribute_access(tok):
    enc = tok(["Hello world!", "Good morning"], padding=True)
    assert list(enc.keys()) == ["input_ids", "attention_mask"] and "input_ids" in enc and len(enc) == 2
    assert enc["input_ids"] is enc.input_ids and dict(enc.items())["attention_mask"] == enc.attention_mask
    assert enc.input_ids[0] == [101, 7592, 2088, 999, 102] and enc.attention_mask[1] == [1, 1, 1, 1, 0]
    assert enc[:1] == {"input_ids": [enc.input_ids[0]], "attention_mask": [enc.attention_mask[0]]}
    with pytest.raises(AttributeError, match="token_type_ids"):
        enc.token_type_ids
    assert enc.is_fast == tok.is_fast
    again = pickle.loads(pickle.dumps(enc))
    assert again == enc and again.input_ids == enc.input_ids


def test_to_device_moves_tensors_only(tok):
    enc = tok(["Hello world!", "Good morning"], padding=True, return_tensors="pt", return_length=True)
    assert enc.to("cpu") is enc and enc.input_ids.device.type == "cpu"
    assert enc.to(torch.device("cpu")).attention_mask.dtype == torch.int64
    enc["note"] = "not a tensor"
    assert enc.to("cpu")["note"] == "not a tensor"
    with pytest.raises(TypeError, match="device"):
        enc.to(torch.float16)
    if torch.cuda.is_available():
        assert enc.to("cuda").input_ids.is_cuda


def test_alignment_methods_need_a_fast_tokenizer(slow, fast):
    enc = slow("Hello world!")
    for method in ("word_ids", "tokens", "sequence_ids"):
        with pytest.raises(ValueError, match="fast|Fast"):
            getattr(enc, method)()
    with pytest.raises(KeyError, match="fast"):
        enc[0]
    text = "Hello, wonderful world"
    enc = fast(text, "second part", return_offsets_mapping=True)
    assert enc.tokens() == ["[CLS]", "hello", ",", "wonderful", "world", "[SEP]", "second", "part", "[SEP]"]
    assert enc.word_ids() == [None, 0, 1, 2, 3, None, 0, 1, None]
    assert enc.sequence_ids() == [None, 0, 0, 0, 0, None, 1, 1, None]
    assert enc[0].ids == enc.input_ids and enc.n_sequences == 2
    for index, (start, end) in enumerate(enc.offset_mapping[1:5], start=1):
        assert enc.token_to_chars(index) == (start, end) and enc.char_to_token(start) == index
        assert enc.token_to_word(index) == index - 1 and enc.token_to_sequence(index) == 0
    assert enc.word_to_tokens(2) == (3, 4) and enc.word_to_chars(2) == (7, 16) and enc.char_to_word(9) == 2
    assert enc.word_to_tokens(1, sequence_index=1) == (7, 8)
    batch = fast(["a b", "c"], padding=True)
    assert batch.word_ids(1) == [None, 0, None, None] and batch.token_to_word(0, 1) == 0
    with pytest.raises(ValueError, match="batch_index"):
        batch.token_to_word(1)


# -- lazy imports -----------------------------------------------------------------------------------
def test_tokenizers_import_no_framework_until_tensors_are_asked_for():
    code = (
        "import sys\n"
        "from polyformer.models.distilbert.tokenization import DistilBertTokenizer, DistilBertTokenizerFast\n"
        f"tok = DistilBertTokenizerFast({str(VOCAB)!r})\n"
        f"slow = DistilBertTokenizer({str(VOCAB)!r})\n"
        "tok(['a b', 'c'], padding=True); slow('a b')\n"
        "print(sorted(m for m in ('torch', 'numpy', 'jax', 'tensorflow') if m in sys.modules))\n"
        "tok('a', return_tensors='pt')\n"
        "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert out.stdout.split("\n")[:2] == ["[]", "True"], out.stdout + out.stderr


# -- tensors ----------------------------------------------------------------------------------------
def test_return_tensors(tok):
    single = tok("Hello world!", return_tensors="pt")
    assert single.input_ids.shape == (1, 5) and single.input_ids.dtype == torch.int64
    batch = tok(["Hello world!", "Good"], padding=True, return_tensors="np")
    assert isinstance(batch.input_ids, np.ndarray) and batch.input_ids.shape == (2, 5)
    with pytest.raises(ValueError, match="padding=True"):
        tok(["Hello world!", "Good"], return_tensors="pt")
    with pytest.raises(ValueError, match="return_tensors"):
        tok("Hello", return_tensors="torch")


@pytest.mark.parametrize("framework", ["tf", "jax"])
def test_other_frameworks_are_imported_only_when_asked(tok, framework):
    pytest.importorskip({"tf": "tensorflow", "jax": "jax"}[framework])
    enc = tok(["Hello world!", "Good"], padding=True, return_tensors=framework)
    assert np.asarray(enc["input_ids"]).tolist() == tok(["Hello world!", "Good"], padding=True)["input_ids"]


# -- argument checking ------------------------------------------------------------------------------
@pytest.mark.parametrize("call,error,message", [
    (lambda t: t(123), ValueError, "`text`"),
    (lambda t: t("a", text_pair=5), ValueError, "`text_pair`"),
    (lambda t: t([1, 2]), ValueError, "`text`"),
    (lambda t: t(["a", "b"], "c"), TypeError, "text_pair"),
    (lambda t: t(["a", "b"], ["c"]), ValueError, "2 items.*1"),
    (lambda t: t([]), ValueError, "empty"),
    (lambda t: t(None), ValueError, "text"),
    (lambda t: t("a", truncation="bogus"), ValueError, "truncation='bogus'.*longest_first"),
    (lambda t: t("a", padding="bogus"), ValueError, "padding='bogus'.*max_length"),
    (lambda t: t("a", max_length=-1), ValueError, "max_length"),
    (lambda t: t("a", max_length="10"), ValueError, "max_length"),
    (lambda t: t("a", stride=-2, truncation=True, max_length=4), ValueError, "stride"),
    (lambda t: t("a", padding=True, pad_to_multiple_of=0), ValueError, "pad_to_multiple_of"),
    (lambda t: t("a", padding=True, truncation=True, max_length=8, pad_to_multiple_of=0), ValueError,
     "pad_to_multiple_of"),
    (lambda t: t.pad({"input_ids": [1]}, pad_to_multiple_of=-1), ValueError, "pad_to_multiple_of"),
    (lambda t: t("a", padding="max_length", max_length=10, truncation=True, pad_to_multiple_of=4), ValueError,
     "multiple"),
    (lambda t: t.add_special_tokens({"foo_token": "<foo>"}), ValueError, "foo_token"),
    (lambda t: t.add_special_tokens({"pad_token": 3}), ValueError, "pad_token"),
    (lambda t: t.add_tokens([3]), TypeError, "str or AddedToken"),
    (lambda t: t.decode("hello"), TypeError, "list of ints"),
    (lambda t: setattr(t, "cls_token", 5), ValueError, "cls_token"),
])
def test_bad_input_gets_a_clear_error(tok, call, error, message):
    with pytest.raises(error, match=message):
        call(tok)


def test_empty_pre_split_sequences(slow, fast):
    for words in ([[], ["a"]], [["a"], []]):
        assert slow(words, is_split_into_words=True) == fast(words, is_split_into_words=True)
    assert slow([], is_split_into_words=True)["input_ids"] == fast([], is_split_into_words=True)["input_ids"]


def test_padding_to_max_length_needs_a_length(tok):
    unlimited = type(tok)(str(VOCAB))
    with pytest.raises(ValueError, match="max_length"):
        unlimited("hello", padding="max_length")
    assert tok("hello", padding="max_length")["input_ids"][:3] == [101, 7592, 102]  # model_max_length=512
    assert len(tok("hello", padding="max_length")["input_ids"]) == 512


def test_padding_needs_a_pad_token():
    tok = CharTokenizer()
    tok.pad_token = None
    with pytest.raises(ValueError, match="pad token"):
        tok(["ab", "a"], padding=True)


def test_init_checks_sides():
    with pytest.raises(ValueError, match="padding_side"):
        CharTokenizer(padding_side="middle")
    with pytest.raises(ValueError, match="truncation_side"):
        CharTokenizer(truncation_side="up")


# -- truncation / padding ---------------------------------------------------------------------------
def test_truncation_uses_model_max_length(tok):
    long_text = "word " * 600
    assert len(tok(long_text, truncation=True)["input_ids"]) == 512
    assert len(tok(long_text)["input_ids"]) == 602  # no truncation asked: the reference warns, keeps all


def test_truncate_sequences_directly():
    tok = CharTokenizer()
    ids, pair, over = tok.truncate_sequences([1, 2, 3, 4, 5], num_tokens_to_remove=2, stride=1)
    assert (ids, pair, over) == ([1, 2, 3], None, [3, 4, 5])
    ids, pair, over = tok.truncate_sequences([1, 2, 3], [4, 5, 6, 7, 8, 9], num_tokens_to_remove=4)
    assert (ids, pair, over) == ([1, 2, 3], [4, 5], [])  # the longer one first, then both in turn
    ids, pair, over = tok.truncate_sequences([1, 2], [3, 4, 5], num_tokens_to_remove=2,
                                             truncation_strategy="only_second", stride=1)
    assert (ids, pair, over) == ([1, 2], [3], [3, 4, 5])
    tok.truncation_side = "left"
    ids, _, over = tok.truncate_sequences([1, 2, 3, 4, 5], num_tokens_to_remove=2, truncation_strategy="only_first")
    assert ids == [3, 4, 5] and over == [1, 2]
    assert tok.truncate_sequences([1], num_tokens_to_remove=3) == ([1], None, [])  # too short: logged, kept


@settings(max_examples=60, deadline=None)
@given(lengths=st.lists(st.integers(0, 12), min_size=1, max_size=6), multiple=st.sampled_from([None, 1, 4, 8]),
       side=st.sampled_from(["left", "right"]))
def test_pad_property(lengths, multiple, side):
    tok = CharTokenizer(padding_side=side)
    rows = [[5] * n for n in lengths]
    out = tok.pad({"input_ids": rows}, padding=True, pad_to_multiple_of=multiple)
    target = max(lengths)
    if multiple and target % multiple:
        target += multiple - target % multiple
    for row, ids, mask in zip(rows, out["input_ids"], out["attention_mask"]):
        assert len(ids) == len(mask) == target and sum(mask) == len(row)
        assert (ids[: len(row)] if side == "right" else ids[target - len(row):]) == row
        assert set(ids) - {5} <= {tok.pad_token_id}


def test_pad_keeps_tensor_types(tok):
    rows = [tok("Hello world!"), tok("Good")]
    as_torch = [{k: torch.tensor(v) for k, v in row.items()} for row in rows]
    out = tok.pad(as_torch)
    assert torch.is_tensor(out["input_ids"]) and out["input_ids"].shape == (2, 5)
    out = tok.pad({"input_ids": np.array([[1, 2, 3]])}, padding="max_length", max_length=5)
    assert isinstance(out["input_ids"], np.ndarray) and out["input_ids"].tolist() == [[1, 2, 3, 0, 0]]
    with pytest.raises(ValueError, match="input_ids"):
        tok.pad({"ids": [[1]]})


def test_text_target_gives_labels(tok):
    enc = tok("Hello", text_target="world!")
    assert enc["labels"] == [101, 2088, 999, 102]
    assert tok(text_target="world!")["input_ids"] == [101, 2088, 999, 102]


# -- added tokens (slow base) -----------------------------------------------------------------------
def test_added_tokens_split_out_first_with_their_options():
    tok = CharTokenizer()
    # "q" is already a vocabulary token: it gets no new id but is now matched as an added token
    assert tok.add_tokens(["abc", AddedToken("xy", lstrip=True, rstrip=True), AddedToken("q", single_word=True)]) == 2
    assert tok.tokenize("zabcz") == ["z", "abc", "z"]
    assert tok.tokenize("a xy b") == ["a", "xy", "b"]  # spaces around xy are swallowed
    assert tok.tokenize("q aqb q") == ["q", " ", "a", "q", "b", " ", "q"]  # q inside a word is not the token
    assert tok.tokenize("abc", split_special_tokens=True) == ["a", "b", "c"]  # no added token is kept whole
    assert tok.convert_tokens_to_ids(["abc", "xy", "q"]) == [30, 31, 18] and len(tok) == 32
    assert tok.decode(tok.encode("zabcz.")) == "z abc z."
    assert tok.add_special_tokens({"additional_special_tokens": ["<sep>"]}) == 1
    assert tok.tokenize("a<sep>b") == ["a", "<sep>", "b"]
    assert tok.tokenize("a<sep>b", split_special_tokens=True) == list("a<sep>b")
    assert tok.decode(tok.encode("a<sep>b"), skip_special_tokens=True) == "ab"
    assert tok.all_special_tokens == ["<unk>", "<pad>", "<sep>"]


def test_fast_base_from_a_tokenizers_object(tmp_path):
    tok = word_level(model_max_length=8)
    enc = tok(["hello world !", "good morning , world"], padding=True, return_offsets_mapping=True)
    assert enc.input_ids == [[2, 3, 7, 0], [4, 5, 6, 3]] and enc.attention_mask[0] == [1, 1, 1, 0]
    assert "token_type_ids" in enc and enc.offset_mapping[0][:2] == [(0, 5), (6, 11)]
    assert tok.decode([2, 3, 7]) == "hello world!" and tok.convert_ids_to_tokens(4) == "good"
    assert tok.add_tokens(["new-word"]) == 1 and tok.encode("hello new-word") == [2, 8]
    files = tok.save_pretrained(tmp_path)
    assert sorted(os.path.basename(f) for f in files) == ["special_tokens_map.json", "tokenizer.json",
                                                         "tokenizer_config.json"]
    again = PreTrainedTokenizerFast.from_pretrained(tmp_path)
    assert again.encode("hello new-word") == [2, 8] and again.model_max_length == 8
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    assert config["tokenizer_class"] == "PreTrainedTokenizerFast" and config["added_tokens_decoder"]["8"]["content"] \
        == "new-word"
    with pytest.raises(ValueError, match="tokenizer_file"):
        PreTrainedTokenizerFast()
    with pytest.raises(ValueError, match="legacy"):
        tok.save_pretrained(tmp_path / "legacy", legacy_format=True)


# -- files ------------------------------------------------------------------------------------------
def test_save_writes_only_inside_the_folder(tok, tmp_path):
    target = tmp_path / "out" / "nested"
    files = tok.save_pretrained(target, filename_prefix="p")
    written = sorted(os.listdir(target))
    assert all(name.startswith("p-") for name in written) and not list(tmp_path.glob("*.tmp"))
    assert set(written) <= {os.path.basename(f) for f in files} and os.listdir(tmp_path) == ["out"]
    with pytest.raises(NotADirectoryError):
        tok.save_pretrained(target / "p-vocab.txt")
    if tok.is_fast:
        only_fast = tok.save_pretrained(tmp_path / "json", legacy_format=False)
        assert sorted(os.listdir(tmp_path / "json")) == ["special_tokens_map.json", "tokenizer.json",
                                                         "tokenizer_config.json"] and len(only_fast) == 3
    else:
        with pytest.raises(ValueError, match="fast"):
            tok.save_pretrained(tmp_path / "json", legacy_format=False)


def test_legacy_files_load(tmp_path):
    """A folder from before transformers 4.34: no added_tokens_decoder, AddedToken dicts with "__type",
    special_tokens_map.json with options, added_tokens.json."""
    (tmp_path / "vocab.txt").write_text(VOCAB.read_text(encoding="utf-8"), encoding="utf-8")
    mask = {"__type": "AddedToken", "content": "[MASK]", "lstrip": True, "normalized": False, "rstrip": False,
            "single_word": False}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(
        {"do_lower_case": True, "mask_token": mask, "model_max_length": 64, "tokenizer_file": "/elsewhere/t.json",
         "special_tokens_map_file": "/elsewhere/map.json", "tokenizer_class": "DistilBertTokenizer"}))
    (tmp_path / "special_tokens_map.json").write_text(json.dumps(
        {"cls_token": "[CLS]", "additional_special_tokens": [{"content": "<e>", "lstrip": False, "normalized": False,
                                                               "rstrip": False, "single_word": False}]}))
    (tmp_path / "added_tokens.json").write_text(json.dumps({"newword": 30522, "<e>": 30523}))
    for cls in (DistilBertTokenizer, DistilBertTokenizerFast):
        tok = cls.from_pretrained(str(tmp_path))
        assert tok.model_max_length == 64 and tok.additional_special_tokens == ["<e>"]
        assert tok.encode("hello newword <e>x") == [101, 7592, 30522, 30523, 1060, 102]
        assert tok.added_tokens_decoder[103].lstrip is True
        assert tok.encode("a [MASK]") == [101, 1037, 103, 102]
        assert tok.decode(tok.encode("hello newword <e>"), skip_special_tokens=True) == "hello newword"


def test_hub_ids_resolve_through_the_hub_cache(tmp_path):
    """A Hub id is read from huggingface_hub's cache (offline here); a missing one is a clear error."""
    snapshot = tmp_path / "models--someone--tiny-distilbert" / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    (snapshot / "vocab.txt").write_text(VOCAB.read_text(encoding="utf-8"), encoding="utf-8")
    (snapshot / "tokenizer_config.json").write_text(json.dumps({"model_max_length": 32}))
    (tmp_path / "models--someone--tiny-distilbert" / "refs").mkdir()
    (tmp_path / "models--someone--tiny-distilbert" / "refs" / "main").write_text("0" * 40)
    for cls in (DistilBertTokenizer, DistilBertTokenizerFast):
        tok = cls.from_pretrained("someone/tiny-distilbert", cache_dir=tmp_path, local_files_only=True)
        assert tok.model_max_length == 32 and tok.encode("hello") == [101, 7592, 102]
        assert tok.name_or_path == "someone/tiny-distilbert"
    with pytest.raises(OSError, match="nobody/nothing"):
        DistilBertTokenizerFast.from_pretrained("nobody/nothing", cache_dir=tmp_path, local_files_only=True)
    with pytest.raises(OSError):
        DistilBertTokenizer.from_pretrained(str(tmp_path / "no" / "such" / "folder"))


def test_vocab_file_errors_name_the_argument(tmp_path):
    with pytest.raises(ValueError, match="vocab_file"):
        DistilBertTokenizer(str(tmp_path / "missing.txt"))
    with pytest.raises(ValueError, match="vocab_file|tokenizer_file"):
        DistilBertTokenizerFast()


# -- small pieces -----------------------------------------------------------------------------------
def test_added_token_matches_tokenizers_library():
    import tokenizers

    for kwargs in ({}, {"special": True}, {"lstrip": True, "normalized": True, "special": True}):
        ours, theirs = AddedToken("x", **kwargs), tokenizers.AddedToken("x", **kwargs)
        assert ours.__getstate__() == theirs.__getstate__() and str(ours) == "x"
    assert AddedToken("x") == AddedToken("x") and AddedToken("x") != AddedToken("x", lstrip=True)
    assert pickle.loads(pickle.dumps(AddedToken("y", rstrip=True))) == AddedToken("y", rstrip=True)


def test_clean_up_tokenization():
    text = "hello , world ! it ' s i 'm we 're you 've do n't ."
    assert PreTrainedTokenizerBase.clean_up_tokenization(text) == "hello, world! it's i'm we're you've don't."


def test_decode_accepts_tensors_and_arrays(tok):
    ids = tok(["Hello world!", "Good"], padding=True, return_tensors="pt")["input_ids"]
    assert tok.batch_decode(ids, skip_special_tokens=True) == ["hello world!", "good"]
    assert tok.decode(ids[0].numpy()) == "[CLS] hello world! [SEP]"
    assert tok.decode(np.int64(7592)) == "hello"


def test_special_token_attributes(tok):
    assert (tok.cls_token, tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.mask_token_id,
            tok.unk_token_id) == ("[CLS]", 101, 102, 0, 103, 100)
    assert tok.bos_token is None and tok.bos_token_id is None and tok.additional_special_tokens == []
    assert tok.num_special_tokens_to_add() == 2 and tok.num_special_tokens_to_add(pair=True) == 3
    assert tok.max_len_single_sentence == 510 and tok.max_len_sentences_pair == 509
    assert PaddingStrategy("longest") == "longest"
    assert isinstance(tok("x"), BatchEncoding) and "DistilBertTokenizer" in repr(tok)


def test_tokenizers_pickle_and_copy(tok):
    import copy

    tok2 = copy.deepcopy(tok)
    tok2.add_tokens(["brandnewtoken"])
    assert "brandnewtoken" not in tok.get_vocab() and tok2.encode("brandnewtoken")[1] == 30522
    again = pickle.loads(pickle.dumps(tok2))
    assert again.encode("a brandnewtoken") == tok2.encode("a brandnewtoken") and len(again) == 30523


def test_fast_from_slow_files(tmp_path, slow):
    slow.save_pretrained(tmp_path)  # vocab.txt, no tokenizer.json
    fast = DistilBertTokenizerFast.from_pretrained(tmp_path)
    rebuilt = DistilBertTokenizerFast.from_pretrained(tmp_path, from_slow=True)
    text = "Héllo, WORLD! 我爱 don't"
    assert fast.encode(text) == rebuilt.encode(text) == slow.encode(text)
