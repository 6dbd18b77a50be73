"""Training: one Accelerate loop for every method, its YAML config, EMA and atomic checkpoints.

```python
from latentlm.training import load_config, train

result = train(load_config("examples/configs/ar-tiny.yaml", ["--output_dir", "runs/ar-tiny", "--max_steps", "100"]))
```
"""

from .checkpointing import TrainState, list_checkpoints, resolve_checkpoint, save_checkpoint
from .config import TrainingConfig, load_config, parse_overrides
from .ema import EMA
from .trainer import TrainResult, evaluate, train


__all__ = [
    "EMA",
    "TrainResult",
    "TrainState",
    "TrainingConfig",
    "evaluate",
    "list_checkpoints",
    "load_config",
    "parse_overrides",
    "resolve_checkpoint",
    "save_checkpoint",
    "train",
]
