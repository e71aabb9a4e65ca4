"""`import polyformer` stays light, and every public name resolves."""

import subprocess
import sys

import polyformer


def test_every_public_name_resolves():
    for name in polyformer.__all__:
        assert getattr(polyformer, name) is not None, name


def test_import_loads_no_framework():
    code = ("import sys, polyformer; polyformer.DistilBertConfig; polyformer.DistilBertTokenizerFast; "
            "polyformer.AutoTokenizer; print(sorted(m for m in ('torch', 'tensorflow', 'jax', 'flax') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="no attribute 'BertModel'"):
        polyformer.BertModel
