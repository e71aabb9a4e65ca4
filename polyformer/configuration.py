"""`PretrainedConfig`: a model's hyper-parameters <-> `config.json`.

A family config declares only its own defaults, its `model_type` and an `attribute_map` of aliases
(`hidden_size -> dim`). Everything else — the generic keys every transformers config carries, reading
config.json written by transformers 4.x or 5.x, keeping unknown keys, saving only what differs from the
defaults — lives here. This module imports no deep-learning framework.
"""

from __future__ import annotations

import copy
import json
import logging
import os
from typing import Any, Dict, NamedTuple, Optional, Tuple, Union

from .hub import read_json, resolve_file, write_atomically
from .saving import save_transaction
from .value_rules import BOOL, NON_NEGATIVE_INT, TOKEN_IDS, Rule, check_values, merged_rules
from .push_to_hub import PushToHubMixin

logger = logging.getLogger(__name__)

CONFIG_NAME = "config.json"

PROBLEM_TYPES = ("regression", "single_label_classification", "multi_label_classification")

# Keys every config carries, with the reference's defaults (transformers 4.37 `PretrainedConfig`).
# The generation keys are kept only so that old config.json files round-trip; generate() reads
# GenerationConfig.
_COMMON_DEFAULTS: Dict[str, Any] = {
    "return_dict": True,
    "output_hidden_states": False,
    "output_attentions": False,
    "torchscript": False,
    "torch_dtype": None,
    "use_bfloat16": False,
    "tf_legacy_loss": False,
    "pruned_heads": {},
    "tie_word_embeddings": True,
    "chunk_size_feed_forward": 0,
    "is_encoder_decoder": False,
    "is_decoder": False,
    "cross_attention_hidden_size": None,
    "add_cross_attention": False,
    "tie_encoder_decoder": False,
    "max_length": 20,
    "min_length": 0,
    "do_sample": False,
    "early_stopping": False,
    "num_beams": 1,
    "num_beam_groups": 1,
    "diversity_penalty": 0.0,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "typical_p": 1.0,
    "repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "encoder_no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "num_return_sequences": 1,
    "output_scores": False,
    "return_dict_in_generate": False,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "remove_invalid_values": False,
    "exponential_decay_length_penalty": None,
    "suppress_tokens": None,
    "begin_suppress_tokens": None,
    "architectures": None,
    "finetuning_task": None,
    "tokenizer_class": None,
    "prefix": None,
    "bos_token_id": None,
    "pad_token_id": None,
    "eos_token_id": None,
    "sep_token_id": None,
    "decoder_start_token_id": None,
    "task_specific_params": None,
    "problem_type": None,
}

# Rules every config's values follow (a family adds its own in `value_rules`; see `validate`).
_COMMON_RULES: Dict[str, Rule] = {
    **{key: BOOL.or_none() for key in ("return_dict", "output_hidden_states", "output_attentions", "torchscript",
                                       "use_bfloat16", "tie_word_embeddings", "is_encoder_decoder", "is_decoder",
                                       "add_cross_attention", "tie_encoder_decoder")},
    "chunk_size_feed_forward": NON_NEGATIVE_INT,
    **{key: TOKEN_IDS for key in ("bos_token_id", "pad_token_id", "eos_token_id", "sep_token_id",
                                  "decoder_start_token_id")},
}

# Bytes of one weight per torch_dtype name (float32 when unknown), for the size estimate.
_DTYPE_BYTES = {"float16": 2, "bfloat16": 2, "float64": 8, "int8": 1}
# Python objects, buffers and bookkeeping of one layer, beyond its weights (an over-estimate is harmless).
_LAYER_OVERHEAD_BYTES = 64 * 1024

# Keys that live on the object but never go into config.json.
_NOT_SAVED = ("_attn_implementation_internal", "_commit_hash", "_auto_class")


def dtype_name(dtype: Any) -> Any:
    """`torch.float16` -> "float16"; strings and None pass through (no torch import needed)."""
    if dtype is None or isinstance(dtype, str):
        return dtype
    return str(dtype).rsplit(".", 1)[-1]


class OutputOptions(NamedTuple):
    """What a forward returns besides its main output, and in which form."""
    output_attentions: bool
    output_hidden_states: bool
    return_dict: bool


