"""Extractive question answering: the span of the context that best answers the question.

`QuestionAnsweringPipeline` tokenizes (question, context) pairs. A context that does not fit `max_seq_len`
tokens next to the question is cut into windows that overlap by `doc_stride` tokens (a fast tokenizer's
overflow; for a slow tokenizer, such as CANINE's, the SQuAD windows of `squad_features`), each window is
one model call (windows of several inputs are batched together), and the answers of all windows compete.
In each window the start and end logits of the context tokens (and of the [CLS] token) are turned into
probabilities; a span's score is P(start) * P(end), for spans of at most `max_answer_len` tokens inside
the context. The best `top_k` spans are mapped back to characters of the context (whole words with
`align_to_words`; with a slow tokenizer, whole whitespace-separated words, as 4.37 does); with
`handle_impossible_answer` the empty answer, scored by the smallest [CLS] x [CLS] probability over the
windows, competes too.
"""

from __future__ import annotations

import logging
import types
import warnings
from collections.abc import Iterable
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from .base import ChunkPipeline, _is_dataset
from .checks import ChoiceError, supported_model_names
from .frameworks import call_parameters, int_tensor, to_numpy
from .squad_features import slow_features

logger = logging.getLogger(__name__)

_WHITESPACE = {" ", "\t", "\r", "\n", "\u202f"}


class SquadExample:
    """One question about one context (as transformers' `SquadExample`, extractive QA).

    Args:
        qas_id: an identifier (unused by the pipeline).
        question_text: the question.
        context_text: the text the answer is taken from.
        answer_text: the known answer, if any.
        start_position_character: the character where the known answer starts, if any.
        title: the context's title (unused by the pipeline).
        answers: known answers (a list of dicts).
        is_impossible: whether the question has no answer in the context.

    The context is split on whitespace into `doc_tokens`; `char_to_word_offset` gives each character's
    word index, and `start_position` / `end_position` the known answer's first and last word (0 when none).
    """

    def __init__(self, qas_id: Any, question_text: str, context_text: str, answer_text: Optional[str],
                 start_position_character: Optional[int], title: Optional[str], answers: Optional[List[Any]] = None,
                 is_impossible: bool = False):
        self.qas_id = qas_id
        self.question_text = question_text
        self.context_text = context_text
        self.answer_text = answer_text
        self.title = title
        self.is_impossible = is_impossible
        self.answers = [] if answers is None else answers
        self.doc_tokens, self.char_to_word_offset = _split_words(context_text)
        self.start_position, self.end_position = 0, 0
        if start_position_character is not None and not is_impossible:
            last = min(start_position_character + len(answer_text) - 1, len(self.char_to_word_offset) - 1)
            self.start_position = self.char_to_word_offset[start_position_character]
            self.end_position = self.char_to_word_offset[last]

    def __repr__(self) -> str:
        return f"SquadExample(question_text={self.question_text!r}, context_text={self.context_text!r})"


def _split_words(text: str) -> Tuple[List[str], List[int]]:
    """Whitespace-separated words, and for each character the index of its word (the previous word for
    whitespace; -1 before the first word)."""
    words: List[str] = []
    word_of_char: List[int] = []
    after_space = True
    for char in text:
        if char in _WHITESPACE:
            after_space = True
        elif after_space:
            words.append(char)
            after_space = False
        else:
            words[-1] += char
        word_of_char.append(len(words) - 1)
    return words, word_of_char


# ---------------------------------------------------------------------------------------------------
# Arguments


