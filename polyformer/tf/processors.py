"""The logits processors of TF generate(), as graph ops on fixed shapes (they run inside the generate loop).

Each takes the scores of the next token (R, V) (logits in greedy search and sampling, log-probabilities in beam
search), the sequences so far (R, L) (prompt then generated tokens, padded to the loop's full length), and
`length`, how many of their tokens count (prompt + generated so far). As 4.37's TF processors:

- repetition_penalty p: a token already in the sequence (prompt included) has its score divided by p where it
  is positive and multiplied by p where negative;
- no_repeat_ngram_size n: a token that would complete an n-gram already in the sequence gets -inf;
- bad_words_ids: the last token of each banned sequence gets -inf where the tokens before it end the sequence
  (a one-token sequence always; a sequence of m tokens only once the sequence holds m tokens).

Notation: R rows (batch, or batch x beams), V vocabulary, L the sequences' full length.
"""

from __future__ import annotations

from typing import Sequence

from .backend import tf

NEG_INF = float("-inf")


def check_bad_words(bad_words_ids) -> None:
    """bad_words_ids must be a non-empty list of non-empty lists of token ids >= 0."""
    if not isinstance(bad_words_ids, (list, tuple)) or not bad_words_ids:
        raise ValueError(f"`bad_words_ids` has to be a non-empty list, but is {bad_words_ids}.")
    if any(not isinstance(word, (list, tuple)) or not word for word in bad_words_ids):
        raise ValueError(f"`bad_words_ids` has to be a list of non-empty lists, but is {bad_words_ids}.")
    if any(not isinstance(t, int) or isinstance(t, bool) or t < 0 for word in bad_words_ids for t in word):
        raise ValueError(f"Each list in `bad_words_ids` has to be a list of positive integers, but is {bad_words_ids}.")


def _valid(sequences: tf.Tensor, length) -> tf.Tensor:
    """(R, L) bool: the positions before `length`."""
    return tf.range(tf.shape(sequences)[1])[None] < length


def _scatter_rows(rows: int, vocab: int, tokens: tf.Tensor, keep: tf.Tensor) -> tf.Tensor:
    """(R, V) bool: True at (r, tokens[r, j]) where keep[r, j]. tokens / keep (R, J)."""
    row = tf.broadcast_to(tf.range(rows)[:, None], tf.shape(tokens))
    keep = tf.broadcast_to(keep, tf.shape(tokens))
    indices = tf.stack([tf.reshape(row, [-1]), tf.reshape(tf.clip_by_value(tokens, 0, vocab - 1), [-1])], axis=-1)
    marks = tf.tensor_scatter_nd_max(tf.zeros((rows, vocab), tf.int32), indices, tf.reshape(tf.cast(keep, tf.int32), [-1]))
    return marks > 0


def repetition_penalty(scores: tf.Tensor, sequences: tf.Tensor, length, penalty: float) -> tf.Tensor:
    seen = _scatter_rows(tf.shape(scores)[0], scores.shape[-1], sequences, _valid(sequences, length))
    penalized = tf.where(scores > 0, scores / penalty, scores * penalty)
    return tf.where(seen, penalized, scores)


def no_repeat_ngram(scores: tf.Tensor, sequences: tf.Tensor, length, n: int) -> tf.Tensor:
    total = sequences.shape[1]
    if total is None or total < n:
        return scores
    starts = total - n + 1
    windows = tf.stack([sequences[:, k:starts + k] for k in range(n)], axis=-1)  # (R, starts, n)
    last = tf.gather(sequences, tf.maximum(length - (n - 1) + tf.range(n - 1), 0), axis=1)  # (R, n - 1)
    match = tf.reduce_all(tf.equal(windows[..., :-1], last[:, None]), axis=-1)  # (R, starts)
    match &= (tf.range(starts) + n - 1 < length)[None]  # the whole n-gram lies before `length`
    match &= length + 1 >= n
    banned = _scatter_rows(tf.shape(scores)[0], scores.shape[-1], windows[..., -1], match)
    return tf.where(banned, NEG_INF, scores)


def bad_words(scores: tf.Tensor, sequences: tf.Tensor, length, words: Sequence[Sequence[int]]) -> tf.Tensor:
    vocab = scores.shape[-1]
    banned = tf.zeros_like(scores, tf.bool)
    for word in words:
        if word[-1] >= vocab:
            continue
        hit = tf.one_hot(word[-1], vocab, on_value=True, off_value=False)[None]  # (1, V)
        if len(word) == 1:
            banned |= hit
            continue
        prefix = tf.constant(word[:-1], tf.int32)
        tail = tf.gather(sequences, tf.maximum(length - (len(word) - 1) + tf.range(len(word) - 1), 0), axis=1)
        match = tf.reduce_all(tf.equal(tail, prefix[None]), axis=-1) & (length >= len(word))  # (R,)
        banned |= match[:, None] & hit
    return tf.where(banned, NEG_INF, scores)


def process(scores: tf.Tensor, sequences: tf.Tensor, length, settings) -> tf.Tensor:
    """The processors `settings` (generation.Settings) turns on, in 4.37's order."""
    if settings.repetition_penalty != 1.0:
        scores = repetition_penalty(scores, sequences, length, settings.repetition_penalty)
    if settings.no_repeat_ngram_size > 0:
        scores = no_repeat_ngram(scores, sequences, length, settings.no_repeat_ngram_size)
    if settings.bad_words_ids:
        scores = bad_words(scores, sequences, length, settings.bad_words_ids)
    return scores
