"""`ZeroShotImageClassificationPipeline`: score an image against labels chosen at call time with an
image-text model such as GroupViT (task "zero-shot-image-classification").

    classify = pipeline("zero-shot-image-classification", model="nvidia/groupvit-gcc-yfcc")
    classify("cat.png", candidate_labels=["cat", "dog"])
    -> [{"score": 0.98, "label": "cat"}, {"score": 0.02, "label": "dog"}]

Each label becomes a text (`hypothesis_template.format(label)`); the model's `logits_per_image` over
those texts, through a softmax, are the scores. Images are local paths (or file:// URLs), base64 strings
or PIL images; a web URL raises, as everywhere in polyformer (it downloads nothing but Hub files).
"""

from __future__ import annotations

import base64
import binascii
import io
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import PIL.Image
import PIL.ImageOps

from ..image_processing.base import is_url, open_image
from .base import Pipeline
from .frameworks import to_numpy
from .text_classification import sigmoid, softmax
from .zero_shot_classification import parse_labels

DEFAULT_TEMPLATE = "This is a photo of {}."


def load_image(image: Union[str, os.PathLike, PIL.Image.Image], argument: str = "images") -> PIL.Image.Image:
    """An RGB PIL image (EXIF orientation applied) from a local path, a file:// URL, a base64 string (or
    data:image/... URI) or a PIL image, as 4.37's pipelines load images, without downloads.

    Raises:
        ValueError: a web URL, an unreadable source, or another type; FileNotFoundError: no such file.
    """
    if isinstance(image, (str, os.PathLike)):
        text = os.fspath(image)
        data = _base64_payload(text) if isinstance(text, str) and not os.path.isfile(text) else None
        if data is None:
            image = open_image(text, argument)  # a path or file:// URL; a web URL raises
        else:
            try:
                image = PIL.Image.open(io.BytesIO(data))
            except OSError as err:
                raise ValueError(f"{argument}: the base64 string {text[:40]!r}... is not an image ({err})") from err
    elif not isinstance(image, PIL.Image.Image):
        raise ValueError(f"{argument}: expected a local image path, a base64 string or a PIL image; got "
                         f"{type(image).__name__}")
    image = PIL.ImageOps.exif_transpose(image)
    return image.convert("RGB")


def _base64_payload(text: str) -> Optional[bytes]:
    """The bytes of a base64 string (or data:image/...;base64 URI); None when `text` is not one."""
    if is_url(text) or text.startswith("file://"):
        return None
    payload = text.split(",", 1)[1] if text.startswith("data:image/") else text
    try:
        return base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        return None


class ZeroShotImageClassificationPipeline(Pipeline):
    """Zero-shot image classification with an image-text model (GroupViTModel) and its tokenizer and
    image processor.

    Call options (also accepted by the constructor as defaults):
        candidate_labels: the labels (a list; one string is split at commas). Required.
        hypothesis_template: the text for a label, with "{}" where the label goes
            (default "This is a photo of {}.").
        timeout: accepted for compatibility; polyformer never downloads images.

    Returns, per image: [{"score", "label"}, ...], best first. A list of images gives a list of those.
    """

    def _sanitize_parameters(self, candidate_labels: Union[str, Sequence[str], None] = None,
                             hypothesis_template: Optional[str] = None, timeout: Optional[float] = None):
        preprocess_params: Dict[str, Any] = {}
        if candidate_labels is not None:
            preprocess_params["candidate_labels"] = parse_labels(candidate_labels)
        if hypothesis_template is not None:
            preprocess_params["hypothesis_template"] = hypothesis_template
        return preprocess_params, {}, {}

    def __call__(self, images: Any, *args: Any, **kwargs: Any) -> Any:
        """Score an image (path, base64 string or PIL image) or each image of a list against
        `candidate_labels`."""
        return super().__call__(images, *args, **kwargs)

    def preprocess(self, image: Any, candidate_labels: Optional[List[str]] = None,
                   hypothesis_template: str = DEFAULT_TEMPLATE) -> Dict[str, Any]:
        if candidate_labels is None:
            raise ValueError("zero-shot-image-classification needs candidate_labels: pass e.g. "
                             "candidate_labels=['cat', 'dog']")
        if not isinstance(hypothesis_template, str) or "{" not in hypothesis_template:
            raise ValueError(f"hypothesis_template must be a string with {{}} where the label goes; got "
                             f"{hypothesis_template!r}")
        pixels = self.image_processor(images=[load_image(image)], return_tensors=self.framework)
        texts = [hypothesis_template.format(label) for label in candidate_labels]
        padding = "max_length" if self.model.config.model_type == "siglip" else True
        text_inputs = dict(self.tokenizer(texts, return_tensors=self.framework, padding=padding))
        # the texts are the same for every image of a call: carried as one value, not batched with the images
        return {**pixels, "text_inputs": text_inputs, "candidate_labels": candidate_labels}

    def _forward(self, model_inputs: Dict[str, Any]) -> Dict[str, Any]:
        text_inputs = model_inputs["text_inputs"]
        if isinstance(text_inputs, list):  # a batch: one (identical) entry per image
            text_inputs = text_inputs[0]
        outputs = self.model(**text_inputs, pixel_values=model_inputs["pixel_values"])
        return {"candidate_labels": model_inputs["candidate_labels"], "logits": outputs.logits_per_image}

    def postprocess(self, model_outputs: Dict[str, Any]) -> List[Dict[str, Any]]:
        labels = model_outputs["candidate_labels"]
        logits = to_numpy(model_outputs["logits"])[0]
        scores = sigmoid(logits) if self.model.config.model_type == "siglip" else softmax(logits)
        ranked = sorted(zip(scores.tolist(), labels), key=lambda pair: -pair[0])
        return [{"score": score, "label": label} for score, label in ranked]
