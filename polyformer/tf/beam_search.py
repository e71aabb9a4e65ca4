"""Beam search for TF generate(): one `tf.while_loop` over the static cache, with 4.37's TF beam search rules.

Each prompt keeps K = num_beams running hypotheses (the first starts alone: the others score -1e9) and up to K
finished ones. A step scores every (beam, token) pair by the beam's summed log-probability plus the token's
(log-softmax, then the logits processors), takes the best 2K, and
- the best K of those that do not end in eos keep running (the cache rows follow their beams);
- those among the first K that end in eos become finished candidates, scored sum / generated_length **
  length_penalty (generated_length counts the eos), and the best K finished so far are kept.
It stops after max_new tokens, or when no running beam can beat the worst finished one any more (its score
divided by its current length ** length_penalty, or with early_stopping="never" and length_penalty > 0 by
max_new ** length_penalty), or with early_stopping=True once every prompt has K finished hypotheses.
A prompt with no finished hypothesis returns its running ones. The result holds the best
num_return_sequences per prompt (rows prompt-major), cut after the last step, padded with pad_token_id.

Notation: B prompts, K beams, P prompt length, N new tokens at most, L = P + N, V vocabulary.
"""

from __future__ import annotations

from . import processors
from .backend import tf

NEG = -1.0e9


def _gather_beams(tensor: tf.Tensor, indices: tf.Tensor) -> tf.Tensor:
    """tensor (B, M, ...) -> (B, J, ...): tensor[b, indices[b, j]]."""
    return tf.gather(tensor, indices, axis=1, batch_dims=1)


def beam_search(model, ids: tf.Tensor, mask: tf.Tensor, s) -> tf.Tensor:
    """ids / mask (B, P) int32 -> (B * num_return_sequences, P + steps) int32; `s` is generation.Settings."""
    beams, vocab_eos = s.num_beams, tf.constant(s.eos or (-1,), tf.int32)
    batch, prompt = tf.shape(ids)[0], tf.shape(ids)[1]
    total = prompt + s.max_new
    logits, presents = model.prefill(ids, mask, tf.cumsum(mask, axis=-1, exclusive=True))  # (B, V)
    vocab = logits.shape[-1]
    repeat = lambda t: tf.repeat(t, beams, axis=0)  # noqa: E731  (B, ...) -> (B * K, ...), prompt-major
    logits = repeat(logits)
    cache = tuple(tuple(repeat(tf.pad(t, [[0, 0], [0, 0], [0, s.max_new], [0, 0]])) for t in kv) for kv in presents)
    full_mask = repeat(tf.concat([mask, tf.ones((batch, s.max_new), tf.int32)], axis=1))  # (B * K, L)
    first_position = repeat(tf.reduce_sum(mask, axis=-1, keepdims=True))  # (B * K, 1)
    padded = tf.concat([ids, tf.fill((batch, s.max_new), s.pad)], axis=1)
    running = tf.tile(padded[:, None], [1, beams, 1])  # (B, K, L)
    running_scores = tf.tile(tf.constant([[0.0] + [NEG] * (beams - 1)]), [batch, 1])  # (B, K)
    finished = tf.fill((batch, beams, total), s.pad)
    finished_scores = tf.fill((batch, beams), NEG)
    is_finished = tf.zeros((batch, beams), tf.bool)
    first_k = tf.concat([tf.ones((beams,), tf.bool), tf.zeros((beams,), tf.bool)], axis=0)[None]  # (1, 2K)
    columns = tf.range(total)[None, None]

    def body(i, running, running_scores, finished, finished_scores, is_finished, logits, cache):
        length = prompt + i  # tokens before the one chosen now
        flat_running = tf.reshape(running, (-1, total))
        log_probs = processors.process(tf.nn.log_softmax(logits), flat_running, length, s)  # (B * K, V)
        if s.eos and s.min_new > 0:
            banned = tf.reduce_any(tf.range(vocab)[:, None] == vocab_eos[None], axis=-1)[None]
            log_probs = tf.where(banned & (i < s.min_new), float("-inf"), log_probs)
        log_probs = tf.reshape(log_probs, (batch, beams, vocab)) + running_scores[..., None]
        top_scores, top_indices = tf.math.top_k(tf.reshape(log_probs, (batch, beams * vocab)), k=2 * beams)
        top_beams, top_tokens = top_indices // vocab, top_indices % vocab  # (B, 2K)
        top_sequences = tf.where(columns == length, top_tokens[..., None], _gather_beams(running, top_beams))
        ends = tf.reduce_any(top_tokens[..., None] == vocab_eos, axis=-1)  # (B, 2K)
        just_finished = ends & first_k

        keep = tf.math.top_k(top_scores + tf.cast(ends, tf.float32) * NEG, k=beams).indices  # (B, K)
        next_running = _gather_beams(top_sequences, keep)
        next_running_scores = _gather_beams(top_scores + tf.cast(ends, tf.float32) * NEG, keep)

        candidate_scores = top_scores / tf.cast(i + 1, tf.float32) ** s.length_penalty
        full = tf.reduce_all(is_finished, axis=-1, keepdims=True) & (s.early_stopping is True)
        candidate_scores += tf.cast(~just_finished | full, tf.float32) * NEG
        merged_scores = tf.concat([finished_scores, candidate_scores], axis=1)  # (B, 3K)
        best = tf.math.top_k(merged_scores, k=beams).indices
        finished = _gather_beams(tf.concat([finished, top_sequences], axis=1), best)
        finished_scores = _gather_beams(merged_scores, best)
        is_finished = _gather_beams(tf.concat([is_finished, just_finished], axis=1), best)

        rows = tf.reshape(_gather_beams(top_beams, keep) + tf.range(batch)[:, None] * beams, [-1])  # (B * K,)
        cache = tf.nest.map_structure(lambda t: tf.gather(t, rows, axis=0), cache)
        tokens = tf.reshape(_gather_beams(top_tokens, keep), (-1, 1))
        logits, cache = model.decode_step(tokens, full_mask, first_position + i, cache, length)
        return i + 1, next_running, next_running_scores, finished, finished_scores, is_finished, logits, cache

    def going_on(i, running, running_scores, finished, finished_scores, is_finished, logits, cache):
        if s.early_stopping == "never" and s.length_penalty > 0.0:
            best_running = running_scores[:, :1] / float(s.max_new) ** s.length_penalty
        else:
            best_running = running_scores[:, :1] / tf.cast(i, tf.float32) ** s.length_penalty
        worst_finished = tf.where(is_finished, tf.reduce_min(finished_scores, axis=1, keepdims=True), NEG)
        can_improve = tf.reduce_any(best_running > worst_finished)
        open_beams = ~(tf.reduce_all(is_finished) & (s.early_stopping is True))
        return (i == 0) | (can_improve & open_beams)

    state = (0, running, running_scores, finished, finished_scores, is_finished, logits, cache)
    steps, running, running_scores, finished, finished_scores, is_finished, _, _ = tf.while_loop(
        going_on, body, state, maximum_iterations=s.max_new)
    any_finished = tf.reduce_any(is_finished, axis=1)  # (B,)
    sequences = tf.where(any_finished[:, None, None], finished, running)
    sequences = tf.reshape(sequences[:, : s.num_return_sequences], (-1, total))
    return sequences[:, : prompt + steps]
