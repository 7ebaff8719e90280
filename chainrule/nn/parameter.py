"""Parameter: a Tensor that a Module registers as learnable."""
from .. import backend
from ..autograd import Tensor, _TENSOR_TYPES, _as_array


class Parameter(Tensor):
    """A learnable tensor: requires grad, and a Module that holds it lists it in ``parameters()``."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        arr = _as_array(data)
        if arr.dtype.kind != "f":
            arr = arr.astype(backend.get_default_dtype())
        super().__init__(arr, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


_TENSOR_TYPES.add(Parameter)
