"""Knowledge distillation as the DistilBERT paper did it, runnable: `polyformer distill` and

    from polyformer.distillation import distill
    distill(teacher="bert-base-uncased-folder", output_dir="student", data=["corpus.txt"], max_steps=10_000)

The student starts from one teacher layer out of two (`polyformer convert bert-to-distilbert`'s mapping)
and learns from a triple loss: soft targets at temperature T (`losses.distillation_loss`, × T²), masked-LM
cross-entropy (`losses.mlm_loss`) and the cosine between student and teacher last hidden states
(`losses.cosine_loss`), optionally an MSE on them (`losses.hidden_mse_loss`). Dynamic masking
(`masking.mask_tokens`), streamed text (`data`), gradient accumulation, AdamW with linear warmup, bf16
autocast, atomic checkpoints and exact resume (`trainer`), one or many processes (`polyformer.training`).
Importing this package imports torch but not accelerate.
"""

from .losses import cosine_loss, distillation_loss, hidden_mse_loss, mlm_loss
from .masking import mask_tokens
from .models import DistillationError, every_other_layer
from .trainer import DistillationArguments, Distiller, distill

__all__ = ["DistillationArguments", "DistillationError", "Distiller", "cosine_loss", "distill",
           "distillation_loss", "every_other_layer", "hidden_mse_loss", "mask_tokens", "mlm_loss"]
