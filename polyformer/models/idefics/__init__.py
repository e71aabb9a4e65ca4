"""IDEFICS: configuration (text, vision and perceiver parts), processor and image processor, and the
PyTorch models (a Llama decoder with gated cross-attention to images)."""
