"""GPT-J: configuration and PyTorch models (EleutherAI's 6B decoder with rotary, parallel-residual blocks)."""
