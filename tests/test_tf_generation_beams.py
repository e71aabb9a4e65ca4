"""TF generate(): beam search and the penalties, ids equal to transformers 4.37.2's TFGPTJForCausalLM.generate()
(tests/fixtures/tf/surface/generate_beams.json, scripts/fixtures/make_tf_surface_fixtures.py)."""

import json

import numpy as np
import pytest

from helpers.parity import FIXTURES
from polyformer import TFGPTJForCausalLM
from polyformer.tf.backend import tf

SURFACE = FIXTURES / "tf" / "surface"
BEAMS = json.loads((SURFACE / "generate_beams.json").read_text())


@pytest.fixture(scope="module")
def lm():
    return TFGPTJForCausalLM.from_pretrained(SURFACE / BEAMS["checkpoint"])


def _prompt():
    return {k: np.array(v) for k, v in BEAMS["inputs"].items()}


@pytest.mark.parametrize("run", sorted(BEAMS["runs"]))
def test_generate_ids_equal_the_references(lm, run):
    spec = BEAMS["runs"][run]
    out = lm.generate(**_prompt(), **spec["kwargs"])
    assert out.dtype == tf.int32
    assert out.numpy().tolist() == spec["sequences"]


def test_beam_search_inside_tf_function(lm):
    spec = BEAMS["runs"]["beams3_penalties"]
    prompt = {k: tf.constant(v) for k, v in _prompt().items()}
    out = tf.function(lambda ids, mask: lm.generate(ids, attention_mask=mask, **spec["kwargs"]))(
        prompt["input_ids"], prompt["attention_mask"])
    assert out.numpy().tolist() == spec["sequences"]


def test_processors_on_known_rows():
    from polyformer.tf import processors

    seq = tf.constant([[1, 2, 3, 1, 2, 0, 0]])  # 5 tokens count, then padding
    scores = tf.constant([[1.0, -1.0, 2.0, -2.0, 0.5]])
    out = processors.repetition_penalty(scores, seq, 5, 2.0).numpy()
    np.testing.assert_allclose(out, [[1.0, -2.0, 1.0, -4.0, 0.5]])  # 0 (padding) is not counted
    banned = np.isinf(processors.no_repeat_ngram(tf.zeros((1, 5)), seq, 5, 3).numpy())[0]
    assert banned.tolist() == [False, False, False, True, False]  # 1 2 -> 3 was seen
    banned = np.isinf(processors.bad_words(tf.zeros((1, 5)), seq, 5, ((4,), (2, 0), (1, 2, 4), (3, 1, 2, 3))).numpy())[0]
    assert banned.tolist() == [True, False, False, True, True]


def test_bad_arguments_are_refused(lm):
    with pytest.raises(ValueError, match="num_return_sequences"):
        lm.generate(**_prompt(), num_beams=2, num_return_sequences=3, max_new_tokens=2)
    with pytest.raises(NotImplementedError, match="beam sampling"):
        lm.generate(**_prompt(), num_beams=2, do_sample=True, max_new_tokens=2)
    with pytest.raises(ValueError, match="bad_words_ids"):
        lm.generate(**_prompt(), bad_words_ids=[[]], max_new_tokens=2)
    with pytest.raises(ValueError, match="repetition_penalty"):
        lm.generate(**_prompt(), repetition_penalty=0.0, max_new_tokens=2)
