"""Pipelines with TensorFlow models against transformers 4.37.2's, on the fixtures of
scripts/fixtures/make_pipeline_tf_fixtures.py: fill-mask (top_k, targets, two masks), text-classification
(top_k, function_to_apply, pairs), token-classification (every aggregation strategy, ignore_labels, stride),
question-answering (top_k, long contexts, impossible answers), zero-shot-classification, feature-extraction
(return_tensors gives a tf.Tensor), zero-shot-image-classification (GroupViT) and text-generation (GPT-J:
return_full_text, return_tensors, stop_sequence), single inputs and lists; then model objects, devices and
the errors. Labels, words, offsets, answers and text must be equal; floats within 1e-5 + 1e-5 |ref|."""

from __future__ import annotations

import copy
import io
import json
import subprocess
import sys

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from helpers.tf_pipelines import PIPELINES, assemble, image_input, load  # noqa: E402
from helpers.tolerance import assert_close  # noqa: E402

import polyformer  # noqa: E402
from polyformer import AutoTokenizer, pipeline  # noqa: E402

FIXTURE = load()
CASES = FIXTURE["cases"]
CHECKPOINTS = FIXTURE["checkpoints"]


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("tf-pipelines")
    return {name: assemble(name, root, info["source"]) for name, info in CHECKPOINTS.items()}


_PIPES = {}


def tf_pipeline(folders, checkpoint: str, **pipeline_kwargs):
    key = (checkpoint, json.dumps(pipeline_kwargs, sort_keys=True))
    if key not in _PIPES:
        _PIPES[key] = pipeline(CHECKPOINTS[checkpoint]["task"], model=str(folders[checkpoint]), framework="tf",
                               **pipeline_kwargs)
    return _PIPES[key]


def run(pipe, case):
    inputs = case["inputs"]
    if case["task"] == "zero-shot-image-classification":
        inputs = image_input(inputs)
    return pipe(inputs, **copy.deepcopy(case["call_kwargs"]))