class PretrainedConfig(PushToHubMixin):
    """Base class of every model configuration.

    Args (the generic ones; each family adds its own):
        num_labels / id2label / label2id: the classification labels (`id2label` keys may be strings
            in config.json; they become ints here).
        problem_type: "regression", "single_label_classification" or "multi_label_classification";
            None lets sequence-classification heads infer it from the labels.
        output_attentions / output_hidden_states / return_dict: defaults for `forward`.
        torch_dtype: the dtype the weights were saved in (`dtype` in transformers 5.x files).
        attn_implementation: "eager", "sdpa" (default) or "flash_attention_2".
        Any other keyword is stored as an attribute and saved back.
    """

    model_type: str = ""
    attribute_map: Dict[str, str] = {}
    is_composition: bool = False
    # The family's declaration of what its keys may hold (e.g. {"n_layers": NON_NEGATIVE_INT, "dropout":
    # PROBABILITY}); `validate` checks them with the common rules, when config.json is read and before a
    # model is built.
    value_rules: Dict[str, Rule] = {}
    # The keys (attribute names or aliases) the size estimate reads: "layers" (one key or a tuple of keys,
    # summed), "hidden", "ffn" (default 4 x hidden), "vocab", "positions". Empty: no estimate of its own.
    size_keys: Dict[str, Any] = {}

    def __setattr__(self, key: str, value: Any) -> None:
        key = type(self).attribute_map.get(key, key)
        super().__setattr__(key, value)

    def __getattribute__(self, key: str) -> Any:
        if key != "attribute_map" and key in type(self).attribute_map:
            key = type(self).attribute_map[key]
        return super().__getattribute__(key)

    def __init__(self, **kwargs: Any) -> None:
        if "dtype" in kwargs:  # transformers 5.x name
            kwargs.setdefault("torch_dtype", kwargs.pop("dtype"))
            kwargs.pop("dtype", None)
        for key, default in _COMMON_DEFAULTS.items():
            setattr(self, key, copy.deepcopy(kwargs.pop(key, default)))
        self.torch_dtype = dtype_name(self.torch_dtype)
        # config.json holds the layer indices as strings; the model prunes by int layer index (as 4.37)
        self.pruned_heads = {int(layer): list(heads) for layer, heads in (self.pruned_heads or {}).items()}
        if self.problem_type is not None and self.problem_type not in PROBLEM_TYPES:
            raise ValueError(f"problem_type must be one of {PROBLEM_TYPES} or None, got {self.problem_type!r}")

        id2label = kwargs.pop("id2label", None)
        label2id = kwargs.pop("label2id", None)
        num_labels = kwargs.pop("num_labels", None)
        if id2label is not None:
            self.id2label = {int(k): v for k, v in id2label.items()}
            if num_labels is not None and num_labels != len(self.id2label):
                logger.warning("num_labels=%s ignored: id2label has %d labels", num_labels, len(self.id2label))
        else:
            self.id2label = None
            self.num_labels = 2 if num_labels is None else num_labels
        self.label2id = (
            {k: int(v) for k, v in label2id.items()} if label2id is not None
            else {v: k for k, v in self.id2label.items()}
        )

        self._name_or_path = str(kwargs.pop("name_or_path", kwargs.pop("_name_or_path", "")))
        self._commit_hash = kwargs.pop("_commit_hash", None)
        self._attn_implementation_internal = None
        attn_implementation = kwargs.pop("attn_implementation", kwargs.pop("_attn_implementation", None))
        if attn_implementation is not None:
            self._attn_implementation = attn_implementation
        kwargs.pop("model_type", None)  # the class decides its type
        for key, value in kwargs.items():  # unknown keys are kept and saved back
            try:
                setattr(self, key, value)
            except AttributeError:
                logger.error("can't set %s=%r on %s", key, value, type(self).__name__)
                raise

    # --- validation -------------------------------------------------------------------------------
    def validate(self, source: Optional[str] = None) -> None:
        """Check every declared value (the common rules and the family's `value_rules`), then the
        sub-configs'. A ValueError names the key, the value, what is allowed and `source` (the file)."""
        where = source or f"{type(self).__name__}"
        check_values(self._values(), merged_rules(_COMMON_RULES, type(self).value_rules), where)
        for key, value in vars(self).items():
            if isinstance(value, PretrainedConfig):
                value.validate(f"{where}, {key}")

    def _values(self) -> Dict[str, Any]:
        """The attributes the rules may name (aliases resolved: a rule may use either name)."""
        values = dict(vars(self))
        for alias, name in type(self).attribute_map.items():
            if name in values:
                values[alias] = values[name]
        return values

    def estimate_parameters(self) -> int:
        """A rough upper estimate of the model's weight count from `size_keys` (embeddings, then per layer four
        hidden x hidden attention matrices and two hidden x ffn ones), plus the sub-configs'. Only for
        refusing configs that cannot fit; never exact."""
        total = 0
        keys = type(self).size_keys
        if keys:
            values = self._values()

            def number(name: str, default: int = 0) -> int:
                value = values.get(name, default) if name else default
                return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else default

            layer_keys = keys.get("layers", ())
            layers = sum(number(k) for k in ((layer_keys,) if isinstance(layer_keys, str) else layer_keys))
            hidden = number(keys.get("hidden", ""))
            ffn = number(keys.get("ffn", ""), 4 * hidden)
            embeddings = (number(keys.get("vocab", "")) + number(keys.get("positions", ""))) * hidden
            total += embeddings + layers * (4 * hidden * hidden + 2 * hidden * ffn)
        for value in vars(self).values():
            if isinstance(value, PretrainedConfig):
                total += value.estimate_parameters()
        return total

    def _layer_count(self) -> int:
        keys = type(self).size_keys.get("layers", ())
        values = self._values()
        count = sum(values.get(k, 0) for k in ((keys,) if isinstance(keys, str) else keys)
                    if isinstance(values.get(k), int))
        return count + sum(v._layer_count() for v in vars(self).values() if isinstance(v, PretrainedConfig))

    def check_fits(self, available_bytes: Optional[int] = None, bytes_per_weight: Optional[int] = None) -> None:
        """Refuse, before any weight is allocated, a config whose model would need more memory than the
        machine has (RAM + swap, or `available_bytes`): e.g. n_layers 10**9 in a downloaded config.json,
        which would otherwise build layers until memory runs out.

        The estimate is `estimate_parameters()` x `bytes_per_weight` (default: the bytes of `torch_dtype`,
        float32 when unset; 0 for a model built on the meta device, whose weights take no memory) plus a
        per-layer overhead for the Python objects. It errs low (no biases, norms, untied heads or a gated
        MLP's third matrix), so only configs that truly cannot fit are refused."""
        available = machine_memory_bytes() if available_bytes is None else available_bytes
        if available is None:
            return
        parameters = self.estimate_parameters()
        per_weight = _DTYPE_BYTES.get(str(self.torch_dtype), 4) if bytes_per_weight is None else bytes_per_weight
        needed = parameters * per_weight + self._layer_count() * _LAYER_OVERHEAD_BYTES
        if needed > available:
            keys = {key: self._values().get(name) for key, name in _flat_size_keys(self).items()}
            raise ValueError(
                f"{type(self).__name__} ({self.name_or_path or 'no file'}) describes a model of about "
                f"{parameters:.3g} weights, {needed / 2**30:.3g} GiB, more than this machine's memory "
                f"({available / 2**30:.3g} GiB); its sizes: {keys}. Check config.json.")

    # --- labels -----------------------------------------------------------------------------------
    @property
    def num_labels(self) -> int:
        return len(self.id2label)

    @num_labels.setter
    def num_labels(self, n: int) -> None:
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"num_labels must be a positive int, got {n!r}")
        if self.id2label is None or len(self.id2label) != n:
            self.id2label = {i: f"LABEL_{i}" for i in range(n)}
            self.label2id = {v: k for k, v in self.id2label.items()}

    # --- attention backend ------------------------------------------------------------------------
    @property
    def _attn_implementation(self) -> str:
        return self._attn_implementation_internal or "sdpa"

    @_attn_implementation.setter
    def _attn_implementation(self, value: Optional[str]) -> None:
        self._attn_implementation_internal = value

    @property
    def use_return_dict(self) -> bool:
        return self.return_dict and not self.torchscript

    def output_options(self, output_attentions: Optional[bool] = None, output_hidden_states: Optional[bool] = None,
                       return_dict: Optional[bool] = None) -> "OutputOptions":
        """A forward's three output arguments, each None taking this config's value (`return_dict` from
        `use_return_dict`, so `torchscript=True` gives tuples). Every framework's models resolve them here."""
        return OutputOptions(
            self.output_attentions if output_attentions is None else bool(output_attentions),
            self.output_hidden_states if output_hidden_states is None else bool(output_hidden_states),
            self.use_return_dict if return_dict is None else bool(return_dict))

    @property
    def name_or_path(self) -> str:
        return self._name_or_path

    @name_or_path.setter
    def name_or_path(self, value: str) -> None:
        self._name_or_path = str(value)

    # --- (de)serialisation ------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, config_dict: Dict[str, Any], **kwargs: Any) -> Union["PretrainedConfig", Tuple]:
        """Build a config from a dict; `kwargs` override its values. With `return_unused_kwargs=True`
        the kwargs that are not config attributes come back separately."""
        return_unused = kwargs.pop("return_unused_kwargs", False)
        source = kwargs.pop("_source", None)  # the file the dict came from, for error messages
        config = cls(**config_dict)
        unused = {}
        for key, value in kwargs.items():
            if key in ("torch_dtype", "dtype"):
                config.torch_dtype = dtype_name(value)
            elif key == "attn_implementation":
                config._attn_implementation = value
            elif hasattr(config, key) or key in ("num_labels", "id2label", "label2id"):
                if key == "id2label":
                    value = {int(k): v for k, v in value.items()}
                    config.label2id = {v: k for k, v in value.items()}
                setattr(config, key, value)
            else:
                unused[key] = value
        config.validate(source)
        return (config, unused) if return_unused else config

    @classmethod
    def get_config_dict(cls, pretrained_model_name_or_path: Union[str, os.PathLike], **hub_kwargs: Any) -> Dict[str, Any]:
        """Read config.json from a folder, a json file, or a Hub repo."""
        path = os.fspath(pretrained_model_name_or_path)
        if os.path.isfile(path):
            file = path
        else:
            file = resolve_file(path, CONFIG_NAME, **hub_kwargs)
        return read_json(file, CONFIG_NAME)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], **kwargs: Any) -> "PretrainedConfig":
        """Load config.json from a folder or Hub id. kwargs override file values; hub kwargs
        (cache_dir, revision, local_files_only, token, force_download) choose where to read."""
        hub_kwargs = pop_hub_kwargs(kwargs)
        config_dict = cls.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
        file_type = config_dict.get("model_type")
        if cls.model_type and file_type and file_type != cls.model_type:
            raise ValueError(
                f"{pretrained_model_name_or_path} holds a config of model_type {file_type!r}, "
                f"but {cls.__name__} expects model_type {cls.model_type!r}"
            )
        config_dict.setdefault("_name_or_path", os.fspath(pretrained_model_name_or_path))
        return cls.from_dict(config_dict, _source=config_source(pretrained_model_name_or_path), **kwargs)

    def to_dict(self) -> Dict[str, Any]:
        """Every attribute, as config.json would hold it (with `model_type`)."""
        output = copy.deepcopy({k: v for k, v in self.__dict__.items() if k not in _NOT_SAVED})
        output["model_type"] = type(self).model_type
        output["torch_dtype"] = dtype_name(output.get("torch_dtype"))
        for key, value in output.items():
            if isinstance(value, PretrainedConfig):
                output[key] = value.to_dict()
        return output

    def to_diff_dict(self) -> Dict[str, Any]:
        """Only what differs from the defaults (what `save_pretrained` writes, like the reference)."""
        config_dict = self.to_dict()
        base_defaults = PretrainedConfig().to_dict()
        class_defaults = type(self)().to_dict() if not self.is_composition else {}
        diff = {}
        for key, value in config_dict.items():
            nested = getattr(self, key, None)
            if isinstance(nested, PretrainedConfig) and isinstance(class_defaults.get(key), dict):
                # a sub-config (GroupViT's text_config, IDEFICS's vision_config): only what differs, plus its type
                diff[key] = {**_nested_diff(value, class_defaults[key], nested), "model_type": value["model_type"]}
            elif (
                key not in base_defaults
                or key == "transformers_version"
                or value != base_defaults[key]
                or (key in class_defaults and value != class_defaults[key])
            ):
                diff[key] = value
        return diff

    def to_json_string(self, use_diff: bool = True) -> str:
        config_dict = self.to_diff_dict() if use_diff else self.to_dict()
        return json.dumps(config_dict, indent=2, sort_keys=True) + "\n"

    def to_json_file(self, json_file_path: Union[str, os.PathLike], use_diff: bool = True) -> None:
        write_atomically(json_file_path, self.to_json_string(use_diff).encode("utf-8"))

    def save_pretrained(self, save_directory: Union[str, os.PathLike], **kwargs: Any) -> None:
        """Write config.json into `save_directory` (created if needed)."""
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory {save_directory!r} is a file, expected a folder")
        with save_transaction(save_directory):  # atomic, and part of a model's save when inside one
            self.to_json_file(os.path.join(save_directory, CONFIG_NAME))

    def update(self, config_dict: Dict[str, Any]) -> None:
        for key, value in config_dict.items():
            setattr(self, key, value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PretrainedConfig) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"{type(self).__name__} {self.to_json_string(use_diff=False)}"


