"""`polyformer generate`: streams what model.generate() produces; --infill fills <FILL_ME> back in."""

import shutil
from pathlib import Path

import pytest
import torch

from polyformer import (
    CodeGenConfig,
    CodeGenForCausalLM,
    CodeGenTokenizerFast,
    CodeLlamaTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
)
from polyformer.cli import main

TOKENIZERS = Path(__file__).parent / "fixtures" / "tokenizers"


def test_generate_streams_the_greedy_continuation(tmp_path, capsys):
    tokenizer = CodeGenTokenizerFast(vocab_file=str(TOKENIZERS / "codegen" / "vocab.json"),
                                     merges_file=str(TOKENIZERS / "codegen" / "merges.txt"))
    torch.manual_seed(0)
    model = CodeGenForCausalLM(CodeGenConfig(vocab_size=len(tokenizer), n_layer=2, n_embd=32, n_head=4,
                                             rotary_dim=4, n_positions=64, bos_token_id=0, eos_token_id=0))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    assert main(["generate", str(tmp_path), "def hello(name):", "--max-new-tokens", "6"]) == 0
    printed = capsys.readouterr().out

    ids = tokenizer("def hello(name):", return_tensors="pt")
    expected = model.eval().generate(**ids, max_new_tokens=6, pad_token_id=0)
    assert printed.strip() == tokenizer.decode(expected[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
    assert main(["generate", str(tmp_path), "x", "--num-beams", "2", "--max-new-tokens", "3"]) == 0
    assert main(["generate", str(tmp_path), "x", "--temperature", "0"]) == 1  # clear error, no traceback
    assert "temperature" in capsys.readouterr().err


def test_infill_puts_the_filling_back(tmp_path, capsys):
    shutil.copy(TOKENIZERS / "code_llama" / "tokenizer.model", tmp_path / "tokenizer.model")
    tokenizer = CodeLlamaTokenizer(str(tmp_path / "tokenizer.model"))
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=40,
                                         num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=128))
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    prompt = "def add(a, b):\n    <FILL_ME>\n"
    assert main(["generate", str(tmp_path), prompt, "--infill", "--max-new-tokens", "5"]) == 0
    out = capsys.readouterr().out
    filled = out.split("--- filled in ---\n", 1)[1]

    ids = tokenizer(prompt, return_tensors="pt")  # prefix / suffix / middle tokens
    generated = model.eval().generate(**ids, max_new_tokens=5,
                                      eos_token_id=[model.generation_config.eos_token_id, tokenizer.eot_id])
    middle = tokenizer.decode(generated[0, ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert filled == prompt.replace("<FILL_ME>", middle) + "\n"
    assert main(["generate", str(tmp_path), "no marker", "--infill"]) == 1
