"""Question-answering windows for a slow tokenizer (no character offsets; CANINE's is slow only), as
transformers 4.37's pipeline builds them through its SQuAD feature conversion.

The context is split on whitespace (`SquadExample.doc_tokens`) and each word tokenized alone, so every
token knows its word. The question is cut to `max_question_len` tokens. Windows of `max_seq_len` tokens
(padded to that length) hold the question and a stretch of context tokens; window k starts at context token
k * `doc_stride`. `token_to_orig_map` maps each context position of a window to its word, and the answer's
characters are those words' (see `QuestionAnsweringPipeline.postprocess`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List

import numpy as np

# tokenizers that put two separators between the sequences, and those that tokenize words with a prefix
# space (4.37's lists; no polyformer tokenizer is in them, kept so a user's subclass behaves the same)
_MULTI_SEP = {"roberta", "camembert", "bart", "mpnet"}
_PREFIX_SPACE = {"RobertaTokenizer", "LongformerTokenizer", "BartTokenizer", "RobertaTokenizerFast",
                 "LongformerTokenizerFast", "BartTokenizerFast"}


@dataclass
class SlowFeature:
    """One window: model inputs (lists of ints, `max_seq_len` long), `p_mask` (1: cannot be in an answer)
    and `token_to_orig_map` (window position -> index of the context word)."""

    input_ids: List[int]
    attention_mask: List[int]
    token_type_ids: List[int]
    p_mask: List[int]
    token_to_orig_map: Dict[int, int]


def _context_tokens(tokenizer, words: List[str]):
    """(ids of the context's tokens, the word index of each)."""
    kwargs = {"add_prefix_space": True} if type(tokenizer).__name__ in _PREFIX_SPACE else {}
    ids: List[int] = []
    word_of_token: List[int] = []
    for index, word in enumerate(words):
        pieces = tokenizer.convert_tokens_to_ids(tokenizer.tokenize(word, **kwargs))
        ids += pieces
        word_of_token += [index] * len(pieces)
    return ids, word_of_token


def slow_features(tokenizer, example: Any, max_seq_len: int, doc_stride: int, max_question_len: int
                  ) -> List[SlowFeature]:
    """The windows of `example` (a SquadExample) for a slow `tokenizer`."""
    doc_ids, word_of_token = _context_tokens(tokenizer, example.doc_tokens)
    query = tokenizer.encode(example.question_text, add_special_tokens=False, truncation=True,
                             max_length=max_question_len)
    added = tokenizer.model_max_length - tokenizer.max_len_single_sentence
    if type(tokenizer).__name__.replace("Tokenizer", "").lower() in _MULTI_SEP:
        added += 1
    pair_added = tokenizer.model_max_length - tokenizer.max_len_sentences_pair
    question_first = tokenizer.padding_side == "right"
    # the overflow repeats this many tokens (4.37's formula; it may be negative, which shortens the overflow)
    stride = max_seq_len - doc_stride - len(query) - pair_added
    features = []
    remaining = doc_ids
    while len(features) * doc_stride < len(doc_ids):
        start = len(features) * doc_stride
        excess = len(query) + len(remaining) + pair_added - max_seq_len
        overflow: List[int] = []
        window = remaining
        if excess > 0:
            first, second = (query, remaining) if question_first else (remaining, query)
            first, second, overflow = tokenizer.truncate_sequences(
                first, second, num_tokens_to_remove=excess,
                truncation_strategy="only_second" if question_first else "only_first", stride=stride)
            window = second if question_first else first
        first, second = (query, window) if question_first else (window, query)
        encoded = tokenizer.prepare_for_model(first, second, padding="max_length", max_length=max_seq_len,
                                              return_token_type_ids=True, return_attention_mask=True)
        paragraph_len = min(len(doc_ids) - start, max_seq_len - len(query) - pair_added)
        offset = len(query) + added if question_first else 0
        token_to_orig_map = {offset + i: word_of_token[start + i] for i in range(paragraph_len)}
        features.append(_feature(tokenizer, encoded, token_to_orig_map, len(query) + added, question_first))
        if not overflow:
            break
        remaining = overflow
    return features


def _feature(tokenizer, encoded: Dict[str, List[int]], token_to_orig_map: Dict[int, int], question_length: int,
             question_first: bool) -> SlowFeature:
    input_ids = list(encoded["input_ids"])
    p_mask = np.ones(len(input_ids), dtype=np.int64)
    if question_first:
        p_mask[question_length:] = 0
    else:
        pad = tokenizer.pad_token_id
        real = len(input_ids) - (len(input_ids) - 1 - input_ids[::-1].index(pad) + 1 if pad in input_ids else 0)
        p_mask[-real:-question_length] = 0
    special = np.asarray(tokenizer.get_special_tokens_mask(input_ids, already_has_special_tokens=True)).nonzero()
    p_mask[special] = 1
    p_mask[input_ids.index(tokenizer.cls_token_id)] = 0  # [CLS] scores the impossible answer
    return SlowFeature(input_ids=input_ids, attention_mask=list(encoded["attention_mask"]),
                       token_type_ids=list(encoded["token_type_ids"]), p_mask=p_mask.tolist(),
                       token_to_orig_map=token_to_orig_map)
