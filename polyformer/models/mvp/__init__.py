"""MVP: configuration, byte-level BPE tokenizers and the PyTorch encoder-decoder models (with prompts)."""
