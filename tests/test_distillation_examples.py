"""The fine-tuning examples (examples/finetune_*.py) end to end on a tiny distilled-shape model: they
train, report their metrics (checked against the saved model's own predictions) and save_pretrained."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from helpers.distillation_models import sentences, write_teacher
from polyformer import AutoTokenizer, DistilBertForQuestionAnswering, DistilBertForSequenceClassification
from polyformer.models.distilbert.convert_bert import convert_bert_to_distilbert

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("examples")
    return convert_bert_to_distilbert(write_teacher(root / "bert", mlm_head=False), root / "distil", [0, 1])


def test_finetune_text_classification(model_dir, tmp_path):
    rows = [{"text": s, "label": "cat" if "cat" in s.split() else "other"} for s in sentences(40, seed=3)]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:32]))
    (tmp_path / "dev.csv").write_text("text,label\n" + "".join(f"{r['text']},{r['label']}\n" for r in rows[32:]))
    out = tmp_path / "clf"
    metrics = _load("finetune_text_classification").main(
        [str(model_dir), "--train", str(tmp_path / "train.jsonl"), "--eval", str(tmp_path / "dev.csv"),
         "--output-dir", str(out), "--epochs", "2", "--batch-size", "8", "--lr", "1e-3", "--quiet"])
    assert metrics["eval_examples"] == 8 and metrics["labels"] == ["cat", "other"]
    model = DistilBertForSequenceClassification.from_pretrained(str(out)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    with torch.no_grad():
        logits = model(**tokenizer([r["text"] for r in rows[32:]], padding=True, return_tensors="pt")).logits
    predicted = [model.config.id2label[i] for i in logits.argmax(-1).tolist()]
    assert metrics["accuracy"] == sum(p == r["label"] for p, r in zip(predicted, rows[32:])) / 8
    assert json.loads((out / "eval_results.json").read_text())["accuracy"] == metrics["accuracy"]


def test_finetune_question_answering(model_dir, tmp_path):
    qa = _load("finetune_question_answering")
    rows = []
    for i, s in enumerate(sentences(24, seed=5)):
        answer = s.split()[1]
        context = f"{s} the answer is {answer} ."
        start = context.rindex(answer)
        rows.append({"question": "what is the answer ?", "context": context,
                     "answers": {"text": [answer], "answer_start": [start]}} if i % 2 else
                    {"question": "what is the answer ?", "context": context, "answer_text": answer,
                     "answer_start": start})
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[:16]))
    (tmp_path / "dev.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows[16:]))
    out = tmp_path / "qa"
    metrics = qa.main([str(model_dir), "--train", str(tmp_path / "train.jsonl"), "--eval", str(tmp_path / "dev.jsonl"),
                       "--output-dir", str(out), "--epochs", "1", "--batch-size", "8", "--max-length", "32",
                       "--quiet"])
    assert metrics["eval_examples"] == 8 and 0 <= metrics["exact_match"] <= metrics["f1"] <= 100
    assert DistilBertForQuestionAnswering.from_pretrained(str(out)).config.num_labels == 2
    assert qa.exact_match("The Cat!", "cat") == 1.0 and qa.f1("a red cat", "the blue cat") == 0.5
    # labels: the answer's tokens, found through the offsets
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    _, starts, ends, batch = qa.encode(tokenizer, rows[:2], 32, "cpu")
    for i, row in enumerate(rows[:2]):
        a, b = batch["offset_mapping"][i][starts[i]][0], batch["offset_mapping"][i][ends[i]][1]
        assert row["context"][a:b] == qa.answer_of(row)[0]
