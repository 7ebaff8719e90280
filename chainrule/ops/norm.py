"""Regularising and normalising ops: dropout."""
import numpy as np

from ..autograd import Function


class Dropout(Function):
    """Inverted dropout: zero each element with probability p and scale the survivors by 1/(1-p),
    so that nothing needs rescaling at test time. ``mask`` is drawn by the caller's generator."""

    def forward(self, a, mask, scale):
        self.m = m = mask * np.asarray(scale, dtype=a.dtype)
        return a * m

    def backward(self, g):
        return g * self.m, None, None
