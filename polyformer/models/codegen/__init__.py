"""CodeGen: configuration, byte-level BPE tokenizers and PyTorch models (Salesforce's code decoder: GPT-J's block with a fused qkv)."""
