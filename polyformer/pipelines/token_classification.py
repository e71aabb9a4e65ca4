"""Token classification (named-entity recognition): one label per token, or per word / entity.

`TokenClassificationPipeline` tags every token of a text with the model's best label and its softmax
probability, then optionally merges tokens (`aggregation_strategy`):

- "none": one result per token (`entity`, `score`, `index`, `word`, `start`, `end`);
- "simple": adjacent tokens whose labels share a tag (``B-PER`` then ``I-PER``) become one entity
  (`entity_group`, mean `score`, the tokens' text as `word`); a ``B-`` label always starts a new one;
- "first" / "average" / "max" (fast tokenizers only): first tokens are fused into words, a word's label
  being its first token's, the one from its tokens' averaged probabilities, or its most confident
  token's; then words are grouped as in "simple".

Results whose label is in `ignore_labels` (default ``["O"]``) are dropped. With `stride`, a text longer
than the tokenizer's `model_max_length` is tagged in overlapping windows (fast tokenizers); overlapping
entities keep the longer one (the higher score on equal length).

Offsets (`start`, `end`) come from a fast tokenizer; a slow tokenizer (CANINE's, for instance) gives
None for both.
"""

from __future__ import annotations

import enum
import logging
import warnings
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from .base import ChunkPipeline
from .checks import ChoiceError, parse_choice, supported_model_names
from .frameworks import to_numpy
from .text_classification import softmax

logger = logging.getLogger(__name__)


class AggregationStrategy(str, enum.Enum):
    """How `TokenClassificationPipeline` merges tokens: none, simple, first, average, max (see the
    module docstring). A member compares equal to its lower-case name."""

    NONE = "none"
    SIMPLE = "simple"
    FIRST = "first"
    AVERAGE = "average"
    MAX = "max"

    def __str__(self) -> str:  # as transformers' ExplicitEnum formats in messages
        return f"{type(self).__name__}.{self.name}"

    @classmethod
    def parse(cls, value: Any) -> "AggregationStrategy":
        """An AggregationStrategy, or its name in any case ("first", "FIRST")."""
        return parse_choice(cls, value, "aggregation_strategy", error=ChoiceError)


_WORD_STRATEGIES = {AggregationStrategy.FIRST, AggregationStrategy.AVERAGE, AggregationStrategy.MAX}


def _legacy_strategy(grouped_entities: Optional[bool], ignore_subwords: Optional[bool]) -> AggregationStrategy:
    """The strategy the deprecated flags stand for (and their deprecation warnings)."""
    if grouped_entities and ignore_subwords:
        strategy = AggregationStrategy.FIRST
    elif grouped_entities:
        strategy = AggregationStrategy.SIMPLE
    else:
        strategy = AggregationStrategy.NONE
    for flag, value in (("grouped_entities", grouped_entities), ("ignore_subwords", ignore_subwords)):
        if value is not None:
            warnings.warn(f"`{flag}` is deprecated and will be removed in version v5.0.0, defaulted to "
                          f'`aggregation_strategy="{strategy}"` instead.', UserWarning, stacklevel=4)
    return strategy


def _split_tag(label: str) -> Tuple[str, str]:
    """("B" or "I", tag) of a label; a label without a B-/I- prefix continues ("I")."""
    if label.startswith(("B-", "I-")):
        return label[0], label[2:]
    return "I", label


