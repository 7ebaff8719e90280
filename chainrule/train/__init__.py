"""Training: the fit/evaluate/predict loop and its callbacks."""
from .callbacks import Callback, History
from .loop import Trainer, evaluate, fit, predict
