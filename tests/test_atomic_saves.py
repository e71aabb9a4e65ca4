"""Atomic saves (polyformer/saving.py): a save_pretrained killed at any moment — while writing, between two
renames, before the old files go — loads as the old save or the new one, never a mix; the next save
cleans up after killed ones and never touches the user's own files.

The PyTorch kill tests run a child process that SIGKILLs itself from `saving._fault_hook` at a named step
(random timing would rarely hit "between two renames"). The TF, Flax, tokenizer and config cases stop
the save in-process at the same steps with an exception the save does not catch (`Killed`, a
BaseException), which leaves the folder as a kill would: nothing runs after a commit step fails."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import polyformer
from polyformer import saving
from polyformer import DistilBertConfig, DistilBertForMaskedLM, DistilBertTokenizer

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
TINY = dict(vocab_size=99, dim=32, n_heads=4, n_layers=2, hidden_dim=37, max_position_embeddings=64)
SHARD = "20KB"
OLD_SHARD = "10KB"  # the old save has more shards, with other names: the new save must remove them


def build(which: str) -> DistilBertForMaskedLM:
    """The old save (vocab 99) or the new one (other weights, vocabulary resized to 130: other shapes)."""
    torch.manual_seed(0 if which == "old" else 1)
    model = DistilBertForMaskedLM(DistilBertConfig(**TINY)).eval()
    if which == "new":
        model.resize_token_embeddings(130)
    return model


CHILD = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from polyformer import saving
from test_atomic_saves import build, SHARD
target, seen = {point!r}, []

def hook(point):
    seen.append(point)
    if point == target or target == "list" or (target.endswith("*") and point.startswith(target[:-1])):
        if target == "list":
            print("POINT", point, flush=True)
            return
        os.kill(os.getpid(), signal.SIGKILL)

saving._fault_hook = hook
build("new").save_pretrained({folder!r}, max_shard_size=SHARD)
"""


def run_child(folder: Path, point: str) -> subprocess.CompletedProcess:
    code = CHILD.format(tests=str(TESTS), point=point, folder=str(folder))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)


def state_of(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def loads_as(folder: Path) -> str:
    """Which save the folder loads as: "old" or "new" — every weight and config value of one of them."""
    loaded = DistilBertForMaskedLM.from_pretrained(folder)
    got = state_of(loaded)
    for which in ("old", "new"):
        want = state_of(build(which))
        if got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got):
            return which
    raise AssertionError("the folder loaded as a mix of the old and the new save")


@pytest.fixture(scope="module")
def points(tmp_path_factory):
    """Every step of a sharded save over an old sharded save, as the child process reports them."""
    folder = tmp_path_factory.mktemp("listing")
    build("old").save_pretrained(folder, max_shard_size=OLD_SHARD)
    out = run_child(folder, "list")
    assert out.returncode == 0, out.stderr
    steps = [line.split(" ", 1)[1] for line in out.stdout.splitlines() if line.startswith("POINT ")]
    assert steps[-1] == "done" and "staged" in steps and "committed" in steps
    return steps


def chosen(steps):
    """Writing the first file, all written (before the commit rename), just after it, between two
    renames of shards, after the last install, after removing an old file, at the end."""
    installs = [s for s in steps if s.startswith("installed:")]
    picks = [next(s for s in steps if s.startswith("staging:")), "staged", "committed", installs[0], installs[1],
             installs[-1], "done"]
    picks += [s for s in steps if s.startswith("removed:")][:1]
    return list(dict.fromkeys(picks))


def test_the_save_has_the_steps_the_kill_tests_need(points):
    installs = [s for s in points if s.startswith("installed:")]
    assert len(installs) >= 3 and "installed:config.json" in installs
    assert sum(s.startswith("installed:model-") for s in points) >= 2  # two shard renames to kill between
    assert any(s.startswith("removed:model-") for s in points)  # old shards go after the new are in place


