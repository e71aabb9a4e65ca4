"""Small Keras layers shared by the TF families: Linear, LayerNorm, Embedding, activations, the layer loop.

Weights are made in `__init__` (every shape is known from the config), so a model holds all its variables
as soon as it is built and `from_pretrained` can fill them before any call. Layer and weight names follow
transformers' TF classes (`kernel` / `bias`, `gamma` / `beta`, `weight` or `embeddings`), and a layer's name
is its attribute name in the PyTorch model (lists: `layer_._0`, ...), so polyformer/tf/convert.py maps every
name to the PyTorch checkpoint key with one rule.

Notation: B batch, T tokens, C width.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence, Tuple

from .backend import keras, tf


def initializer(std: float) -> keras.initializers.Initializer:
    """Truncated normal with `std`, as transformers' TF classes draw new weights."""
    return keras.initializers.TruncatedNormal(stddev=std)


class Layer(keras.layers.Layer):
    """A Keras layer built at construction: its weights and sublayers are made in `__init__`. Its callers
    pass tensors (and None / Python values positionally), so Keras's input conversion is skipped."""

    def __init__(self, name: Optional[str] = None, **kwargs):
        super().__init__(name=name, **kwargs)
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True


def replace_weight(layer: keras.layers.Layer, attr: str, value, name: str) -> keras.Variable:
    """Give `layer` a new variable `attr` (named `name`, holding `value`) in place of the old one, whose shape
    cannot change: the old one is no longer among the layer's weights. Returns the new variable."""
    old = getattr(layer, attr)
    for tracked in (layer._trainable_variables, layer._non_trainable_variables):
        if any(v is old for v in tracked):
            tracked[:] = [v for v in tracked if v is not old]
    new = layer.add_weight(name=name, shape=value.shape, initializer="zeros", trainable=old.trainable)
    new.assign(tf.cast(value, new.dtype))
    setattr(layer, attr, new)
    return new


def grow_rows(table: tf.Tensor, rows: int, std: float, axis: int = 0) -> tf.Tensor:
    """`table` cut or extended to `rows` along `axis`: kept entries as they are, new ones drawn from N(0, std)
    (std 0: zeros), as PyTorch's resize_token_embeddings initialises them."""
    old = table.shape[axis]
    if rows <= old:
        return tf.gather(table, tf.range(rows), axis=axis)
    shape = list(table.shape)
    shape[axis] = rows - old
    extra = tf.random.normal(shape, stddev=std, dtype=table.dtype) if std > 0 else tf.zeros(shape, table.dtype)
    return tf.concat([table, extra], axis=axis)


class Linear(Layer):
    """y = x @ kernel + bias; kernel (in, out), the transpose of torch's Linear weight."""

    def __init__(self, in_features: int, out_features: int, use_bias: bool = True, std: float = 0.02,
                 name: Optional[str] = None):
        super().__init__(name=name)
        self.in_features, self.out_features = in_features, out_features
        self.kernel = self.add_weight(name="kernel", shape=(in_features, out_features), initializer=initializer(std))
        self.bias = self.add_weight(name="bias", shape=(out_features,), initializer="zeros") if use_bias else None

    def resize_outputs(self, out_features: int, std: float) -> None:
        """Cut or extend the outputs (kernel columns, bias entries; new ones N(0, std) and 0)."""
        replace_weight(self, "kernel", grow_rows(self.kernel, out_features, std, axis=1), "kernel")
        if self.bias is not None:
            replace_weight(self, "bias", grow_rows(self.bias, out_features, 0.0), "bias")
        self.out_features = out_features

    def call(self, x: tf.Tensor) -> tf.Tensor:  # (..., in) -> (..., out)
        if x.shape.rank == 2:
            y = tf.matmul(x, self.kernel)
        else:
            shape = tf.shape(x)
            y = tf.matmul(tf.reshape(x, (-1, self.in_features)), self.kernel)
            y = tf.reshape(y, tf.concat([shape[:-1], [self.out_features]], axis=0))
        return y if self.bias is None else y + self.bias


class LayerNorm(Layer):
    """LayerNorm over the last axis: gamma (scale), beta (shift)."""

    def __init__(self, dim: int, eps: float, name: Optional[str] = None):
        super().__init__(name=name)
        self.eps = eps
        self.gamma = self.add_weight(name="gamma", shape=(dim,), initializer="ones")
        self.beta = self.add_weight(name="beta", shape=(dim,), initializer="zeros")

    def call(self, x: tf.Tensor) -> tf.Tensor:
        mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
        return tf.nn.batch_normalization(x, mean, variance, self.beta, self.gamma, self.eps)


class Embedding(Layer):
    """A lookup table (num, dim); `weight_name` is the reference's name for it ("weight" or "embeddings")."""

    def __init__(self, num: int, dim: int, std: float = 0.02, weight_name: str = "weight", name: Optional[str] = None):
        super().__init__(name=name)
        self.num, self.weight_name = num, weight_name
        self.table = self.add_weight(name=weight_name, shape=(num, dim), initializer=initializer(std))

    def resize(self, num: int, std: float) -> None:
        """Keep the first rows, cut the rest or add new ones drawn from N(0, std)."""
        replace_weight(self, "table", grow_rows(self.table, num, std), self.weight_name)
        self.num = num

    def call(self, ids: tf.Tensor) -> tf.Tensor:  # (...) -> (..., dim)
        tf.debugging.assert_less(ids, tf.cast(self.num, ids.dtype), message=(
            f"input_ids must be smaller than the embedding layer's input dimension (got ids >= {self.num})"))
        return tf.gather(self.table, ids)


def _gelu_new(x: tf.Tensor) -> tf.Tensor:
    """GPT-2's tanh approximation of GELU."""
    return 0.5 * x * (1.0 + tf.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * tf.pow(x, 3.0))))


ACTIVATIONS = {
    "gelu": lambda x: tf.nn.gelu(x, approximate=False),
    "gelu_new": _gelu_new,
    "gelu_pytorch_tanh": lambda x: tf.nn.gelu(x, approximate=True),
    "quick_gelu": lambda x: x * tf.sigmoid(1.702 * x),
    "relu": tf.nn.relu,
    "silu": tf.nn.silu,
    "swish": tf.nn.silu,
    "tanh": tf.tanh,
    "sigmoid": tf.sigmoid,
}


def activation(name: str) -> Callable[[tf.Tensor], tf.Tensor]:
    try:
        return ACTIVATIONS[name]
    except KeyError:
        raise ValueError(f"activation {name!r} is not supported; choose one of {sorted(ACTIVATIONS)}") from None


def dropout(x: tf.Tensor, rate: float, training: bool) -> tf.Tensor:
    return tf.nn.dropout(x, rate=rate) if training and rate > 0 else x


def run_layers(layers: Sequence[keras.layers.Layer], x: tf.Tensor, *args, output_hidden_states: bool = False,
               output_attentions: bool = False, training: bool = False
               ) -> Tuple[tf.Tensor, Optional[Tuple[tf.Tensor, ...]], Optional[Tuple[tf.Tensor, ...]]]:
    """Each layer is called as `layer(x, *args, output_attentions=..., training=...)` -> (x, weights | None).
    Returns (x, the input and every layer's output | None, every layer's weights | None)."""
    hidden_states = (x,) if output_hidden_states else None
    attentions = () if output_attentions else None
    for layer in layers:
        x, weights = layer(x, *args, output_attentions=output_attentions, training=training)
        if output_hidden_states:
            hidden_states += (x,)
        if output_attentions:
            attentions += (weights,)
    return x, hidden_states, attentions
