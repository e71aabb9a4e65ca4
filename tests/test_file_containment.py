"""Containment (row 7): every file polyformer reads resolves inside the folder or Hub repo named — shard
index entries with `..` or absolute paths, symlinks leading out, tokenizer_config.json file keys naming
outside files, a `..` subfolder — for PyTorch, TF and Flax models, tokenizers, processors and configs.
One resolver (polyformer.hub.resolve_file) refuses them all with UnsafePathError."""

import json
import os
import shutil

import pytest
import torch

from polyformer import (AutoConfig, AutoTokenizer, CodeGenTokenizer, DistilBertConfig, DistilBertForMaskedLM,
                        DistilBertModel, DistilBertTokenizer, DistilBertTokenizerFast)
from polyformer.hub import UnsafePathError
from test_atomic_saves import ROOT, TINY

VOCAB = ROOT / "tests" / "fixtures" / "tokenizers" / "distilbert" / "vocab.txt"
CODEGEN = ROOT / "tests" / "fixtures" / "tokenizers" / "codegen"


def tiny(cls=DistilBertModel):
    torch.manual_seed(0)
    return cls(DistilBertConfig(**TINY)).eval()


@pytest.fixture
def sharded(tmp_path):
    folder = tmp_path / "model"
    tiny(DistilBertForMaskedLM).save_pretrained(folder, max_shard_size="20KB")
    return folder


def rewrite_index(folder, shard_to):
    path = folder / "model.safetensors.index.json"
    index = json.loads(path.read_text())
    first = sorted(set(index["weight_map"].values()))[0]
    index["weight_map"] = {k: (shard_to if v == first else v) for k, v in index["weight_map"].items()}
    path.write_text(json.dumps(index))
    return first


@pytest.mark.parametrize("outside", ["../x.safetensors", "sub/../../x.safetensors", "ABS"])
def test_a_shard_index_naming_an_outside_file_is_refused(sharded, tmp_path, outside):
    first = sharded / sorted(p.name for p in sharded.glob("model-*"))[0]
    shutil.copy(first, tmp_path / "x.safetensors")  # a valid file is there: it must not be read
    name = str(tmp_path / "x.safetensors") if outside == "ABS" else outside
    rewrite_index(sharded, name)
    with pytest.raises(UnsafePathError, match=r"model\.safetensors\.index\.json names a shard outside.*x\.safetensors"):
        DistilBertForMaskedLM.from_pretrained(sharded)


def test_a_weights_symlink_leading_out_is_refused(tmp_path):
    tiny().save_pretrained(tmp_path / "elsewhere")
    folder = tmp_path / "model"
    tiny().config.save_pretrained(folder)
    os.symlink(tmp_path / "elsewhere" / "model.safetensors", folder / "model.safetensors")
    with pytest.raises(UnsafePathError, match=r"model\.safetensors in folder .* resolves to .*elsewhere"):
        DistilBertModel.from_pretrained(folder)


def test_a_symlink_inside_the_folder_is_fine(tmp_path):
    folder = tmp_path / "model"
    tiny().save_pretrained(folder)
    (folder / "model.safetensors").rename(folder / "real.safetensors")
    os.symlink("real.safetensors", folder / "model.safetensors")
    assert DistilBertModel.from_pretrained(folder).config.dim == 32


def test_a_config_symlink_leading_out_is_refused(tmp_path):
    DistilBertConfig(**TINY).save_pretrained(tmp_path / "elsewhere")
    (tmp_path / "model").mkdir()
    os.symlink(tmp_path / "elsewhere" / "config.json", tmp_path / "model" / "config.json")
    with pytest.raises(UnsafePathError, match=r"config\.json"):
        AutoConfig.from_pretrained(tmp_path / "model")
    with pytest.raises(UnsafePathError, match=r"config\.json"):
        DistilBertConfig.from_pretrained(tmp_path / "model")


