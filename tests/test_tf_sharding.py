"""Sharded tf_model.h5 (max_shard_size, tf_model.h5.index.json) in 4.37.2's layout, both ways: the reference's
shards (tests/fixtures/tf/surface/sharded_masked_lm) load, and polyformer's shards hold the same files,
datasets, attributes and index."""

import json

import h5py
import numpy as np
import pytest

from helpers.parity import FIXTURES
from polyformer import TFDistilBertForMaskedLM
from polyformer.tf import convert

SHARDED = FIXTURES / "tf" / "surface" / "sharded_masked_lm"
IDS = np.array([[2, 17, 33, 5, 60, 3], [2, 9, 41, 3, 0, 0]], np.int32)
MASK = (IDS != 0).astype(np.int32)


@pytest.fixture(scope="module")
def unsharded():
    return TFDistilBertForMaskedLM.from_pretrained(FIXTURES / "distilbert" / "masked_lm")


def _layout(folder):
    files = sorted(p.name for p in folder.iterdir() if p.name.startswith("tf_model"))
    datasets = {}
    for name in files:
        if name.endswith(".h5"):
            with h5py.File(folder / name, "r") as f:
                names = [n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"]]
                datasets[name] = (f.attrs["layer_names"].dtype.kind, names, {k: f[k].shape for k in names})
    return files, datasets, json.loads((folder / convert.TF_WEIGHTS_INDEX).read_text())


def test_the_references_shards_load(unsharded):
    model, info = TFDistilBertForMaskedLM.from_pretrained(SHARDED, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    np.testing.assert_array_equal(model(IDS, attention_mask=MASK).logits.numpy(),
                                  unsharded(IDS, attention_mask=MASK).logits.numpy())


def test_shards_are_written_as_the_reference_writes_them(unsharded, tmp_path):
    unsharded.save_pretrained(tmp_path, max_shard_size="30KB")
    assert _layout(tmp_path) == _layout(SHARDED)
    reloaded = TFDistilBertForMaskedLM.from_pretrained(tmp_path)
    np.testing.assert_array_equal(reloaded(IDS).logits.numpy(), unsharded(IDS).logits.numpy())
    unsharded.save_pretrained(tmp_path)  # one file again: the shards and the index of the last save go
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "tf_model.h5"]


def test_missing_shard_is_named(tmp_path, unsharded):
    unsharded.save_pretrained(tmp_path, max_shard_size=40_000)
    (tmp_path / "tf_model-00002-of-00003.h5").unlink()
    with pytest.raises(FileNotFoundError, match="tf_model-00002-of-00003.h5"):
        TFDistilBertForMaskedLM.from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="max_shard_size"):
        unsharded.save_pretrained(tmp_path, max_shard_size="lots")
