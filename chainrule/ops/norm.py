"""Regularising and normalising ops: dropout."""
from ..autograd import Function
from ..backend import array_namespace


class Dropout(Function):
    """Inverted dropout: zero each element with probability p and scale the survivors by 1/(1-p),
    so that nothing needs rescaling at test time. ``mask`` is drawn by the caller's generator."""
    saves = ()

    def forward(self, a, mask, scale):
        self.m = m = mask * array_namespace(a).asarray(scale, dtype=a.dtype)
        return a * m

    def backward(self, g):
        return g * self.m, None, None


def _csum(a):
    """Per-channel sum of (N, C) or (N, C, L): einsum reduces 2-4x faster than a.sum over
    several axes, and needs no temporary for a product (``_cdot``)."""
    return array_namespace(a).einsum("ncl->c", a) if a.ndim == 3 else a.sum(axis=0)


def _cdot(a, b):
    """Per-channel sum of a * b, without the (N, C, L) temporary."""
    return array_namespace(a).einsum("ncl,ncl->c" if a.ndim == 3 else "nc,nc->c", a, b)


class BatchNorm(Function):
    """Batch normalisation (Ioffe & Szegedy 2015) of (N, C), (N, C, L) or (N, C, H, W) over every
    axis but the channel axis 1, with a fused backward.

    Training: normalise with the batch's mean and (biased) variance and, when running statistics
    are given, update them in place: running = (1 - momentum) running + momentum batch, with the
    unbiased variance, as PyTorch. Evaluation: normalise with the running statistics.
    ``weight``/``bias`` (C,) may be None (no affine transform).
    """
    saves = (0, 1, 3)         # x (eval), weight (training), running mean (eval)

    def forward(self, x, weight, bias, running_mean=None, running_var=None, training=True,
                momentum=0.1, eps=1e-5, name="batch_norm"):
        if x.ndim < 2:
            raise ValueError(f"{name}: expected input (N, C) or (N, C, *), got {x.shape}")
        C = x.shape[1]
        for what, v in (("weight", weight), ("bias", bias), ("running_mean", running_mean),
                        ("running_var", running_var)):
            if v is not None and v.shape != (C,):
                raise ValueError(f"{name}: {what} has shape {v.shape}, expected ({C},) for input "
                                 f"{x.shape} with {C} channels")
        self.shape = x.shape
        # (N, C, *) as (N, C, L): per-channel vectors broadcast as (C, 1); (N, C) stays 2-D
        x = x.reshape(x.shape[0], C, -1) if x.ndim > 2 else x
        self.cshape = cshape = (C, 1) if x.ndim == 3 else (C,)
        self.training, self.weight = training, weight
        dt, xp = x.dtype, array_namespace(x)
        if training:
            m = x.size // C if C else 0
            if m <= 1:
                raise ValueError(f"{name}: expected more than 1 value per channel when training, "
                                 f"got input {self.shape}")
            self.m = m
            mean = _csum(x) / xp.asarray(m, dt)
            xc = x - mean.reshape(cshape)
            var = _cdot(xc, xc) / xp.asarray(m, dt)          # biased: what normalises the batch
            invstd = 1.0 / xp.sqrt(var + xp.asarray(eps, dt))
            if running_mean is not None:
                running_mean[...] = momentum * mean + (1 - momentum) * running_mean
            if running_var is not None:
                running_var[...] = momentum * (var * (m / (m - 1))) + (1 - momentum) * running_var
            xhat = xc
            xhat *= invstd.reshape(cshape)
            self.xhat, self.invstd = xhat, invstd
            y = xhat * weight.reshape(cshape) if weight is not None else xhat.copy()
            if bias is not None:
                y += bias.reshape(cshape)
            return y.reshape(self.shape)
        if running_mean is None or running_var is None:
            raise ValueError(f"{name}: evaluation mode needs running_mean and running_var "
                             f"(or pass training=True to use the batch statistics)")
        # y = x * scale + shift with scale = w / sqrt(var + eps), shift = b - mean * scale
        invstd = (1.0 / xp.sqrt(running_var + eps)).astype(dt, copy=False)
        scale = invstd * weight if weight is not None else invstd
        shift = -running_mean.astype(dt, copy=False) * scale
        if bias is not None:
            shift = shift + bias
        self.x, self.invstd, self.scale, self.mean = x, invstd, scale, running_mean
        y = x * scale.reshape(cshape)
        y += shift.reshape(cshape)
        return y.reshape(self.shape)

    def backward(self, g):
        nx, nw, nb = self.needs_input_grad
        cshape, w = self.cshape, self.weight
        g = g.reshape(g.shape[0], g.shape[1], -1) if g.ndim > 2 else g
        if self.training:
            xhat = self.xhat
            gsum = _csum(g) if (nx or nb) else None                # dL/dbias
            gxsum = _cdot(g, xhat) if (nx or nw) else None         # dL/dweight
            gx = None
            if nx:
                # dL/dx = w invstd / m * (m g - sum(g) - xhat sum(g xhat))
                k = self.invstd * w if w is not None else self.invstd
                inv_m = array_namespace(g).asarray(1.0 / self.m, g.dtype)
                gx = g - (gsum * inv_m).reshape(cshape)
                gx -= xhat * (gxsum * inv_m).reshape(cshape)
                gx *= k.reshape(cshape)
                gx = gx.reshape(self.shape)
            return gx, (gxsum if nw else None), (gsum if nb else None)
        gx = (g * self.scale.reshape(cshape)).reshape(self.shape) if nx else None  # w / sqrt(var + eps)
        gw = None
        if nw:
            xhat = (self.x - self.mean.reshape(cshape)) * self.invstd.reshape(cshape)
            gw = _cdot(g, xhat.astype(g.dtype, copy=False))
        gb = _csum(g) if nb else None
        return gx, gw, gb


