"""Dropout (Srivastava et al. 2014), inverted: identity in eval mode."""
from . import functional as F
from .checks import check_probability
from .module import Module


class Dropout(Module):
    def __init__(self, p=0.5):
        super().__init__()
        check_probability("Dropout", p)
        self.p = p

    def forward(self, x):
        return F.dropout(x, self.p, self.training)

    def extra_repr(self):
        return f"p={self.p}"


class Dropout2d(Module):
    """Channel dropout (Tompson et al. 2015): in training, zero whole feature maps of (N, C, H, W)
    (or (N, C, L)) with probability p and scale the kept ones by 1/(1-p); identity in eval mode.
    Neighbouring pixels of a map are strongly correlated, so dropping single pixels regularises
    little; dropping whole channels does."""

    def __init__(self, p=0.5):
        super().__init__()
        check_probability("Dropout2d", p)
        self.p = p

    def forward(self, x):
        return F.dropout2d(x, self.p, self.training, name=f"Dropout2d(p={self.p})")

    def extra_repr(self):
        return f"p={self.p}"