@pytest.mark.parametrize("nth", range(8))
def test_a_sharded_save_killed_at_any_step_loads_old_or_new(tmp_path, points, nth):
    picks = chosen(points)
    if nth >= len(picks):
        pytest.skip("fewer steps")
    point = picks[nth]
    folder = tmp_path / "model"
    build("old").save_pretrained(folder, max_shard_size=OLD_SHARD)
    (folder / "notes.txt").write_text("the user's own file")
    out = run_child(folder, point)
    assert out.returncode == -signal.SIGKILL, (point, out.stderr[-2000:])
    expected = "old" if point.startswith("staging:") or point == "staged" else "new"
    assert loads_as(folder) == expected, point
    # The next save finishes or discards the killed one, and leaves only its own files (and the user's).
    build("new").save_pretrained(folder, max_shard_size=SHARD)
    assert loads_as(folder) == "new"
    names = sorted(os.listdir(folder))
    assert "notes.txt" in names and not [n for n in names if n.startswith(".")], names
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert sorted(n for n in names if n.startswith("model-")) == sorted(set(index["weight_map"].values()))


def test_a_killed_save_over_an_unsharded_one_loads_old_or_new(tmp_path):
    """Row 2: weights written, config.json not yet (the new vocabulary size makes other shapes)."""
    folder = tmp_path / "model"
    build("old").save_pretrained(folder)
    out = run_child(folder, "installed:model-*")
    assert out.returncode == -signal.SIGKILL, out.stderr[-2000:]
    assert loads_as(folder) == "new"


class Killed(BaseException):
    """Stands for a kill: not an Exception, so nothing in the save handles it."""


def stop_at(monkeypatch, target: str):
    def hook(point):
        if point == target or (target.endswith("*") and point.startswith(target[:-1])):
            raise Killed(point)

    monkeypatch.setattr(saving, "_fault_hook", hook)


def test_stale_temporaries_are_removed_and_the_users_files_kept(tmp_path):
    folder = tmp_path / "model"
    build("old").save_pretrained(folder)
    junk = folder / ".polyformer-staging-abc123"
    junk.mkdir()
    (junk / "model.safetensors").write_bytes(b"x" * 1000)
    (folder / ".model.safetensors.a1b2c3d4.tmp").write_bytes(b"x" * 1000)  # an older polyformer's temporary
    (folder / ".polyformer-tmp-config.json.q1w2e3r4").write_bytes(b"{")
    mine = [".my.notes.a1b2c3d4.tmp", "notes.txt", ".hidden"]
    for name in mine:
        (folder / name).write_text("the user's")
    build("new").save_pretrained(folder)
    assert sorted(os.listdir(folder)) == sorted(["config.json", "model.safetensors"] + mine)


def test_files_and_folders_are_fsynced_before_the_commit_rename(tmp_path, monkeypatch):
    events = []
    monkeypatch.setattr(saving, "fsync_file", lambda path: events.append(("file", os.path.basename(path))))
    monkeypatch.setattr(saving, "fsync_folder", lambda path: events.append(("folder", os.path.basename(path))))
    monkeypatch.setattr(saving, "_fault_hook", lambda point: events.append(("step", point)))
    build("old").save_pretrained(tmp_path / "m", max_shard_size=SHARD)
    staged = events.index(("step", "staged"))
    synced = {name for kind, name in events[:staged] if kind == "file"}
    assert {"config.json", "model.safetensors.index.json"} <= synced and any(n.startswith("model-") for n in synced)
    assert events[staged - 1][0] == "folder" and events[staged - 1][1].startswith(".polyformer-staging-")
    assert events[events.index(("step", "committed")) - 1] == ("folder", "m")


