"""Micro-benchmark: one convolution's forward + backward, chainrule against PyTorch (CPU, float32),
on LeNet-5's two convolutions (batch 64), and the second one with its 2x2 max pooling (run as one
op, ``ConvMaxPool2d``, as the fast path runs it in nn.Sequential), timed in alternating rounds in
one process.

    python benchmarks/conv_bench.py [--rounds 7] [--reps 50]

Prints per shape: median and best milliseconds of forward+backward for each library and the ratio
torch_time / chainrule_time (>= 1 means chainrule is at least as fast). The first layer's input
needs no gradient (as in training), the second's does.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import chainrule as cr  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402
from chainrule.fast.conv import ConvMaxPool2d  # noqa: E402

SHAPES = [
    # name, x shape, weight shape, padding, input needs grad, 2x2 max pooling after
    ("conv1 1->6 5x5 pad 2 on 64x1x28x28", (64, 1, 28, 28), (6, 1, 5, 5), 2, False, False),
    ("conv2 6->16 5x5 on 64x6x14x14", (64, 6, 14, 14), (16, 6, 5, 5), 0, True, False),
    ("conv2 + max pool 2 (fused)", (64, 6, 14, 14), (16, 6, 5, 5), 0, True, True),
]


def _pair(xs, ws, pad, need_x, pool):
    import torch
    rng = np.random.default_rng(0)
    x = rng.standard_normal(xs).astype(np.float32)
    w = (rng.standard_normal(ws) * 0.1).astype(np.float32)
    b = np.zeros(ws[0], np.float32)
    out = ((xs[2] + 2 * pad - ws[2]) + 1, (xs[3] + 2 * pad - ws[3]) + 1)
    if pool:
        out = (out[0] // 2, out[1] // 2)
    g = rng.standard_normal((xs[0], ws[0]) + out).astype(np.float32)

    xc = cr.Tensor(x, requires_grad=need_x)
    wc, bc = cr.Tensor(w, requires_grad=True), cr.Tensor(b, requires_grad=True)
    xt = torch.tensor(x, requires_grad=need_x)
    wt, bt = torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)
    gt = torch.tensor(g)

    def cr_step():
        wc.grad = bc.grad = xc.grad = None
        if pool:
            ConvMaxPool2d.apply(xc, wc, bc, stride=(1, 1), padding=((pad, pad), (pad, pad)),
                                dilation=(1, 1)).backward(g)
        else:
            F.conv2d(xc, wc, bc, padding=pad).backward(g)

    def torch_step():
        wt.grad = bt.grad = xt.grad = None
        y = torch.nn.functional.conv2d(xt, wt, bt, padding=pad)
        (torch.nn.functional.max_pool2d(y, 2) if pool else y).backward(gt)

    return cr_step, torch_step


def _time(fn, reps):
    ts = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        ts.append(time.perf_counter() - t)
    return ts


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--reps", type=int, default=50)
    args = ap.parse_args(argv)
    for name, xs, ws, pad, need_x, pool in SHAPES:
        cr_step, torch_step = _pair(xs, ws, pad, need_x, pool)
        for f in (cr_step, torch_step):
            _time(f, 10)
        tc, tt = [], []
        for _ in range(args.rounds):
            tc += _time(cr_step, args.reps)
            tt += _time(torch_step, args.reps)
        mc, mt = statistics.median(tc) * 1e3, statistics.median(tt) * 1e3
        bc, bt = min(tc) * 1e3, min(tt) * 1e3
        print(f"{name}: chainrule median={mc:.3f}ms best={bc:.3f}ms  torch median={mt:.3f}ms "
              f"best={bt:.3f}ms  ratio(median)={mt / mc:.2f} ratio(best)={bt / bc:.2f}")


if __name__ == "__main__":
    main()