class QuestionAnsweringArgumentHandler:
    """Turns the call forms of `QuestionAnsweringPipeline` into a list of `SquadExample`s (or passes a
    generator / dataset through): ``(question=..., context=...)`` with strings or lists, two positional
    strings, one dict or `SquadExample` or a list of them, or ``X=`` / ``data=``."""

    def normalize(self, item: Any) -> SquadExample:
        if isinstance(item, SquadExample):
            return item
        if isinstance(item, dict):
            for key in ("question", "context"):
                if key not in item:
                    raise ChoiceError("You need to provide a dictionary with keys {question:..., context:...}")
                if item[key] is None:
                    raise ValueError(f"`{key}` cannot be None")
                if isinstance(item[key], str) and not item[key]:
                    raise ValueError(f"`{key}` cannot be empty")
            return QuestionAnsweringPipeline.create_sample(**item)
        raise ValueError(f"{item} argument needs to be of type (SquadExample, dict)")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if args:
            if len(args) == 1:
                inputs = args[0]
            elif len(args) == 2 and all(isinstance(arg, str) for arg in args):
                inputs = [{"question": args[0], "context": args[1]}]
            else:
                inputs = list(args)
        elif "X" in kwargs:
            inputs = kwargs["X"]
        elif "data" in kwargs:
            inputs = kwargs["data"]
        elif "question" in kwargs and "context" in kwargs:
            inputs = self._from_question_and_context(kwargs["question"], kwargs["context"])
        else:
            raise ValueError(f"Unknown arguments {kwargs}")
        if isinstance(inputs, types.GeneratorType) or _is_dataset(inputs):
            return inputs  # trusted to yield valid examples
        if isinstance(inputs, dict):
            inputs = [inputs]
        elif isinstance(inputs, Iterable):
            inputs = list(inputs)
        else:
            raise ValueError(f"Invalid arguments {kwargs}")
        return [self.normalize(item) for item in inputs]

    @staticmethod
    def _from_question_and_context(question: Any, context: Any) -> List[Dict[str, Any]]:
        if isinstance(question, list) and isinstance(context, str):
            return [{"question": q, "context": context} for q in question]
        if isinstance(question, list) and isinstance(context, list):
            if len(question) != len(context):
                raise ValueError("Questions and contexts don't have the same lengths")
            return [{"question": q, "context": c} for q, c in zip(question, context)]
        if isinstance(question, str) and isinstance(context, str):
            return [{"question": question, "context": context}]
        raise ValueError("Arguments can't be understood")


# ---------------------------------------------------------------------------------------------------
# Scoring spans


def decode_spans(start: np.ndarray, end: np.ndarray, topk: int, max_answer_len: int,
                 undesired_tokens: np.ndarray) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The `topk` best (start, end) token spans by P(start) * P(end), end >= start and at most
    `max_answer_len` tokens, keeping those whose both ends are allowed (nonzero in `undesired_tokens`,
    which despite its name marks the allowed tokens). Returns (starts, ends, scores), best first."""
    start = start[None] if start.ndim == 1 else start
    end = end[None] if end.ndim == 1 else end
    pairs = start[..., :, None] * end[..., None, :]
    candidates = np.tril(np.triu(pairs), max_answer_len - 1)
    flat = candidates.ravel()
    if topk == 1:
        order = np.array([np.argmax(flat)])
    elif len(flat) < topk:
        order = np.argsort(-flat)
    else:
        best = np.argpartition(-flat, topk)[:topk]
        order = best[np.argsort(-flat[best])]
    starts, ends = np.unravel_index(order, candidates.shape)[1:]
    allowed = undesired_tokens.nonzero()
    keep = np.isin(starts, allowed) & np.isin(ends, allowed)
    starts, ends = starts[keep], ends[keep]
    return starts, ends, candidates[0, starts, ends]


def select_starts_ends(start, end, p_mask, attention_mask, min_null_score: float = 1000000, top_k: int = 1,
                       handle_impossible_answer: bool = False, max_answer_len: int = 15):
    """Start / end logits of one window -> (starts, ends, scores, min_null_score): probabilities over the
    tokens that may be part of an answer (p_mask 0 and attention 1), then `decode_spans`. The null
    answer's score ([CLS] start x [CLS] end) lowers `min_null_score` when `handle_impossible_answer`."""
    allowed = np.abs(np.asarray(p_mask) - 1)
    if attention_mask is not None:
        allowed = allowed & attention_mask
    excluded = allowed == 0
    start = np.where(excluded, -10000.0, np.asarray(start))
    end = np.where(excluded, -10000.0, np.asarray(end))
    start = np.exp(start - start.max(axis=-1, keepdims=True))
    start = start / start.sum()
    end = np.exp(end - end.max(axis=-1, keepdims=True))
    end = end / end.sum()
    if handle_impossible_answer:
        min_null_score = min(min_null_score, (start[0, 0] * end[0, 0]).item())
    start[0, 0] = end[0, 0] = 0.0  # [CLS] is never part of a span
    starts, ends, scores = decode_spans(start, end, top_k, max_answer_len, allowed)
    return starts, ends, scores, min_null_score


