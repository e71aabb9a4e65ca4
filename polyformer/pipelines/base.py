"""`Pipeline`: preprocess -> model -> postprocess, one input or a batched stream of them.

A task pipeline subclasses `Pipeline` and supplies four methods (transformers 4.37's contract):

    _sanitize_parameters(**kwargs) -> (preprocess_kwargs, forward_kwargs, postprocess_kwargs)
    preprocess(inputs, **preprocess_kwargs) -> dict of model inputs (tensors with batch dim 1, plus any
                                               non-tensor keys to carry along)
    _forward(model_inputs, **forward_kwargs) -> dict of model outputs (plus the carried keys it needs)
    postprocess(model_outputs, **postprocess_kwargs) -> the user's result

`__call__(one_input)` returns one result; `__call__(list_of_inputs, batch_size=N)` returns a list, with N
preprocessed inputs padded together (`pad_collate`) for each model call and the outputs split back into
batch-1 pieces (`unbatch`) before postprocess, so a batched result equals the one-by-one result up to the
model's arithmetic. A generator input gives a lazy iterator of results.

`ChunkPipeline` is the form for tasks where one input makes several model calls (question answering
over a long context, zero-shot classification over candidate labels): its `preprocess` yields chunks
(dicts as above, each with an `is_last` flag on the last chunk of an input), chunks of consecutive inputs
are batched together, and `postprocess` receives the list of all chunk outputs of one input. The base
strips `is_last` before `_forward` and keeps track of it itself.
"""

from __future__ import annotations

import logging
import os
import types
import warnings
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import torch

from ..push_to_hub import PushToHubMixin
from .frameworks import check_framework, placement, resolve_device

logger = logging.getLogger(__name__)

# padding value of a key when batching (keys not named here pad with 0; input_ids with the pad token id)
_PAD_ONE_KEYS = {"p_mask", "special_tokens_mask"}
_IMAGE_KEYS = {"pixel_values", "image"}  # images of one shape: concatenated, never padded


class PipelineException(Exception):
    """Raised by a pipeline when its input cannot be handled (as transformers' `PipelineException`).

    Args:
        task: the pipeline's task name.
        model: the model's name or path.
        reason: what went wrong.
    """

    def __init__(self, task: str, model: str, reason: str):
        super().__init__(reason)
        self.task = task
        self.model = model


# --- batching ------------------------------------------------------------------------------------------

def _pad_tensors(tensors: List[torch.Tensor], key: str, padding_value: Any, padding_side: str) -> torch.Tensor:
    """Stack batch-1 tensors (1, T, ...) into (B, max T, ...), padding dim 1 on `padding_side`."""
    if key in _IMAGE_KEYS or (tensors[0].dim() == 4 and key == "input_features"):
        return torch.cat(tensors, dim=0)
    lengths = [t.shape[1] for t in tensors]
    if max(lengths) == min(lengths):
        return torch.cat(tensors, dim=0)
    if padding_value is None:
        raise ValueError(f"cannot batch inputs of different lengths under key {key!r}: no padding value is known "
                         "(the tokenizer has no pad token)")
    first = tensors[0]
    out = torch.full((len(tensors), max(lengths), *first.shape[2:]), padding_value, dtype=first.dtype)
    for i, t in enumerate(tensors):
        n = t.shape[1]
        if padding_side == "left":
            out[i, out.shape[1] - n:] = t[0]
        else:
            out[i, :n] = t[0]
    return out


