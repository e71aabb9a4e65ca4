"""CANINE (Clark et al., 2021): a tokenizer-free encoder over Unicode code points."""
