"""Property tests: any ids / mask a user can build either run or fail with an error that names the
argument — never a crash inside torch, never NaN."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from polyformer import DistilBertConfig, DistilBertForSequenceClassification

torch.manual_seed(0)
MODEL = DistilBertForSequenceClassification(
    DistilBertConfig(vocab_size=50, dim=16, n_heads=2, n_layers=1, hidden_dim=20, max_position_embeddings=12)
).eval()


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(1, 3),
    length=st.integers(1, 15),
    low=st.integers(-3, 49),
    high=st.integers(0, 60),
    dtype=st.sampled_from([torch.long, torch.int32, torch.float32, torch.bool]),
    mask_length_delta=st.sampled_from([0, 0, 0, 1, -1]),
    seed=st.integers(0, 2**16),
)
def test_ids_and_masks(batch, length, low, high, dtype, mask_length_delta, seed):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(min(low, high), max(low, high) + 1, (batch, length), generator=g).to(dtype)
    mask = (torch.rand(batch, max(1, length + mask_length_delta), generator=g) > 0.3).long()
    mask[:, 0] = 1
    valid = (dtype in (torch.long, torch.int32) and length <= 12 and mask.shape == ids.shape
             and int(ids.min()) >= 0 and int(ids.max()) < 50)
    if valid:
        with torch.no_grad():
            logits = MODEL(input_ids=ids, attention_mask=mask).logits
        assert logits.shape == (batch, 2) and torch.isfinite(logits).all()
    else:
        with pytest.raises((TypeError, ValueError, IndexError)) as info:
            MODEL(input_ids=ids, attention_mask=mask)
        assert any(word in str(info.value) for word in ("input_ids", "attention_mask", "max_position_embeddings"))