# ---------------------------------------------------------------------------------------------------
# The pipeline


class QuestionAnsweringPipeline(ChunkPipeline):
    """Extractive question answering with any `...ForQuestionAnswering` model (task "question-answering").

    Call forms: ``qa(question=..., context=...)`` (strings, or a list of questions with one context or a
    list of contexts), ``qa(question, context)``, ``qa({"question": ..., "context": ...})``, a list of
    such dicts or of `SquadExample`s, ``qa(X=...)`` / ``qa(data=...)``.

    Options (also accepted by the constructor, as defaults):
        top_k (1): how many answers (fewer when the context has fewer spans); `topk` is its old name.
        doc_stride (min(max_seq_len // 2, 128)): tokens shared by consecutive windows of a long context.
        max_answer_len (15): the longest answer, in tokens.
        max_seq_len (min(tokenizer.model_max_length, 384)): tokens per window, question included.
        max_question_len (64): the question's longest length in tokens, with a slow tokenizer (like 4.37,
            unused with a fast one).
        handle_impossible_answer (False): let the empty answer compete.
        align_to_words (True): widen answers to whole words (else exact token offsets).
        padding ("do_not_pad"): the tokenizer's padding of each window (a slow tokenizer's windows are
            always padded to `max_seq_len`, as in 4.37).

    Returns `{"score", "start", "end", "answer"}` (`start` / `end`: character offsets into the context),
    a list of them when `top_k` > 1, and a list of those for several questions.

    Raises:
        ValueError: a missing or empty question / context (a dict without one raises an error that is
            also a KeyError, as in 4.37), `top_k` or `max_answer_len` below 1, `doc_stride` above
            `max_seq_len`.
    """

    default_input_names = "question,context"
    handle_impossible_answer = False

    def __init__(self, model, tokenizer, modelcard=None, framework: Optional[str] = None, task: str = "", **kwargs):
        super().__init__(model=model, tokenizer=tokenizer, modelcard=modelcard, framework=framework, task=task,
                         **kwargs)
        self._args_parser = QuestionAnsweringArgumentHandler()
        self.check_model_type(supported_model_names("ForQuestionAnswering"))

    @staticmethod
    def create_sample(question: Any, context: Any) -> Any:
        """A `SquadExample` for (question, context), or a list of them for lists."""
        if isinstance(question, list):
            return [SquadExample(None, q, c, None, None, None) for q, c in zip(question, context)]
        return SquadExample(None, question, context, None, None, None)

    def _sanitize_parameters(self, padding=None, topk=None, top_k=None, doc_stride=None, max_answer_len=None,
                             max_seq_len=None, max_question_len=None, handle_impossible_answer=None,
                             align_to_words=None, **kwargs):
        preprocess_params = {name: value for name, value in (
            ("padding", padding), ("doc_stride", doc_stride), ("max_question_len", max_question_len),
            ("max_seq_len", max_seq_len)) if value is not None}
        postprocess_params: Dict[str, Any] = {}
        if topk is not None and top_k is None:
            warnings.warn("topk parameter is deprecated, use top_k instead", UserWarning)
            top_k = topk
        if top_k is not None:
            if top_k < 1:
                raise ValueError(f"top_k parameter should be >= 1 (got {top_k})")
            postprocess_params["top_k"] = top_k
        if max_answer_len is not None:
            if max_answer_len < 1:
                raise ValueError(f"max_answer_len parameter should be >= 1 (got {max_answer_len}")
            postprocess_params["max_answer_len"] = max_answer_len
        if handle_impossible_answer is not None:
            postprocess_params["handle_impossible_answer"] = handle_impossible_answer
        if align_to_words is not None:
            postprocess_params["align_to_words"] = align_to_words
        return preprocess_params, {}, postprocess_params

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Answer the question(s); see the class docstring for the call forms, options and result."""
        examples = self._args_parser(*args, **kwargs)
        for name in ("question", "context", "X", "data"):
            kwargs.pop(name, None)
        if isinstance(examples, (list, tuple)) and len(examples) == 1:
            return super().__call__(examples[0], **kwargs)
        return super().__call__(examples, **kwargs)

    # -- the four steps ---------------------------------------------------------------------------------

    def preprocess(self, example: Any, padding: Any = "do_not_pad", doc_stride: Optional[int] = None,
                   max_question_len: int = 64, max_seq_len: Optional[int] = None) -> Iterator[Dict[str, Any]]:
        """One example -> one chunk per window of its context."""
        if isinstance(example, dict):
            example = SquadExample(None, example["question"], example["context"], None, None, None)
        if max_seq_len is None:
            max_seq_len = min(self.tokenizer.model_max_length, 384)
        if doc_stride is None:
            doc_stride = min(max_seq_len // 2, 128)
        if doc_stride > max_seq_len:
            raise ValueError(f"`doc_stride` ({doc_stride}) is larger than `max_seq_len` ({max_seq_len})")
        if not self.tokenizer.is_fast:
            yield from self._slow_chunks(example, max_seq_len, doc_stride, max_question_len)
            return
        question_first = self.tokenizer.padding_side == "right"
        encoded = self.tokenizer(
            text=example.question_text if question_first else example.context_text,
            text_pair=example.context_text if question_first else example.question_text,
            padding=padding, truncation="only_second" if question_first else "only_first",
            max_length=max_seq_len, stride=doc_stride, return_token_type_ids=True,
            return_overflowing_tokens=True, return_offsets_mapping=True, return_special_tokens_mask=True)
        count = len(encoded["input_ids"])
        for span in range(count):
            input_ids = encoded["input_ids"][span]
            # p_mask: 1 where a token cannot be part of an answer (the question, special tokens), but 0 on
            # [CLS], whose logits some models use for "no answer"
            p_mask = [int(sequence != 1) if question_first else 0 for sequence in encoded.sequence_ids(span)]
            if self.tokenizer.cls_token_id is not None:
                for index, token in enumerate(input_ids):
                    if token == self.tokenizer.cls_token_id:
                        p_mask[index] = 0
            chunk = {"example": example, "is_last": span == count - 1}
            for name in ("input_ids", "attention_mask", "token_type_ids"):
                if name in encoded:
                    chunk[name] = int_tensor(self.framework, [encoded[name][span]])
            chunk["p_mask"] = int_tensor(self.framework, [p_mask])
            chunk["encoding"] = encoded[span]
            yield chunk

    def _slow_chunks(self, example: Any, max_seq_len: int, doc_stride: int, max_question_len: int
                     ) -> Iterator[Dict[str, Any]]:
        """The windows of a slow tokenizer (no offsets): 4.37's SQuAD features, see `squad_features`."""
        features = slow_features(self.tokenizer, example, max_seq_len=max_seq_len, doc_stride=doc_stride,
                                 max_question_len=max_question_len)
        for i, feature in enumerate(features):
            chunk = {"example": example, "is_last": i == len(features) - 1,
                     "token_to_orig_map": feature.token_to_orig_map}
            for name in ("input_ids", "attention_mask", "token_type_ids", "p_mask"):
                chunk[name] = int_tensor(self.framework, [getattr(feature, name)])
            yield chunk

    def _forward(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
        model_inputs = {name: inputs[name] for name in self.tokenizer.model_input_names}
        if "use_cache" in call_parameters(self.model):
            model_inputs["use_cache"] = False
        output = self.model(**model_inputs)
        if isinstance(output, dict):
            start, end = output["start_logits"], output["end_logits"]
        else:
            start, end = output[:2]
        return {"start": start, "end": end, **inputs}

    def postprocess(self, model_outputs: List[Dict[str, Any]], top_k: int = 1, handle_impossible_answer: bool = False,
                    max_answer_len: int = 15, align_to_words: bool = True) -> Any:
        min_null_score = 1000000.0  # large and positive
        answers = []
        question_first = self.tokenizer.padding_side == "right"
        sequence_index = 1 if question_first else 0
        for output in model_outputs:
            attention_mask = output.get("attention_mask")
            starts, ends, scores, min_null_score = select_starts_ends(
                to_numpy(output["start"]), to_numpy(output["end"]), to_numpy(output["p_mask"]),
                None if attention_mask is None else to_numpy(attention_mask), min_null_score=min_null_score,
                top_k=top_k, handle_impossible_answer=handle_impossible_answer, max_answer_len=max_answer_len)
            if not self.tokenizer.is_fast:
                answers += self._word_answers(output, starts, ends, scores)
                continue
            # the encoding was not padded; left padding of a batch shifts every position
            shift = 0
            if self.tokenizer.padding_side == "left":
                shift = int((to_numpy(output["input_ids"]) == self.tokenizer.pad_token_id).sum())
            context = output["example"].context_text
            for s, e, score in zip(starts, ends, scores):
                first, last = self.get_indices(output["encoding"], int(s) - shift, int(e) - shift, sequence_index,
                                               align_to_words)
                answers.append({"score": score.item(), "start": first, "end": last, "answer": context[first:last]})
        if handle_impossible_answer:
            answers.append({"score": min_null_score, "start": 0, "end": 0, "answer": ""})
        answers = sorted(answers, key=lambda answer: answer["score"], reverse=True)[:top_k]
        return answers[0] if len(answers) == 1 else answers

    # -- mapping tokens to characters -------------------------------------------------------------------

    @staticmethod
    def _word_answers(output: Dict[str, Any], starts, ends, scores) -> List[Dict[str, Any]]:
        """Answers of a slow tokenizer's window: the context words of the start and end tokens, joined by
        spaces; `start` is the first character of the first word and `end`, as in 4.37, the last character
        of the last word's stretch (the whitespace after it included)."""
        example = output["example"]
        word_of_char = np.array(example.char_to_word_offset)
        token_to_word = output["token_to_orig_map"]
        answers = []
        for s, e, score in zip(starts, ends, scores):
            first, last = token_to_word[int(s)], token_to_word[int(e)]
            answers.append({"score": score.item(), "start": np.where(word_of_char == first)[0][0].item(),
                            "end": np.where(word_of_char == last)[0][-1].item(),
                            "answer": " ".join(example.doc_tokens[first:last + 1])})
        return answers

    def get_indices(self, enc: Any, s: int, e: int, sequence_index: int, align_to_words: bool) -> Tuple[int, int]:
        """Character span of tokens s..e in the context: whole words with `align_to_words` (where the
        tokenizer knows words), else the tokens' own offsets."""
        if align_to_words:
            try:
                first = enc.word_to_chars(enc.token_to_word(s), sequence_index=sequence_index)[0]
                last = enc.word_to_chars(enc.token_to_word(e), sequence_index=sequence_index)[1]
                return first, last
            except Exception:  # noqa: BLE001 - a tokenizer without words: keep to the offsets
                pass
        return enc.offsets[s][0], enc.offsets[e][1]

    def span_to_answer(self, text: str, start: int, end: int) -> Dict[str, Any]:
        """Token positions `start`..`end` of `text` split on spaces (each word tokenized alone) -> the
        answer's words and character span, as `{"answer", "start", "end"}`."""
        words = []
        token_index = char_start = char_end = char_index = 0
        for word in text.split(" "):
            if start <= token_index <= end:
                if token_index == start:
                    char_start = char_index
                if token_index == end:
                    char_end = char_index + len(word)
                words.append(word)
            if token_index > end:
                break
            token_index += len(self.tokenizer.tokenize(word))
            char_index += len(word) + 1
        return {"answer": " ".join(words), "start": max(0, char_start), "end": min(len(text), char_end)}
