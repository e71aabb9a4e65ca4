"""What a training loop needs beyond the models: data-parallel processes (`parallel`: one process, torchrun
or `accelerate launch`), atomic, resumable checkpoints (`state`) and CSV/JSONL examples (`records`). `polyformer.distillation` and the
fine-tuning examples under examples/ use both; neither imports accelerate unless it is asked for."""

from .parallel import Parallel, setup_parallel
from .records import read_records, shard_batches
from .state import CheckpointError, latest_checkpoint, load_checkpoint, save_checkpoint

__all__ = ["CheckpointError", "Parallel", "latest_checkpoint", "load_checkpoint", "read_records", "save_checkpoint",
           "setup_parallel", "shard_batches"]