def pad_collate(tokenizer=None, feature_extractor=None,
                padding_side: Optional[str] = None) -> Callable[[List[Dict[str, Any]]], Dict[str, Any]]:
    """A function that merges preprocessed items (dicts of batch-1 tensors) into one padded batch.

    `input_ids` pad with the tokenizer's pad token id on its `padding_side` (a feature extractor's
    `padding_value` / `padding_side` when there is no tokenizer); `p_mask` and `special_tokens_mask` pad
    with 1; every other tensor key (attention_mask, token_type_ids, ...) with 0. Image tensors are
    concatenated. Non-tensor values become lists, one entry per item. `padding_side` ("left" / "right")
    overrides the side the tokenizer / feature extractor name.

    Raises:
        ValueError: neither a tokenizer nor a feature extractor was given, the tokenizer has no pad
            token, or they disagree on the padding side.
    """
    if tokenizer is None and feature_extractor is None:
        raise ValueError("a pipeline without tokenizer or feature extractor cannot batch its inputs")
    token_pad = None
    sides = []
    if tokenizer is not None:
        if tokenizer.pad_token_id is None:
            raise ValueError("a pipeline whose tokenizer has no pad_token cannot batch its inputs; set one, e.g. "
                             "`pipe.tokenizer.pad_token_id = pipe.model.config.eos_token_id`")
        token_pad = tokenizer.pad_token_id
        sides.append(tokenizer.padding_side)
    feature_pad = getattr(feature_extractor, "padding_value", None)
    feature_side = getattr(feature_extractor, "padding_side", None)
    if feature_side is not None:
        sides.append(feature_side)
    if len(set(sides)) > 1:
        raise ValueError(f"the tokenizer and the feature extractor disagree on the padding side: {sides}")
    if padding_side is None:
        padding_side = sides[-1] if sides else "right"
    elif padding_side not in ("left", "right"):
        raise ValueError(f"padding_side must be 'left' or 'right'; got {padding_side!r}")

    def collate(items: List[Dict[str, Any]]) -> Dict[str, Any]:
        keys = set(items[0])
        for item in items:
            if set(item) != keys:
                raise ValueError(f"the items of a batch hold different keys: {sorted(item)} != {sorted(keys)}")
        batch = {}
        for key in items[0]:
            values = [item[key] for item in items]
            if not isinstance(values[0], torch.Tensor):
                batch[key] = values
                continue
            if key == "input_ids":
                value = token_pad if tokenizer is not None else feature_pad
            elif key in ("input_values", "input_features"):
                value = feature_pad
            elif key in _PAD_ONE_KEYS:
                value = 1
            else:
                value = 0
            batch[key] = _pad_tensors(values, key, value, padding_side)
        return batch

    return collate


def _same_kind(original: dict, values: dict) -> dict:
    """`values` in the mapping class of `original` (a ModelOutput takes fields, BatchEncoding a dict)."""
    if type(original) is dict or not isinstance(original, dict):  # a plain dict, or a UserDict read as one
        return values
    if hasattr(original, "to_tuple"):
        return original.__class__(**values)
    return original.__class__(values)


def _take(value: Any, i: int) -> Any:
    """Item `i` of one batched output value, kept with a batch dimension of 1 where it is an array."""
    if value is None:
        return None
    if isinstance(value, torch.Tensor):
        return value[i].unsqueeze(0)
    if type(value).__module__ == "numpy" and hasattr(value, "shape"):
        return value[i][None]
    if isinstance(value, tuple) and value and isinstance(value[0], torch.Tensor):  # hidden_states, past_key_values, ...
        return tuple(t[i].unsqueeze(0) for t in value)
    return value[i]  # a list of per-item values


def unbatch(outputs: Any, batch_size: int) -> List[Any]:
    """Split a batched `_forward` result into `batch_size` results that look like batch-1 ones.

    A tensor splits along dim 0 (keeping it, size 1); a dict / ModelOutput splits key by key (a nested
    ModelOutput becomes a tuple of batch-1 tensors, as in the reference); a list gives its entries.
    """
    if isinstance(outputs, torch.Tensor):
        return [outputs[i] for i in range(batch_size)]
    if not isinstance(outputs, Mapping):
        raise ValueError(f"_forward must return a tensor or a dict of outputs to be batched; got {type(outputs).__name__}")
    results = []
    for i in range(batch_size):
        item = {}
        for key, value in outputs.items():
            if hasattr(value, "to_tuple") and callable(value.to_tuple):
                value = value.to_tuple()
            item[key] = _take(value, i)
        results.append(_same_kind(outputs, item))
    return results


