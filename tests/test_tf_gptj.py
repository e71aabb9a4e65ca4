"""TFGPTJ*: parity with transformers 4.37.2's TF classes, generate(), the documented pooling and span loss."""

import json

import numpy as np
import pytest

import polyformer
from helpers.parity import FIXTURES
from polyformer.tf.backend import tf
from helpers.tf_parity import check_span_qa_clamps, load_model, params, parity_tests, tf_cases, to_tf
from helpers.tolerance import assert_close

CASES = tf_cases("gptj")
MODELS = {name: getattr(polyformer, name) for name in (
    "TFGPTJModel", "TFGPTJForCausalLM", "TFGPTJForSequenceClassification", "TFGPTJForQuestionAnswering")}


test_parity, test_weight_names_are_the_references = parity_tests(CASES, MODELS)


# --- documented behaviour where 4.37's TF code differs ----------------------------------------------------
DIFFERS = tf_cases("gptj", differs=True)


@pytest.mark.parametrize("case", params([c for c in DIFFERS if c.model_class.endswith("SequenceClassification")]))
def test_sequence_classification_pools_the_last_position(case):
    """Without a pad id (or with inputs_embeds) 4.37's TF code returns the (B, T, num_labels) logits of every
    position; as documented, the logits are those of the last position."""
    model = load_model(MODELS[case.model_class], case)
    out = model(**{k: to_tf(v) for k, v in case.inputs().items()}, return_dict=True)
    unpooled = case.expected()["logits"].numpy()
    assert unpooled.ndim == 3 and out.logits.shape == (unpooled.shape[0], unpooled.shape[2])
    assert_close(out.logits.numpy(), unpooled[:, -1])


@pytest.mark.parametrize("case", params([c for c in DIFFERS if c.model_class.endswith("QuestionAnswering")]))
def test_span_qa_clamps_and_ignores_positions_outside(case):
    check_span_qa_clamps(MODELS[case.model_class], case)


def test_sequence_classification_without_pad_refuses_labels_for_batches():
    case = next(c for c in DIFFERS if c.model_class.endswith("SequenceClassification") and "input_ids" in c.spec["inputs"])
    model = load_model(MODELS[case.model_class], case)
    ids = case.inputs()["input_ids"].numpy()
    with pytest.raises(ValueError, match="Cannot handle batch sizes > 1 if no padding token is defined"):
        model(ids, labels=np.zeros(len(ids), np.int32))
    assert model(ids[:1], labels=np.zeros(1, np.int32)).loss.shape == (1,)


# --- generate ---------------------------------------------------------------------------------------------
GENERATE = json.loads((FIXTURES / "tf" / "gptj" / "generate" / "generate.json").read_text())


@pytest.fixture(scope="module")
def lm():
    return MODELS["TFGPTJForCausalLM"].from_pretrained(FIXTURES / "tf" / "gptj" / "generate" / GENERATE["checkpoint"])


def _prompt(rows=None):
    return {k: np.array(v)[:rows] for k, v in GENERATE["inputs"].items()}


@pytest.mark.parametrize("run", sorted(GENERATE["runs"]))
def test_greedy_generate_ids_equal_the_references(lm, run):
    spec = GENERATE["runs"][run]
    out = lm.generate(**_prompt(spec["rows"]), **spec["kwargs"])
    assert out.dtype == tf.int32
    assert out.numpy().tolist() == spec["sequences"]


def test_generate_inside_tf_function(lm):
    spec = GENERATE["runs"]["greedy"]
    prompt = {k: tf.constant(v) for k, v in _prompt().items()}
    out = tf.function(lambda ids, mask: lm.generate(ids, attention_mask=mask, **spec["kwargs"]))(
        prompt["input_ids"], prompt["attention_mask"])
    assert out.numpy().tolist() == spec["sequences"]


def test_generate_equals_a_loop_of_full_forwards(lm):
    """The static cache gives what calling the model on the whole sequence each step gives."""
    ids, mask = (tf.constant(v, tf.int32) for v in _prompt().values())
    for _ in range(4):
        positions = tf.cumsum(mask, axis=-1, exclusive=True)
        logits = lm(ids, attention_mask=mask, position_ids=positions, use_cache=False).logits[:, -1]
        ids = tf.concat([ids, tf.argmax(logits, -1, output_type=tf.int32)[:, None]], axis=1)
        mask = tf.concat([mask, tf.ones_like(mask[:, :1])], axis=1)
    assert ids.numpy().tolist() == [row[:10] for row in GENERATE["runs"]["greedy"]["sequences"]]


