"""GroupViT (Xu et al., 2022): text-supervised semantic segmentation by grouping image tokens."""
