"""PretrainedConfig / DistilBertConfig: defaults, aliases, config.json of transformers 4.x and 5.x."""

import json
from pathlib import Path

import pytest

from polyformer import AutoConfig, DistilBertConfig, PretrainedConfig

FIXTURES = Path(__file__).parent / "fixtures" / "configs"

SPEC_DEFAULTS = dict(
    vocab_size=30522, max_position_embeddings=512, sinusoidal_pos_embds=False, n_layers=6, n_heads=12, dim=768,
    hidden_dim=3072, dropout=0.1, attention_dropout=0.1, activation="gelu", initializer_range=0.02, qa_dropout=0.1,
    seq_classif_dropout=0.2, pad_token_id=0,
)


def test_defaults_follow_the_spec():
    config = DistilBertConfig()
    for key, value in SPEC_DEFAULTS.items():
        assert getattr(config, key) == value, key
    assert config.num_labels == 2 and config.id2label == {0: "LABEL_0", 1: "LABEL_1"}
    assert config.label2id == {"LABEL_0": 0, "LABEL_1": 1}
    assert config.problem_type is None and config.return_dict and not config.output_attentions
    assert config.tie_word_embeddings and config._attn_implementation == "sdpa"


def test_aliases_read_and_write_the_real_field():
    config = DistilBertConfig(hidden_size=64, num_attention_heads=4, num_hidden_layers=3)
    assert (config.dim, config.n_heads, config.n_layers) == (64, 4, 3)
    assert (config.hidden_size, config.num_attention_heads, config.num_hidden_layers) == (64, 4, 3)
    config.hidden_size = 128
    assert config.dim == 128 and "hidden_size" not in config.to_dict()


def test_save_writes_only_what_differs_like_the_reference(tmp_path):
    # The reference (4.37.2) writes exactly these keys for DistilBertConfig(num_labels=3).
    DistilBertConfig(num_labels=3).save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved == {
        "activation": "gelu", "attention_dropout": 0.1, "dim": 768, "dropout": 0.1, "hidden_dim": 3072,
        "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"}, "initializer_range": 0.02,
        "label2id": {"LABEL_0": 0, "LABEL_1": 1, "LABEL_2": 2}, "max_position_embeddings": 512,
        "model_type": "distilbert", "n_heads": 12, "n_layers": 6, "pad_token_id": 0, "qa_dropout": 0.1,
        "seq_classif_dropout": 0.2, "sinusoidal_pos_embds": False, "vocab_size": 30522,
    }


def test_round_trip_keeps_unknown_keys_and_labels(tmp_path):
    config = DistilBertConfig(dim=64, id2label={0: "neg", 1: "pos", 2: "neutral"}, my_custom_key=[1, 2])
    config.save_pretrained(tmp_path)
    loaded = DistilBertConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == {**config.to_dict(), "_name_or_path": str(tmp_path)}
    assert loaded.id2label == {0: "neg", 1: "pos", 2: "neutral"} and loaded.num_labels == 3
    assert loaded.my_custom_key == [1, 2]


def test_kwargs_override_file_values(tmp_path):
    DistilBertConfig(dim=64, n_heads=4).save_pretrained(tmp_path)
    config = DistilBertConfig.from_pretrained(tmp_path, n_heads=8, num_labels=5, problem_type="regression",
                                              output_hidden_states=True)
    assert (config.dim, config.n_heads, config.num_labels) == (64, 8, 5)
    assert config.problem_type == "regression" and config.output_hidden_states
    config, unused = DistilBertConfig.from_pretrained(tmp_path, foo=1, return_unused_kwargs=True)
    assert unused == {"foo": 1} and not hasattr(config, "foo")


@pytest.mark.parametrize("name", ["transformers4.json", "transformers5.json"])
def test_reads_config_json_written_by_transformers_4_and_5(tmp_path, name):
    # Both files were written by the real libraries (see tests/fixtures/configs/README.md).
    (tmp_path / "config.json").write_text((FIXTURES / name).read_text())
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, DistilBertConfig)
    assert config.torch_dtype == "float32"
    assert config.architectures == ["DistilBertForSequenceClassification"]
    assert config.id2label == {0: "NEG", 1: "POS", 2: "NEU"} and config.label2id == {"NEG": 0, "POS": 1, "NEU": 2}
    assert config.num_labels == 3 and config.problem_type == "single_label_classification"
    assert config.custom_key == "kept" and (config.dim, config.n_layers) == (32, 2)


def test_torch_dtype_is_saved_as_a_name(tmp_path):
    import torch

    config = DistilBertConfig(torch_dtype=torch.bfloat16)
    assert config.torch_dtype == "bfloat16" and config.to_dict()["torch_dtype"] == "bfloat16"
    assert DistilBertConfig(dtype="float16").torch_dtype == "float16"


def test_num_labels_setter_rebuilds_labels():
    config = DistilBertConfig()
    config.num_labels = 4
    assert config.id2label == {i: f"LABEL_{i}" for i in range(4)} and config.label2id["LABEL_3"] == 3


def test_bad_config_input(tmp_path):
    with pytest.raises(ValueError, match="problem_type"):
        DistilBertConfig(problem_type="ranking")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    with pytest.raises(ValueError, match="model_type 'llama'.*expects model_type 'distilbert'"):
        DistilBertConfig.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(OSError, match="not valid JSON"):
        DistilBertConfig.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="no such folder"):
        DistilBertConfig.from_pretrained(tmp_path / "missing" / "folder")
    with pytest.raises(FileNotFoundError, match="config.json not found"):
        DistilBertConfig.from_pretrained(tmp_path / ".." / tmp_path.name / "..")  # an existing folder without one
    with pytest.raises(ValueError, match="unrecognised model_type"):
        AutoConfig.for_model("bert")


def test_plain_pretrained_config_and_json_string():
    config = PretrainedConfig(num_labels=3, foo="bar")
    assert json.loads(config.to_json_string())["foo"] == "bar"
    assert json.loads(config.to_json_string(use_diff=False))["return_dict"] is True


def test_label2id_null_as_transformers_5_writes_it(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(
        {"model_type": "distilbert", "id2label": {"0": "NEG", "1": "POS"}, "label2id": None, "dtype": "bfloat16"}))
    config = DistilBertConfig.from_pretrained(tmp_path)
    assert config.label2id == {"NEG": 0, "POS": 1} and config.torch_dtype == "bfloat16"
