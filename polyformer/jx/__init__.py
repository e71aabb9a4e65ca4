"""What every Flax model shares (named `jx` so that it never shadows `jax` in imports or tracebacks):
the `FlaxPreTrainedModel` base and its weight conversion from / to PyTorch names (modeling.py,
convert.py), attention, masks, rotary and the layer stack (layers.py), output classes (outputs.py)
and the jit-compiled `generate()` (generation.py). Importing this package imports jax and flax."""
