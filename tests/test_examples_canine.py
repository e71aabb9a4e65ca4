"""End to end, as users do it: CANINE extractive QA turns start/end logits into an answer string.

CANINE's positions are characters: with `tokenizer(question, context)` the input is
[CLS] question [SEP] context [SEP], so context character i sits at position len(question) + 2 + i and
an answer is a slice of the context string, no offsets mapping needed.
"""

from __future__ import annotations

import torch

from helpers.parity import load_cases
from polyformer import (AutoModelForQuestionAnswering, AutoTokenizer, CanineConfig, CanineForQuestionAnswering,
                        CanineTokenizer)

TOK = CanineTokenizer()
QUESTION, CONTEXT = "Who was Jim Henson?", "Jim Henson was a nice puppet"  # the documentation's example


def best_span(start_logits, end_logits, token_type_ids, max_answer_length: int = 30):
    """(start, end) positions maximising start + end logit, both in the context (token type 1, not the
    final [SEP]), start <= end < start + max_answer_length."""
    context = token_type_ids.bool().clone()
    context[context.nonzero()[-1]] = False  # the closing [SEP]
    scores = start_logits[:, None] + end_logits[None, :]  # (T, T): start x end
    t = scores.shape[0]
    allowed = torch.ones(t, t, dtype=torch.bool).triu().tril(max_answer_length - 1) & context[:, None] & context
    flat = scores.masked_fill(~allowed, float("-inf")).argmax()
    return int(flat // t), int(flat % t)


def answer(question: str, context: str, start: int, end: int) -> str:
    offset = len(question) + 2  # [CLS] question [SEP]
    return context[start - offset : end - offset + 1]


def test_hand_set_logits_give_the_documented_answer():
    enc = TOK(QUESTION, CONTEXT, return_tensors="pt")
    start_logits, end_logits = torch.zeros(enc.input_ids.shape[1]), torch.zeros(enc.input_ids.shape[1])
    start_logits[38], end_logits[48] = 5.0, 5.0  # the spec's positions of "nice puppet"
    start_logits[2], end_logits[1] = 9.0, 9.0  # higher, but in the question: not an answer
    start, end = best_span(start_logits, end_logits, enc.token_type_ids[0])
    assert (start, end) == (38, 48) and answer(QUESTION, CONTEXT, start, end) == "nice puppet"
    assert TOK.decode(enc.input_ids[0, start : end + 1], skip_special_tokens=True) == "nice puppet"


def test_tiny_model_answers_are_context_slices():
    """The reference-checked tiny checkpoint (random weights): whatever it answers is a slice of the context,
    and the slice equals the decoded characters of the span, for each row of a padded batch."""
    case = next(c for c in load_cases("canine") if c.dir.name == "question_answering")
    model = CanineForQuestionAnswering.from_pretrained(str(case.checkpoint)).eval()
    pairs = [(QUESTION, CONTEXT), ("Where?", "In Paris, near the river.")]
    enc = TOK([q for q, _ in pairs], [c for _, c in pairs], padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(**enc)
    for row, (question, context) in enumerate(pairs):
        start, end = best_span(out.start_logits[row], out.end_logits[row], enc.token_type_ids[row])
        text = answer(question, context, start, end)
        assert text and text in context
        assert TOK.decode(enc.input_ids[row, start : end + 1], skip_special_tokens=True) == text


def test_fine_tuned_tiny_model_finds_the_answer(tmp_path):
    """A few dozen Adam steps on two examples: the loss falls, and the saved model, loaded back with the Auto
    classes, answers both through argmax start/end."""
    torch.manual_seed(0)
    config = CanineConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
                          max_position_embeddings=64, num_hash_functions=4, num_hash_buckets=128,
                          local_transformer_stride=16, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = CanineForQuestionAnswering(config)
    model.save_pretrained(tmp_path)
    TOK.save_pretrained(tmp_path)
    tokenizer = AutoTokenizer.from_pretrained(tmp_path)  # as users load it
    examples = [(QUESTION, CONTEXT, "nice puppet"), ("What color is the sky?", "The sky is blue today.", "blue")]
    enc = tokenizer([q for q, _, _ in examples], [c for _, c, _ in examples], padding=True, return_tensors="pt")
    starts = torch.tensor([len(q) + 2 + c.index(a) for q, c, a in examples])
    ends = starts + torch.tensor([len(a) - 1 for _, _, a in examples])
    assert (starts[0], ends[0]) == (38, 48)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    losses = []
    for _ in range(40):
        loss = model(**enc, start_positions=starts, end_positions=ends).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.1 * losses[0]
    model.save_pretrained(tmp_path)
    model = AutoModelForQuestionAnswering.from_pretrained(tmp_path)  # CanineForQuestionAnswering, in eval mode
    with torch.no_grad():
        out = model(**enc)
    for row, (question, context, expected) in enumerate(examples):
        start, end = int(out.start_logits[row].argmax()), int(out.end_logits[row].argmax())
        assert answer(question, context, start, end) == expected
        assert tokenizer.decode(enc.input_ids[row, start : end + 1], skip_special_tokens=True) == expected
