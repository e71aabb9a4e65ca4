"""Beam search bookkeeping: which candidates continue, which finished hypotheses are kept, and the final
sequences — transformers 4.37's `BeamSearchScorer` semantics (same choices, same tie-breaking, scores
computed in Python floats as there), with the per-step selection done as tensor operations and one
small device-to-host copy per step for the finished hypotheses.

Notation: B batch, K beams, C candidates per batch row (sorted best first), V vocab.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .processors import EosIds, eos_list


class BeamHypotheses:
    """The n best finished hypotheses of one batch row, scored sum_logprobs / generated_len ** length_penalty."""

    def __init__(self, num_beams: int, length_penalty: float, early_stopping: Union[bool, str],
                 max_length: Optional[int] = None):
        if not isinstance(early_stopping, bool) and max_length is None:
            raise ValueError("When `do_early_stopping` is set to a string, `max_length` must be defined.")
        self.num_beams = num_beams
        self.length_penalty = length_penalty
        self.early_stopping = early_stopping
        self.max_length = max_length
        self.beams: List[Tuple[float, torch.Tensor, Optional[Tuple[int, ...]]]] = []  # insertion order
        self.worst_score = 1e9

    def __len__(self) -> int:
        return len(self.beams)

    def add(self, hyp: torch.Tensor, sum_logprobs: float, beam_indices: Optional[Tuple[int, ...]] = None,
            generated_len: Optional[int] = None) -> None:
        length = generated_len if generated_len is not None else hyp.shape[-1]
        score = sum_logprobs / (length ** self.length_penalty)
        if len(self) < self.num_beams or score > self.worst_score:
            self.beams.append((score, hyp, beam_indices))
            if len(self) > self.num_beams:  # drop the worst (the earliest added among equals)
                ranked = sorted((s, i) for i, (s, _, _) in enumerate(self.beams))
                del self.beams[ranked[0][1]]
                self.worst_score = ranked[1][0]
            else:
                self.worst_score = min(score, self.worst_score)

    def is_done(self, best_sum_logprobs: float, cur_len: int, decoder_prompt_len: int = 0) -> bool:
        """Whether no running beam can still beat the worst kept hypothesis (per `early_stopping`)."""
        if len(self) < self.num_beams:
            return False
        if self.early_stopping is True:
            return True
        length = cur_len - decoder_prompt_len
        if self.early_stopping == "never" and self.length_penalty > 0.0:
            if self.max_length <= decoder_prompt_len:
                raise ValueError("max_length is not larger than decoder prompt length")
            length = self.max_length - decoder_prompt_len  # the longest a hypothesis can still become
        return self.worst_score >= best_sum_logprobs / length ** self.length_penalty


class BeamSearchScorer:
    """Standard beam search over `num_beams` beams per batch row (transformers' BeamSearchScorer API).

    `process` takes each row's C best candidates and returns the K that continue; candidates ending in EOS
    among the first K become finished hypotheses. `finalize` picks the `num_beam_hyps_to_keep` best.
    """

    def __init__(self, batch_size: int, num_beams: int, device: Any = None, length_penalty: float = 1.0,
                 do_early_stopping: Union[bool, str] = False, num_beam_hyps_to_keep: int = 1,
                 num_beam_groups: int = 1, max_length: Optional[int] = None):
        if not isinstance(num_beams, int) or num_beams <= 1:
            raise ValueError(f"`num_beams` has to be an integer strictly greater than 1, but is {num_beams}. "
                             "For `num_beams` == 1, use greedy search instead.")
        if num_beam_groups != 1:
            raise NotImplementedError("group beam search (num_beam_groups > 1) is not supported")
        self.num_beams = self.group_size = num_beams
        self.num_beam_groups = 1
        self.device = device
        self.length_penalty = length_penalty
        self.do_early_stopping = do_early_stopping
        self.num_beam_hyps_to_keep = num_beam_hyps_to_keep
        self._beam_hyps = [BeamHypotheses(num_beams, length_penalty, do_early_stopping, max_length)
                           for _ in range(batch_size)]
        self._done = [False] * batch_size

    @property
    def is_done(self) -> bool:
        return all(self._done)

    def process(self, input_ids: torch.LongTensor, next_scores: torch.Tensor, next_tokens: torch.LongTensor,
                next_indices: torch.LongTensor, pad_token_id: Optional[int] = None, eos_token_id: EosIds = None,
                beam_indices: Optional[Union[torch.Tensor, Sequence[Tuple[int, ...]]]] = None,
                group_index: int = 0, decoder_prompt_len: int = 0) -> Dict[str, torch.Tensor]:
        """input_ids (B*K, T); next_scores / next_tokens / next_indices (B, C), best first, next_indices
        the beam (0..K-1) each candidate extends. Returns next_beam_scores / _tokens / _indices, (B*K,)
        each, next_beam_indices as rows of input_ids."""
        batch, k = len(self._beam_hyps), self.group_size
        if input_ids.shape[0] != batch * k:
            raise ValueError(f"A beam size of {input_ids.shape[0]} is used as the input, but a beam size of {k} is "
                             "expected by the beam scorer.")
        device, cands = input_ids.device, next_tokens.shape[1]
        eos = eos_list(eos_token_id)
        is_eos = torch.isin(next_tokens, torch.tensor(eos, device=device)) if eos else torch.zeros_like(
            next_tokens, dtype=torch.bool)
        # The first K candidates that are not EOS continue, in order.
        take = ~is_eos & ((~is_eos).long().cumsum(1) <= k)
        order = torch.sort((~take).to(torch.uint8), dim=1, stable=True).indices[:, :k]    # (B, K)
        scores = next_scores.gather(1, order)
        tokens = next_tokens.gather(1, order)
        rows = next_indices.gather(1, order) + torch.arange(batch, device=device)[:, None] * k
        if any(self._done):
            if not eos or pad_token_id is None:
                raise ValueError("Generated beams >= num_beams -> eos_token_id and pad_token have to be defined")
            done = torch.tensor(self._done, device=device)[:, None]
            scores = scores.masked_fill(done, 0)
            tokens = tokens.masked_fill(done, pad_token_id)
            rows = rows.masked_fill(done, 0)
        # One copy to the host: what the finished hypotheses and the is-done test need.
        top = min(k, cands)
        host = torch.cat([next_scores[:, :top], next_indices[:, :top], is_eos[:, :top], take.sum(1, keepdim=True),
                          next_scores.max(1, keepdim=True).values], 1).double().tolist()
        cur_len = input_ids.shape[-1] + 1
        for b, values in enumerate(host):
            if self._done[b]:
                continue
            for j in range(top):
                if values[2 * top + j]:  # an EOS among the first K candidates: a finished hypothesis
                    row = b * k + int(values[top + j])
                    self._beam_hyps[b].add(input_ids[row].clone(), values[j], _history(beam_indices, row, True),
                                           generated_len=cur_len - decoder_prompt_len)
            if values[3 * top] < k:
                raise ValueError(f"At most {k} tokens in {next_tokens[b]} can be equal to `eos_token_id: {eos}`. "
                                 f"Make sure {next_tokens[b]} are corrected.")
            self._done[b] = self._beam_hyps[b].is_done(values[3 * top + 1], cur_len, decoder_prompt_len)
        return {"next_beam_scores": scores.reshape(-1), "next_beam_tokens": tokens.reshape(-1),
                "next_beam_indices": rows.reshape(-1)}

    def finalize(self, input_ids: torch.LongTensor, final_beam_scores: torch.Tensor,
                 final_beam_tokens: Optional[torch.Tensor], final_beam_indices: Optional[torch.Tensor],
                 max_length: Optional[int], pad_token_id: Optional[int] = None, eos_token_id: EosIds = None,
                 beam_indices: Optional[Union[torch.Tensor, Sequence[Tuple[int, ...]]]] = None,
                 decoder_prompt_len: int = 0) -> Dict[str, Optional[torch.Tensor]]:
        """The running beams of unfinished rows join the hypotheses; the best `num_beam_hyps_to_keep` of
        each row come back as `sequences` (EOS after shorter ones, then pad), `sequence_scores` and
        `beam_indices` (-1 past each hypothesis)."""
        k, keep = self.group_size, self.num_beam_hyps_to_keep
        eos = eos_list(eos_token_id)
        final = final_beam_scores.double().tolist()
        for b, hyps in enumerate(self._beam_hyps):
            if not self._done[b]:
                for row in range(b * k, (b + 1) * k):
                    hyps.add(input_ids[row], final[row], _history(beam_indices, row, False),
                             generated_len=input_ids.shape[-1] - decoder_prompt_len)
        best: List[Tuple[float, torch.Tensor, Optional[Tuple[int, ...]]]] = []
        for hyps in self._beam_hyps:
            ranked = sorted(hyps.beams, key=lambda beam: beam[0])  # stable: among equals the latest wins
            best.extend(ranked.pop() for _ in range(keep))
        lengths = [len(hyp) for _, hyp, _ in best]
        width = max(lengths) + 1
        width = min(width, max_length) if max_length is not None else width
        sequences = input_ids.new_empty((len(best), width))
        if min(lengths) != max(lengths):
            if pad_token_id is None:
                raise ValueError("`pad_token_id` has to be defined")
            sequences.fill_(pad_token_id)
        has_indices = bool(best) and best[0][2] is not None
        indices = input_ids.new_full((len(best), width), -1) if has_indices else None
        for i, (_, hyp, hyp_indices) in enumerate(best):
            sequences[i, : lengths[i]] = hyp
            if indices is not None:
                indices[i, : len(hyp_indices)] = torch.tensor(hyp_indices, dtype=indices.dtype)
            if lengths[i] < width:
                sequences[i, lengths[i]] = eos[0] if eos else pad_token_id
        scores = torch.tensor([score for score, _, _ in best], dtype=torch.float32, device=self.device)
        return {"sequences": sequences, "sequence_scores": scores, "beam_indices": indices}


def _history(beam_indices, row: int, extend: bool) -> Optional[Tuple[int, ...]]:
    """The beams a hypothesis came through: its row's history (a tuple per row, or a (B*K, steps) tensor),
    plus the row itself when it finishes this step."""
    if beam_indices is None:
        return None
    past = tuple(beam_indices[row].tolist()) if isinstance(beam_indices, torch.Tensor) else tuple(beam_indices[row])
    return past + (row,) if extend else past
