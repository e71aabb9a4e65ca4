"""What differs between a PyTorch and a TensorFlow pipeline, in one place.

A task pipeline's pre- and post-processing is written once: `preprocess` asks the tokenizer (or image
processor) for tensors of the pipeline's framework (`return_tensors=self.framework`), `_forward` calls the
model as it is, and `postprocess` reads the outputs through `to_numpy`. The rest differs by framework and
lives here: which framework a model object is (`infer_framework`), the device a pipeline runs on
(`resolve_device`) and its placement context (`placement`), ints turned into model inputs (`int_tensor`), and
the parameters a model's forward takes (`call_parameters`).

TensorFlow is imported only by the functions that run for a TensorFlow pipeline; `torch` is a hard
dependency of polyformer and imported here.
"""

from __future__ import annotations

import contextlib
import inspect
from typing import Any, Iterator, Optional, Set

import numpy as np
import torch

FRAMEWORKS = ("pt", "tf")


def is_tf_model(model: Any) -> bool:
    """Whether `model` is a Keras (TensorFlow) model, decided without importing TensorFlow."""
    return any(cls.__module__.split(".")[0] in ("keras", "tf_keras", "tensorflow") for cls in type(model).__mro__)


def infer_framework(model: Any) -> str:
    """ "pt" for a torch module, "tf" for a Keras model.

    Raises:
        ValueError: `model` is neither (e.g. a Flax model, which 4.37's pipelines do not run either).
    """
    if isinstance(model, torch.nn.Module):
        return "pt"
    if is_tf_model(model):
        return "tf"
    raise ValueError(f"model must be a loaded PyTorch or TensorFlow model (a polyformer PreTrainedModel or "
                     f"TFPreTrainedModel); got {type(model).__name__}. Use polyformer.pipeline(task, model=name) to "
                     "load one by name")


def check_framework_name(framework: Optional[str]) -> None:
    """Raises ValueError unless `framework` is "pt", "tf" or None."""
    if framework is not None and framework not in FRAMEWORKS:
        raise ValueError(f"framework must be 'pt' (PyTorch), 'tf' (TensorFlow) or None; got {framework!r}")


def check_framework(framework: Optional[str], model: Any) -> str:
    """The pipeline's framework: `framework` when given (checked against the model), else the model's.

    Raises:
        ValueError: `framework` is not "pt" / "tf", or names another framework than the model's.
    """
    check_framework_name(framework)
    actual = infer_framework(model)
    if framework is not None and framework != actual:
        raise ValueError(f"framework={framework!r} but the model {type(model).__name__} is a "
                         f"{'PyTorch' if actual == 'pt' else 'TensorFlow'} model (framework {actual!r})")
    return actual


# --- devices -------------------------------------------------------------------------------------------

def _torch_device(device: Any) -> torch.device:
    """`device` as a torch.device: an int is a CUDA index (-1: CPU), a string or torch.device as given."""
    if isinstance(device, torch.device):
        return device
    if isinstance(device, str):
        return torch.device(device)
    if isinstance(device, int) and not isinstance(device, bool):
        return torch.device("cpu") if device < 0 else torch.device("cuda", device)
    raise ValueError(f"device must be an int (a CUDA index, -1 for CPU), a string such as 'cpu' or 'cuda:0', or a "
                     f"torch.device; got {device!r}")


def _tf_device(device: Any) -> int:
    """`device` as 4.37 keeps it for TensorFlow: an int, -1 for the CPU, else a GPU index. "cpu", "cuda:N",
    "gpu:N" and torch.device values are read the same way."""
    if isinstance(device, torch.device):
        device = str(device)
    if isinstance(device, str):
        kind, _, index = device.lower().partition(":")
        if kind == "cpu":
            return -1
        if kind in ("cuda", "gpu") and (index == "" or index.isdigit()):
            return int(index or 0)
    elif isinstance(device, int) and not isinstance(device, bool):
        return max(device, -1)
    raise ValueError(f"device must be an int (a GPU index, -1 for CPU) or a string such as 'cpu' or 'gpu:0' for a "
                     f"TensorFlow model; got {device!r}")


def resolve_device(framework: str, device: Any) -> Any:
    """The pipeline's `device`: a torch.device for PyTorch; for TensorFlow an int as 4.37 keeps it (-1:
    CPU, else a GPU index). None means the CPU."""
    if framework == "tf":
        return -1 if device is None else _tf_device(device)
    return None if device is None else _torch_device(device)


@contextlib.contextmanager
def placement(framework: str, device: Any) -> Iterator[None]:
    """Make `device` the current device while the model runs: `torch.cuda.device` for a CUDA device,
    `tf.device("/CPU:0")` or `tf.device("/device:GPU:<i>")` for TensorFlow."""
    if framework == "tf":
        import tensorflow as tf

        with tf.device("/CPU:0" if device == -1 else f"/device:GPU:{device}"):
            yield
    elif device.type == "cuda":
        with torch.cuda.device(device):
            yield
    else:
        yield


# --- tensors -------------------------------------------------------------------------------------------

def to_numpy(value: Any) -> np.ndarray:
    """A torch / TensorFlow tensor (or array-like) as a numpy array on the CPU; torch's half-precision
    floats become float32 (numpy has no bfloat16)."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu()
        if value.is_floating_point() and value.dtype not in (torch.float32, torch.float64):
            value = value.float()
        return value.numpy()
    if hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # tf.Tensor / Variable
        return np.asarray(value.numpy())
    return np.asarray(value)


def int_tensor(framework: str, values: Any) -> Any:
    """Nested lists of ints as a model-input tensor: torch int64, or tf int32 (4.37's TF inputs)."""
    if framework == "tf":
        import tensorflow as tf

        return tf.constant(values, dtype=tf.int32)
    return torch.tensor(values, dtype=torch.long)


def call_parameters(model: Any) -> Set[str]:
    """The names a model's forward takes (`forward` for PyTorch, Keras' `call` for TensorFlow)."""
    method = model.forward if isinstance(model, torch.nn.Module) else model.call
    return set(inspect.signature(method).parameters)
