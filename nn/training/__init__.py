"""Training: the `Trainer` (mini-batch SGD with an evaluation every
epoch), its configuration, checkpoints, the ``metrics.csv`` log (with its
recovery), progress reporting and the ``xpnet-train`` command line
(`nn.training.cli`, which ``train.py`` wraps).

The model code in ``nn/`` never imports this package; it imports the model.
"""

from nn.training.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from nn.training.config import TrainConfig
from nn.training.data import load_data
from nn.training.health import TrainingDiverged, TrainingNotLearning
from nn.training.record import History, TrainResult
from nn.training.trainer import Trainer

__all__ = [
    "CheckpointError",
    "History",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "TrainingNotLearning",
    "load_checkpoint",
    "load_data",
    "save_checkpoint",
]