def assert_same(got, expected, where="result"):
    """Same structure and keys in order; strings, ints, None exactly; floats (and tensors) within the
    tolerance; a recorded tensor must come back as a tf.Tensor."""
    if isinstance(expected, dict) and "__tensor__" in expected:
        assert isinstance(got, tf.Tensor), f"{where}: expected a tf.Tensor, got {type(got).__name__}"
        assert_close(got.numpy().astype(np.float64), np.array(expected["__tensor__"]), name=where)
    elif isinstance(expected, dict):
        assert isinstance(got, dict) and list(got) == list(expected), f"{where}: {got!r} != {expected!r}"
        for key in expected:
            assert_same(got[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(got, list) and len(got) == len(expected), f"{where}: {got!r} != {expected!r}"
        for i, (a, b) in enumerate(zip(got, expected)):
            assert_same(a, b, f"{where}[{i}]")
    elif isinstance(expected, float):
        assert isinstance(got, (float, np.floating)), f"{where}: {type(got).__name__}"
        assert_close(float(got), expected, name=where)
    else:
        assert got == expected and type(got) is type(expected), f"{where}: {got!r} != {expected!r}"


def score_type(value):
    if isinstance(value, dict):
        return type(value["score"]).__name__ if "score" in value else None
    if isinstance(value, list) and value:
        return score_type(value[0])
    return None


@pytest.mark.parametrize("case", CASES, ids=[c["name"] for c in CASES])
def test_matches_reference(case, folders):
    pipe = tf_pipeline(folders, case["checkpoint"], **case["pipeline_kwargs"])
    assert pipe.framework == "tf" and pipe.device == -1
    assert type(pipe.model).__name__ == CHECKPOINTS[case["checkpoint"]]["class"]
    got = run(pipe, case)
    assert_same(got, case["output"])
    assert score_type(got) == case["score_type"]


def test_every_task_with_tf_classes_is_covered():
    assert {info["task"] for info in CHECKPOINTS.values()} == {
        "fill-mask", "text-classification", "token-classification", "question-answering", "zero-shot-classification",
        "feature-extraction", "zero-shot-image-classification", "text-generation"}


def case(name):
    return next(c for c in CASES if c["name"] == name)


def test_model_object_infers_the_framework(folders):
    """A TF model object (with its tokenizer) gives a TF pipeline without framework=, as in 4.37."""
    folder = folders["qa"]
    model = polyformer.TFAutoModelForQuestionAnswering.from_pretrained(str(folder))
    pipe = pipeline("question-answering", model=model, tokenizer=AutoTokenizer.from_pretrained(str(folder)))
    assert pipe.framework == "tf"
    assert_same(run(pipe, case("question-answering.long")), case("question-answering.long")["output"])
    inferred = pipeline(model=model, tokenizer=AutoTokenizer.from_pretrained(str(folder)))
    assert inferred.task == "question-answering" and inferred.framework == "tf"


def test_groupvit_object_and_image_processor(folders):
    folder = str(folders["groupvit"])
    model = polyformer.TFGroupViTModel.from_pretrained(folder)
    pipe = pipeline("zero-shot-image-classification", model=model, tokenizer=AutoTokenizer.from_pretrained(folder),
                    image_processor=polyformer.AutoImageProcessor.from_pretrained(folder))
    expected = case("zero-shot-image-classification.path")
    assert_same(run(pipe, expected), expected["output"])


def test_batch_size_runs_inputs_one_by_one(folders):
    """4.37's TF pipelines ignore batch_size; results equal the single results."""
    pipe = tf_pipeline(folders, "ner")
    texts = case("token-classification.list")["inputs"]
    kwargs = {"aggregation_strategy": "max"}
    assert_same(pipe(texts, batch_size=2, **kwargs), [pipe(text, **kwargs) for text in texts])


def test_same_results_as_the_pytorch_pipeline(tmp_path):
    """The TF checkpoints hold the PyTorch fixtures' weights: both frameworks answer alike."""
    expected = case("question-answering.list")
    source = PIPELINES / CHECKPOINTS["qa"]["source"]
    pt_folder = assemble("qa-pt", tmp_path, CHECKPOINTS["qa"]["source"])  # preprocessor files only
    for name in ("model.safetensors", "config.json"):
        (pt_folder / name).write_bytes((source / name).read_bytes())
    pt = pipeline("question-answering", model=str(pt_folder))
    assert pt.framework == "pt"
    assert_same(run(pt, expected), expected["output"])


@pytest.mark.parametrize("device", [None, -1, "cpu"])
def test_device_as_4_37_keeps_it(folders, device):
    pipe = pipeline("fill-mask", model=str(folders["mlm"]), framework="tf", device=device)
    assert pipe.device == -1
    assert_same(run(pipe, case("fill-mask.single")), case("fill-mask.single")["output"])


def test_bad_arguments_are_named(folders):
    mlm = str(folders["mlm"])
    with pytest.raises(ValueError, match="device"):
        pipeline("fill-mask", model=mlm, framework="tf", device="tpu")
    with pytest.raises(ValueError, match="torch_dtype"):
        pipeline("fill-mask", model=mlm, framework="tf", torch_dtype="float16")
    with pytest.raises(ValueError, match="cannot serve the task 'text2text-generation' with framework='tf'"):
        pipeline("text2text-generation", model=mlm, framework="tf")
    model = polyformer.TFAutoModelForMaskedLM.from_pretrained(mlm)
    tokenizer = AutoTokenizer.from_pretrained(mlm)
    with pytest.raises(ValueError, match="TFDistilBertForMaskedLM cannot serve the task 'text-generation'"):
        pipeline("text-generation", model=model, tokenizer=tokenizer)
    with pytest.raises(ValueError, match="framework='pt' but the model TFDistilBertForMaskedLM is a TensorFlow"):
        pipeline("fill-mask", model=model, tokenizer=tokenizer, framework="pt")
    with pytest.raises(ValueError, match="framework must be 'pt'"):
        pipeline("fill-mask", model=mlm, framework="flax")


def test_cli_runs_a_tf_pipeline(folders):
    from polyformer.pipelines.cli import run_command

    class Args:
        task, model, inputs = "fill-mask", str(folders["mlm"]), ["the man went to the [MASK] ."]
        batch_size, device, dtype, opt, stream, framework = 1, None, None, ["top_k=2"], False, "tf"

    out = io.StringIO()
    assert run_command(Args(), stdout=out) == 0
    assert_same(json.loads(out.getvalue()), case("fill-mask.top_k")["output"])


def test_pytorch_pipelines_do_not_import_tensorflow():
    folder = PIPELINES / "fill_mask" / "mlm"
    code = (f"import sys, polyformer; p = polyformer.pipeline('fill-mask', model={str(folder)!r}); "
            "p('the man went to the [MASK] .'); print('tensorflow' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip().splitlines()[-1] == "False"
