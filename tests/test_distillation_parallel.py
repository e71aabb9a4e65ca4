"""Distillation in several processes: 2 processes (torchrun, gloo on CPU, through accelerate when it is
installed) × batch 4 take the same 3 steps as 1 process × batch 8; and a process killed with SIGKILL
in the middle of a checkpoint save leaves the previous checkpoint as the latest, loadable and resumable."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from safetensors.torch import load_file

from helpers.distillation_models import write_corpus, write_teacher
from helpers.tolerance import assert_close
from polyformer.distillation import distill
from polyformer.training import latest_checkpoint, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
# Adam divides by sqrt(v) + eps: a key bias, whose true gradient is 0 (softmax ignores a shift shared by
# all keys), gets float-rounding noise as its gradient, and with eps 1e-6 that noise moves it by ~lr.
# A larger eps keeps those exact zeros at ~0, so the comparison checks the data-parallel arithmetic.
COMMON = ["--max-steps", "3", "--dropout", "0", "--lr", "1e-3", "--warmup", "0"]
ADAM_EPS = 1e-3


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["OMP_NUM_THREADS"] = "1"
    return env


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("parallel")
    return {"teacher": write_teacher(root / "teacher"), "data": write_corpus(root / "train.txt", n=48)}


def test_two_processes_of_batch_4_equal_one_process_of_batch_8_and_accumulation(files, tmp_path):
    two = tmp_path / "two"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2", "--master-addr", "127.0.0.1",
           "--master-port", str(_free_port()), "-m", "polyformer", "-q", "distill", str(files["teacher"]), str(two),
           "--data", str(files["data"]), "--batch-size", "4", "--adam-epsilon", str(ADAM_EPS), *COMMON]
    done = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    one = distill(teacher=str(files["teacher"]), output_dir=str(tmp_path / "one"), data=[str(files["data"])],
                  batch_size=8, max_steps=3, dropout=0.0, lr=1e-3, warmup=0, adam_epsilon=ADAM_EPS, progress=False)
    a, b = load_file(str(one / "model.safetensors")), load_file(str(two / "model.safetensors"))
    assert a.keys() == b.keys()
    start = load_file(str(latest_checkpoint(two / "checkpoints") / "model.safetensors"))
    assert any(not (start[f"model.{k}"] == 0).all() for k in a)
    for name in a:
        assert_close(b[name], a[name], atol=1e-5, rtol=1e-5)
    _, state = load_checkpoint(latest_checkpoint(two / "checkpoints"))
    assert state["world_size"] == 2 and state["data_position"] == 3 * 8
    accumulated = distill(teacher=str(files["teacher"]), output_dir=str(tmp_path / "accum"), data=[str(files["data"])],
                          batch_size=4, grad_accum=2, max_steps=3, dropout=0.0, lr=1e-3, warmup=0,
                          adam_epsilon=ADAM_EPS, progress=False)
    c = load_file(str(accumulated / "model.safetensors"))
    for name in a:  # 1 process × batch 4 × grad_accum 2 is the same step too
        assert_close(c[name], a[name], atol=1e-5, rtol=1e-5)


KILLER = textwrap.dedent("""
    import os, signal, sys
    from polyformer.training import state
    saves = []

    def die_in_second_save(stage):
        saves.append(stage)
        if stage == "model-written" and saves.count("model-written") == 2:
            os.kill(os.getpid(), signal.SIGKILL)  # halfway through writing checkpoint 2

    state._fault_hook = die_in_second_save
    from polyformer.distillation import distill
    distill(teacher=sys.argv[1], output_dir=sys.argv[2], data=[sys.argv[3]], batch_size=4, max_steps=4,
            save_every=1, progress=False)
""")


def test_kill_9_during_a_checkpoint_save_leaves_the_last_good_one(files, tmp_path):
    out = tmp_path / "student"
    done = subprocess.run([sys.executable, "-c", KILLER, str(files["teacher"]), str(out), str(files["data"])],
                          env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr[-3000:]
    folder = out / "checkpoints"
    assert [p.name for p in folder.iterdir() if p.name.endswith(".tmp")]  # the half-written one is there
    last = latest_checkpoint(folder)
    assert last.name == "step-00000001"
    tensors, state = load_checkpoint(last)
    assert state["step"] == 1 and tensors
    # and the run resumes from it to the end
    distill(teacher=str(files["teacher"]), output_dir=str(out), data=[str(files["data"])], batch_size=4,
            max_steps=2, save_every=1, resume=True, progress=False)
    assert latest_checkpoint(folder).name == "step-00000002"
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    assert (out / "model.safetensors").is_file()
