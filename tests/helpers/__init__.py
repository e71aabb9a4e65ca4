"""What the tests share (not tests themselves; pytest collects only ``tests/test_*.py``).

- ``tolerance``: the one rule for comparing numbers, ``|got - ref| <= atol + rtol * |ref|``.
- ``parity``: polyformer's PyTorch classes against fixtures written by transformers 4.37.2;
  ``tf_parity`` and ``flax_parity`` do the same for the TensorFlow and Flax classes.
- ``generation_toy`` (a one-layer decoder both libraries run, no dependency on either) and
  ``generation_models`` (it as polyformer models) for the generate() tests.
- ``tokenizer_fixture_io`` / ``tokenizer_replay`` and ``vision_fixture_io``: tokenizer and
  image-processor calls recorded from the reference and replayed on polyformer.

The fixture scripts in ``scripts/fixtures/`` import the ``*_fixture_io`` modules and ``generation_toy``
too, from the reference venv, so those import neither polyformer nor transformers at import time.
"""
