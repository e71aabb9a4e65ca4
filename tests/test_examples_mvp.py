"""End to end, as users fine-tune a seq2seq model: a tiny MvpForConditionalGeneration built from a config
learns to reverse short sequences with AdamW in a few dozen steps — its loss falls and greedy generate()
(and beam search) then write the reversed sequence for the training examples. With `use_prompt=True` and
`set_lightweight_tuning()`, only the prompt parameters change.

Vocabulary: 0 <s>, 1 <pad>, 2 </s> (also the decoder start token, as MVP's), 3..19 symbols.
"""

from __future__ import annotations

import pytest
import torch

import polyformer

MvpConfig = getattr(polyformer, "MvpConfig", None)
MvpForConditionalGeneration = getattr(polyformer, "MvpForConditionalGeneration", None)
pytestmark = pytest.mark.skipif(MvpForConditionalGeneration is None, reason="MVP is not in polyformer yet")

BOS, PAD, EOS = 0, 1, 2


def _tiny_config(**kwargs):
    sizes = dict(vocab_size=20, d_model=32, encoder_layers=1, decoder_layers=1, encoder_attention_heads=4,
                 decoder_attention_heads=4, encoder_ffn_dim=64, decoder_ffn_dim=64, max_position_embeddings=16,
                 dropout=0.0, attention_dropout=0.0, activation_dropout=0.0)
    return MvpConfig(**{**sizes, **kwargs})


def _reverse_task(n: int = 12, seed: int = 0):
    """n sources `<s> a b c (d e) </s>` (3 to 5 symbols, right-padded) and their labels `e d c b a </s>`
    (-100 past the end)."""
    generator = torch.Generator().manual_seed(seed)
    sources, targets = [], []
    for i in range(n):
        symbols = torch.randint(3, 20, (3 + i % 3,), generator=generator).tolist()
        sources.append([BOS, *symbols, EOS])
        targets.append([*symbols[::-1], EOS])
    width, target_width = max(map(len, sources)), max(map(len, targets))
    input_ids = torch.tensor([s + [PAD] * (width - len(s)) for s in sources])
    labels = torch.tensor([t + [-100] * (target_width - len(t)) for t in targets])
    return input_ids, (input_ids != PAD).long(), labels, targets


def _train(model, steps: int, lr: float):
    input_ids, attention_mask, labels, _ = _reverse_task()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    model.train()
    losses = []
    for _ in range(steps):
        loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses


def test_finetuning_learns_to_reverse():
    torch.manual_seed(0)
    model = MvpForConditionalGeneration(_tiny_config())
    losses = _train(model, steps=50, lr=1.5e-2)  # ~3.0 -> ~0.005 (any seed of 10 tried: all reversed right)
    assert losses[-1] < 0.05 * losses[0], losses
    input_ids, attention_mask, _, targets = _reverse_task()
    generated = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=8)
    beams = model.generate(input_ids=input_ids, attention_mask=attention_mask, max_new_tokens=8, num_beams=3)
    for rows in (generated, beams):
        for row, target in zip(rows.tolist(), targets):
            assert row[0] == EOS  # the decoder start token
            assert row[1: len(target) + 1] == target, (row, target)


def test_lightweight_tuning_changes_only_the_prompts():
    torch.manual_seed(0)
    model = MvpForConditionalGeneration(_tiny_config(use_prompt=True, prompt_length=4, prompt_mid_dim=32))
    model.set_lightweight_tuning()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("_prompt." in name for name in trainable), sorted(trainable)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    losses = _train(model, steps=30, lr=5e-2)  # only the prompts learn: ~3.03 -> ~2.83
    assert losses[-1] < 0.97 * losses[0], losses
    after = dict(model.named_parameters())
    changed = {name for name in before if not torch.equal(before[name], after[name])}
    assert changed and changed <= trainable, sorted(changed - trainable)
