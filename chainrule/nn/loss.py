"""Loss modules (callable objects over nn.functional's losses), as in PyTorch."""
from ..ops.loss import check_loss_options
from . import functional as F
from .module import Module


class _Loss(Module):
    fn = None

    def __init__(self, reduction="mean"):
        super().__init__()
        self.reduction = check_loss_options(type(self).__name__, reduction)[0]

    def forward(self, input, target):
        return type(self).fn(input, target, reduction=self.reduction)

    def extra_repr(self):
        return f"reduction={self.reduction!r}"


class L1Loss(_Loss):
    fn = staticmethod(F.l1_loss)


class MSELoss(_Loss):
    fn = staticmethod(F.mse_loss)


class L2Loss(_Loss):
    """Squared error; ``half=True`` is the course's 1/2 (y - y_hat)^2."""

    def __init__(self, reduction="mean", half=False):
        super().__init__(reduction)
        self.half = check_loss_options("L2Loss", reduction, half=half)[3]

    def forward(self, input, target):
        return F.l2_loss(input, target, reduction=self.reduction, half=self.half)


class HingeLoss(_Loss):
    fn = staticmethod(F.hinge_loss)


class MultiClassHingeLoss(_Loss):
    def __init__(self, margin=1.0, reduction="mean"):
        super().__init__(reduction)
        self.margin = check_loss_options("MultiClassHingeLoss", reduction, margin=margin)[2]

    def forward(self, input, target):
        return F.multiclass_hinge_loss(input, target, margin=self.margin, reduction=self.reduction)


class CrossEntropyLoss(_Loss):
    def __init__(self, reduction="mean", label_smoothing=0.0):
        super().__init__(reduction)
        self.label_smoothing = check_loss_options("CrossEntropyLoss", reduction, label_smoothing)[1]

    def forward(self, input, target):
        return F.cross_entropy(input, target, reduction=self.reduction,
                               label_smoothing=self.label_smoothing)


class NLLLoss(_Loss):
    fn = staticmethod(F.nll_loss)


class BCEWithLogitsLoss(_Loss):
    fn = staticmethod(F.binary_cross_entropy_with_logits)


class ZeroOneLoss(_Loss):
    fn = staticmethod(F.zero_one_loss)
