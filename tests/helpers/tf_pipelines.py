"""The TensorFlow pipeline fixtures (``tests/fixtures/pipelines/tf/``, written by
scripts/fixtures/make_pipeline_tf_fixtures.py): tiny TF checkpoints and what 4.37.2's pipelines returned
with them.

A checkpoint folder there holds only what the TF model adds: ``config.json``, ``tf_model.h5`` (and
``generation_config.json``). Its tokenizer / image-processor files are those of the PyTorch pipeline fixture
it was converted from (``source`` in cases.json), so ``assemble`` builds a complete folder from both. This
module imports neither polyformer nor transformers: the fixture script uses it too.
"""

from __future__ import annotations

import json
import shutil
from functools import lru_cache
from pathlib import Path

PIPELINES = Path(__file__).resolve().parents[1] / "fixtures" / "pipelines"
TF_FIXTURES = PIPELINES / "tf"
BERT_VOCAB = PIPELINES.parent / "tokenizers" / "distilbert" / "vocab.txt"
IMAGES = PIPELINES.parent / "vision" / "images"
WEIGHT_FILES = ("model.safetensors", "tf_model.h5", "pytorch_model.bin", "config.json", "generation_config.json")


@lru_cache(maxsize=None)
def load() -> dict:
    return json.loads((TF_FIXTURES / "cases.json").read_text(encoding="utf-8"))


def assemble(name: str, folder: Path, source: str) -> Path:
    """A complete folder for TF checkpoint `name`: the preprocessor files of the PyTorch fixture `source`
    (plus the BERT vocabulary where that fixture leaves it out), then the TF checkpoint's own files."""
    out = folder / name
    if out.exists():
        return out
    out.mkdir(parents=True)
    for path in (PIPELINES / source).iterdir():
        if path.name not in WEIGHT_FILES:
            shutil.copy(path, out / path.name)
    tokenizer_config = out / "tokenizer_config.json"
    if not (out / "vocab.txt").exists() and "BertTokenizer" in tokenizer_config.read_text(encoding="utf-8"):
        shutil.copy(BERT_VOCAB, out / "vocab.txt")
    checkpoint = TF_FIXTURES / name
    if checkpoint.exists():
        for path in checkpoint.iterdir():
            shutil.copy(path, out / path.name)
    return out


def image_input(value):
    """A recorded image input (``{"image": file, "as": "path" | "pil"}``, or a list of them) as the call's
    argument."""
    if isinstance(value, list):
        return [image_input(v) for v in value]
    path = IMAGES / value["image"]
    if value["as"] == "pil":
        from PIL import Image

        return Image.open(path)
    return str(path)