def test_a_subfolder_with_dotdot_is_refused(tmp_path):
    tiny().save_pretrained(tmp_path / "model")
    (tmp_path / "model" / "inner").mkdir()
    with pytest.raises(UnsafePathError, match=r"subfolder '\.\./model'"):
        DistilBertModel.from_pretrained(tmp_path / "model" / "inner", subfolder="../model")


@pytest.fixture
def tok_folder(tmp_path):
    folder = tmp_path / "tok"
    DistilBertTokenizer(str(VOCAB)).save_pretrained(folder)
    return folder


def set_config_key(folder, key, value):
    path = folder / "tokenizer_config.json"
    config = json.loads(path.read_text())
    config[key] = value
    path.write_text(json.dumps(config))


@pytest.mark.parametrize("cls", [DistilBertTokenizer, DistilBertTokenizerFast, AutoTokenizer])
@pytest.mark.parametrize("value", ["/etc/passwd", "../outside/vocab.txt", "ABS_OUTSIDE"])
def test_tokenizer_config_vocab_file_naming_an_outside_file_is_refused(tok_folder, tmp_path, cls, value):
    (tmp_path / "outside").mkdir()
    shutil.copy(VOCAB, tmp_path / "outside" / "vocab.txt")
    if value == "ABS_OUTSIDE":
        value = str(tmp_path / "outside" / "vocab.txt")
    if not os.path.exists(value) and value.startswith("/"):
        pytest.skip(f"{value} does not exist on this machine")
    set_config_key(tok_folder, "vocab_file", value)
    with pytest.raises(UnsafePathError, match=r"tokenizer_config\.json's vocab_file"):
        cls.from_pretrained(tok_folder)


def test_tokenizer_file_and_merges_file_naming_outside_files_are_refused(tmp_path):
    folder = tmp_path / "codegen"
    shutil.copytree(CODEGEN, folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"merges_file": str(CODEGEN / "merges.txt")}))
    with pytest.raises(UnsafePathError, match=r"tokenizer_config\.json's merges_file"):
        CodeGenTokenizer.from_pretrained(folder)
    (folder / "tokenizer_config.json").write_text(json.dumps({"tokenizer_file": "../codegen2/tokenizer.json",
                                                                   "tokenizer_class": "CodeGenTokenizer"}))
    with pytest.raises(UnsafePathError, match=r"tokenizer_config\.json's tokenizer_file"):
        AutoTokenizer.from_pretrained(folder)


def test_tokenizer_config_paths_inside_or_stale_still_load(tok_folder):
    """An absolute path into the folder itself is fine; one that exists nowhere (written on another
    machine, as old transformers did) is ignored and the folder's own file used."""
    set_config_key(tok_folder, "vocab_file", str(tok_folder / "vocab.txt"))
    assert DistilBertTokenizer.from_pretrained(tok_folder).vocab_size == DistilBertTokenizer(str(VOCAB)).vocab_size
    set_config_key(tok_folder, "vocab_file", "/nonexistent/home/someone/vocab.txt")
    assert DistilBertTokenizer.from_pretrained(tok_folder).vocab_size == DistilBertTokenizer(str(VOCAB)).vocab_size


def test_a_vocab_symlink_leading_out_is_refused(tmp_path):
    folder = tmp_path / "tok"
    folder.mkdir()
    os.symlink(VOCAB, folder / "vocab.txt")
    with pytest.raises(UnsafePathError, match=r"vocab\.txt"):
        DistilBertTokenizer.from_pretrained(folder)


def test_a_preprocessor_config_symlink_leading_out_is_refused(tmp_path):
    from polyformer import AutoImageProcessor, CLIPImageProcessor

    CLIPImageProcessor().save_pretrained(tmp_path / "elsewhere")
    (tmp_path / "proc").mkdir()
    os.symlink(tmp_path / "elsewhere" / "preprocessor_config.json", tmp_path / "proc" / "preprocessor_config.json")
    with pytest.raises(UnsafePathError, match=r"preprocessor_config\.json"):
        AutoImageProcessor.from_pretrained(tmp_path / "proc")


