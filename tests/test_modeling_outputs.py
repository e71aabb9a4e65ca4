"""ModelOutput: attribute, key and index access; None fields skipped as in the reference."""

import pickle

import pytest
import torch

from polyformer import BaseModelOutput, QuestionAnsweringModelOutput, SequenceClassifierOutput


def test_access_by_attribute_key_and_index():
    logits = torch.randn(2, 3)
    out = SequenceClassifierOutput(logits=logits)
    assert out.logits is logits and out["logits"] is logits and out[0] is logits
    assert out.loss is None and "loss" not in out and list(out.keys()) == ["logits"]
    assert out.to_tuple() == (logits,) and len(out) == 1
    with pytest.raises(KeyError):
        out["loss"]


def test_tuple_skips_none_and_keeps_field_order():
    loss, start, end = torch.tensor(1.0), torch.randn(2, 5), torch.randn(2, 5)
    hidden = (torch.randn(2, 5, 4),)
    out = QuestionAnsweringModelOutput(loss=loss, start_logits=start, end_logits=end, hidden_states=hidden)
    assert out.to_tuple() == (loss, start, end, hidden)
    assert out[1:3] == (start, end)
    assert dict(out) == {"loss": loss, "start_logits": start, "end_logits": end, "hidden_states": hidden}


def test_setting_a_field_updates_the_dict():
    out = BaseModelOutput(last_hidden_state=torch.zeros(1))
    out.attentions = (torch.ones(1),)
    assert out["attentions"] is out.attentions and len(out.to_tuple()) == 2
    out["hidden_states"] = (torch.ones(2),)
    assert out.hidden_states is out["hidden_states"]
    with pytest.raises(TypeError):
        del out["attentions"]


def test_pickles():
    out = SequenceClassifierOutput(logits=torch.arange(3.0))
    again = pickle.loads(pickle.dumps(out))
    assert torch.equal(again.logits, out.logits) and again.loss is None
