"""The decoding loops behind `generate()`: greedy and multinomial sampling (one loop), beam search and beam
sampling (another), sharing the logits processors and one `Session` of preallocated buffers.

Per token the greedy / sampling loop runs the model once and a handful of tensor operations: no tensor is
reallocated between growths (the tokens, attention mask and positions live in (B, capacity) buffers written
in place, which grow in whole blocks as the KV cache does: memory follows the tokens generated, not
max_length), and nothing waits on the device except where the caller asked for it (a streamer, a stopping
criterion) — "are all rows finished?" is asked every step on CPU, where it is free, and every `SYNC_EVERY`
steps on an accelerator, the extra steps trimmed after.

What is specific to a model family goes through two methods the family may override:
`prepare_inputs_for_generation` (which inputs one forward gets) and `_init_generation_cache`.
Notation: B rows (batch x beams or x return sequences), K beams, T tokens so far, V vocab.
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional

import torch

from ..outputs import CausalLMOutputWithPast
from ..pt.cache import BLOCK, grown, grown_capacity
from .beam import BeamSearchScorer
from .outputs import (GenerateBeamDecoderOnlyOutput, GenerateBeamEncoderDecoderOutput, GenerateDecoderOnlyOutput,
                      GenerateEncoderDecoderOutput)
from .processors import LogitsProcessorList, eos_list
from .static_step import static_step
from .stopping import StoppingCriteriaList, custom_criteria, validate_stopping_criteria

SYNC_EVERY = 8  # on accelerators, steps between checks that every row has finished


def sync_interval(device: torch.device) -> int:
    """Steps between "has every row finished?" checks (each one waits for the device)."""
    return 1 if device.type == "cpu" else SYNC_EVERY


class Session:
    """One generate() call's state: the sequences (B, capacity <= max_length), their attention mask and
    positions, the KV cache, and the other model kwargs, handed to `prepare_inputs_for_generation` every step.

    For an encoder-decoder model the sequences are the decoder's; the growing mask is the
    `decoder_attention_mask` (when given), the source `attention_mask` and `encoder_outputs` stay as
    they are, and there are no position ids (the decoder counts positions from its cache).

    The prompt (an encoder-decoder's first decoder tokens) goes through the model's forward; later tokens
    go through the family's one-token static step (static_step.py) where the model and the call allow it,
    else through the forward too."""

    def __init__(self, model, input_ids: torch.LongTensor, model_kwargs: Dict[str, Any], max_length: int,
                 fill_value: int = 0, compile: bool = False):
        self.model = model
        batch, length = input_ids.shape
        self.length = length                                            # tokens held (prompt + generated)
        self.max_length = max_length
        self.fill_value = fill_value
        # The buffers hold the prompt and a block more, and grow like the cache (`reserve`): memory follows
        # the tokens generated, not max_length.
        capacity = min(max_length, grown_capacity(length + 1, 0))
        self.ids = input_ids.new_full((batch, capacity), fill_value)     # (B, capacity)
        self.ids[:, :length] = input_ids
        self.use_cache = bool(model_kwargs.pop("use_cache", True))
        self.seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
        self.mask_name = "decoder_attention_mask" if self.seq2seq else "attention_mask"
        mask = model_kwargs.pop(self.mask_name, None)
        self.mask = self.positions = None
        if mask is not None:
            self.mask = mask.new_ones((batch, capacity))
            self.mask[:, :length] = mask
        if mask is not None and not self.seq2seq:
            # The reference's positions: cumsum(mask) - 1 in the prompt (1 at padding), then one more per token.
            positions = mask.long().cumsum(-1) - 1
            positions.masked_fill_(mask == 0, 1)
            after = mask.long().sum(-1, keepdim=True) + torch.arange(capacity - length, device=mask.device)
            self.positions = torch.cat([positions, after], dim=1)
        self.token_types = None
        types = model_kwargs.pop("token_type_ids", None)
        if types is not None:  # new tokens repeat the last type, as in the reference
            self.token_types = types[:, -1:].repeat(1, capacity).contiguous()
            self.token_types[:, :length] = types
        self.extra = model_kwargs
        self.cache = model._init_generation_cache(batch, max_length) if self.use_cache else None
        self.past = self.cache
        # After the prompt's forward, each token is one fixed-shape step (static_step.py), made then: the
        # family's per-call context reads what that forward filled and checked. An encoder-decoder's decoder
        # attends to every decoder token (the reference passes no decoder mask on).
        self.step = None
        self._step_args = {"prompt_mask": None if self.seq2seq else mask, "compile": compile}

    def reserve(self, needed: int) -> None:
        """Room for `needed` tokens: the buffers grow (at least doubling, in whole blocks, up to max_length)
        with what every later position holds: the fill value, mask 1, one position more, the last type."""
        capacity = self.ids.shape[1]
        if needed <= capacity:
            return
        if needed > self.max_length:
            raise ValueError(f"generate(): {needed} tokens asked for, more than max_length={self.max_length}")
        new = min(self.max_length, grown_capacity(needed, capacity))
        self.ids = grown(self.ids, dim=1, capacity=new, used=capacity, fill=self.fill_value)
        if self.mask is not None:
            self.mask = grown(self.mask, dim=1, capacity=new, used=capacity, fill=1)
        if self.positions is not None:
            last = self.positions[:, capacity - 1:capacity]
            self.positions = grown(self.positions, dim=1, capacity=new, used=capacity)
            self.positions[:, capacity:] = last + torch.arange(1, new - capacity + 1, device=last.device)
        if self.token_types is not None:
            last = self.token_types[:, capacity - 1:capacity]
            self.token_types = grown(self.token_types, dim=1, capacity=new, used=capacity)
            self.token_types[:, capacity:] = last

    @property
    def batch(self) -> int:
        return self.ids.shape[0]

    @property
    def sequences(self) -> torch.LongTensor:
        """(B, T) view of the tokens so far."""
        return self.ids[:, : self.length]

    def forward(self, **forward_kwargs: Any):
        """Run the model on the tokens the cache has not seen yet; returns its output (with `.logits`)."""
        n = self.length
        if self._step_args is not None and self.cache is not None and 0 < self.cache.seen == n - 1:
            self.step = static_step(self.model, self.cache, model_kwargs=self.extra, **self._step_args)
            self._step_args = None
        if self.step is not None and self.cache.seen == n - 1 and not any(forward_kwargs.values()):
            logits = self.step(self.ids[:, n - 1:n], None if self.positions is None else self.positions[:, n - 1:n],
                               None if self.token_types is None else self.token_types[:, n - 1:n])
            return CausalLMOutputWithPast(logits=logits)
        kwargs = dict(self.extra)
        if self.mask is not None:
            kwargs[self.mask_name] = self.mask[:, :n]
        if self.positions is not None:
            kwargs["position_ids"] = self.positions[:, :n]
        if self.token_types is not None:
            kwargs["token_type_ids"] = self.token_types[:, :n]
        inputs = self.model.prepare_inputs_for_generation(self.ids[:, :n], past_key_values=self.past,
                                                          use_cache=self.use_cache, **kwargs)
        output = self.model(**inputs, return_dict=True, **forward_kwargs)
        if self.use_cache and self.cache is None:  # no static cache: keep what the model returned
            self.past = output.past_key_values
        return output

    def append(self, tokens: torch.LongTensor) -> None:
        self.reserve(self.length + 1)
        self.ids[:, self.length] = tokens
        self.length += 1

    def reorder(self, rows: torch.LongTensor) -> None:
        """Beams: row i continues from row rows[i] (tokens and cache)."""
        self.ids[:, : self.length] = self.ids[rows, : self.length]
        past = self.past
        if past is None:
            return
        if self.seq2seq and hasattr(getattr(past, "self_attention", None), "reorder") and hasattr(past, "cross"):
            # the beams of a row share its encoder states: only the decoder's own keys / values move
            past = past.self_attention
        if hasattr(past, "reorder"):
            past.reorder(rows)
        elif hasattr(past, "reorder_cache"):
            past.reorder_cache(rows)
        else:
            self.past = self.model._reorder_cache(past, rows)

    def public_past(self) -> Any:
        """The cache as outputs carry it (legacy tuples when the cache can give them)."""
        past = self.past
        return past.to_legacy() if hasattr(past, "to_legacy") else past


class Recorder:
    """What `return_dict_in_generate` collects per step: scores, attentions, hidden states (for an
    encoder-decoder model: decoder self- and cross-attentions, decoder hidden states, and the encoder's
    attentions / hidden states once), and the output class that carries them."""

    _OUTPUTS = {(False, False): GenerateDecoderOnlyOutput, (False, True): GenerateBeamDecoderOnlyOutput,
                (True, False): GenerateEncoderDecoderOutput, (True, True): GenerateBeamEncoderDecoderOutput}

    def __init__(self, *, return_dict: bool, scores: bool, attentions: bool, hidden_states: bool,
                 encoder_outputs: Any = None, seq2seq: bool = False):
        self.seq2seq = seq2seq
        self.scores: Optional[List[torch.Tensor]] = [] if return_dict and scores else None
        self.attentions: Optional[list] = [] if return_dict and attentions else None
        self.cross_attentions: Optional[list] = [] if return_dict and attentions and seq2seq else None
        self.hidden_states: Optional[list] = [] if return_dict and hidden_states else None
        self.forward_kwargs = {"output_attentions": attentions, "output_hidden_states": hidden_states}
        self.encoder: Dict[str, Any] = {}
        if seq2seq:
            get = (lambda name: encoder_outputs.get(name)) if encoder_outputs is not None else (lambda name: None)
            self.encoder = {"encoder_attentions": get("attentions") if attentions else None,
                            "encoder_hidden_states": get("hidden_states") if hidden_states else None}

    def add(self, scores: torch.Tensor, output: Any) -> None:
        if self.scores is not None:
            self.scores.append(scores)
        if self.attentions is not None:
            self.attentions.append(output.decoder_attentions if self.seq2seq else output.attentions)
        if self.cross_attentions is not None:
            self.cross_attentions.append(output.cross_attentions)
        if self.hidden_states is not None:
            self.hidden_states.append(output.decoder_hidden_states if self.seq2seq else output.hidden_states)

    def scores_so_far(self) -> Optional[tuple]:
        return tuple(self.scores) if self.scores is not None else None

    def trim(self, steps: int) -> None:
        for name in ("scores", "attentions", "cross_attentions", "hidden_states"):
            if getattr(self, name) is not None:
                del getattr(self, name)[steps:]

    def fields(self) -> Dict[str, Optional[tuple]]:
        recorded = {name: (tuple(getattr(self, name)) if getattr(self, name) is not None else None)
                    for name in ("scores", "attentions", "cross_attentions", "hidden_states")}
        if not self.seq2seq:
            del recorded["cross_attentions"]
            return recorded
        return {"scores": recorded["scores"], "decoder_attentions": recorded["attentions"],
                "cross_attentions": recorded["cross_attentions"],
                "decoder_hidden_states": recorded["hidden_states"], **self.encoder}

    def output(self, beams: bool, **fields: Any):
        """The reference's output class for this model kind and search, with the recorded fields."""
        return self._OUTPUTS[self.seq2seq, beams](**fields, **self.fields())


def run_sampling(session: Session, *, processors: LogitsProcessorList, warpers: Optional[LogitsProcessorList],
                 criteria: StoppingCriteriaList, max_length: int, pad_token_id: Optional[int], eos_token_id,
                 recorder: Recorder, streamer=None, return_dict: bool = False):
    """Greedy search (warpers None: argmax of the processed scores) or multinomial sampling
    (softmax of the warped scores, `torch.multinomial`, exactly as the reference draws)."""
    device, batch, start = session.ids.device, session.batch, session.length
    eos = eos_list(eos_token_id)
    if eos and pad_token_id is None:
        raise ValueError("If `eos_token_id` is defined, make sure that `pad_token_id` is defined.")
    eos_ids = torch.tensor(eos, device=device) if eos else None
    per_step = StoppingCriteriaList(custom_criteria(criteria))
    unfinished = torch.ones(batch, dtype=torch.bool, device=device)
    finished_at = torch.full((batch,), max_length, dtype=torch.long, device=device)
    sync_every = 1 if streamer is not None else sync_interval(device)
    can_finish = eos_ids is not None or bool(per_step)
    for step in range(max_length - start):
        output = session.forward(**recorder.forward_kwargs)
        scores = processors(session.sequences, output.logits[:, -1, :])
        if warpers is not None:
            scores = warpers(session.sequences, scores)
        recorder.add(scores, output)
        if warpers is not None:
            tokens = torch.multinomial(torch.softmax(scores, dim=-1), num_samples=1).squeeze(1)
        else:
            tokens = torch.argmax(scores, dim=-1)
        if pad_token_id is not None and can_finish:
            tokens = torch.where(unfinished, tokens, pad_token_id)
        session.append(tokens)
        if streamer is not None:
            streamer.put(tokens.cpu())
        if not can_finish:
            continue
        was_unfinished = unfinished
        if eos_ids is not None:
            unfinished = unfinished & ~torch.isin(tokens, eos_ids)
        if per_step:
            rows = per_step.rows_to_stop(session.sequences, recorder.scores_so_far())
            if rows is True:
                break
            if rows is not False:
                unfinished = unfinished & ~rows
        finished_at = torch.where(was_unfinished & ~unfinished, session.length, finished_at)
        if (step + 1) % sync_every == 0 and not bool(unfinished.any()):
            break
    if sync_every > 1 and can_finish and not bool(unfinished.any()):
        end = int(finished_at.max())  # checks were spaced out: drop the steps after every row finished
        recorder.trim(end - start)
        session.length = end
    if streamer is not None:
        streamer.end()
    sequences = session.sequences if session.length == session.ids.shape[1] else session.sequences.clone()
    if not return_dict:
        return sequences
    return recorder.output(False, sequences=sequences, past_key_values=session.public_past())


def run_beam_search(session: Session, scorer: BeamSearchScorer, *, processors: LogitsProcessorList,
                    warpers: Optional[LogitsProcessorList], criteria: StoppingCriteriaList, max_length: int,
                    pad_token_id: Optional[int], eos_token_id, recorder: Recorder, return_dict: bool = False):
    """Beam search (warpers None: the top candidates of log-probabilities + beam scores) or beam sampling
    (candidates drawn with `torch.multinomial`), as the reference does."""
    batch, beams = len(scorer._beam_hyps), scorer.num_beams
    device, start = session.ids.device, session.length
    if session.batch != batch * beams:
        raise ValueError(f"Batch dimension of `input_ids` should be {batch * beams}, but is {session.batch}.")
    eos = eos_list(eos_token_id)
    per_step = StoppingCriteriaList(custom_criteria(criteria))
    beam_scores = torch.zeros((batch, beams), dtype=torch.float, device=device)
    if warpers is None:
        beam_scores[:, 1:] = -1e9  # at first every beam is the same: only one may continue
    beam_scores = beam_scores.view(-1)
    history = (torch.zeros((batch * beams, min(max_length - start, BLOCK)), dtype=torch.long, device=device)
               if recorder.scores is not None else None)  # beam indices, per generated token (grows in blocks)
    n_candidates = 2 * beams if warpers is not None else max(2, 1 + len(eos)) * beams
    step = 0
    while session.length < max_length:
        output = session.forward(**recorder.forward_kwargs)
        logprobs = torch.nn.functional.log_softmax(output.logits[:, -1, :], dim=-1)      # (B*K, V)
        processed = processors(session.sequences, logprobs)
        if warpers is not None:
            processed = warpers(session.sequences, processed)
        recorder.add(processed, output)
        vocab = processed.shape[-1]
        totals = (processed + beam_scores[:, None].expand_as(processed)).view(batch, beams * vocab)
        if warpers is not None:
            candidates = torch.multinomial(torch.softmax(totals, dim=-1), num_samples=n_candidates)
            candidate_scores, order = torch.sort(torch.gather(totals, -1, candidates), descending=True, dim=1)
            candidates = torch.gather(candidates, -1, order)
        else:
            candidate_scores, candidates = torch.topk(totals, n_candidates, dim=1, largest=True, sorted=True)
        chosen = scorer.process(session.sequences, candidate_scores, candidates % vocab,
                                torch.div(candidates, vocab, rounding_mode="floor"), pad_token_id=pad_token_id,
                                eos_token_id=eos, beam_indices=None if history is None else history[:, :step],
                                decoder_prompt_len=start)
        beam_scores, rows = chosen["next_beam_scores"], chosen["next_beam_indices"]
        session.reorder(rows)
        session.append(chosen["next_beam_tokens"])
        if history is not None:
            if step == history.shape[1]:
                history = grown(history, dim=1, capacity=min(max_length - start, grown_capacity(step + 1, step)),
                                used=step)
            history[:, :step] = history[rows, :step]
            history[:, step] = rows
        step += 1
        if scorer.is_done or (per_step and per_step(session.sequences, recorder.scores_so_far())):
            break
    final = scorer.finalize(session.sequences, beam_scores, None, None, max_length=max_length,
                            pad_token_id=pad_token_id, eos_token_id=eos,
                            beam_indices=None if history is None else history[:, :step], decoder_prompt_len=start)
    if not return_dict:
        return final["sequences"]
    return recorder.output(
        True, sequences=final["sequences"], beam_indices=final["beam_indices"], past_key_values=session.public_past(),
        sequences_scores=final["sequence_scores"] if recorder.scores is not None else None)


def run(session: Session, scorer: Optional[BeamSearchScorer] = None, *, streamer=None, **common):
    """The decoding loop of `session`: greedy / sampling without a scorer, beams with one."""
    if scorer is None:
        return run_sampling(session, streamer=streamer, **common)
    return run_beam_search(session, scorer, **common)


# --- transformers 4.37's public decoding methods (generate() is the usual entry point) ------------------------
def _legacy_call(model, input_ids, model_kwargs, *, scorer, logits_processor, logits_warper, stopping_criteria,
                 max_length, pad_token_id, eos_token_id, output_attentions, output_hidden_states, output_scores,
                 return_dict_in_generate, streamer):
    config = model.generation_config
    criteria = StoppingCriteriaList(stopping_criteria or [])
    if max_length is not None:
        warnings.warn("`max_length` is deprecated in this function, use `stopping_criteria="
                      "StoppingCriteriaList([MaxLengthCriteria(max_length=max_length)])` instead.", UserWarning)
        criteria = validate_stopping_criteria(criteria, max_length)
    bound = criteria.max_length or getattr(model.config, "max_position_embeddings", None)
    if bound is None:
        raise ValueError("pass a MaxLengthCriteria in stopping_criteria (or max_length): the decoding buffers need a "
                         "length bound")
    pick = lambda value, default: default if value is None else value  # noqa: E731
    pad = pick(pad_token_id, config.pad_token_id)
    seq2seq = bool(getattr(model.config, "is_encoder_decoder", False))
    recorder = Recorder(return_dict=pick(return_dict_in_generate, config.return_dict_in_generate),
                        scores=pick(output_scores, config.output_scores),
                        attentions=pick(output_attentions, config.output_attentions),
                        hidden_states=pick(output_hidden_states, config.output_hidden_states),
                        encoder_outputs=model_kwargs.get("encoder_outputs"), seq2seq=seq2seq)
    session = Session(model, input_ids, dict(model_kwargs), max(bound, input_ids.shape[1] + 1), fill_value=pad or 0)
    common = dict(processors=LogitsProcessorList(logits_processor or []), criteria=criteria, recorder=recorder,
                  warpers=LogitsProcessorList(logits_warper or []) if logits_warper is not None else None,
                  max_length=session.max_length, pad_token_id=pad, eos_token_id=pick(eos_token_id, config.eos_token_id),
                  return_dict=pick(return_dict_in_generate, config.return_dict_in_generate))
    return run(session, scorer, streamer=streamer, **common)


def greedy_search(self, input_ids, logits_processor=None, stopping_criteria=None, max_length=None, pad_token_id=None,
                  eos_token_id=None, output_attentions=None, output_hidden_states=None, output_scores=None,
                  return_dict_in_generate=None, synced_gpus=False, streamer=None, **model_kwargs):
    """Greedy decoding of already prepared `input_ids` (transformers 4.37 API; prefer generate())."""
    return _legacy_call(
        self, input_ids, model_kwargs, scorer=None, logits_processor=logits_processor, logits_warper=None,
        stopping_criteria=stopping_criteria, max_length=max_length, pad_token_id=pad_token_id,
        eos_token_id=eos_token_id, output_attentions=output_attentions, output_hidden_states=output_hidden_states,
        output_scores=output_scores, return_dict_in_generate=return_dict_in_generate, streamer=streamer)


def sample(self, input_ids, logits_processor=None, stopping_criteria=None, logits_warper=None, max_length=None,
           pad_token_id=None, eos_token_id=None, output_attentions=None, output_hidden_states=None, output_scores=None,
           return_dict_in_generate=None, synced_gpus=False, streamer=None, **model_kwargs):
    """Multinomial sampling of already prepared `input_ids` (transformers 4.37 API; prefer generate())."""
    return _legacy_call(
        self, input_ids, model_kwargs, scorer=None, logits_processor=logits_processor,
        logits_warper=logits_warper or [], stopping_criteria=stopping_criteria, max_length=max_length,
        pad_token_id=pad_token_id, eos_token_id=eos_token_id, output_attentions=output_attentions,
        output_hidden_states=output_hidden_states, output_scores=output_scores,
        return_dict_in_generate=return_dict_in_generate, streamer=streamer)


def beam_search(self, input_ids, beam_scorer, logits_processor=None, stopping_criteria=None, max_length=None,
                pad_token_id=None, eos_token_id=None, output_attentions=None, output_hidden_states=None,
                output_scores=None, return_dict_in_generate=None, synced_gpus=False, **model_kwargs):
    """Beam search of `input_ids` already expanded to (batch * num_beams, T) (transformers 4.37 API)."""
    return _legacy_call(
        self, input_ids, model_kwargs, scorer=beam_scorer, logits_processor=logits_processor, logits_warper=None,
        stopping_criteria=stopping_criteria, max_length=max_length, pad_token_id=pad_token_id,
        eos_token_id=eos_token_id, output_attentions=output_attentions, output_hidden_states=output_hidden_states,
        output_scores=output_scores, return_dict_in_generate=return_dict_in_generate, streamer=None)


def beam_sample(self, input_ids, beam_scorer, logits_processor=None, stopping_criteria=None, logits_warper=None,
                max_length=None, pad_token_id=None, eos_token_id=None, output_attentions=None,
                output_hidden_states=None, output_scores=None, return_dict_in_generate=None, synced_gpus=False,
                **model_kwargs):
    """Beam sampling of `input_ids` already expanded to (batch * num_beams, T) (transformers 4.37 API)."""
    return _legacy_call(
        self, input_ids, model_kwargs, scorer=beam_scorer, logits_processor=logits_processor,
        logits_warper=logits_warper or [], stopping_criteria=stopping_criteria, max_length=max_length,
        pad_token_id=pad_token_id, eos_token_id=eos_token_id, output_attentions=output_attentions,
        output_hidden_states=output_hidden_states, output_scores=output_scores,
        return_dict_in_generate=return_dict_in_generate, streamer=None)
