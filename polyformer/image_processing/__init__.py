"""Image preprocessing shared by the families: transforms (transforms.py), `BatchFeature` and the
image-processor base (base.py), and the base of the processors that pair an image processor with a
tokenizer (processor.py). Each family's own image processor and processor live in its folder:
models/clip/ (`CLIPImageProcessor`, also GroupViT's; `CLIPProcessor`), models/idefics/.

Nothing here imports torch at import time (IDEFICS's processor imports it when called).
"""
