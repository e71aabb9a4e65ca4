"""`ZeroShotClassificationPipeline`: classify texts into labels chosen at call time with a model trained on
natural-language inference (task "zero-shot-classification").

    classify = pipeline("zero-shot-classification", model="facebook/bart-large-mnli")
    classify("The match went to extra time.", candidate_labels=["sports", "politics"])
    -> {"sequence": "The match went to extra time.", "labels": ["sports", "politics"], "scores": [0.97, 0.03]}

Each label becomes a hypothesis (`hypothesis_template.format(label)`) paired with the text; the model
runs once per pair (the pairs are the chunks of a `ChunkPipeline`, batched by `batch_size`), and the
entailment logit of each pair scores its label: a softmax over the labels, or, with `multi_label` (or a
single label), a softmax of entailment against contradiction for each label on its own.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Iterator, List, Optional, Sequence, Union

import numpy as np

from .base import ChunkPipeline
from .frameworks import call_parameters, to_numpy

logger = logging.getLogger(__name__)

DEFAULT_TEMPLATE = "This example is {}."


def parse_labels(labels: Union[str, Sequence[str]]) -> List[str]:
    """Candidate labels as a list: a string is split at commas (blanks dropped).

    Raises:
        ValueError: no label is left, or `labels` is not a string or a list of strings.
    """
    if isinstance(labels, str):
        labels = [label.strip() for label in labels.split(",") if label.strip()]
    if not isinstance(labels, (list, tuple)) or not all(isinstance(label, str) for label in labels):
        raise ValueError(f"candidate_labels must be a list of strings or one comma-separated string; got {labels!r}")
    if not labels:
        raise ValueError("candidate_labels must hold at least one label (got none): pass e.g. "
                         "candidate_labels=['sports', 'politics']")
    return list(labels)


class ZeroShotClassificationPipeline(ChunkPipeline):
    """NLI-based zero-shot classification with a sequence-classification model.

    The entailment class is the first `config.label2id` name starting with "entail" (any case); without
    one, the last logit is used, with a warning at construction (4.37's fallback).

    Call options (also accepted by the constructor as defaults):
        candidate_labels: the labels, a list or one comma-separated string (also the second positional
            argument of a call). Required.
        hypothesis_template: the hypothesis for a label, with "{}" where the label goes
            (default "This example is {}.").
        multi_label: score each label on its own (entailment vs contradiction) instead of a softmax over
            the labels. `multi_class` is its deprecated name.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        if self.entailment_id == -1:
            logger.warning("Failed to determine 'entailment' label id from the label2id mapping in the model config. "
                           "Setting to -1. Define a descriptive label2id mapping in the model config to ensure correct "
                           "outputs.")

    @property
    def entailment_id(self) -> int:
        """The id of the first label whose name starts with "entail" (any case); -1 when none does."""
        for label, index in self.model.config.label2id.items():
            if label.lower().startswith("entail"):
                return index
        return -1

    def _sanitize_parameters(self, candidate_labels: Union[str, Sequence[str], None] = None,
                             hypothesis_template: Optional[str] = None, multi_label: Optional[bool] = None,
                             multi_class: Optional[bool] = None):
        if multi_class is not None:
            multi_label = multi_class
            logger.warning("The `multi_class` argument has been deprecated and renamed to `multi_label`. "
                           "`multi_class` will be removed in a future version of Transformers.")
        preprocess_params: Dict[str, Any] = {}
        if candidate_labels is not None:
            preprocess_params["candidate_labels"] = parse_labels(candidate_labels)
        if hypothesis_template is not None:
            preprocess_params["hypothesis_template"] = hypothesis_template
        postprocess_params = {} if multi_label is None else {"multi_label": multi_label}
        return preprocess_params, {}, postprocess_params

    def __call__(self, sequences: Union[str, List[str]], *args: Any, **kwargs: Any) -> Any:
        """Classify a text (or each text of a list) into `candidate_labels` (keyword, or the second
        positional argument). Returns {"sequence", "labels", "scores"} per text, labels best first."""
        if len(args) == 1 and "candidate_labels" not in kwargs:
            kwargs["candidate_labels"] = args[0]
        elif args:
            raise ValueError(f"Unable to understand extra arguments {args}: pass candidate_labels (the only "
                             "positional option) and keyword options")
        return super().__call__(sequences, **kwargs)

    def preprocess(self, inputs: Any, candidate_labels: Optional[List[str]] = None,
                   hypothesis_template: str = DEFAULT_TEMPLATE) -> Iterator[Dict[str, Any]]:
        if candidate_labels is None:
            raise ValueError("zero-shot-classification needs candidate_labels: pass e.g. "
                             "candidate_labels=['sports', 'politics']")
        if not isinstance(inputs, str) or not inputs:
            raise ValueError(f"zero-shot-classification takes a non-empty text (or a list of them) as sequences; got "
                             f"{inputs!r}")
        if not isinstance(hypothesis_template, str) or hypothesis_template.format(candidate_labels[0]) == \
                hypothesis_template:
            raise ValueError(f'The provided hypothesis_template "{hypothesis_template}" was not able to be formatted '
                             "with the target labels. Make sure the passed template includes formatting syntax such "
                             "as {} where the label should go.")
        if self.tokenizer.pad_token is None:
            logger.error("Tokenizer was not supporting padding necessary for zero-shot, attempting to use "
                         "`pad_token=eos_token`")
            self.tokenizer.pad_token = self.tokenizer.eos_token
        for i, label in enumerate(candidate_labels):
            # only_first: the text is cut to fit, never the hypothesis
            encoded = self.tokenizer(inputs, hypothesis_template.format(label), return_tensors=self.framework,
                                     padding=True, truncation="only_first")
            yield {"candidate_label": label, "sequence": inputs, "is_last": i == len(candidate_labels) - 1,
                   **encoded}

    def _forward(self, inputs: Dict[str, Any]) -> Dict[str, Any]:
        model_inputs = {k: inputs[k] for k in self.tokenizer.model_input_names if k in inputs}
        if "use_cache" in call_parameters(self.model):
            model_inputs["use_cache"] = False  # a classifier needs no key/value cache
        outputs = self.model(**model_inputs)
        return {"candidate_label": inputs["candidate_label"], "sequence": inputs["sequence"],
                "logits": outputs.logits}

    def postprocess(self, model_outputs: List[Dict[str, Any]], multi_label: bool = False) -> Dict[str, Any]:
        labels = [output["candidate_label"] for output in model_outputs]
        logits = np.concatenate([to_numpy(output["logits"]) for output in model_outputs])  # (labels, classes)
        entailment = self.entailment_id
        if multi_label or len(labels) == 1:
            contradiction = -1 if entailment == 0 else 0
            pair = logits[:, [contradiction, entailment]]
            scores = np.exp(pair) / np.exp(pair).sum(-1, keepdims=True)
            scores = scores[:, 1]
        else:
            entail = logits[:, entailment]
            scores = np.exp(entail) / np.exp(entail).sum(-1, keepdims=True)
        order = list(reversed(scores.argsort()))
        return {"sequence": model_outputs[0]["sequence"], "labels": [labels[i] for i in order],
                "scores": scores[order].tolist()}
