"""Optimizers, learning-rate schedules and gradient clipping."""
from .optimizer import SGD, Adam, AdamW, Optimizer, RMSprop

try:  # schedule.py and clip.py are being written alongside
    from .clip import clip_grad_norm_, clip_grad_value_
    from .schedule import (CosineAnnealingLR, ExponentialLR, LambdaLR, MultiStepLR,
                           ReduceLROnPlateau, StepLR)
except ImportError:
    pass

RMSProp = RMSprop
