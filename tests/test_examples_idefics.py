"""The IDEFICS example (examples/idefics_generate.py) runs end to end on a tiny random model, offline: a prompt
with an image, through IdeficsProcessor, answered by generate() — greedy equal to a step-by-step loop on
forward(), beams, the image tokens banned, the image read through the vision tower once."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
import idefics_generate as example  # noqa: E402
from polyformer import IdeficsForVisionText2Text, IdeficsProcessor  # noqa: E402


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    folder = tmp_path_factory.mktemp("idefics") / "tiny"
    example.make_tiny(folder)
    return folder


def test_answers_the_prompt_with_greedy_generate(tiny, capsys):
    answer = example.main(["--model", str(tiny), "--max-new-tokens", "6"])
    out = capsys.readouterr().out
    assert out.startswith("User: <image> What is in the picture?\nAssistant: ") and out.rstrip("\n").endswith(answer)

    model = IdeficsForVisionText2Text.from_pretrained(tiny).eval()
    processor = IdeficsProcessor.from_pretrained(tiny)
    tokenizer = processor.tokenizer
    inputs = processor([["User:", example.draw_image(), "What is in the picture?\nAssistant:"]])
    assert inputs["pixel_values"].shape == (1, 1, 3, 32, 32)
    image_ids = [tokenizer.convert_tokens_to_ids(t) for t in (example.FAKE, example.IMAGE)]
    assert image_ids == [model.config.vocab_size, model.config.vocab_size + 1]  # the additional vocabulary
    ids, image_mask = inputs["input_ids"], inputs["image_attention_mask"]
    with torch.no_grad():  # greedy, one full forward per token, image tokens banned
        for _ in range(6):
            logits = model(input_ids=ids, pixel_values=inputs["pixel_values"], image_attention_mask=image_mask).logits
            logits[:, -1, image_ids] = float("-inf")
            ids = torch.cat([ids, logits[:, -1].argmax(-1, keepdim=True)], 1)
            image_mask = torch.cat([image_mask, image_mask[:, -1:]], 1)
    assert answer == tokenizer.decode(ids[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True)


def test_beams_and_the_image_is_encoded_once(tiny):
    model = IdeficsForVisionText2Text.from_pretrained(tiny).eval()
    inputs = IdeficsProcessor.from_pretrained(tiny)([["User:", example.draw_image(), "Describe it.\nAssistant:"]])
    runs = []
    hook = model.model.vision_model.register_forward_hook(lambda *_: runs.append(1))
    try:
        ids = model.generate(**inputs, max_new_tokens=5, num_beams=3, num_return_sequences=2, pad_token_id=0)
    finally:
        hook.remove()
    assert runs == [1] and ids.shape == (2, inputs["input_ids"].shape[1] + 5)
    assert example.main(["--model", str(tiny), "--num-beams", "2", "--max-new-tokens", "3"]) is not None


def test_makes_the_tiny_model_when_none_is_given(tmp_path):
    example.main(["--tiny-dir", str(tmp_path / "made"), "--max-new-tokens", "2"])
    assert (tmp_path / "made" / "model.safetensors").exists() and (tmp_path / "made" / "tokenizer.json").exists()
