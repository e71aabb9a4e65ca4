"""What the GroupViT examples share: loading a model folder, or making a tiny random one so that they run
offline in seconds, and a picture drawn with Pillow when no image is given.

A tiny random model gives random answers: what it shows is the plumbing (processor -> GroupViTModel ->
outputs). For real predictions pass a folder holding a real checkpoint and its processor files, e.g. a
download of nvidia/groupvit-gcc-yfcc (config.json, model.safetensors, vocab.json, merges.txt,
preprocessor_config.json).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Optional, Tuple

import torch
from PIL import Image, ImageDraw

from polyformer import CLIPImageProcessor, CLIPProcessor, CLIPTokenizer, GroupViTConfig, GroupViTModel

TINY_DIR = Path(tempfile.gettempdir()) / "polyformer-groupvit-tiny"
SIZE = 32  # the tiny model's image size: 4 x 4 patches of 8 pixels


def clip_alphabet() -> list:
    """The 256 printable stand-ins CLIP's byte-level BPE uses for the byte values, in vocabulary order."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    return [chr(b) for b in printable] + [chr(256 + n) for n in range(256 - len(printable))]


def make_tiny(folder: Path, seed: int = 0) -> None:
    """Save a randomly initialised GroupViT (two grouping stages of 8 and 4 groups) and a CLIP processor whose
    vocabulary is single characters (no merges) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    alphabet = clip_alphabet()
    vocab = alphabet + [c + "</w>" for c in alphabet] + ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({token: i for i, token in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    tokenizer = CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"))
    images = CLIPImageProcessor(size={"shortest_edge": SIZE}, crop_size={"height": SIZE, "width": SIZE})
    CLIPProcessor(image_processor=images, tokenizer=tokenizer).save_pretrained(folder)
    eot = len(vocab) - 1
    config = GroupViTConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, max_position_embeddings=64, bos_token_id=eot - 1, eos_token_id=eot,
                         pad_token_id=eot),
        vision_config=dict(hidden_size=32, intermediate_size=64, depths=[1, 1, 1], num_hidden_layers=3,
                           num_group_tokens=[8, 4, 0], num_output_groups=[8, 4, 4], num_attention_heads=4,
                           image_size=SIZE, patch_size=8),
        projection_dim=16, projection_intermediate_dim=64)
    torch.manual_seed(seed)
    GroupViTModel(config).save_pretrained(folder)


def load(model_dir: Optional[str], tiny_dir: Path = TINY_DIR) -> Tuple[GroupViTModel, CLIPProcessor]:
    """The model and processor saved in `model_dir`; with None, the tiny random ones (made once, in `tiny_dir`)."""
    if model_dir is None:
        model_dir = tiny_dir
        if not (tiny_dir / "config.json").exists():
            print(f"no --model given: saving a tiny random GroupViT in {tiny_dir}")
            make_tiny(tiny_dir)
    model = GroupViTModel.from_pretrained(os.fspath(model_dir)).eval()
    return model, CLIPProcessor.from_pretrained(os.fspath(model_dir))


def open_image(path: Optional[str]) -> Image.Image:
    """The image at `path` as RGB, or a drawn landscape (sky, grass, sun, a house) of 120 x 80 pixels."""
    if path is not None:
        return Image.open(path).convert("RGB")
    image = Image.new("RGB", (120, 80), (135, 190, 235))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 55, 119, 79], fill=(70, 160, 60))
    draw.ellipse([88, 6, 110, 28], fill=(250, 215, 40))
    draw.rectangle([20, 32, 52, 62], fill=(180, 50, 40))
    draw.polygon([(16, 32), (36, 16), (56, 32)], fill=(110, 60, 40))
    return image
