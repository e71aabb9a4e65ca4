"""What every Flax model shares (named `jx` so that it never shadows `jax` in imports or tracebacks):
the `FlaxPreTrainedModel` base and its weight conversion from / to PyTorch names (modeling.py,
convert.py), attention, masks, cache, rotary and the layer stack (layers.py), output classes (outputs.py),
the jit-compiled `generate()` (generation.py) and `FlaxAutoModel*` (auto.py). Importing this package, or
auto.py, imports no framework; the other modules import jax and flax."""