class TokenClassificationPipeline(ChunkPipeline):
    """Named-entity recognition with any `...ForTokenClassification` model (task "token-classification",
    alias "ner").

    Call options (also accepted by the constructor, as defaults):
        aggregation_strategy ("none"): "none", "simple", "first", "average" or "max", or an
            `AggregationStrategy`; the last three need a fast tokenizer.
        ignore_labels (["O"]): labels left out of the results.
        stride (None): tag texts longer than `tokenizer.model_max_length` in windows overlapping by this many
            tokens (fast tokenizer, strategy other than "none").
        offset_mapping (None): character offsets per token, for tokenizers that give none.
        grouped_entities / ignore_subwords: deprecated; (True, True) means "first", (True, False)
            "simple", anything else "none".

    Returns, per text, a list of dicts: `entity` (or `entity_group` when aggregating), `score` (a numpy
    float32), `word`, `start`, `end`, and `index` (the token's position) without aggregation.
    """

    default_input_names = "sequences"

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.check_model_type(supported_model_names("ForTokenClassification"))

    # -- options ----------------------------------------------------------------------------------------

    def _sanitize_parameters(self, ignore_labels=None, grouped_entities: Optional[bool] = None,
                             ignore_subwords: Optional[bool] = None, aggregation_strategy=None,
                             offset_mapping=None, stride: Optional[int] = None):
        preprocess_params: Dict[str, Any] = {}
        postprocess_params: Dict[str, Any] = {}
        if offset_mapping is not None:
            preprocess_params["offset_mapping"] = offset_mapping
        if grouped_entities is not None or ignore_subwords is not None:
            aggregation_strategy = _legacy_strategy(grouped_entities, ignore_subwords)
        if aggregation_strategy is not None:
            aggregation_strategy = AggregationStrategy.parse(aggregation_strategy)
            if aggregation_strategy in _WORD_STRATEGIES and not self.tokenizer.is_fast:
                raise ValueError("Slow tokenizers cannot handle subwords. Please set the `aggregation_strategy` "
                                 'option to `"simple"` or use a fast tokenizer.')
            postprocess_params["aggregation_strategy"] = aggregation_strategy
        if ignore_labels is not None:
            postprocess_params["ignore_labels"] = ignore_labels
        if stride is not None:
            preprocess_params["tokenizer_params"] = self._stride_params(stride, aggregation_strategy)
        return preprocess_params, {}, postprocess_params

    def _stride_params(self, stride: int, aggregation_strategy: Optional[AggregationStrategy]) -> Dict[str, Any]:
        if stride >= self.tokenizer.model_max_length:
            raise ValueError("`stride` must be less than `tokenizer.model_max_length` (or even lower if the "
                             "tokenizer adds special tokens)")
        if aggregation_strategy == AggregationStrategy.NONE:
            raise ValueError("`stride` was provided to process all the text but `aggregation_strategy="
                             f'"{aggregation_strategy}"`, please select another one instead.')
        if not self.tokenizer.is_fast:
            raise ValueError("`stride` was provided to process all the text but you're using a slow tokenizer. "
                             "Please use a fast tokenizer.")
        return {"return_overflowing_tokens": True, "padding": True, "stride": stride}

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:
        """Tag one text (a list of dicts back) or a list of texts (a list of such lists). See the class
        docstring for the options and the result."""
        if isinstance(inputs, tuple):
            inputs = list(inputs)
        if isinstance(inputs, list):
            if not inputs:
                raise ValueError("At least one input is required.")
            count = len(inputs)
        elif isinstance(inputs, str):
            count = 1
        elif isinstance(inputs, Iterator):
            return super().__call__(inputs, **kwargs)
        else:
            raise ValueError("At least one input is required.")
        offset_mapping = kwargs.get("offset_mapping")
        if offset_mapping:
            if isinstance(offset_mapping, list) and isinstance(offset_mapping[0], tuple):
                offset_mapping = [offset_mapping]
                kwargs["offset_mapping"] = offset_mapping
            if len(offset_mapping) != count:
                raise ValueError("offset_mapping should have the same batch size as the input")
        return super().__call__(inputs, **kwargs)

    # -- the four steps ---------------------------------------------------------------------------------

    def preprocess(self, sentence: str, offset_mapping=None, tokenizer_params=None) -> Iterator[Dict[str, Any]]:
        """One text -> one chunk, or with `stride` one chunk per window."""
        max_length = self.tokenizer.model_max_length
        encoded = self.tokenizer(sentence, return_tensors=self.framework,
                                 truncation=bool(max_length and max_length > 0), return_special_tokens_mask=True,
                                 return_offsets_mapping=self.tokenizer.is_fast, **(tokenizer_params or {}))
        tensors = {k: v for k, v in encoded.items() if k != "overflow_to_sample_mapping"}
        count = len(tensors["input_ids"])
        for i in range(count):
            chunk = {k: v[i:i + 1] for k, v in tensors.items()}
            if offset_mapping is not None:
                chunk["offset_mapping"] = offset_mapping
            chunk["sentence"] = sentence
            chunk["is_last"] = i == count - 1
            yield chunk

    def _forward(self, model_inputs: Dict[str, Any]) -> Dict[str, Any]:
        carried = {k: model_inputs.pop(k) for k in ("special_tokens_mask", "offset_mapping", "sentence")
                   if k in model_inputs}
        carried.setdefault("offset_mapping", None)
        output = self.model(**model_inputs)
        logits = output["logits"] if isinstance(output, dict) else output[0]
        return {"logits": logits, **carried, **model_inputs}

    def postprocess(self, all_outputs: List[Dict[str, Any]], aggregation_strategy=AggregationStrategy.NONE,
                    ignore_labels: Optional[List[str]] = None) -> List[Dict[str, Any]]:
        if ignore_labels is None:
            ignore_labels = ["O"]
        aggregation_strategy = AggregationStrategy.parse(aggregation_strategy)
        entities = []
        for outputs in all_outputs:
            offsets = outputs["offset_mapping"]
            pre_entities = self.gather_pre_entities(
                sentence=outputs["sentence"], input_ids=to_numpy(outputs["input_ids"])[0],
                scores=softmax(to_numpy(outputs["logits"])[0]),
                offset_mapping=None if offsets is None else _offsets_list(offsets),
                special_tokens_mask=to_numpy(outputs["special_tokens_mask"])[0],
                aggregation_strategy=aggregation_strategy)
            for entity in self.aggregate(pre_entities, aggregation_strategy):
                if entity.get("entity") not in ignore_labels and entity.get("entity_group") not in ignore_labels:
                    entities.append(entity)
        if len(all_outputs) > 1:
            entities = self.aggregate_overlapping_entities(entities)
        return entities

    # -- steps of postprocess ---------------------------------------------------------------------------

    def _word_aware(self) -> bool:
        """Whether the tokenizer marks word continuations (WordPiece "##"): then a token is a subword when
        its text differs in length from the characters it covers."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None) if self.tokenizer.is_fast else None
        return bool(backend is not None and getattr(backend.model, "continuing_subword_prefix", None))

    def gather_pre_entities(self, sentence: str, input_ids: np.ndarray, scores: np.ndarray,
                            offset_mapping: Optional[List[Tuple[int, int]]], special_tokens_mask: np.ndarray,
                            aggregation_strategy: AggregationStrategy) -> List[Dict[str, Any]]:
        """One dict per non-special token: its token text (`word`), probabilities (`scores`), character
        span, position (`index`) and whether it continues the previous token's word (`is_subword`)."""
        word_aware = self._word_aware()
        if offset_mapping is not None and not word_aware and aggregation_strategy in _WORD_STRATEGIES:
            warnings.warn("Tokenizer does not support real words, using fallback heuristic", UserWarning)
        pre_entities = []
        for index, token_scores in enumerate(scores):
            if special_tokens_mask[index]:
                continue
            token_id = int(input_ids[index])
            word = self.tokenizer.convert_ids_to_tokens(token_id)
            start = end = None
            is_subword = False
            if offset_mapping is not None:
                start, end = (int(x) for x in offset_mapping[index])
                covered = sentence[start:end]
                if word_aware:
                    is_subword = len(word) != len(covered)
                else:  # a heuristic: a token glued to the previous character continues its word
                    is_subword = start > 0 and " " not in sentence[start - 1:start + 1]
                if token_id == self.tokenizer.unk_token_id:
                    word, is_subword = covered, False
            pre_entities.append({"word": word, "scores": token_scores, "start": start, "end": end,
                                 "index": index, "is_subword": is_subword})
        return pre_entities

    def aggregate(self, pre_entities: List[Dict[str, Any]], aggregation_strategy: AggregationStrategy
                  ) -> List[Dict[str, Any]]:
        """Token (or, for the word strategies, word) entities; grouped unless the strategy is "none"."""
        if aggregation_strategy in (AggregationStrategy.NONE, AggregationStrategy.SIMPLE):
            entities = []
            for pre in pre_entities:
                best = pre["scores"].argmax()
                entities.append({"entity": self.model.config.id2label[int(best)], "score": pre["scores"][best],
                                 "index": pre["index"], "word": pre["word"], "start": pre["start"],
                                 "end": pre["end"]})
        else:
            entities = self.aggregate_words(pre_entities, aggregation_strategy)
        if aggregation_strategy == AggregationStrategy.NONE:
            return entities
        return self.group_entities(entities)

    def aggregate_word(self, entities: List[Dict[str, Any]], aggregation_strategy: AggregationStrategy
                       ) -> Dict[str, Any]:
        """One word's tokens -> one entity, labelled by the word strategy."""
        if aggregation_strategy == AggregationStrategy.FIRST:
            scores = entities[0]["scores"]
        elif aggregation_strategy == AggregationStrategy.MAX:
            scores = max(entities, key=lambda entity: entity["scores"].max())["scores"]
        elif aggregation_strategy == AggregationStrategy.AVERAGE:
            scores = np.nanmean(np.stack([entity["scores"] for entity in entities]), axis=0)
        else:
            raise ValueError(f"aggregate_word takes the first, average or max strategy, got {aggregation_strategy}")
        best = scores.argmax()
        return {"entity": self.model.config.id2label[int(best)], "score": scores[best],
                "word": self.tokenizer.convert_tokens_to_string([entity["word"] for entity in entities]),
                "start": entities[0]["start"], "end": entities[-1]["end"]}

    def aggregate_words(self, entities: List[Dict[str, Any]], aggregation_strategy: AggregationStrategy
                        ) -> List[Dict[str, Any]]:
        """Tokens -> words (a word is a token and the subword tokens after it), one entity each."""
        if aggregation_strategy not in _WORD_STRATEGIES:
            raise ValueError("NONE and SIMPLE strategies are invalid for word aggregation")
        words: List[List[Dict[str, Any]]] = []
        for entity in entities:
            if words and entity["is_subword"]:
                words[-1].append(entity)
            else:
                words.append([entity])
        return [self.aggregate_word(word, aggregation_strategy) for word in words]

    def group_sub_entities(self, entities: List[Dict[str, Any]]) -> Dict[str, Any]:
        """Adjacent entities of one tag -> one `entity_group` with their mean score."""
        return {"entity_group": entities[0]["entity"].split("-", 1)[-1],
                "score": np.mean(np.nanmean([entity["score"] for entity in entities])),
                "word": self.tokenizer.convert_tokens_to_string([entity["word"] for entity in entities]),
                "start": entities[0]["start"], "end": entities[-1]["end"]}

    def get_tag(self, entity_name: str) -> Tuple[str, str]:
        return _split_tag(entity_name)

    def group_entities(self, entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Group runs of entities with the same tag; a "B-" label starts a new group."""
        groups: List[List[Dict[str, Any]]] = []
        for entity in entities:
            if groups:
                bi, tag = _split_tag(entity["entity"])
                if tag == _split_tag(groups[-1][-1]["entity"])[1] and bi != "B":
                    groups[-1].append(entity)
                    continue
            groups.append([entity])
        return [self.group_sub_entities(group) for group in groups]

    def aggregate_overlapping_entities(self, entities: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Entities of overlapping windows, sorted by start; of two that overlap, the longer one (on equal
        length the higher score) stays."""
        if not entities:
            return entities
        entities = sorted(entities, key=lambda entity: entity["start"])
        kept = []
        current = entities[0]
        for entity in entities:
            if current["start"] <= entity["start"] < current["end"]:
                length, current_length = entity["end"] - entity["start"], current["end"] - current["start"]
                if length > current_length or (length == current_length and entity["score"] > current["score"]):
                    current = entity
            else:
                kept.append(current)
                current = entity
        kept.append(current)
        return kept


def _offsets_list(offsets: Any) -> List[Tuple[int, int]]:
    """A chunk's offsets (a (1, T, 2) tensor, or a user's list of (start, end) per text) as a list."""
    if hasattr(offsets, "shape"):  # a torch / tf tensor or a numpy array
        offsets = to_numpy(offsets).tolist()
    if offsets and isinstance(offsets[0], list) and offsets[0] and isinstance(offsets[0][0], (list, tuple)):
        offsets = offsets[0]
    return [tuple(pair) for pair in offsets]


NerPipeline = TokenClassificationPipeline
