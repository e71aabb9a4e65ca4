"""SavedModel export for the TF classes: the serving signature, its outputs, and the three ways to write one.

transformers 4.37's TF models serve `call(inputs)` on a dict of tensors, typed by `input_signature`:
input_ids / attention_mask / token_type_ids (those `call` takes) as int32 (None, None) ((None, None, None) for
multiple choice), pixel_values float32 (None, num_channels, image_size, image_size). The outputs are the
ModelOutput's tensors by name, hidden states and attentions only when the config turns them on and
past_key_values only with config.use_cache, tuples stacked into one tensor where their shapes agree.

polyformer writes the same signature, three ways (all reload with `tf.saved_model.load`, no polyformer needed):
- `save_pretrained(dir, saved_model=True)`: dir/saved_model/<version>/, signatures "serving_default" (int32)
  and "int64_serving" (the same inputs as int64), as 4.37 writes them;
- `tf.saved_model.save(model, dir)`: the default signature "serving_default" (int32);
- `model.export(dir)` (Keras 3): the endpoint `serve(inputs)` and its signature "serving_default".

Two things 4.37 cannot serve are served here: nested outputs (GroupViT's text_model_output and
vision_model_output) become `<field>/<inner field>` entries, and tuples whose shapes differ become
`<field>/<i>` entries, since a signature returns a flat dict of tensors.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Dict, Optional

from ..outputs import ModelOutput
from .backend import keras, tf

logger = logging.getLogger(__name__)

TEXT_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def input_signature(model) -> Dict[str, tf.TensorSpec]:
    """{input name: TensorSpec} for the model's serving function (4.37's `input_signature`)."""
    names = model._input_names()
    dims = 3 if type(model).__name__.endswith("ForMultipleChoice") else 2
    signature = {}
    if "input_ids" in names:
        signature.update({n: tf.TensorSpec([None] * dims, tf.int32, name=n) for n in TEXT_INPUTS if n in names})
    if "pixel_values" in names:
        vision = getattr(model.config, "vision_config", model.config)
        shape = [None, vision.num_channels, vision.image_size, vision.image_size]
        signature["pixel_values"] = tf.TensorSpec(shape, tf.float32, name="pixel_values")
    if not signature:
        raise NotImplementedError(f"{type(model).__name__} has no default input signature; pass one")
    return signature


def _flatten(name: str, value: Any, out: Dict[str, tf.Tensor]) -> None:
    if value is None:
        return
    if isinstance(value, ModelOutput):
        for key, inner in value.items():
            _flatten(f"{name}/{key}", inner, out)
    elif isinstance(value, (tuple, list)):
        leaves = tf.nest.flatten(value)
        if all(leaf.shape == leaves[0].shape for leaf in leaves):
            out[name] = tf.convert_to_tensor(value)
        else:
            for i, inner in enumerate(value):
                _flatten(f"{name}/{i}", inner, out)
    else:
        out[name] = value


def serving_output(config, output: Any) -> Dict[str, tf.Tensor]:
    """A model output -> the flat {name: tensor} a serving signature returns (see the module docstring)."""
    if not isinstance(output, Mapping):
        return {"output_0": output}
    served: Dict[str, tf.Tensor] = {}
    for key, value in output.items():
        if key.endswith("hidden_states") and not getattr(config, "output_hidden_states", False):
            continue
        if key.endswith("attentions") and not getattr(config, "output_attentions", False):
            continue
        if key == "past_key_values" and not getattr(config, "use_cache", False):
            continue
        _flatten(key, value, served)
    return served


def serving_function(model) -> "tf.types.experimental.GenericFunction":
    """The model's `serving` tf.function (made once): dict of input tensors -> dict of output tensors."""
    function = model.__dict__.get("_serving_function")
    if function is None:
        def serving(inputs):
            inputs = {k: tf.cast(v, tf.int32) if v.dtype == tf.int64 else v for k, v in inputs.items()}
            return serving_output(model.config, model(inputs, training=False, return_dict=True))

        function = model.__dict__["_serving_function"] = tf.function(serving, autograph=False)
    return function


def _int64(signature: Dict[str, tf.TensorSpec]) -> Dict[str, tf.TensorSpec]:
    return {k: tf.TensorSpec(s.shape, tf.int64 if s.dtype == tf.int32 else s.dtype, name=s.name)
            for k, s in signature.items()}


def default_signatures(model) -> Dict[str, Any]:
    """What 4.37's save_pretrained(saved_model=True) passes as `signatures`: serving_default and, where an
    input is int32, int64_serving."""
    signature = model.input_signature
    function = serving_function(model)
    signatures = {"serving_default": function.get_concrete_function(signature)}
    if any(spec.dtype == tf.int32 for spec in signature.values()):
        signatures["int64_serving"] = function.get_concrete_function(_int64(signature))
    return signatures


def save_saved_model(model, directory: str, signatures: Optional[Any] = None) -> None:
    """Write a SavedModel of `model` to `directory` (created), serving `signatures` (default: as 4.37)."""
    os.makedirs(directory, exist_ok=True)
    tf.saved_model.save(model, directory, signatures=signatures or default_signatures(model))
    logger.info("Saved model created in %s", directory)


def export(model, filepath: str, input_signature: Optional[Any] = None, verbose: Optional[bool] = None) -> None:
    """Keras 3's `model.export(filepath)` for format "tf_saved_model": the endpoint `serve` on the serving
    function, typed by `input_signature` (a dict of specs; default: the model's)."""
    signature = input_signature if input_signature is not None else model.input_signature
    if isinstance(signature, (list, tuple)) and len(signature) == 1:
        signature = signature[0]
    if not isinstance(signature, Mapping):
        raise TypeError("input_signature must be a dict {input name: tf.TensorSpec} (or a one-item list of it), got "
                        f"{type(signature).__name__}")
    archive = keras.export.ExportArchive()
    archive.track(model)
    function = serving_function(model)
    archive.add_endpoint("serve", lambda inputs: function(inputs), input_signature=[dict(signature)])
    archive.write_out(os.fspath(filepath), verbose=bool(verbose))
