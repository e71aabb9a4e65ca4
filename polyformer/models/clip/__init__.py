"""CLIP's preprocessing, which GroupViT uses: `CLIPTokenizer` / `CLIPTokenizerFast`, `CLIPImageProcessor` and
`CLIPProcessor`."""
