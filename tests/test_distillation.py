"""polyformer.distillation on tiny BERT teachers: one step of the triple loss lowers it, resume equals an
uninterrupted run, the headless (sentence-embedding) teacher path, the CLI, and every bad input named in
issue 15. Multi-process runs and kill -9 during a save: tests/test_distillation_parallel.py."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from helpers.distillation_models import write_corpus, write_teacher
from helpers.tolerance import assert_close
from polyformer import DistilBertConfig, DistilBertForMaskedLM, DistilBertModel
from polyformer.cli import main
from polyformer.distillation import DistillationArguments, DistillationError, Distiller, distill, every_other_layer
from polyformer.training import latest_checkpoint, load_checkpoint


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("distill")
    return {"teacher": write_teacher(root / "teacher"),
            "headless": write_teacher(root / "headless", mlm_head=False, seed=1),
            "data": write_corpus(root / "train.txt", n=48)}


def args(files, out, **kwargs) -> DistillationArguments:
    base = dict(teacher=str(files["teacher"]), output_dir=str(out), data=[str(files["data"])], max_steps=3,
                batch_size=4, lr=1e-3, progress=False)
    return DistillationArguments(**{**base, **kwargs})


def test_student_starts_from_every_other_teacher_layer(files, tmp_path):
    assert every_other_layer(6) == [0, 2, 4] and every_other_layer(12) == [0, 2, 4, 6, 8, 10]
    assert every_other_layer(4, 3) == [0, 1, 2] and every_other_layer(5) == [0, 1, 3]
    d = Distiller(args(files, tmp_path / "s"))
    student = d.par.unwrap(d.model).model
    assert isinstance(student, DistilBertForMaskedLM) and student.config.n_layers == 2
    teacher = d.teacher
    assert torch.equal(student.distilbert.transformer.layer[1].ffn.lin1.weight,
                       teacher.distilbert.transformer.layer[2].ffn.lin1.weight)
    assert torch.equal(student.vocab_transform.weight, teacher.vocab_transform.weight)
    assert student.vocab_projector.weight is student.distilbert.embeddings.word_embeddings.weight


def test_one_step_of_the_triple_loss_lowers_it(files, tmp_path):
    d = Distiller(args(files, tmp_path / "s", batch_size=8, dropout=0.0, warmup=0))
    batch = d.next_batch()
    before = d.evaluate(batch)
    assert all(float(v) > 0 for v in before[:3]) and float(before[3]) == 0  # ce, mlm, cos on; mse off
    d.train_step(batch)
    after = d.evaluate(batch)
    assert d.weighted(after) < d.weighted(before)


def test_resume_equals_uninterrupted(files, tmp_path):
    common = dict(max_steps=6, save_every=2, dropout=0.1, grad_accum=2, batch_size=2)
    distill(args(files, tmp_path / "straight", **common))
    interrupted = Distiller(args(files, tmp_path / "resumed", **common))
    interrupted.train(until_step=4)  # as if the job ended there: checkpoint step 4, no student yet
    assert not (tmp_path / "resumed" / "config.json").exists()
    assert latest_checkpoint(tmp_path / "resumed" / "checkpoints").name == "step-00000004"
    distill(args(files, tmp_path / "resumed", resume=True, **common))
    straight = load_file(str(tmp_path / "straight" / "model.safetensors"))
    resumed = load_file(str(tmp_path / "resumed" / "model.safetensors"))
    assert straight.keys() == resumed.keys()
    for name in straight:
        assert_close(resumed[name], straight[name], atol=1e-6, rtol=1e-6)
    _, state = load_checkpoint(latest_checkpoint(tmp_path / "resumed" / "checkpoints"))
    assert state["step"] == 6 and state["data_position"] == 6 * 2 * 2
    with pytest.raises(DistillationError, match="already holds checkpoints"):
        Distiller(args(files, tmp_path / "resumed", **common))


def test_saved_student_loads_and_keeps_the_tokenizer(files, tmp_path):
    out = distill(args(files, tmp_path / "s", max_steps=1, layers=[3]))
    config = json.loads((out / "config.json").read_text())
    assert config["architectures"] == ["DistilBertForMaskedLM"] and config["n_layers"] == 1
    model = DistilBertForMaskedLM.from_pretrained(str(out))
    assert model.config.vocab_size == 28 and model.config.dim == 16
    assert (out / "vocab.txt").read_text().split() == (files["teacher"] / "vocab.txt").read_text().split()


def test_headless_teacher_trains_the_hidden_state_losses_and_says_so_once(files, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="polyformer.distillation"):
        out = distill(args(files, tmp_path / "s", teacher=str(files["headless"]), alpha_mse=1.0, max_steps=2))
    said = [r for r in caplog.records if "no masked-LM head" in r.getMessage()]
    assert len(said) == 1
    assert json.loads((out / "config.json").read_text())["architectures"] == ["DistilBertModel"]
    with pytest.raises(DistillationError, match="alpha_cos and alpha_mse are both 0"):
        Distiller(args(files, tmp_path / "t", teacher=str(files["headless"]), alpha_cos=0.0))


def test_token_budget_batches_and_bf16(files, tmp_path):
    d = Distiller(args(files, tmp_path / "s", batch_size=None, max_tokens=48, grad_accum=2, bf16=True))
    batch = d.next_batch()
    rows = batch["starts"][-1]
    assert rows >= 2 and rows * batch["input_ids"].shape[1] <= 2 * 48
    assert abs((batch["starts"][1] - batch["starts"][0]) - (batch["starts"][2] - batch["starts"][1])) <= 1
    parts = d.train_step(batch)
    assert torch.isfinite(parts).all()


def _student_folder(path: Path, **config) -> str:
    DistilBertModel(DistilBertConfig(**{"vocab_size": 28, "dim": 16, "n_layers": 1, "n_heads": 2,
                                        "hidden_dim": 32, "max_position_embeddings": 64, **config})).save_pretrained(path)
    return str(path)


def test_bad_input_is_a_clear_error(files, tmp_path):
    other = tmp_path / "gpt2"
    other.mkdir()
    (other / "config.json").write_text(json.dumps({"model_type": "gpt2", "n_layer": 2}))
    with pytest.raises(DistillationError, match="'gpt2' model; distillation takes a BERT"):
        Distiller(args(files, tmp_path / "a", teacher=str(other)))

    wide = _student_folder(tmp_path / "wide", dim=32, hidden_dim=64)
    with pytest.raises(DistillationError, match=r"student \(dim 32\) is wider than the teacher \(dim 16\).*projection"):
        Distiller(args(files, tmp_path / "b", student_init=wide))
    d = Distiller(args(files, tmp_path / "c", student_init=wide, projection=True))  # with a projection: trains
    assert torch.isfinite(d.train_step()).all()

    other_vocab = _student_folder(tmp_path / "vocab", vocab_size=40)
    with pytest.raises(DistillationError, match="vocabulary mismatch: the teacher has 28 tokens, the student 40"):
        Distiller(args(files, tmp_path / "d", student_init=other_vocab))

    empty = tmp_path / "empty.txt"
    empty.write_text("\n  \n")
    with pytest.raises(ValueError, match="empty.txt holds no text"):
        Distiller(args(files, tmp_path / "e", data=[str(files["data"]), str(empty)]))
    with pytest.raises(FileNotFoundError, match="data file not found"):
        Distiller(args(files, tmp_path / "f", data=[str(tmp_path / "missing.jsonl")]))
    bad_jsonl = tmp_path / "bad.jsonl"
    bad_jsonl.write_text('{"body": "the cat"}\n')
    with pytest.raises(ValueError, match="string field 'text'"):
        Distiller(args(files, tmp_path / "g", data=[str(bad_jsonl)]))
    with pytest.raises(ValueError, match="every loss weight"):
        Distiller(args(files, tmp_path / "h", alpha_ce=0, alpha_mlm=0, alpha_cos=0))
    with pytest.raises(ValueError, match="exactly one of batch_size"):
        Distiller(args(files, tmp_path / "i", max_tokens=64))
    with pytest.raises(DistillationError, match="student_layers must be in 1..4"):
        Distiller(args(files, tmp_path / "j", student_layers=5))


def test_jsonl_data_and_the_cli(files, tmp_path, capsys):
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps({"sentence": line}) + "\n"
                            for line in files["data"].read_text().splitlines()))
    out = tmp_path / "student"
    status = main(["-q", "distill", str(files["teacher"]), str(out), "--data", str(data), "--text-field", "sentence",
                   "--student-layers", "1", "--max-steps", "2", "--batch-size", "4", "--alpha-mse", "0.5",
                   "--save-every", "1", "--warmup", "1"])
    assert status == 0 and capsys.readouterr().out.strip() == str(out)
    assert json.loads((out / "config.json").read_text())["n_layers"] == 1
    assert [p.name for p in sorted((out / "checkpoints").iterdir())] == ["step-00000001", "step-00000002"]
    status = main(["-q", "distill", str(files["teacher"]), str(tmp_path / "x"), "--data", str(tmp_path / "nope.txt")])
    assert status == 1 and "data file not found" in capsys.readouterr().err


def test_a_distilbert_teacher_folder(files, tmp_path):
    from polyformer.models.distilbert.convert_bert import convert_bert_to_distilbert

    teacher = convert_bert_to_distilbert(files["headless"], tmp_path / "distil-teacher")
    d = Distiller(args(files, tmp_path / "s", teacher=str(teacher), layers=[1, 3]))
    assert not d.mlm and d.teacher.config.n_layers == 4
    student = d.par.unwrap(d.model).model
    assert torch.equal(student.transformer.layer[1].attention.q_lin.weight,
                       d.teacher.transformer.layer[3].attention.q_lin.weight)
    assert torch.isfinite(d.train_step()).all()
