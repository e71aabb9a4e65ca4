"""Image preprocessing: shared transforms (transforms.py), `BatchFeature` and the image-processor base
(base.py), `CLIPImageProcessor` (clip.py, also GroupViT's), `IdeficsImageProcessor` (idefics.py) and
the base of the processors that pair an image processor with a tokenizer (processor.py).

Nothing here imports torch at import time (IDEFICS's processor imports it when called).
"""
