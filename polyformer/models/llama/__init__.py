"""Llama and Code Llama: configuration, SentencePiece tokenizers (with Code Llama infilling) and PyTorch models."""