def _batches(items: Iterable[Any], size: int) -> Iterator[List[Any]]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _to_device(value: Any, device: torch.device) -> Any:
    """`value` with every tensor inside (dicts, lists, tuples, ModelOutputs) moved to `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device)
    if isinstance(value, dict):
        return _same_kind(value, {k: _to_device(v, device) for k, v in value.items()})
    if isinstance(value, Mapping):  # BatchEncoding / BatchFeature (UserDicts): a plain dict
        return {k: _to_device(v, device) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_device(v, device) for v in value]
    if isinstance(value, tuple):
        return tuple(_to_device(v, device) for v in value)
    return value


# --- the pipeline ----------------------------------------------------------------------------------------

class Pipeline(PushToHubMixin):
    """Base class of every task pipeline (see the module docstring for the contract).

    Args:
        model: the model (a polyformer `PreTrainedModel`).
        tokenizer / image_processor / feature_extractor: the preprocessors the task needs.
        device: where to run: an int (CUDA index, -1 for CPU), a string ("cpu", "cuda:0") or a
            torch.device. Default: CPU, or where the model already is (a model loaded with `device_map`
            stays where it was placed).
        torch_dtype: the model is converted to it when given.
        batch_size: default batch size of list inputs.
        framework: "pt" (the only framework polyformer's pipelines run).
        task: the task name the pipeline serves.
        binary_output: kept for compatibility (results are plain Python values either way).
        **kwargs: task options, as accepted by `__call__` (they become the defaults of every call).
    """

    _push_save_args = ("max_shard_size", "safe_serialization")  # push_to_hub's arguments save_pretrained takes

    default_input_names = None

    def __init__(self, model, tokenizer=None, feature_extractor=None, image_processor=None, modelcard=None,
                 framework: Optional[str] = None, task: str = "", args_parser=None, device: Any = None,
                 torch_dtype: Any = None, binary_output: bool = False, batch_size: Optional[int] = None, **kwargs):
        self.framework = check_framework(framework, model)
        self.task = task
        self.model = model
        self.tokenizer = tokenizer
        self.feature_extractor = feature_extractor
        self.image_processor = image_processor
        self.modelcard = modelcard
        self.binary_output = binary_output
        if self.framework == "tf":
            if torch_dtype is not None:
                raise ValueError("torch_dtype applies to PyTorch models; this pipeline runs a TensorFlow model "
                                 f"({type(model).__name__}): leave torch_dtype out")
            self.device = resolve_device("tf", device)
        else:
            self._place_torch_model(torch_dtype, device)
        task_params = (getattr(model.config, "task_specific_params", None) or {}).get(task)
        if task_params:  # e.g. MVP's {"summarization": {...}}: they become the config's and generation defaults
            model.config.update(task_params)
            if model.can_generate() and getattr(model, "generation_config", None) is not None:
                model.generation_config.update(**task_params)
        if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        self._batch_size = batch_size
        self.call_count = 0
        # task options given at construction become the defaults of every call
        self._preprocess_params, self._forward_params, self._postprocess_params = self._sanitize_parameters(**kwargs)
        if self.image_processor is None and self.feature_extractor is not None and hasattr(
                self.feature_extractor, "preprocess"):
            self.image_processor = self.feature_extractor

    def _place_torch_model(self, torch_dtype: Any, device: Any) -> None:
        """Convert the model to `torch_dtype` and move it to `device` (unless accelerate placed it)."""
        model = self.model
        if torch_dtype is not None and torch_dtype != "auto":
            dtype = torch_dtype if isinstance(torch_dtype, torch.dtype) else getattr(torch, str(torch_dtype), None)
            if not isinstance(dtype, torch.dtype):
                raise ValueError(f"torch_dtype must be a torch.dtype, its name (e.g. 'float32') or 'auto'; got "
                                 f"{torch_dtype!r}")
            if model.dtype != dtype:
                model.to(dtype)
        device_map = getattr(model, "hf_device_map", None)
        if device_map is not None and device is not None:
            raise ValueError("the model was placed with device_map (accelerate) and cannot be moved: leave the "
                             "`device` argument out")
        if device is None:  # inputs go where the first weights in memory are ("disk" weights run on the CPU)
            device = next((d for d in (device_map or {}).values() if d != "disk"), -1)
        self.device = resolve_device("pt", device)
        if device_map is None and model.device != self.device:
            model.to(self.device)

    # -- properties -----------------------------------------------------------------------------------

    @property
    def torch_dtype(self) -> Optional[torch.dtype]:
        """The model's dtype (None for a TensorFlow model)."""
        return getattr(self.model, "dtype", None) if self.framework == "pt" else None

    # -- the task's four methods ------------------------------------------------------------------------

    def _sanitize_parameters(self, **pipeline_parameters) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
        """Sort `__call__`'s (or the constructor's) keyword options into (preprocess, forward, postprocess)
        keyword dicts; an option that is not given must not appear (the constructor's defaults stay)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _sanitize_parameters")

    def preprocess(self, input_: Any, **preprocess_parameters) -> Dict[str, Any]:
        """One raw input -> a dict of batch-1 model-input tensors (plus non-tensor keys to carry)."""
        raise NotImplementedError(f"{type(self).__name__} must implement preprocess")

    def _forward(self, input_tensors: Dict[str, Any], **forward_parameters) -> Dict[str, Any]:
        """Model inputs (already on `self.device`) -> model outputs. Called under torch.inference_mode
        (PyTorch) or `tf.device` (TensorFlow)."""
        raise NotImplementedError(f"{type(self).__name__} must implement _forward")

    def postprocess(self, model_outputs: Any, **postprocess_parameters) -> Any:
        """Model outputs of one input (moved back to the CPU) -> the user's result."""
        raise NotImplementedError(f"{type(self).__name__} must implement postprocess")

    # -- running ----------------------------------------------------------------------------------------

    def forward(self, model_inputs: Dict[str, Any], **forward_params) -> Any:
        """`_forward` with its inputs moved to `self.device`, without gradients, outputs back on the CPU
        (a TensorFlow model runs under `tf.device(...)` in inference mode, its tensors left as they are)."""
        with self.device_placement():
            if self.framework == "tf":
                return self._forward(model_inputs, **forward_params)
            with torch.inference_mode():
                model_inputs = self._ensure_tensor_on_device(model_inputs, device=self.device)
                outputs = self._forward(model_inputs, **forward_params)
                return self._ensure_tensor_on_device(outputs, device=torch.device("cpu"))

    def device_placement(self):
        """Context manager making `self.device` the current device while the model runs (a CUDA device for
        PyTorch; `tf.device("/CPU:0")` or `tf.device("/device:GPU:<i>")` for TensorFlow)."""
        return placement(self.framework, self.device)

    def ensure_tensor_on_device(self, **inputs) -> Dict[str, Any]:
        """The keyword inputs with every torch tensor moved to `self.device`."""
        return self._ensure_tensor_on_device(inputs, self.device)

    def _ensure_tensor_on_device(self, inputs: Any, device: torch.device) -> Any:
        return _to_device(inputs, device)

    def check_model_type(self, supported_models: Union[Sequence[str], Dict[str, Any]]) -> None:
        """Log an error when the model's class is not among `supported_models` (class names or a
        model_type -> class name mapping), as the reference does."""
        names = supported_models.values() if isinstance(supported_models, dict) else supported_models
        names = {n if isinstance(n, str) else getattr(n, "__name__", str(n)) for n in names}
        if type(self.model).__name__ not in names:
            logger.error("The model '%s' is not supported for %s. Supported models are %s.",
                         type(self.model).__name__, self.task, sorted(names))

    def get_inference_context(self):
        return torch.inference_mode

    def _collate(self) -> Callable[[List[Dict[str, Any]]], Dict[str, Any]]:
        return pad_collate(self.tokenizer, self.feature_extractor if self.feature_extractor is not None
                           else self.image_processor)

    def _merged(self, kwargs: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any], Dict[str, Any]]:
        pre, fwd, post = self._sanitize_parameters(**kwargs)
        return ({**self._preprocess_params, **pre}, {**self._forward_params, **fwd},
                {**self._postprocess_params, **post})

    def __call__(self, inputs: Any, *args: Any, num_workers: Optional[int] = None, batch_size: Optional[int] = None,
                 **kwargs: Any) -> Any:
        """Run the pipeline: one input -> one result, a list -> a list of results (in `batch_size`
        batches), a generator -> an iterator of results. Keyword options override the constructor's."""
        if args:
            logger.warning("Ignoring args : %s", args)
        if batch_size is None:
            batch_size = self._batch_size or 1
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int; got {batch_size!r}")
        if self.framework == "tf":
            batch_size = 1  # as 4.37, a TensorFlow pipeline runs its inputs one by one
        params = self._merged(kwargs)
        self.call_count += 1
        if (self.call_count > 10 and self.framework == "pt" and self.device.type == "cuda"
                and isinstance(inputs, (str, dict))):
            logger.warning("You seem to be using the pipelines sequentially on GPU. In order to maximize efficiency "
                           "please pass a list of inputs (or a generator) with batch_size")
        if isinstance(inputs, list):
            return list(self._iterate(inputs, batch_size, *params))
        if isinstance(inputs, (types.GeneratorType, Iterator)) or _is_dataset(inputs):
            return self._iterate(inputs, batch_size, *params)
        if isinstance(self, ChunkPipeline):  # one input's chunks are batched too
            return next(self._iterate([inputs], batch_size, *params))
        return self.run_single(inputs, *params)

    def run_single(self, inputs: Any, preprocess_params: Dict[str, Any], forward_params: Dict[str, Any],
                   postprocess_params: Dict[str, Any]) -> Any:
        model_inputs = self.preprocess(inputs, **preprocess_params)
        model_outputs = self.forward(model_inputs, **forward_params)
        return self.postprocess(model_outputs, **postprocess_params)

    def run_multi(self, inputs: List[Any], preprocess_params, forward_params, postprocess_params) -> List[Any]:
        return [self.run_single(item, preprocess_params, forward_params, postprocess_params) for item in inputs]

    def _run_batch(self, items: List[Dict[str, Any]], forward_params: Dict[str, Any]) -> List[Any]:
        """Forward preprocessed items together: pad, one model call, split back into batch-1 outputs."""
        if len(items) == 1:
            return [self.forward(items[0], **forward_params)]
        outputs = self.forward(self._collate()(items), **forward_params)
        return unbatch(outputs, len(items))

    def _iterate(self, inputs: Iterable[Any], batch_size: int, preprocess_params, forward_params,
                 postprocess_params) -> Iterator[Any]:
        preprocessed = (self.preprocess(item, **preprocess_params) for item in inputs)
        for batch in _batches(preprocessed, batch_size):
            for output in self._run_batch(batch, forward_params):
                yield self.postprocess(output, **postprocess_params)

    # aliases kept from the reference
    def transform(self, X):
        return self(X)

    def predict(self, X):
        return self(X)

    # -- saving -----------------------------------------------------------------------------------------

    def save_pretrained(self, save_directory: Union[str, os.PathLike], safe_serialization: bool = True, **kwargs) -> None:
        """Save the model and its preprocessors (tokenizer, image processor, feature extractor) into
        `save_directory`, so `pipeline(task, model=save_directory)` loads them back."""
        if os.path.isfile(save_directory):
            raise ValueError(f"save_directory must be a folder, but {os.fspath(save_directory)!r} is a file")
        os.makedirs(save_directory, exist_ok=True)
        self.model.save_pretrained(save_directory, safe_serialization=safe_serialization, **kwargs)
        for part in (self.tokenizer, self.feature_extractor, self.image_processor):
            if part is not None:
                part.save_pretrained(save_directory)


