"""DistilBertTokenizer / DistilBertTokenizerFast against transformers 4.37.2.

tests/fixtures/tokenizers/distilbert/cases.json (written by scripts/fixtures/make_tokenizer_fixtures.py
with the reference) holds calls and the reference's results on the real uncased BERT vocabulary: a few
hundred sentences from the Python standard library's docstrings and hard strings, single and pairs,
padding, truncation, overflow, offsets, word ids, decoding, added tokens, saved folders. Every case is
replayed on polyformer's slow and fast tokenizers and must give the same result; raised exceptions
must be of the same type, except where the reference fails with an unhelpful type (then a ValueError
or TypeError is expected) and the few deliberate differences listed in DEVIATIONS.

Property tests (hypothesis) check slow == fast and decode(encode(x)) round trips on random text.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from polyformer.models.distilbert.tokenization import DistilBertTokenizer, DistilBertTokenizerFast
from polyformer.tokenization.encoding import AddedToken
from helpers.tokenizer_fixture_io import build_tokenizer, cached_maker, check, expectation, materialize, run_step

FIXTURES = Path(__file__).parent / "fixtures" / "tokenizers" / "distilbert"
VOCAB = FIXTURES / "vocab.txt"
DOC = json.loads((FIXTURES / "cases.json").read_text(encoding="utf-8"))
CLASSES = {"slow": DistilBertTokenizer, "fast": DistilBertTokenizerFast}

# (case id, step index, kind) -> (why, which expectation applies instead: the other kind's, or a value)
DEVIATIONS = {
    ("decode", 10, "slow"): ("the reference's slow decode(int) spells the token out ('h e l l o'); "
                             "polyformer reads an int as one id, like the fast tokenizer", "fast"),
    ("special", 4, "fast"): ("get_special_tokens_mask without already_has_special_tokens is an "
                             "AssertionError on the reference's fast tokenizer; polyformer answers like the slow one",
                             "slow"),
    ("special", 5, "fast"): ("same as above, for a pair", "slow"),
    ("reload.v5_added", 2, "fast"): ("transformers 5.x saves additional special tokens as "
                                     "`extra_special_tokens`, which 4.37 ignores; polyformer reads them",
                                     ["<extra>"]),
    ("reload.v5_added", 3, "fast"): ("same as above", ["[UNK]", "[SEP]", "[PAD]", "[CLS]", "[MASK]", "<extra>"]),
}


def replacement(step: dict, instead):
    return expectation(step, instead) if isinstance(instead, str) and instead in CLASSES else instead


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("saved")
    return {name: materialize(files, root / name, VOCAB) for name, files in DOC["saved"].items()}


@pytest.fixture(scope="module")
def make(folders):
    return cached_maker(lambda name, kind: build_tokenizer(DOC["tokenizers"][name], CLASSES[kind], FIXTURES, folders,
                                                           AddedToken))


CASES = [pytest.param(case, kind, id=f"{case['id']}-{kind}") for case in DOC["cases"] for kind in case["kinds"]]


@pytest.mark.parametrize("case,kind", CASES)
def test_matches_reference(case, kind, make):
    tok = make(case["tokenizer"], kind, fresh=case["fresh"])
    for i, step in enumerate(case["steps"]):
        expected = expectation(step, kind)
        if (case["id"], i, kind) in DEVIATIONS:
            expected = replacement(step, DEVIATIONS[case["id"], i, kind][1])
        call = {key: value for key, value in step.items() if key != "expected"}
        check(run_step(tok, step, AddedToken), expected, f"{case['id']} step {i} ({kind}) {str(call)[:300]}")


def test_deviations_still_differ_from_reference():
    """Each listed deviation names a step whose reference result really is what we do not do."""
    cases = {case["id"]: case for case in DOC["cases"]}
    for (case_id, index, kind), (why, instead) in DEVIATIONS.items():
        step = cases[case_id]["steps"][index]
        assert expectation(step, kind) != replacement(step, instead), why


def test_slow_loads_a_folder_saved_by_transformers_5(folders):
    """5.x writes no vocab.txt: the slow tokenizer reads the vocabulary from tokenizer.json."""
    case = next(c for c in DOC["cases"] if c["id"] == "reload.v5_added")
    slow = DistilBertTokenizer.from_pretrained(folders["v5_added"])
    step = case["steps"][0]
    assert run_step(slow, step, AddedToken) == step["expected"]["fast"]
    assert slow.additional_special_tokens == ["<extra>"] and len(slow) == 30524


@pytest.mark.parametrize("kind", ["slow", "fast"])
def test_save_round_trip_and_files(kind, make, tmp_path):
    """polyformer writes what the reference writes (same config keys and values, same vocab.txt) and
    reloads to the same tokenizer."""
    tok = make("default", kind, fresh=True)
    tok.add_tokens(["newword", "NewTok", "[NEW]"])
    tok.add_tokens(AddedToken("xyz", single_word=True, lstrip=True, rstrip=True))
    tok.add_special_tokens({"additional_special_tokens": ["<extra>"], "bos_token": "<s>"})
    written = tok.save_pretrained(tmp_path)
    assert all(Path(p).parent == tmp_path for p in written)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    reference = DOC["saved"][f"added_{kind}"]
    assert sorted(os.listdir(tmp_path)) == sorted(reference)
    for name, content in reference.items():
        text = (tmp_path / name).read_text(encoding="utf-8")
        if "same_as" in content:
            assert text == VOCAB.read_text(encoding="utf-8")
        elif "json" in content:
            ours = json.loads(text)
            ours["model"]["vocab"] = {"same_as": "vocab.txt"}
            assert ours == content["json"]
        else:
            assert json.loads(text) == json.loads(content["text"]), name
    again = CLASSES[kind].from_pretrained(tmp_path)
    sample = "Hello NewTok newword [NEW] <extra> xyz world Xyz <s>"
    assert again(sample) == tok(sample) and again.tokenize(sample) == tok.tokenize(sample)
    assert again.added_tokens_decoder == tok.added_tokens_decoder
    assert again.special_tokens_map == tok.special_tokens_map


def test_unknown_config_keys_are_kept(make, tmp_path):
    tok = make("default", "fast", fresh=True)
    tok.save_pretrained(tmp_path)
    config = json.loads((tmp_path / "tokenizer_config.json").read_text())
    config["some_future_key"] = {"a": 1}
    (tmp_path / "tokenizer_config.json").write_text(json.dumps(config))
    for cls in CLASSES.values():
        out = tmp_path / cls.__name__
        cls.from_pretrained(tmp_path).save_pretrained(out)
        assert json.loads((out / "tokenizer_config.json").read_text())["some_future_key"] == {"a": 1}


def test_kwargs_override_config(make, folders):
    for cls in CLASSES.values():
        tok = cls.from_pretrained(folders["saved_fast"], model_max_length=16, padding_side="left")
        assert tok.model_max_length == 16 and tok.padding_side == "left"
        assert tok("a b c", padding="max_length")["input_ids"] == [0] * 11 + [101, 1037, 1038, 1039, 102]


# -- properties ---------------------------------------------------------------------------------
ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 .,;:!?'\"-()[]éàüçñß\t\n"
TEXTS = st.text(alphabet=ALPHABET, max_size=80)
SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(text=TEXTS, pair=st.one_of(st.none(), TEXTS.filter(bool)))  # the fast one reads "" as no pair
def test_slow_equals_fast(make, text, pair):
    slow, fast = make("default", "slow"), make("default", "fast")
    assert slow(text, pair)["input_ids"] == fast(text, pair)["input_ids"]
    assert slow.tokenize(text) == fast.tokenize(text)


@SETTINGS
@given(words=st.lists(st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=12), max_size=12))
def test_decode_encode_round_trip(make, words):
    """Lower-case ASCII words come back from decode(encode(x)) (unknown words excepted)."""
    text = " ".join(words)
    for kind in CLASSES:
        tok = make("default", kind)
        ids = tok.encode(text, add_special_tokens=False)
        if tok.unk_token_id not in ids:
            assert tok.decode(ids) == text
        assert tok.decode(tok.encode(text), skip_special_tokens=True) == tok.decode(ids)


@SETTINGS
@given(texts=st.lists(TEXTS, min_size=1, max_size=5), side=st.sampled_from(["left", "right"]),
       max_length=st.integers(min_value=4, max_value=24))
def test_padded_batches_hold_the_unpadded_rows(make, texts, side, max_length):
    for kind in CLASSES:
        tok = make("default", kind, fresh=True)
        tok.padding_side = side
        rows = [tok.encode(t, truncation=True, max_length=max_length) for t in texts]
        batch = tok(texts, padding="max_length", truncation=True, max_length=max_length, return_tensors="np")
        assert batch["input_ids"].shape == (len(texts), max_length)
        for row, ids, mask in zip(rows, batch["input_ids"].tolist(), batch["attention_mask"].tolist()):
            kept = [i for i, m in zip(ids, mask) if m]
            assert kept == row and sum(mask) == len(row)
            assert (ids[: len(row)] if side == "right" else ids[max_length - len(row):]) == row
