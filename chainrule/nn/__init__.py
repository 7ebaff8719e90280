"""Layers, losses and the Module system."""
from . import functional, init
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import ModuleDict, ModuleList, Sequential
from .dropout import Dropout
from .linear import Flatten, Identity, Linear
from .loss import (BCEWithLogitsLoss, CrossEntropyLoss, HingeLoss, L1Loss, L2Loss, MSELoss,
                   MultiClassHingeLoss, NLLLoss, ZeroOneLoss)
from .module import Module, count_parameters
from .parameter import Parameter
