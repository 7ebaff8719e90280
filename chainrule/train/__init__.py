"""Training: the one fit/evaluate/predict loop (``Trainer``, under every trainer of
``chainrule.applications``), callbacks, metrics, resumable checkpoints, truncated BPTT and the
learning-rate finder."""
from . import metrics
from .callbacks import (Callback, CSVLogger, EarlyStopping, EpochLog, History, LambdaCallback,
                        LearningRateScheduler, ModelCheckpoint)
from .checkpoint import load_checkpoint, save_checkpoint
from .loop import Trainer, evaluate, fit, predict
from .lr_finder import LRFinderResult, lr_find
from .metrics import (accuracy, classification_report, confusion_matrix, precision_recall_f1,
                      top_k_accuracy, zero_one_loss)

__all__ = ["Trainer", "fit", "evaluate", "predict", "Callback", "History", "EarlyStopping",
           "ModelCheckpoint", "LearningRateScheduler", "CSVLogger", "LambdaCallback", "EpochLog",
           "save_checkpoint", "load_checkpoint", "lr_find", "LRFinderResult", "metrics",
           "accuracy", "top_k_accuracy", "zero_one_loss", "confusion_matrix",
           "precision_recall_f1", "classification_report"]
