"""Ask IDEFICS about an image: a prompt that mixes text and an image, answered by generate().

    python examples/idefics_generate.py [--model FOLDER] [--image PATH] [--question "..."]
                                        [--max-new-tokens 16] [--num-beams 1]

IdeficsProcessor turns the prompt  ["User:", image, "<question>\\nAssistant:"]  into input_ids (the image
stands in the text as <fake_token_around_image><image><fake_token_around_image>), attention_mask,
pixel_values (resized and normalised) and image_attention_mask (the tokens after the image see it).
IdeficsForVisionText2Text.generate() encodes the image once and continues the text; the image tokens are
banned from the answer with bad_words_ids.

Without --model a tiny random IDEFICS is made, with the 1000-piece Llama tokenizer of polyformer's tests plus
IDEFICS's two image tokens as the additional vocabulary: its answer is random words, what it shows is the
plumbing. For a real answer pass a folder holding an IDEFICS checkpoint and its processor files (e.g. a
download of HuggingFaceM4/idefics-9b-instruct).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import List, Optional

import torch
from PIL import Image, ImageDraw

from polyformer import (IdeficsConfig, IdeficsForVisionText2Text, IdeficsImageProcessor, IdeficsProcessor,
                        LlamaTokenizerFast)

ROOT = Path(__file__).resolve().parents[1]
TEST_TOKENIZER = ROOT / "tests" / "fixtures" / "tokenizers" / "llama"  # tokenizer.model + tokenizer.json
TINY_DIR = Path(tempfile.gettempdir()) / "polyformer-idefics-tiny"
FAKE, IMAGE = "<fake_token_around_image>", "<image>"


def make_tiny(folder: Path, seed: int = 0) -> None:
    """Save a randomly initialised IDEFICS (2 text layers of width 64, a 2-layer vision tower on 32x32 images
    of 8x8 patches, a perceiver of 4 latents) and its processor (tokenizer, image processor) into `folder`."""
    tokenizer = LlamaTokenizerFast(vocab_file=str(TEST_TOKENIZER / "tokenizer.model"),
                                   tokenizer_file=str(TEST_TOKENIZER / "tokenizer.json"), legacy=True)
    base_vocab = len(tokenizer)
    tokenizer.add_special_tokens({"pad_token": "<unk>", "additional_special_tokens": [FAKE, IMAGE]})
    config = IdeficsConfig(
        vocab_size=base_vocab, additional_vocab_size=2, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
        num_attention_heads=4, alpha_initializer="ones", use_resampler=True,
        vision_config=dict(embed_dim=32, image_size=32, patch_size=8, num_hidden_layers=2, num_attention_heads=4,
                           intermediate_size=64),
        perceiver_config=dict(resampler_n_latents=4, resampler_depth=1, resampler_n_heads=4, resampler_head_dim=8))
    torch.manual_seed(seed)
    IdeficsForVisionText2Text(config).save_pretrained(folder)
    IdeficsProcessor(IdeficsImageProcessor(image_size=config.vision_config.image_size), tokenizer).save_pretrained(folder)


def draw_image() -> Image.Image:
    """A red disc on a blue sky above green grass."""
    image = Image.new("RGB", (64, 48), (90, 140, 230))
    draw = ImageDraw.Draw(image)
    draw.rectangle([0, 34, 63, 47], fill=(40, 160, 60))
    draw.ellipse([22, 8, 42, 28], fill=(220, 30, 30))
    return image


def main(argv: Optional[List[str]] = None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="folder with an IDEFICS checkpoint and its processor files")
    parser.add_argument("--image", help="image file (default: a drawn picture)")
    parser.add_argument("--question", default="What is in the picture?")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    parser.add_argument("--num-beams", type=int, default=1)
    parser.add_argument("--tiny-dir", type=Path, default=TINY_DIR, help="where to save the tiny model (no --model)")
    args = parser.parse_args(argv)

    folder = Path(args.model) if args.model else args.tiny_dir
    if not args.model and not all((folder / name).exists() for name in ("model.safetensors", "tokenizer.json")):
        make_tiny(folder)
    model = IdeficsForVisionText2Text.from_pretrained(folder).eval()
    processor = IdeficsProcessor.from_pretrained(folder)
    image = Image.open(args.image) if args.image else draw_image()
    inputs = processor([["User:", image, f"{args.question}\nAssistant:"]], return_tensors="pt")
    tokenizer = processor.tokenizer
    banned = [[tokenizer.convert_tokens_to_ids(token)] for token in (FAKE, IMAGE)]
    ids = model.generate(**inputs, max_new_tokens=args.max_new_tokens, num_beams=args.num_beams,
                         bad_words_ids=banned, pad_token_id=tokenizer.pad_token_id)
    answer = tokenizer.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)
    print(f"User: <image> {args.question}\nAssistant: {answer}")
    return answer


if __name__ == "__main__":
    main()
