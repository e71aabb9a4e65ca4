"""Zero-shot image classification with GroupViT: which of several texts fits an image best.

    python examples/groupvit_zero_shot.py [--model FOLDER] [--image PATH] [--labels "a cat" "a dog" ...]

The processor tokenizes the labels and resizes / normalises the image; GroupViTModel scores every
(image, text) pair; a softmax over `logits_per_image` turns the scores into probabilities, printed as a
ranking. Without --model a tiny random model is made (random ranking); without --image a picture is drawn.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from groupvit_tiny import TINY_DIR, load, open_image  # noqa: E402

LABELS = ["a photo of a cat", "a photo of a dog", "a drawing of a house", "a sunny landscape"]


def main(argv: Optional[List[str]] = None) -> List[Tuple[str, float]]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="folder with a GroupViT model and its CLIP processor files")
    parser.add_argument("--image", help="image file (default: a drawn landscape)")
    parser.add_argument("--labels", nargs="+", default=LABELS, help="candidate texts")
    parser.add_argument("--tiny-dir", type=Path, default=TINY_DIR, help="where to save the tiny model (no --model)")
    args = parser.parse_args(argv)

    model, processor = load(args.model, args.tiny_dir)
    inputs = processor(text=args.labels, images=open_image(args.image), return_tensors="pt", padding=True)
    with torch.no_grad():
        logits = model(**inputs).logits_per_image  # (images, texts)
    probs = logits.softmax(dim=-1)[0]
    ranking = sorted(zip(args.labels, probs.tolist()), key=lambda pair: -pair[1])
    for rank, (label, p) in enumerate(ranking, 1):
        print(f"{rank}. {p:6.1%}  {label}")
    return ranking


if __name__ == "__main__":
    main()
