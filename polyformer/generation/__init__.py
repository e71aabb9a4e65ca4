"""Text generation shared by every model that generates: `GenerationConfig` (config.py, no torch), logits
processors and warpers, stopping criteria, streamers, output classes, beam bookkeeping, the decoding
loops (decoding.py) and `GenerationMixin.generate()` (utils.py).

Nothing is imported here, so `from polyformer.generation.config import GenerationConfig` stays free of
torch; the public names are exported lazily by `polyformer/__init__.py`.
"""
