"""`TFPreTrainedModel`: the Keras model every polyformer TF class is, with transformers 4.37's conventions.

- Inputs in the three documented formats: keyword arguments; everything in the first positional argument as
  a list (in `call`'s order) or a dict (BatchEncoding included); a single tensor (the first input). numpy
  arrays become tensors, int64 becomes int32, unknown names raise ValueError, `inputs=` / `past=` are the
  legacy names of input_ids / past_key_values.
- `training=` switches dropout; output flags left None come from the config (in graph mode too).
- Keras training: the heads compute their loss when labels are passed, so `compile(optimizer=...)` with no
  loss and `fit()` on a tf.data.Dataset of dicts work; labels may be inside the dict or the dataset's y. A
  loss given to `compile()` is applied to the logits instead, as in the reference.
- Weights: `from_pretrained` reads tf_model.h5, or the PyTorch files of the same model (model.safetensors,
  shards, pytorch_model.bin) converted on load (`from_pt=True`, automatic when only those exist);
  `save_pretrained` writes config.json and tf_model.h5 (atomically), or with `safe_serialization=True`
  model.safetensors in PyTorch's layout. See convert.py for the names.
"""

from __future__ import annotations

import inspect
import logging
import os
import re
import warnings
from collections.abc import Mapping
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from ..checkpoints import SAFE_WEIGHTS, find_weight_files
from ..configuration import PretrainedConfig, pop_hub_kwargs, resolve_config
from ..hub import atomic_path, prepare_save_directory
from ..push_to_hub import PushToHubMixin
from . import convert
from .backend import keras, tf

logger = logging.getLogger(__name__)

LEGACY_NAMES = {"inputs": "input_ids", "past": "past_key_values"}


def _first_leaf(value: Any) -> Any:
    while isinstance(value, (list, tuple)) and value:
        value = value[0]
    return value


def to_tensor(value: Any) -> Any:
    """numpy arrays and nested Python lists of numbers -> tf.Tensor, int64 -> int32, through tuples of tensors
    (past_key_values); anything else unchanged."""
    if isinstance(value, (list, tuple)) and value:
        if isinstance(_first_leaf(value), (int, float, np.number)) and not isinstance(_first_leaf(value), bool):
            value = np.asarray(value)
        else:
            return type(value)(to_tensor(v) for v in value)
    if isinstance(value, np.ndarray):
        value = tf.convert_to_tensor(value)
    if isinstance(value, (tf.Tensor, tf.Variable)) and value.dtype == tf.int64:
        value = tf.cast(value, tf.int32)
    return value


