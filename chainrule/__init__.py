"""chainrule: deep learning from first principles on NumPy.

>>> import chainrule as cr
>>> from chainrule import nn, optim
>>> model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
"""
import numpy as np

from .autograd import Function, Tensor, enable_grad, is_grad_enabled, no_grad
from .tensor_api import (abs, arange, argmax, cat, clamp, clip, concatenate, exp, from_numpy, full,
                         linspace, log, log_softmax, matmul, max, maximum, mean, min, minimum,
                         ones, ones_like, rand, randint, randn, relu, sigmoid, softmax, split,
                         sqrt, stack, sum, tanh, tensor, where, zeros, zeros_like)
from .backend import (get_default_dtype, get_rng, get_rng_state, manual_seed, set_default_dtype,
                      set_rng_state)
from .gradcheck import GradcheckError, gradcheck
from .io import load, save
from . import nn, optim, data  # noqa: E402
from .fast.registry import get_num_threads, set_num_threads  # noqa: E402  (plugs the fast path in)

float32 = np.float32
float64 = np.float64
int64 = np.int64

__version__ = "0.1.0"
