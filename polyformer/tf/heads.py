"""Task-head losses and pooling shared by every TF family, with transformers 4.37's TF shapes.

Each family keeps its head layers (their names are checkpoint names); the arithmetic after them is here.
Losses are per example where the reference's are ((B,) for sequence classification, multiple choice, span
QA) and one masked mean of shape (1,) for token-level ones (masked / causal LM, token classification).
"""

from __future__ import annotations

from typing import Optional

from .backend import tf

IGNORE_INDEX = -100


def _sparse_ce(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    return tf.nn.sparse_softmax_cross_entropy_with_logits(labels=tf.cast(labels, tf.int32), logits=logits)


def token_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Mean cross-entropy over the labels that are not -100, shape (1,). logits (..., N), labels (...)."""
    labels = tf.reshape(labels, (-1,))
    logits = tf.reshape(logits, (-1, logits.shape[-1]))
    keep = tf.cast(labels != IGNORE_INDEX, logits.dtype)
    losses = _sparse_ce(tf.nn.relu(labels), logits) * keep  # (ignored labels read class 0, then count 0)
    return tf.reshape(tf.reduce_sum(losses) / tf.reduce_sum(keep), (1,))


def causal_lm_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Position t predicts labels[t + 1] (labels = input_ids works); -100 ignored; shape (1,)."""
    return token_loss(labels[:, 1:], logits[:, :-1])


def classification_loss(labels: tf.Tensor, logits: tf.Tensor) -> tf.Tensor:
    """Per example (B,): mean squared error with one label (regression), else cross-entropy on class ids.
    labels (B,) (or (B, 1), or a scalar for a batch of one)."""
    num_labels = logits.shape[-1]
    labels = tf.reshape(labels, (-1,))
    if labels.shape[0] is not None and logits.shape[0] is not None and labels.shape[0] != logits.shape[0]:
        raise ValueError(f"labels must hold one value per row: shape ({logits.shape[0]},), got {labels.shape[0]} values "
                         "(the TF classes take class ids or, with num_labels=1, regression targets)")
    if num_labels == 1:
        return tf.reduce_mean(tf.square(logits - tf.cast(labels[:, None], logits.dtype)), axis=-1)
    return _sparse_ce(labels, logits)


def span_qa_loss(start_logits: tf.Tensor, end_logits: tf.Tensor, start_positions: Optional[tf.Tensor],
                 end_positions: Optional[tf.Tensor]) -> Optional[tf.Tensor]:
    """Per example (B,): the mean of start and end cross-entropy, when both positions are given.

    As documented (and as the PyTorch classes do), positions are clamped to [0, T] and T, outside the
    sequence, is ignored: it adds 0 to its example's loss. logits (B, T); positions (B,) or (B, 1)."""
    if start_positions is None or end_positions is None:
        return None
    length = tf.shape(start_logits)[1]
    total = 0.0
    for logits, positions in ((start_logits, start_positions), (end_logits, end_positions)):
        positions = tf.clip_by_value(tf.reshape(tf.cast(positions, tf.int32), (-1,)), 0, length)
        inside = positions < length
        total += tf.where(inside, _sparse_ce(tf.where(inside, positions, 0), logits), 0.0)
    return total / 2.0


def last_token_pool(x: tf.Tensor, input_ids: Optional[tf.Tensor], pad_token_id: Optional[int]) -> tf.Tensor:
    """x (B, T, ...) -> (B, ...) at each row's last token: with a pad id and input_ids, the position before
    the first pad (T - 1 when there is none), `argmax(ids == pad) - 1`, as 4.37 finds it; otherwise the last
    position (4.37's TF code returns unpooled logits there; its documentation, and this, pool)."""
    length = tf.shape(x)[1]
    if pad_token_id is None or input_ids is None:
        index = tf.fill(tf.shape(x)[:1], length - 1)
    else:
        index = tf.cast(tf.argmax(tf.cast(input_ids == pad_token_id, tf.int32), axis=-1), tf.int32) - 1
        index = tf.where(index >= 0, index, length - 1)
    return tf.gather(x, index, batch_dims=1)
