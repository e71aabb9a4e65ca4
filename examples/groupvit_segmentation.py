"""Text-driven semantic segmentation with GroupViT: every pixel labelled with the text that fits it best.

    python examples/groupvit_segmentation.py [--model FOLDER] [--image PATH] [--labels sky grass ...]
                                             [--output segmentation.png]

`output_segmentation=True` gives `segmentation_logits` (images, texts, H, W): each final group of image
tokens is scored against every text and spread over the pixels it was assigned. The image is resized on
its shortest edge without cropping, so the model sees all of it (interpolate_pos_encoding=True adapts the
position embeddings to its shape); the logits are resized to the original image, the argmax over texts
gives a label per pixel, and each label gets a colour in the saved PNG.
Without --model a tiny random model is made (a random map); without --image a picture is drawn.
"""

from __future__ import annotations

import argparse
import colorsys
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from groupvit_tiny import TINY_DIR, load, open_image  # noqa: E402

LABELS = ["sky", "grass", "sun", "house"]


def palette(n: int) -> np.ndarray:
    """n distinct RGB colours (hues spread around the circle), (n, 3) uint8."""
    return np.array([[round(255 * c) for c in colorsys.hsv_to_rgb(i / n, 0.75, 0.95)] for i in range(n)], dtype=np.uint8)


def main(argv: Optional[List[str]] = None) -> Dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="folder with a GroupViT model and its CLIP processor files")
    parser.add_argument("--image", help="image file (default: a drawn landscape)")
    parser.add_argument("--labels", nargs="+", default=LABELS, help="one text per class")
    parser.add_argument("--output", type=Path, default=Path("segmentation.png"), help="the PNG to write")
    parser.add_argument("--tiny-dir", type=Path, default=TINY_DIR, help="where to save the tiny model (no --model)")
    args = parser.parse_args(argv)

    model, processor = load(args.model, args.tiny_dir)
    image = open_image(args.image)
    inputs = processor(text=args.labels, images=image, return_tensors="pt", padding=True, do_center_crop=False)
    with torch.no_grad():
        out = model(**inputs, output_segmentation=True, interpolate_pos_encoding=True)
    logits = F.interpolate(out.segmentation_logits, size=(image.height, image.width), mode="bilinear",
                           align_corners=False)  # (1, texts, H, W)
    labels = logits[0].argmax(dim=0).numpy()  # (H, W) text index per pixel
    Image.fromarray(palette(len(args.labels))[labels]).save(args.output)

    shares = {label: float((labels == i).mean()) for i, label in enumerate(args.labels)}
    print(f"wrote {args.output} ({image.width}x{image.height})")
    for (label, share), colour in zip(shares.items(), palette(len(args.labels))):
        print(f"  {label:<20} {share:6.1%} of the pixels, colour #{bytes(colour).hex()}")
    return shares


if __name__ == "__main__":
    main()
