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
from ..saving import save_transaction
from . import convert, serving
from ..push_to_hub import PushToHubMixin
from .backend import keras, tf

logger = logging.getLogger(__name__)

LEGACY_NAMES = {"inputs": "input_ids", "past": "past_key_values"}


def _snake_case(name: str) -> str:
    """A class name as Keras names a model of it (TFDistilBertForMaskedLM -> tf_distil_bert_for_masked_lm)."""
    name = re.sub(r"(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


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
        name = kwargs.pop("name", None) or _snake_case(type(self).__name__)
        super().__init__(name=name, **kwargs)
        if not isinstance(config, PretrainedConfig):
            raise TypeError(f"config must be a PretrainedConfig, got {type(config).__name__}")
        config.validate()
        config.check_fits()  # before any layer is built
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

    def prune_heads(self, heads_to_prune: Dict[int, List[int]]) -> None:
        """Remove attention heads: {layer index: [head indices]} (indices of the unpruned layer). The union
        with earlier prunings is kept in config.pruned_heads, which save_pretrained writes and from_pretrained
        re-applies, as in 4.37's PyTorch classes."""
        if not isinstance(heads_to_prune, Mapping):
            raise TypeError(f"heads_to_prune must be a dict {{layer index: [head indices]}}, got "
                            f"{type(heads_to_prune).__name__}")
        pruned = {int(k): list(v) for k, v in (self.config.pruned_heads or {}).items()}
        for layer, heads in heads_to_prune.items():
            pruned[int(layer)] = sorted(set(pruned.get(int(layer), [])) | {int(h) for h in heads})
        self._prune_heads(heads_to_prune)
        self.config.pruned_heads = pruned
        self._forget_traces()

    def _prune_heads(self, heads_to_prune: Dict[int, List[int]]) -> None:
        raise NotImplementedError(f"{type(self).__name__} cannot prune heads (nor can 4.37's TF class)")

    def resize_token_embeddings(self, new_num_tokens: Optional[int] = None,
                                pad_to_multiple_of: Optional[int] = None) -> keras.Variable:
        """Resize the input token embeddings to `new_num_tokens` rows (rounded up to a multiple of
        `pad_to_multiple_of`), with PyTorch's semantics: the first rows are kept, new rows are drawn from
        N(0, initializer_range), the output embeddings follow (tied ones stay the same variable; an untied
        head gets new columns and zero biases) and config.vocab_size is updated. Returns the embedding matrix
        (new_num_tokens None and no pad_to_multiple_of: the current one, unchanged)."""
        embeddings = self.get_input_embeddings()
        if new_num_tokens is None and pad_to_multiple_of is None:
            return embeddings.table
        rows = embeddings.num if new_num_tokens is None else new_num_tokens
        if not isinstance(rows, int) or isinstance(rows, bool) or rows < 1:
            raise ValueError(f"new_num_tokens must be a positive int, got {new_num_tokens!r}")
        if pad_to_multiple_of is not None:
            if not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1:
                raise ValueError(f"pad_to_multiple_of must be a positive int, got {pad_to_multiple_of!r}")
            rows = -(-rows // pad_to_multiple_of) * pad_to_multiple_of
        std = getattr(self.config, "initializer_range", 0.02)
        embeddings.resize(rows, std)
        head = self.get_output_embeddings()
        if head is not None:
            head.resize_outputs(rows, std)
        config = getattr(self.config, "text_config", None) if not hasattr(self.config, "vocab_size") else self.config
        config.vocab_size = rows
        self._forget_traces()
        return embeddings.table

    def _forget_traces(self) -> None:
        """Drop traced functions that captured variables since replaced (generate, serving, Keras steps)."""
        for key in ("_generate_loop", "_beam_loop", "_serving_function"):
            self.__dict__.pop(key, None)
        for attr in ("train_function", "test_function", "predict_function"):
            if getattr(self, attr, None) is not None:
                setattr(self, attr, None)

    # --- serving (SavedModel) -------------------------------------------------------------------------
    @property
    def input_signature(self) -> Dict[str, tf.TensorSpec]:
        """{input name: tf.TensorSpec} the serving function takes (see polyformer/tf/serving.py)."""
        return serving.input_signature(self)

    @property
    def serving(self):
        """tf.function: a dict of input tensors -> a flat dict of output tensors (4.37's `serving`)."""
        return serving.serving_function(self)

    def serving_output(self, output: Any) -> Dict[str, tf.Tensor]:
        return serving.serving_output(self.config, output)

    @property
    def _default_save_signature(self):
        # what tf.saved_model.save(model, dir) serves as "serving_default" when given no signatures
        return serving.serving_function(self).get_concrete_function(self.input_signature)

    def export(self, filepath, format: str = "tf_saved_model", verbose: Optional[bool] = None, input_signature=None,
               **kwargs):
        """Keras 3's export. "tf_saved_model" (the default) serves the model's serving function under `serve` and
        "serving_default", typed by `input_signature` (default: the model's); other formats go to Keras."""
        if format != "tf_saved_model":
            return super().export(filepath, format=format, verbose=verbose, input_signature=input_signature, **kwargs)
        if kwargs:
            raise TypeError(f"export() got unexpected keyword arguments {sorted(kwargs)}")
        serving.export(self, filepath, input_signature=input_signature, verbose=verbose)

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

    def save_pretrained(self, save_directory: Union[str, os.PathLike], saved_model: bool = False, version: int = 1,
                        push_to_hub: bool = False, signatures=None, max_shard_size: Union[int, str] = "10GB",
                        safe_serialization: bool = False, **kwargs: Any) -> None:
        """Write config.json and tf_model.h5 (what transformers' TF classes read and write), or with
        `safe_serialization=True` model.safetensors in PyTorch's names and layout (what the PyTorch classes of
        polyformer and transformers read, and transformers' TF classes convert). Each file atomically.

        Args:
            saved_model: also write a SavedModel to save_directory/saved_model/<version>/ (signatures
                "serving_default" and "int64_serving", or `signatures`), as 4.37 does.
            max_shard_size: tf_model.h5 larger than this (bytes, or "5MB" / "10GB") is split into
                tf_model-0000i-of-0000n.h5 files with tf_model.h5.index.json, in 4.37's layout.
        """
        save_directory = prepare_save_directory(save_directory, push_to_hub)
        if saved_model:
            serving.save_saved_model(self, os.path.join(save_directory, "saved_model", str(int(version))), signatures)
        self.config.architectures = [type(self).__name__[2:]]  # the PyTorch class, as the reference writes it
        with save_transaction(save_directory):  # one atomic save (saving.py)
            if safe_serialization:
                self._save_safetensors(os.path.join(save_directory, SAFE_WEIGHTS))
            else:
                convert.save_h5_checkpoint(save_directory, self, max_shard_size)
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