def config_source(pretrained_model_name_or_path: Union[str, os.PathLike]) -> str:
    """How error messages name the config.json of a folder, a file or a Hub id."""
    path = os.fspath(pretrained_model_name_or_path)
    return path if path.endswith(".json") else os.path.join(path, CONFIG_NAME)


def _flat_size_keys(config: PretrainedConfig) -> Dict[str, str]:
    """{key: attribute} of the size keys a config declares (the layer keys listed one by one)."""
    out: Dict[str, str] = {}
    for role, names in type(config).size_keys.items():
        for name in ((names,) if isinstance(names, str) else names):
            out[name] = name
    return out


def machine_memory_bytes() -> Optional[int]:
    """Physical memory plus swap, in bytes (None where the platform does not say)."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("SwapTotal:"):
                    total += int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return total


def _nested_diff(values: Dict[str, Any], parent_defaults: Dict[str, Any], config: PretrainedConfig) -> Dict[str, Any]:
    """The entries of a sub-config's dict that differ from the parent's default sub-config or from the
    sub-config class's own defaults (4.37's rule), recursing into deeper sub-configs."""
    own_defaults = type(config)().to_dict()
    diff = {}
    for key, value in values.items():
        nested = getattr(config, key, None)
        if isinstance(nested, PretrainedConfig) and isinstance(parent_defaults.get(key), dict):
            inner = _nested_diff(value, parent_defaults[key], nested)
            if inner:
                diff[key] = inner
        elif key not in parent_defaults or value != parent_defaults[key] or value != own_defaults.get(key, _MISSING):
            diff[key] = value
    return diff


_MISSING = object()

HUB_KWARGS = ("cache_dir", "revision", "local_files_only", "token", "force_download", "subfolder")


def pop_hub_kwargs(kwargs: Dict[str, Any]) -> Dict[str, Any]:
    """Remove and return the kwargs that say where to read files from."""
    return {k: kwargs.pop(k) for k in HUB_KWARGS if k in kwargs}


def resolve_config(config_class: type, name: str, config: Optional[PretrainedConfig], hub_kwargs: Dict[str, Any],
                   kwargs: Dict[str, Any]) -> Tuple[PretrainedConfig, Dict[str, Any]]:
    """The config a model's `from_pretrained` builds on: the folder's config.json, or a copy of the one
    given, with `kwargs` applied; returns it with the kwargs that are not config attributes."""
    if config is None:
        config, unused = config_class.from_pretrained(name, **hub_kwargs, return_unused_kwargs=True, **kwargs)
    elif isinstance(config, PretrainedConfig):
        config, unused = config_class.from_dict(copy.deepcopy(config).to_dict(), return_unused_kwargs=True, **kwargs)
    else:
        raise TypeError(f"config must be a PretrainedConfig, got {type(config).__name__}")
    config.name_or_path = name
    return config, unused