def test_tf_and_flax_weights_leading_out_are_refused(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("flax")
    from polyformer import FlaxDistilBertForMaskedLM, TFDistilBertForMaskedLM

    tiny(DistilBertForMaskedLM).save_pretrained(tmp_path / "pt")
    TFDistilBertForMaskedLM.from_pretrained(str(tmp_path / "pt"), from_pt=True).save_pretrained(tmp_path / "tf")
    flax = FlaxDistilBertForMaskedLM.from_pretrained(str(tmp_path / "pt"), from_pt=True)
    flax.save_pretrained(tmp_path / "flax", max_shard_size=20_000)
    (tmp_path / "tf-link").mkdir()
    shutil.copy(tmp_path / "tf" / "config.json", tmp_path / "tf-link" / "config.json")
    os.symlink(tmp_path / "tf" / "tf_model.h5", tmp_path / "tf-link" / "tf_model.h5")
    with pytest.raises(UnsafePathError, match=r"tf_model\.h5"):
        TFDistilBertForMaskedLM.from_pretrained(str(tmp_path / "tf-link"))
    index_path = tmp_path / "flax" / "flax_model.msgpack.index.json"
    index = json.loads(index_path.read_text())
    index["weight_map"] = {k: "../pt/" + v for k, v in index["weight_map"].items()}
    index_path.write_text(json.dumps(index))
    with pytest.raises(UnsafePathError, match=r"\.\./pt/flax_model"):
        FlaxDistilBertForMaskedLM.from_pretrained(str(tmp_path / "flax"))


def test_a_hub_index_naming_an_outside_file_is_refused(tmp_path, monkeypatch):
    """The same for a Hub repo: the `..` name is refused before any request for it."""
    import huggingface_hub.constants

    from helpers.fake_hub import FakeHub

    folder = tmp_path / "repo"
    tiny(DistilBertForMaskedLM).save_pretrained(folder, max_shard_size="20KB")
    rewrite_index(folder, "../../../../etc/passwd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_ETAG_TIMEOUT", 0.5)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    with FakeHub() as hub:
        hub.add_folder("someone/evil", folder)
        monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
        with pytest.raises(UnsafePathError, match=r"etc/passwd"):
            DistilBertForMaskedLM.from_pretrained("someone/evil", cache_dir=str(tmp_path / "cache"))
        assert not [key for key in hub.requests if "passwd" in key[1]]


def test_damaged_tf_and_flax_weights_are_checkpoint_errors_naming_the_file(tmp_path):
    pytest.importorskip("tensorflow")
    pytest.importorskip("flax")
    from polyformer import FlaxDistilBertForMaskedLM, TFDistilBertForMaskedLM
    from polyformer.checkpoints import CheckpointError

    tiny(DistilBertForMaskedLM).save_pretrained(tmp_path / "pt")
    TFDistilBertForMaskedLM.from_pretrained(str(tmp_path / "pt"), from_pt=True).save_pretrained(tmp_path / "tf")
    FlaxDistilBertForMaskedLM.from_pretrained(str(tmp_path / "pt"), from_pt=True).save_pretrained(tmp_path / "flax")
    for folder, name in (("tf", "tf_model.h5"), ("flax", "flax_model.msgpack"), ("pt", "model.safetensors")):
        path = tmp_path / folder / name
        path.write_bytes(b"\xff" * path.stat().st_size)
    with pytest.raises(CheckpointError, match=r"tf_model\.h5"):
        TFDistilBertForMaskedLM.from_pretrained(str(tmp_path / "tf"))
    with pytest.raises(CheckpointError, match=r"flax_model\.msgpack"):
        FlaxDistilBertForMaskedLM.from_pretrained(str(tmp_path / "flax"))
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        TFDistilBertForMaskedLM.from_pretrained(str(tmp_path / "pt"))
    with pytest.raises(CheckpointError, match=r"model\.safetensors"):
        FlaxDistilBertForMaskedLM.from_pretrained(str(tmp_path / "pt"), from_pt=True)
