"""DistilBERT: configuration, tokenizers, PyTorch models, and the BERT -> DistilBERT converter."""