def _is_dataset(inputs: Any) -> bool:
    """A map-style dataset (torch Dataset, or anything with __len__/__getitem__ that is not a str / dict)."""
    return isinstance(inputs, torch.utils.data.Dataset)


class ChunkPipeline(Pipeline):
    """A pipeline whose `preprocess` yields several chunks per input (each a dict of batch-1 model inputs,
    the last one with `is_last=True`) and whose `postprocess` receives the list of one input's chunk
    outputs. Chunks are batched across inputs; `_forward` never sees `is_last`."""

    def run_single(self, inputs, preprocess_params, forward_params, postprocess_params):
        outputs = []
        for chunk in self.preprocess(inputs, **preprocess_params):
            chunk = dict(chunk)
            chunk.pop("is_last", None)
            outputs.append(self.forward(chunk, **forward_params))
        return self.postprocess(outputs, **postprocess_params)

    def _iterate(self, inputs, batch_size, preprocess_params, forward_params, postprocess_params):
        def chunks() -> Iterator[Tuple[Dict[str, Any], bool]]:
            for item in inputs:
                produced = False
                for chunk in self.preprocess(item, **preprocess_params):
                    chunk = dict(chunk)
                    yield chunk, bool(chunk.pop("is_last", False))
                    produced = True
                if not produced:
                    raise ValueError(f"{type(self).__name__}.preprocess produced no chunk for input {item!r}")

        pending: List[Any] = []
        for batch in _batches(chunks(), batch_size):
            outputs = self._run_batch([chunk for chunk, _ in batch], forward_params)
            for output, (_, is_last) in zip(outputs, batch):
                pending.append(output)
                if is_last:
                    yield self.postprocess(pending, **postprocess_params)
                    pending = []
        if pending:
            raise ValueError(f"{type(self).__name__}.preprocess did not mark its last chunk with is_last=True")


def stop_token_id(tokenizer, stop_sequence: str) -> int:
    """generate()'s eos_token_id for a pipeline's `stop_sequence`: its first token (4.37 warns, as here,
    when the sequence is several tokens)."""
    stop_ids = tokenizer.encode(stop_sequence, add_special_tokens=False)
    if not stop_ids:
        raise ValueError(f"stop_sequence {stop_sequence!r} gives no token")
    if len(stop_ids) > 1:
        warnings.warn("Stopping on a multiple token sequence is not yet supported: the first token of the "
                      "stop sequence is used as the stop token.", UserWarning, stacklevel=4)
    return stop_ids[0]
