"""Optimizers, learning-rate schedules and gradient clipping."""
from .clip import backward_and_step, clip_grad_norm_, clip_grad_value_
from .optimizer import SGD, Adam, AdamW, Optimizer, RMSprop
from .schedule import (CosineAnnealingLR, ExponentialLR, LambdaLR, LinearLR, LRScheduler,
                       MultiStepLR, OneCycleLR, ReduceLROnPlateau, StepLR)

RMSProp = RMSprop
