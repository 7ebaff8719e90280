"""Layers, losses and the Module system: ``Module`` and ``Parameter``; layers (Linear, Conv,
pooling, recurrent, Embedding, normalisation, Dropout) that hold parameters and call their
functional form in ``nn.functional``; loss modules; ``init`` (initialisers); ``checks`` (the input
checks a layer and its function share); ``utils_rnn`` (padding, masks); ``summary``.
"""
from . import checks, functional, init
from .activation import LeakyReLU, LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from .container import ModuleDict, ModuleList, Sequential
from .dropout import Dropout, Dropout2d
from .linear import Flatten, Identity, Linear
from .loss import (BCEWithLogitsLoss, CrossEntropyLoss, HingeLoss, L1Loss, L2Loss, MSELoss,
                   MultiClassHingeLoss, NLLLoss, ZeroOneLoss)
from .module import Module, count_parameters
from .parameter import Parameter
from .recurrent import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from .embedding import Embedding
from .conv import Conv1d, Conv2d, ConvTranspose2d, LocallyConnected2d
from .pool import (AdaptiveAvgPool2d, AvgPool1d, AvgPool2d, GlobalAvgPool2d, MaxPool1d,
                   MaxPool2d)
from .norm import BatchNorm1d, BatchNorm2d, LocalResponseNorm
from . import utils_rnn
