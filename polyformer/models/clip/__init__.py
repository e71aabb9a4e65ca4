"""CLIP's preprocessing, which GroupViT uses: `CLIPTokenizer` / `CLIPTokenizerFast` and `CLIPProcessor`."""