def test_sampling(lm):
    prompt = _prompt()
    sample = lambda seed: lm.generate(**prompt, do_sample=True, max_new_tokens=6, seed=seed, pad_token_id=0).numpy()  # noqa: E731
    first = sample((1, 2))
    assert first.shape == (2, 12) and first.tolist() == sample((1, 2)).tolist()
    assert first.min() >= 0 and first.max() < lm.config.vocab_size
    np.testing.assert_array_equal(first[:, :6], prompt["input_ids"])
    assert any(sample((1, s)).tolist() != first.tolist() for s in range(3, 6))
    greedy = GENERATE["runs"]["greedy"]  # top_k=1 leaves one candidate: the greedy ids
    assert lm.generate(**prompt, **greedy["kwargs"], do_sample=True, top_k=1).numpy().tolist() == greedy["sequences"]


def test_sampling_warpers():
    """temperature, top-k and top-p on known probabilities (0.5, 0.3, 0.15, 0.05), eos held back by min_new."""
    from polyformer.tf.generation import Settings, TFGenerationMixin

    logits = tf.math.log(tf.constant([[0.5, 0.3, 0.15, 0.05]] * 64))
    draw = lambda seed=(0, 0), step=1, **kw: set(TFGenerationMixin._next_token(  # noqa: E731
        logits, step, None if seed is None else tf.constant(seed), Settings(**{**dict(
            max_new=4, min_new=0, do_sample=True, temperature=1.0, top_k=0, top_p=1.0, eos=(), pad=0), **kw})).numpy())
    assert draw() == {0, 1, 2, 3} and draw(seed=None) <= {0, 1, 2, 3}
    assert draw(top_p=0.6) == {0, 1} and draw(top_p=0.9) == {0, 1, 2} and draw(top_k=2) == {0, 1}
    assert draw(temperature=1e-3) == {0} and draw(do_sample=False) == {0}
    assert draw(do_sample=False, eos=(0,), min_new=2) == {1} and draw(do_sample=False, eos=(0,), min_new=1) == {0}


def test_min_new_tokens_holds_eos_back(lm):
    spec = GENERATE["runs"]["eos"]
    out = lm.generate(**_prompt(), **spec["kwargs"], min_new_tokens=8).numpy().tolist()
    eos = spec["kwargs"]["eos_token_id"]
    assert all(eos not in row[6:] for row in out) and len(out[0]) == 14


def test_generate_refuses_what_it_does_not_do(lm):
    with pytest.raises(NotImplementedError, match="penalty_alpha"):
        lm.generate(**_prompt(), penalty_alpha=0.6, top_k=4)
    with pytest.raises(ValueError, match="does not use"):
        lm.generate(**_prompt(), token_type_ids=_prompt()["input_ids"])


def test_save_and_reload_with_generation_config(lm, tmp_path):
    lm.save_pretrained(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "generation_config.json", "tf_model.h5"]
    reloaded = MODELS["TFGPTJForCausalLM"].from_pretrained(tmp_path)
    spec = GENERATE["runs"]["greedy"]
    assert reloaded.generate(**_prompt(), **spec["kwargs"]).numpy().tolist() == spec["sequences"]
    assert reloaded.generation_config.eos_token_id == lm.config.eos_token_id


def test_fit_causal_lm():
    from polyformer.tf.backend import keras

    model = MODELS["TFGPTJForCausalLM"].from_pretrained(FIXTURES / "gptj" / "causal_lm")
    ids = np.tile(np.arange(1, 9, dtype=np.int32), (4, 1))
    before = float(model(ids, labels=ids).loss[0])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), run_eagerly=True)  # (traced fit: test_tf_distilbert.py)
    model.fit(tf.data.Dataset.from_tensor_slices({"input_ids": ids, "labels": ids}).batch(2), epochs=2, verbose=0)
    assert float(model(ids, labels=ids).loss[0]) < before