def _window_sum(a, before, after):
    """Sum over channels c - before .. c + after of (N, C, *) with zeros outside [0, C)."""
    out = a.copy()
    C = a.shape[1]
    for o in range(1, min(before, C - 1) + 1):
        out[:, o:] += a[:, :-o]
    for o in range(1, min(after, C - 1) + 1):
        out[:, :-o] += a[:, o:]
    return out


class LocalResponseNorm(Function):
    """Local response normalisation across channels (AlexNet's "norm"), as torch.nn.LocalResponseNorm:

        y_c = x_c / (k + alpha / size * sum_{c' = c - size//2}^{c + (size-1)//2} x_c'^2) ^ beta

    on (N, C, *), with zeros beyond the first and last channel.
    """
    saves = ("inputs", "output")

    def forward(self, x, size, alpha=1e-4, beta=0.75, k=1.0, name=None):
        if x.ndim < 3:
            raise ValueError(f"{name or f'local_response_norm(size={size})'}: expected input "
                             f"(N, C, *) with at least 3 dimensions, got {x.shape}")
        if int(size) != size or size < 1:
            raise ValueError(f"{name or 'local_response_norm'}: size must be a positive integer, "
                             f"got {size!r}")
        size = int(size)
        dt, xp = x.dtype, array_namespace(x)
        self.size, self.c = size, xp.asarray(2.0 * alpha * beta / size, dt)
        s = _window_sum(x * x, size // 2, (size - 1) // 2)
        s *= xp.asarray(alpha / size, dt)
        s += xp.asarray(k, dt)
        self.s = s
        self.sp = sp = s ** xp.asarray(-beta, dt)
        self.x = x
        self.y = y = x * sp
        return y

    def backward(self, g):
        if not self.needs_input_grad[0]:
            return None
        # dy_c/dx_j = [c == j] s_j^-beta - 2 alpha beta / size * x_c x_j s_c^(-beta-1) for j in
        # window(c); summing over c is the window sum with the window mirrored
        q = g * self.y
        q /= self.s
        size = self.size
        t = _window_sum(q, (size - 1) // 2, size // 2)
        t *= self.x
        t *= self.c
        gx = g * self.sp
        gx -= t
        return gx
