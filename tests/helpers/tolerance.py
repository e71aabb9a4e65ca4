"""The one rule for comparing numbers in the tests: ``|got - ref| <= atol + rtol * |ref|``, elementwise,
with both tolerances stated.

float32 results against the reference's fixtures use ``ATOL = RTOL = 1e-5``. Both are needed: two correct
float32 kernels that sum in another order (AVX2 against AVX-512 or AMX, MKL against oneDNN, one cache
layout against another) differ by a few units in the last place *of the result*, so an absolute bound
alone fails on large values (GroupViT's segmentation logits, ~40, differ by 3e-5 between CPUs) and a
relative bound alone fails near zero. A call that needs another pair says why beside the numbers.

Exact equality (``atol=rtol=0``) is asserted only where it holds on every CPU: integers (token ids, beam
indices, shapes), copies of the same bytes, and the same operations run on the same shapes in the same
order. Two different numerical paths (another kernel, another cache layout, another batch shape) are
compared with tolerances, never bit for bit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

ATOL = 1e-5
RTOL = 1e-5


def assert_close(actual: Any, expected: Any, *, atol: float = ATOL, rtol: float = RTOL, name: str = "output") -> None:
    """``actual`` within ``atol + rtol * |expected|`` of ``expected``, elementwise; NaN where NaN, same shape.

    Takes torch tensors (dtype checked too), numpy, jax and TensorFlow arrays, and Python numbers."""
    try:
        import torch
    except ImportError:  # pragma: no cover - every test environment has torch
        torch = None
    if torch is not None and isinstance(expected, torch.Tensor):
        assert isinstance(actual, torch.Tensor), f"{name}: expected a tensor, got {type(actual).__name__}"
        torch.testing.assert_close(actual.detach().cpu(), expected.detach().cpu(), atol=atol, rtol=rtol,
                                   equal_nan=True, msg=lambda message: f"{name}: {message}")
        return
    actual, expected = _numpy(actual), _numpy(expected)
    assert actual.shape == expected.shape, f"{name}: shape {actual.shape} != {expected.shape}"
    np.testing.assert_allclose(actual, expected, atol=atol, rtol=rtol, equal_nan=True, err_msg=name)


def _numpy(value: Any) -> np.ndarray:
    if type(value).__module__.startswith("torch"):
        value = value.detach().cpu()
        value = (value.float() if value.is_floating_point() and value.element_size() < 4 else value).numpy()
    elif hasattr(value, "numpy") and not isinstance(value, np.ndarray):  # TensorFlow
        value = value.numpy()
    array = np.asarray(value)  # numpy, jax, Python numbers
    return array.astype(np.float32) if str(array.dtype) in ("bfloat16", "float16") else array
