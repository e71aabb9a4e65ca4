"""TensorFlow and Keras for polyformer's TF classes, checked once on import.

Why Keras 3 (the `keras` package), not tf-keras: since TensorFlow 2.16 `tf.keras` *is* Keras 3, so a
user's `tf.keras.optimizers.Adam`, callbacks, losses and metrics work with these models in `compile()` /
`fit()` without any setup. tf-keras (Keras 2, what transformers 4.37's TF classes need) only becomes
`tf.keras` with TF_USE_LEGACY_KERAS=1 set before TensorFlow is first imported, which a library cannot
guarantee, and it is an extra package kept only for old code. Nothing polyformer writes depends on
Keras: tf_model.h5 is read and written with h5py in the layout transformers' tf-keras models use, and
weight names come from the module tree (polyformer/tf/convert.py), so files stay interchangeable with
4.37 either way.

Supported: TensorFlow >= 2.16 with Keras >= 3 on the TensorFlow backend (tested: TensorFlow 2.21, Keras 3.15).
A process with KERAS_BACKEND=jax or torch cannot run these classes: they call TensorFlow ops directly.
"""

from __future__ import annotations

import tensorflow as tf  # noqa: F401  (re-exported)
import keras

if int(keras.__version__.split(".")[0]) < 3:
    raise ImportError(f"polyformer's TensorFlow classes need Keras 3 (TensorFlow >= 2.16), found Keras {keras.__version__}")
if keras.config.backend() != "tensorflow":
    raise ImportError(f"polyformer's TensorFlow classes need Keras on the TensorFlow backend, but KERAS_BACKEND is "
                      f"{keras.config.backend()!r}; set KERAS_BACKEND=tensorflow before importing keras")

__all__ = ["tf", "keras"]
