"""The distillation loss terms against hand computations on tiny tensors, and dynamic masking's statistics."""

from __future__ import annotations

import math

import pytest
import torch

from helpers.tolerance import assert_close
from polyformer.distillation import cosine_loss, distillation_loss, hidden_mse_loss, mask_tokens, mlm_loss
from polyformer.distillation.masking import IGNORE_INDEX


def _softmax(row: list[float]) -> list[float]:
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


def test_distillation_loss_is_t2_kl_of_softened_distributions():
    s = [[1.0, 2.0, 0.5], [0.0, -1.0, 3.0]]
    t = [[2.0, 0.0, 1.0], [1.0, 1.0, 1.0]]
    temperature = 2.0
    per_row = []
    for srow, trow in zip(s, t):
        p = _softmax([v / temperature for v in srow])
        q = _softmax([v / temperature for v in trow])
        per_row.append(sum(qi * (math.log(qi) - math.log(pi)) for pi, qi in zip(p, q)) * temperature ** 2)
    got_sum = distillation_loss(torch.tensor(s), torch.tensor(t), temperature, reduction="sum")
    got_mean = distillation_loss(torch.tensor(s), torch.tensor(t), temperature)
    assert_close(got_sum, torch.tensor(sum(per_row)))
    assert_close(got_mean, torch.tensor(sum(per_row) / 2))
    # the research script's form: KLDivLoss(batchmean)(log_softmax(s/T), softmax(t/T)) * T^2
    ref = torch.nn.KLDivLoss(reduction="batchmean")(torch.log_softmax(torch.tensor(s) / 2, -1),
                                                    torch.softmax(torch.tensor(t) / 2, -1)) * 4
    assert_close(got_mean, ref)
    assert float(distillation_loss(torch.tensor(t), torch.tensor(t), 3.0)) == pytest.approx(0.0, abs=1e-6)


def test_mlm_loss_is_cross_entropy_of_the_original_tokens():
    logits = [[0.5, 1.5, -1.0], [2.0, 0.0, 0.0]]
    labels = [1, 2]
    per_row = [-math.log(_softmax(row)[label]) for row, label in zip(logits, labels)]
    assert_close(mlm_loss(torch.tensor(logits), torch.tensor(labels)), torch.tensor(sum(per_row) / 2))
    assert_close(mlm_loss(torch.tensor(logits), torch.tensor(labels), "sum"), torch.tensor(sum(per_row)))


def test_cosine_and_mse_losses():
    s = [[1.0, 0.0, 2.0], [0.5, -1.0, 1.0]]
    t = [[2.0, 1.0, 2.0], [-0.5, 1.0, -1.0]]

    def cos(a, b):
        return sum(x * y for x, y in zip(a, b)) / math.sqrt(sum(x * x for x in a) * sum(y * y for y in b))

    expected_cos = sum(1 - cos(a, b) for a, b in zip(s, t)) / 2
    assert_close(cosine_loss(torch.tensor(s), torch.tensor(t)), torch.tensor(expected_cos))
    ref = torch.nn.CosineEmbeddingLoss()(torch.tensor(s), torch.tensor(t), torch.ones(2))
    assert_close(cosine_loss(torch.tensor(s), torch.tensor(t)), ref)
    assert float(cosine_loss(torch.tensor(s)[1:], torch.tensor(t)[1:])) == pytest.approx(2.0)  # opposite vectors
    expected_mse = sum(sum((x - y) ** 2 for x, y in zip(a, b)) / 3 for a, b in zip(s, t))
    assert_close(hidden_mse_loss(torch.tensor(s), torch.tensor(t), "sum"), torch.tensor(expected_mse))


def test_loss_arguments_are_checked():
    with pytest.raises(ValueError, match="temperature"):
        distillation_loss(torch.zeros(1, 3), torch.zeros(1, 3), 0.0)
    with pytest.raises(ValueError, match="vocabularies"):
        distillation_loss(torch.zeros(1, 3), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="reduction"):
        cosine_loss(torch.ones(1, 3), torch.ones(1, 3), reduction="none")


def test_masking_statistics_and_special_tokens_untouched():
    g = torch.Generator().manual_seed(0)
    vocab, cls, sep, pad, mask_id = 1000, 2, 3, 0, 4
    ids = torch.randint(5, vocab, (400, 64), generator=g)
    ids[:, 0], ids[:, -1] = cls, sep
    ids[::3, 40:] = pad  # every third row padded
    special = ids.eq(cls) | ids.eq(sep) | ids.eq(pad)
    masked, labels = mask_tokens(ids, special_ids=[pad, cls, sep, mask_id], mask_token_id=mask_id,
                                 vocab_size=vocab, probability=0.15, generator=torch.Generator().manual_seed(1))
    assert torch.equal(masked[special], ids[special])
    assert bool((labels[special] == IGNORE_INDEX).all())
    chosen = labels != IGNORE_INDEX
    assert torch.equal(labels[chosen], ids[chosen])
    assert torch.equal(masked[~chosen], ids[~chosen])  # only chosen positions change
    n = int(chosen.sum())
    share = n / int((~special).sum())
    assert abs(share - 0.15) < 0.01  # ~20000 candidates: sd ~0.0025
    as_mask = int((masked[chosen] == mask_id).sum()) / n
    kept = int((masked[chosen] == ids[chosen]).sum()) / n
    random = 1 - as_mask - kept
    assert abs(as_mask - 0.8) < 0.02 and abs(kept - 0.1) < 0.015 and abs(random - 0.1) < 0.015
    again = mask_tokens(ids, special_ids=[pad, cls, sep, mask_id], mask_token_id=mask_id, vocab_size=vocab,
                        probability=0.15, generator=torch.Generator().manual_seed(1))
    assert torch.equal(again[0], masked) and torch.equal(again[1], labels)  # a seeded generator repeats
    with pytest.raises(ValueError, match="probability"):
        mask_tokens(ids, special_ids=[0], mask_token_id=4, vocab_size=vocab, probability=1.5)