def test_a_failed_write_leaves_the_old_save(tmp_path, monkeypatch):
    import safetensors.torch

    folder = tmp_path / "model"
    build("old").save_pretrained(folder)

    def broken(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(safetensors.torch, "save_file", broken)
    with pytest.raises(OSError, match="disk full"):
        build("new").save_pretrained(folder)
    assert sorted(os.listdir(folder)) == ["config.json", "model.safetensors"]
    assert loads_as(folder) == "old"


@pytest.mark.parametrize("point", ["staged", "committed", "installed:*", "done"])
def test_a_config_alone_killed_loads_old_or_new(tmp_path, monkeypatch, point):
    folder = tmp_path / "c"
    DistilBertConfig(**TINY).save_pretrained(folder)
    stop_at(monkeypatch, point)
    with pytest.raises(Killed):
        DistilBertConfig(**{**TINY, "dim": 64}).save_pretrained(folder)
    monkeypatch.setattr(saving, "_fault_hook", None)
    assert DistilBertConfig.from_pretrained(folder).dim == (32 if point == "staged" else 64)


@pytest.mark.parametrize("point", ["staged", "installed:*", "done"])
def test_a_tokenizer_save_killed_between_renames_loads_old_or_new(tmp_path, monkeypatch, point):
    vocab = ROOT / "tests" / "fixtures" / "tokenizers" / "distilbert" / "vocab.txt"
    folder = tmp_path / "tok"
    DistilBertTokenizer(str(vocab)).save_pretrained(folder)
    new = DistilBertTokenizer(str(vocab), do_lower_case=False, model_max_length=77)
    new.add_tokens(["<new-token>"])
    stop_at(monkeypatch, point)
    with pytest.raises(Killed):
        new.save_pretrained(folder)
    monkeypatch.setattr(saving, "_fault_hook", None)
    loaded = DistilBertTokenizer.from_pretrained(folder)
    if point == "staged":
        assert loaded.model_max_length != 77 and "<new-token>" not in loaded.get_vocab()
    else:
        assert loaded.model_max_length == 77 and "<new-token>" in loaded.get_vocab() and not loaded.do_lower_case


def test_tf_and_flax_saves_are_transactions(tmp_path, monkeypatch):
    """A TF (h5 and safetensors) and a Flax (sharded msgpack) save stopped between two renames load as the new
    save; stopped before the commit, as the old one."""
    pytest.importorskip("tensorflow")
    pytest.importorskip("flax")
    from polyformer.jx.convert import flatten

    old, new = build("old"), build("new")
    old.save_pretrained(tmp_path / "pt-old")
    new.save_pretrained(tmp_path / "pt-new")
    for kind, safe in (("tf", False), ("tf", True), ("flax", False)):
        cls = polyformer.TFDistilBertForMaskedLM if kind == "tf" else polyformer.FlaxDistilBertForMaskedLM
        models = {w: cls.from_pretrained(str(tmp_path / f"pt-{w}"), from_pt=True) for w in ("old", "new")}
        options = {"safe_serialization": safe} if kind == "tf" else {"max_shard_size": 20_000}
        for point, expected in (("staged", "old"), ("installed:*", "new")):
            folder = tmp_path / f"{kind}-{safe}-{point[:5]}"
            models["old"].save_pretrained(str(folder), **options)
            stop_at(monkeypatch, point)
            with pytest.raises(Killed):
                models["new"].save_pretrained(str(folder), **options)
            monkeypatch.setattr(saving, "_fault_hook", None)
            loaded = cls.from_pretrained(str(folder))
            assert loaded.config.vocab_size == models[expected].config.vocab_size, (kind, safe, point)
            if kind == "tf":
                got = {w.name: w.numpy() for w in loaded.weights}
                want = {w.name: w.numpy() for w in models[expected].weights}
            else:
                got = {k: np.asarray(v) for k, v in flatten(loaded.params).items()}
                want = {k: np.asarray(v) for k, v in flatten(models[expected].params).items()}
            assert got.keys() == want.keys() and all(np.array_equal(got[k], want[k]) for k in got), (kind, point)
