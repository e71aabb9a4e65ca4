"""`pipeline()` factory and the `Pipeline` / `ChunkPipeline` base: task names and aliases, loading a
model by folder or object, tokenizer and device handling, forwarded loading options, clear errors, and
the batching helpers."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import polyformer
from helpers.pipeline_cases import PIPELINE_FIXTURES
from polyformer import (AutoModelForCausalLM, AutoTokenizer, ChunkPipeline, FeatureExtractionPipeline, Pipeline,
                        TextGenerationPipeline, pipeline)
from polyformer.pipelines import TASKS, check_task, get_supported_tasks
from polyformer.pipelines.base import pad_collate, unbatch

LLAMA = str(PIPELINE_FIXTURES / "text_generation" / "llama")
CODEGEN = str(PIPELINE_FIXTURES / "text_generation" / "codegen")
DISTILBERT = str(PIPELINE_FIXTURES / "feature_extraction" / "distilbert")
MVP = str(PIPELINE_FIXTURES / "text2text" / "mvp")


# --- task names --------------------------------------------------------------------------------------------

def test_every_task_and_alias_is_listed():
    assert get_supported_tasks() == sorted([
        "feature-extraction", "fill-mask", "ner", "question-answering", "sentiment-analysis", "summarization",
        "text-classification", "text-generation", "text2text-generation", "token-classification",
        "zero-shot-classification", "zero-shot-image-classification"])
    assert check_task("sentiment-analysis")[0] == "text-classification"
    assert check_task("ner")[0] == "token-classification"
    for name, task in TASKS.items():
        assert task.module.startswith(".") and task.impl.endswith("Pipeline"), name
        for auto in task.auto:
            assert hasattr(polyformer, auto), (name, auto)


def test_unknown_task_is_a_clear_error():
    with pytest.raises(ValueError, match="Unknown task text-generatoin, available tasks are"):
        pipeline("text-generatoin", model=LLAMA)
    with pytest.raises(KeyError):
        check_task("translate")


def test_nothing_to_build_from():
    with pytest.raises(RuntimeError, match="without either a task or a model"):
        pipeline()
    tokenizer = AutoTokenizer.from_pretrained(LLAMA)
    with pytest.raises(RuntimeError, match="without the model"):
        pipeline("text-generation", tokenizer=tokenizer)


def test_framework_without_a_class_and_remote_code_are_refused():
    with pytest.raises(ValueError, match="cannot serve the task 'text-generation' with framework='tf'.*"
                                         "no TensorFlow class"):
        pipeline("text-generation", model=LLAMA, framework="tf")
    with pytest.raises(ValueError, match="framework must be 'pt'.*got 'jax'"):
        pipeline("text-generation", model=LLAMA, framework="jax")
    with pytest.raises(ValueError, match="trust_remote_code"):
        pipeline("text-generation", model=LLAMA, trust_remote_code=True)


# --- models ----------------------------------------------------------------------------------------------

def test_model_that_cannot_serve_the_task():
    with pytest.raises(ValueError, match=r"cannot serve the task 'text-generation'.*distilbert"):
        pipeline("text-generation", model=DISTILBERT)
    model = AutoModelForCausalLM.from_pretrained(LLAMA)
    with pytest.raises(ValueError, match="LlamaForCausalLM cannot serve the task 'summarization'"):
        pipeline("summarization", model=model, tokenizer=LLAMA)


def test_task_inferred_from_a_folder_or_a_model():
    assert type(pipeline(model=LLAMA)) is TextGenerationPipeline
    assert type(pipeline(model=Path(DISTILBERT))) is FeatureExtractionPipeline  # DistilBertModel
    model = AutoModelForCausalLM.from_pretrained(CODEGEN)
    assert pipeline(model=model, tokenizer=CODEGEN).task == "text-generation"


def test_model_object_needs_a_tokenizer():
    model = AutoModelForCausalLM.from_pretrained(LLAMA)
    with pytest.raises(ValueError, match="needs a tokenizer"):
        pipeline("text-generation", model=model)
    by_name = pipeline("text-generation", model=model, tokenizer=LLAMA)
    by_object = pipeline("text-generation", model=model, tokenizer=AutoTokenizer.from_pretrained(LLAMA))
    by_tuple = pipeline("text-generation", model=model, tokenizer=(LLAMA, {"use_fast": False}))
    assert type(by_tuple.tokenizer).__name__ == "LlamaTokenizer"
    assert by_name("abc", max_new_tokens=3) == by_object("abc", max_new_tokens=3) == by_tuple("abc", max_new_tokens=3)


def test_another_task_class_on_a_base_model():
    pipe = pipeline("feature-extraction", model=CODEGEN)  # CodeGenModel
    assert type(pipe.model).__name__ == "CodeGenModel"
    assert len(pipe("def f")[0][0]) == 16


def test_loading_options_are_forwarded(monkeypatch):
    seen = {}
    original = polyformer.LlamaForCausalLM.from_pretrained.__func__

    def spy(cls, name, *args, **kwargs):
        seen.update(kwargs)
        return original(cls, name, *args, **{k: v for k, v in kwargs.items() if k != "device_map"})

    monkeypatch.setattr(polyformer.LlamaForCausalLM, "from_pretrained", classmethod(spy))
    pipe = pipeline("text-generation", model=LLAMA, device_map="cpu", torch_dtype=torch.bfloat16,
                    model_kwargs={"attn_implementation": "eager"})
    assert seen["device_map"] == "cpu" and seen["torch_dtype"] is torch.bfloat16
    assert seen["attn_implementation"] == "eager"
    assert pipe.torch_dtype == torch.bfloat16 and pipe.model.dtype == torch.bfloat16
    with pytest.raises(ValueError, match="device_map"):
        pipeline("text-generation", model=LLAMA, device_map="cpu", model_kwargs={"device_map": "cpu"})
    with pytest.raises(ValueError, match="torch_dtype"):
        pipeline("text-generation", model=LLAMA, torch_dtype="float32", model_kwargs={"torch_dtype": "float32"})


@pytest.mark.parametrize("device", ["cpu", -1, torch.device("cpu"), None])
def test_device(device):
    pipe = pipeline("text-generation", model=LLAMA, device=device)
    assert pipe.device == torch.device("cpu")
    assert pipe.model.device == torch.device("cpu")


def test_bad_device_and_batch_size():
    with pytest.raises(ValueError, match="device must be"):
        pipeline("text-generation", model=LLAMA, device=1.5)
    pipe = pipeline("text-generation", model=LLAMA)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        pipe(["a", "b"], batch_size=0)


def test_batch_size_and_task_options_from_the_factory():
    pipe = pipeline("text-generation", model=LLAMA, batch_size=2, max_new_tokens=2, return_full_text=False)
    pipe.tokenizer.pad_token = pipe.tokenizer.eos_token
    assert pipe._batch_size == 2
    out = pipe(["a b", "c"])
    assert len(out) == 2 and all(len(r) == 1 and "generated_text" in r[0] for r in out)


def test_pipeline_class_override_and_save_roundtrip(tmp_path):
    class Mine(TextGenerationPipeline):
        pass

    pipe = pipeline("text-generation", model=LLAMA, pipeline_class=Mine)
    assert type(pipe) is Mine
    pipe.save_pretrained(tmp_path / "saved")
    again = pipeline("text-generation", model=str(tmp_path / "saved"))
    assert again("x", max_new_tokens=3) == pipe("x", max_new_tokens=3)


# --- base: batching helpers and chunk pipelines ------------------------------------------------------------

class _Tok:
    pad_token_id = 9
    padding_side = "right"


def test_pad_collate_pads_by_key_and_side():
    items = [{"input_ids": torch.tensor([[1, 2, 3]]), "attention_mask": torch.ones(1, 3, dtype=torch.long),
              "p_mask": torch.zeros(1, 3), "text": "a"},
             {"input_ids": torch.tensor([[4]]), "attention_mask": torch.ones(1, 1, dtype=torch.long),
              "p_mask": torch.zeros(1, 1), "text": "b"}]
    right = pad_collate(_Tok())(items)
    assert right["input_ids"].tolist() == [[1, 2, 3], [4, 9, 9]]
    assert right["attention_mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
    assert right["p_mask"].tolist() == [[0, 0, 0], [0, 1, 1]]
    assert right["text"] == ["a", "b"]
    left_tok = _Tok()
    left_tok.padding_side = "left"
    assert pad_collate(left_tok)(items)["input_ids"].tolist() == [[1, 2, 3], [9, 9, 4]]
    parts = unbatch(right, 2)
    assert parts[1]["input_ids"].tolist() == [[4, 9, 9]] and parts[1]["text"] == "b"


def test_pad_collate_errors():
    no_pad = _Tok()
    no_pad.pad_token_id = None
    with pytest.raises(ValueError, match="no pad_token"):
        pad_collate(no_pad)
    with pytest.raises(ValueError, match="without tokenizer or feature extractor"):
        pad_collate(None, None)
    with pytest.raises(ValueError, match="different keys"):
        pad_collate(_Tok())([{"input_ids": torch.ones(1, 1)}, {"x": torch.ones(1, 1)}])


class _Sum(torch.nn.Module):
    device = torch.device("cpu")
    dtype = torch.float32
    config = type("C", (), {"task_specific_params": None})()

    def can_generate(self):
        return False

    def forward(self, input_ids, attention_mask):
        return (input_ids * attention_mask).sum(-1)


class _Chunks(ChunkPipeline):
    """Each input n makes n chunks [i] (i < n); the result is the list of per-chunk sums."""

    def _sanitize_parameters(self, **kwargs):
        return {}, {}, {}

    def preprocess(self, n):
        for i in range(n):
            yield {"input_ids": torch.tensor([[i] * (i + 1)]), "attention_mask": torch.ones(1, i + 1, dtype=torch.long),
                   "index": i, "is_last": i == n - 1}

    def _forward(self, inputs):
        assert "is_last" not in inputs
        return {"sum": self.model(inputs["input_ids"], inputs["attention_mask"]), "index": inputs["index"]}

    def postprocess(self, outputs):
        return [(o["index"], int(o["sum"][0])) for o in outputs]


def test_chunk_pipeline_batches_chunks_across_inputs():
    pipe = _Chunks(model=_Sum(), tokenizer=_Tok())
    expected = [[(0, 0)], [(0, 0), (1, 2), (2, 6)], [(0, 0), (1, 2)]]
    assert pipe([1, 3, 2]) == expected
    assert pipe([1, 3, 2], batch_size=2) == expected
    assert pipe([1, 3, 2], batch_size=4) == expected
    assert pipe(3, batch_size=2) == expected[1]
    assert isinstance(pipe, Pipeline)
