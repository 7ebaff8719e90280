"""Weight initialisers. Each fills a tensor in place from chainrule's global generator and returns it."""
import math

from .. import backend, checks


def _fill(t, values):
    t.data[...] = values
    return t


def calculate_fan_in_and_fan_out(t):
    """fan_in / fan_out of a weight: (out, in) for Linear, (out, in/groups, *kernel) for conv."""
    shape = t.shape
    if len(shape) < 2:
        raise ValueError(f"fan in and fan out need a tensor with at least 2 dimensions, got {shape}")
    receptive = math.prod(shape[2:])
    return shape[1] * receptive, shape[0] * receptive


def calculate_gain(nonlinearity, param=None):
    """The gain PyTorch uses for each nonlinearity (e.g. sqrt(2) for relu)."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv_transpose2d", "sigmoid"):
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        return math.sqrt(2.0 / (1 + slope ** 2))
    if nonlinearity == "selu":
        return 3.0 / 4
    raise ValueError(f"calculate_gain: unknown nonlinearity {nonlinearity!r}")


def uniform_(t, a=0.0, b=1.0):
    a, b = checks.real("uniform_", "a", a), checks.real("uniform_", "b", b)
    if a > b:
        checks.fail("uniform_", "b", f"a number >= a = {a!r}", b)
    return _fill(t, backend.get_rng().uniform(a, b, t.shape))


def normal_(t, mean=0.0, std=1.0):
    mean, std = checks.real("normal_", "mean", mean), checks.real("normal_", "std", std, 0)
    return _fill(t, backend.get_rng().normal(mean, std, t.shape))


def small_gaussian_(t, std=0.001):
    """The classic course recipe: ``W = np.random.randn(D, H) * 0.001``."""
    return normal_(t, 0.0, std)


def zeros_(t):
    return _fill(t, 0)


def ones_(t):
    return _fill(t, 1)


def constant_(t, value):
    return _fill(t, value)


def xavier_uniform_(t, gain=1.0):
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    gain = checks.real("xavier_uniform_", "gain", gain, 0)
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    a = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(t, -a, a)


def xavier_normal_(t, gain=1.0):
    gain = checks.real("xavier_normal_", "gain", gain, 0)
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    return normal_(t, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)))


def _fan(t, mode):
    fan_in, fan_out = calculate_fan_in_and_fan_out(t)
    checks.choice("kaiming init", "mode", mode, ("fan_in", "fan_out"))
    return fan_in if mode == "fan_in" else fan_out


def kaiming_uniform_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    """He et al. (2015): U(-b, b) with b = gain * sqrt(3 / fan)."""
    a = checks.real("kaiming_uniform_", "a", a)
    bound = calculate_gain(nonlinearity, a) * math.sqrt(3.0 / _fan(t, mode))
    return uniform_(t, -bound, bound)


def kaiming_normal_(t, a=0.0, mode="fan_in", nonlinearity="leaky_relu"):
    a = checks.real("kaiming_normal_", "a", a)
    std = calculate_gain(nonlinearity, a) / math.sqrt(_fan(t, mode))
    return normal_(t, 0.0, std)


def default_linear_init_(weight, bias):
    """PyTorch's default for Linear and conv layers: kaiming_uniform(a=sqrt(5)) for the weight,
    i.e. U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and the same bound for the bias."""
    kaiming_uniform_(weight, a=math.sqrt(5))
    if bias is not None:
        fan_in, _ = calculate_fan_in_and_fan_out(weight)
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        uniform_(bias, -bound, bound)