class TFPreTrainedModel(PushToHubMixin, keras.Model):
    """Base of every polyformer TF model: input formats, config flags, Keras training, save / load."""

    _push_save_args = ("max_shard_size",)  # push_to_hub's arguments save_pretrained takes

    config_class = PretrainedConfig
    base_model_prefix = ""
    main_input_name = "input_ids"
    pt_scalars: Tuple[str, ...] = ()  # weights PyTorch holds 0-d that TF holds as (1,) (GroupViT's logit_scale)

    def __init__(self, config: PretrainedConfig, *inputs, **kwargs):
        name = kwargs.pop("name", None) or re.sub(r"(?<!^)(?=[A-Z][a-z])", "_", type(self).__name__).lower()
        super().__init__(name=name, **kwargs)
        if not isinstance(config, PretrainedConfig):
            raise TypeError(f"config must be a PretrainedConfig, got {type(config).__name__}")
        self.config = config

    # --- inputs ---------------------------------------------------------------------------------------
    @classmethod
    def _input_names(cls) -> List[str]:
        names = cls.__dict__.get("_input_names_cache")
        if names is None:
            names = [n for n, p in inspect.signature(cls.call).parameters.items()
                     if n not in ("self", "training") and p.kind is p.POSITIONAL_OR_KEYWORD]
            cls._input_names_cache = names
        return names

    def unpack_inputs(self, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
        """The call's arguments by name, from any of the documented input formats."""
        names = self._input_names()
        values: Dict[str, Any] = {}
        if args:
            first, rest = args[0], args[1:]
            if isinstance(first, Mapping):
                values.update(first)
            elif isinstance(first, (list, tuple)):
                if len(first) > len(names):
                    raise ValueError(f"{len(first)} inputs given in a list, {type(self).__name__} takes at most "
                                     f"{len(names)}: {names}")
                values.update(zip(names, first))
            else:
                values[names[0]] = first
            values.update(zip(names[1:], rest))
        for key, value in kwargs.items():
            if key in LEGACY_NAMES:
                warnings.warn(f"The `{key}` argument is deprecated, use `{LEGACY_NAMES[key]}` instead.", FutureWarning)
                key = LEGACY_NAMES[key]
            if key in values and args:
                raise TypeError(f"{type(self).__name__} got multiple values for argument {key!r}")
            values[key] = value
        unknown = sorted(set(values) - set(names) - {"training"})
        if unknown:
            raise ValueError(f"The following keyword arguments are not supported by this model: {unknown}.")
        return {k: to_tensor(v) for k, v in values.items()}

    def __call__(self, *args, **kwargs):
        return super().__call__(**self.unpack_inputs(args, kwargs))

    def output_flags(self, output_attentions: Optional[bool], output_hidden_states: Optional[bool],
                     return_dict: Optional[bool]) -> Tuple[bool, bool, bool]:
        """The three output options, None taking the config's value."""
        config = self.config
        return (config.output_attentions if output_attentions is None else bool(output_attentions),
                config.output_hidden_states if output_hidden_states is None else bool(output_hidden_states),
                config.use_return_dict if return_dict is None else bool(return_dict))

    # --- Keras training -------------------------------------------------------------------------------
    def _with_labels(self, x: Any, y: Any) -> Tuple[Dict[str, Any], Any]:
        """Dataset element -> (call arguments with the labels in them, labels for compiled metrics)."""
        x = dict(x) if isinstance(x, Mapping) else {self._input_names()[0]: x}
        names = self._input_names()
        if isinstance(y, Mapping):
            x.update({k: v for k, v in y.items() if k in names})
        elif y is not None and "labels" in names:
            x.setdefault("labels", y)
        if y is None:
            y = x.get("labels")
        if "return_loss" in names:  # contrastive models compute their loss on request
            x.setdefault("return_loss", True)
        return x, y

    def _step(self, data, training: bool):
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        x, y = self._with_labels(x, y)
        user_loss = getattr(self, "_compile_loss", None) is not None
        if user_loss:
            x = {k: v for k, v in x.items() if k not in ("labels", "start_positions", "end_positions")}
        with tf.GradientTape() as tape:
            out = self(x, training=training, return_dict=True)
            logits = next(v for k, v in out.items() if k != "loss")
            if user_loss:
                loss = self.compute_loss(x=x, y=y, y_pred=logits, sample_weight=sample_weight)
            elif out.get("loss") is None:
                raise ValueError(f"{type(self).__name__} computed no loss: pass the labels in the dataset, or a loss "
                                 "to compile()")
            else:
                loss = tf.reduce_mean(out["loss"])
        if training:
            variables = self.trainable_variables
            self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        for metric in self.metrics:
            if metric.name == "loss":
                metric.update_state(loss)
        if y is not None:
            return self.compute_metrics(x, y, logits, sample_weight)
        return {m.name: m.result() for m in self.metrics}

    def train_step(self, data):
        return self._step(data, training=True)

    def test_step(self, data):
        return self._step(data, training=False)

    def predict_step(self, data):
        x, _, _ = keras.utils.unpack_x_y_sample_weight(data)
        out = self(x, training=False, return_dict=True)
        return {k: v for k, v in out.items() if isinstance(v, tf.Tensor)}

    # --- embeddings ---------------------------------------------------------------------------------
    def get_input_embeddings(self) -> keras.layers.Layer:
        raise NotImplementedError(f"{type(self).__name__} has no input embeddings")

    def get_output_embeddings(self) -> Optional[keras.layers.Layer]:
        return None

    def can_generate(self) -> bool:
        return False

    # --- save / load --------------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: Union[str, os.PathLike], *model_args: Any,
                        config: Optional[PretrainedConfig] = None, from_pt: bool = False,
                        output_loading_info: bool = False, ignore_mismatched_sizes: bool = False,
                        use_safetensors: Optional[bool] = None, **kwargs: Any):
        """Load a model from a folder or Hub id written by transformers (TF or PyTorch) or polyformer.

        Args:
            config: a config to use instead of the folder's config.json.
            from_pt: read the PyTorch weights even when tf_model.h5 exists (without tf_model.h5 they are
                read anyway).
            output_loading_info: also return {"missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"}.
            ignore_mismatched_sizes: keep the new initialisation of weights whose shape differs (a new head)
                instead of failing.
            cache_dir, revision, local_files_only, token, force_download, subfolder: where to read from.
            Other keyword arguments override config values (num_labels, id2label, ...).
        """
        name = os.fspath(pretrained_model_name_or_path)
        hub_kwargs = pop_hub_kwargs(kwargs)
        for ignored in ("from_flax", "load_weight_prefix", "tf_to_pt_weight_rename", "mirror"):
            kwargs.pop(ignored, None)
        config, unused = resolve_config(cls.config_class, name, config, hub_kwargs, kwargs)
        if unused:
            raise TypeError(f"{cls.__name__}.from_pretrained got unexpected keyword arguments {sorted(unused)}")
        model = cls(config, *model_args)
        h5 = None if from_pt else convert.find_tf_weights(name, **hub_kwargs)
        if h5 is not None:
            arrays, from_pt = convert.read_h5(h5), False
        else:
            try:
                files = find_weight_files(name, use_safetensors=use_safetensors, **hub_kwargs)
            except FileNotFoundError as err:
                raise FileNotFoundError(f"{err} (or {convert.TF_WEIGHTS} for the TensorFlow classes)") from None
            arrays, from_pt = convert.read_pt_checkpoint(files), True
        info = convert.assign(model, arrays, from_pt=from_pt, prefix=cls.base_model_prefix,
                              ignore_mismatched_sizes=ignore_mismatched_sizes)
        model._load_extras(name, hub_kwargs)
        return (model, info) if output_loading_info else model

    def save_pretrained(self, save_directory: Union[str, os.PathLike], saved_model: bool = False,
                        safe_serialization: bool = False, push_to_hub: bool = False, **kwargs: Any) -> None:
        """Write config.json and tf_model.h5 (what transformers' TF classes read and write), or with
        `safe_serialization=True` model.safetensors in PyTorch's names and layout (what the PyTorch classes of
        polyformer and transformers read, and transformers' TF classes convert). Each file atomically."""
        if saved_model:
            raise NotImplementedError("saved_model=True is not supported; save_pretrained writes weights and config")
        save_directory = prepare_save_directory(save_directory, push_to_hub)
        self.config.architectures = [type(self).__name__[2:]]  # the PyTorch class, as the reference writes it
        if safe_serialization:
            self._save_safetensors(os.path.join(save_directory, SAFE_WEIGHTS))
        else:
            convert.write_h5(os.path.join(save_directory, convert.TF_WEIGHTS), self)
        self.config.save_pretrained(save_directory)
        self._save_extras(save_directory)

    def _save_safetensors(self, path: str) -> None:
        from safetensors.numpy import save_file

        state = convert.pt_state(self)
        for key in self.pt_scalars:
            state = {k: v.reshape(()) if k.rsplit(".", 1)[-1] == key else v for k, v in state.items()}
        prefix = self.base_model_prefix + "."
        if all(k.startswith(prefix) for k in state):  # a bare model: PyTorch's has no prefix
            state = {k[len(prefix):]: v for k, v in state.items()}
        with atomic_path(path) as tmp:
            save_file({k: np.array(v, order="C") for k, v in state.items()}, tmp, metadata={"format": "pt"})

    # Hooks for what more than config and weights a model keeps (generation_config.json).
    def _load_extras(self, name: str, hub_kwargs: Dict[str, Any]) -> None:
        """Called by from_pretrained after the weights are loaded."""

    def _save_extras(self, save_directory: str) -> None:
        """Called by save_pretrained after config and weights are written."""

