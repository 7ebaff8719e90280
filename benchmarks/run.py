"""Time full training steps of chainrule and PyTorch (CPU, float32) on the same workloads.

    python benchmarks/run.py            # all workloads
    python benchmarks/run.py W1 W4      # some

Each workload builds the same network in both libraries, then times steps of
(zero grad, forward, backward, update) in alternating rounds, and prints medians:

    <name> chainrule=<steps/s> torch=<steps/s> ratio=<chainrule/torch>

Timings on shared machines are noisy: compare the ratio, measured in one run.
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, HERE)

if "--no-malloc-tuning" in sys.argv:         # must be decided before chainrule is imported
    os.environ["CHAINRULE_MALLOC_TUNING"] = "0"

import chainrule as cr  # noqa: E402
from chainrule import nn, optim  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402

WORKLOADS = {}


def workload(name):
    def register(fn):
        WORKLOADS[name] = fn
        return fn
    return register


def _copy_torch_weights(torch_model, cr_model):
    cr_model.load_state_dict({k: v.detach().numpy() for k, v in torch_model.state_dict().items()})


def _mlp_pair(sizes, batch, lr=0.01, momentum=0.9):
    import torch
    layers_t, layers_c = [], []
    for i in range(len(sizes) - 1):
        layers_t.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        layers_c.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers_t.append(torch.nn.ReLU())
            layers_c.append(nn.ReLU())
    tm, cm = torch.nn.Sequential(*layers_t), nn.Sequential(*layers_c)
    _copy_torch_weights(tm, cm)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((batch, sizes[0])).astype(np.float32)
    y = rng.integers(0, sizes[-1], batch)
    topt = torch.optim.SGD(tm.parameters(), lr=lr, momentum=momentum)
    copt = optim.SGD(cm.parameters(), lr=lr, momentum=momentum)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    xc, yc = cr.tensor(x), cr.tensor(y)

    def torch_step():
        topt.zero_grad()
        loss = torch.nn.functional.cross_entropy(tm(xt), yt)
        loss.backward()
        topt.step()

    def cr_step():
        copt.zero_grad()
        loss = F.cross_entropy(cm(xc), yc)
        loss.backward()
        copt.step()

    return cr_step, torch_step


@workload("W1")
def w1():
    """MLP 784-256-256-10, ReLU, batch 64, SGD momentum 0.9, cross-entropy."""
    return _mlp_pair([784, 256, 256, 10], 64)


@workload("W4")
def w4():
    """MLP 64-32-32-10, batch 32, SGD momentum 0.9, cross-entropy."""
    return _mlp_pair([64, 32, 32, 10], 32)


@workload("W2")
def w2():
    """LeNet-5 on 1x28x28, batch 64: conv 1->6 5x5 pad 2, ReLU, max pool 2, conv 6->16 5x5, ReLU,
    max pool 2, fully connected 400-120-84-10; SGD momentum 0.9, cross-entropy."""
    import torch
    from chainrule.models import lenet5
    tm = torch.nn.Sequential(
        torch.nn.Conv2d(1, 6, 5, padding=2), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 16, 5), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
        torch.nn.Linear(400, 120), torch.nn.ReLU(), torch.nn.Linear(120, 84), torch.nn.ReLU(),
        torch.nn.Linear(84, 10))
    cm = lenet5(1, 10, 28)
    _copy_torch_weights(tm, cm)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 1, 28, 28)).astype(np.float32)
    y = rng.integers(0, 10, 64)
    return _step_pair(cm, tm, x, y, lambda p: optim.SGD(p, lr=0.01, momentum=0.9),
                      lambda p: torch.optim.SGD(p, lr=0.01, momentum=0.9))


V, E, H, T, N = 65, 64, 128, 64, 32         # W3: vocabulary, embedding, hidden, steps, batch


@workload("W3")
def w3(seed=0):
    """Character LSTM language model: vocabulary 65 -> Embedding 64 -> LSTM(64, 128) -> Linear(128,
    65), T = 64, batch 32, cross-entropy over all steps, clip norm 5, Adam; both libraries start
    from the same weights (copied from PyTorch). Returns (chainrule step, torch step)."""
    import torch

    torch.manual_seed(seed)
    t_emb, t_lstm, t_head = torch.nn.Embedding(V, E), torch.nn.LSTM(E, H, batch_first=True), \
        torch.nn.Linear(H, V)
    t_params = list(t_emb.parameters()) + list(t_lstm.parameters()) + list(t_head.parameters())
    c_emb, c_lstm, c_head = nn.Embedding(V, E), nn.LSTM(E, H, batch_first=True), nn.Linear(H, V)
    for tm, cm in ((t_emb, c_emb), (t_lstm, c_lstm), (t_head, c_head)):
        cm.load_state_dict({k: v.detach().numpy() for k, v in tm.state_dict().items()})
    c_params = list(c_emb.parameters()) + list(c_lstm.parameters()) + list(c_head.parameters())
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, V, (N, T + 1))
    x, y = tokens[:, :-1], tokens[:, 1:].reshape(-1)     # predict the next character
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    xc, yc = cr.tensor(x), cr.tensor(y)
    t_opt = torch.optim.Adam(t_params, lr=2e-3)
    c_opt = optim.Adam(c_params, lr=2e-3)

    def torch_step():
        t_opt.zero_grad()
        out, _ = t_lstm(t_emb(xt))
        loss = torch.nn.functional.cross_entropy(t_head(out.reshape(-1, H)), yt)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(t_params, 5.0)
        t_opt.step()
        return loss

    def cr_step():
        c_opt.zero_grad()
        out, _ = c_lstm(c_emb(xc))
        loss = F.cross_entropy(c_head(out.reshape(-1, H)), yc)
        loss.backward()
        optim.clip_grad_norm_(c_params, 5.0)
        c_opt.step()
        return loss

    return cr_step, torch_step


def _step_pair(cm, tm, x, y, make_cr_opt, make_torch_opt):
    import torch
    copt, topt = make_cr_opt(cm.parameters()), make_torch_opt(tm.parameters())
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    xc, yc = cr.tensor(x), cr.tensor(y)

    def torch_step():
        topt.zero_grad()
        torch.nn.functional.cross_entropy(tm(xt), yt).backward()
        topt.step()

    def cr_step():
        copt.zero_grad()
        F.cross_entropy(cm(xc), yc).backward()
        copt.step()

    return cr_step, torch_step


CLOCK = time.perf_counter


def _rate(step, seconds):
    n, t0 = 0, CLOCK()
    while True:
        step()
        n += 1
        t = CLOCK() - t0
        if t >= seconds:
            return n / t


def measure(name, repeats, seconds):
    cr_step, torch_step = WORKLOADS[name]()
    for _ in range(5):       # warm up caches and allocators
        cr_step()
        torch_step()
    cr_rates, torch_rates = [], []
    for _ in range(repeats):  # alternate so that drifts of the machine hit both alike
        cr_rates.append(_rate(cr_step, seconds))
        torch_rates.append(_rate(torch_step, seconds))
    c, t = statistics.median(cr_rates), statistics.median(torch_rates)
    return c, t


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("workloads", nargs="*", help=f"workloads to run (default: all of {sorted(WORKLOADS)})")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds per library (median reported)")
    p.add_argument("--seconds", type=float, default=1.0, help="length of one timed round")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for both libraries (NumPy's BLAS and torch.set_num_threads); "
                        "default: each library's own")
    p.add_argument("--cpu-time", action="store_true",
                   help="count process CPU time instead of wall time: with --threads 1 this is "
                        "robust against other processes on a shared machine")
    p.add_argument("--no-malloc-tuning", action="store_true",
                   help="keep glibc's default malloc thresholds (chainrule raises them when "
                        "imported, for the whole process: see chainrule.fast.tuning.tune_malloc)")
    args = p.parse_args(argv)
    import torch
    global CLOCK
    if args.threads:
        cr.set_num_threads(args.threads)
        torch.set_num_threads(args.threads)
    if args.cpu_time:
        CLOCK = time.process_time
    tuned = cr.fast.tuning.malloc_tuned()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"# numpy {np.__version__}, torch {torch.__version__} (threads {torch.get_num_threads()}), "
          f"cpus {os.cpu_count()}, numpy BLAS threads {cr.get_num_threads()}, "
          f"malloc tuning {'on' if tuned else 'off'}, clock {'cpu' if args.cpu_time else 'wall'}, "
          f"load average {load:.1f} (other processes on the cores distort wall-clock ratios)",
          flush=True)
    for name in args.workloads or sorted(WORKLOADS):
        if name not in WORKLOADS:
            p.error(f"unknown workload {name!r}; known: {sorted(WORKLOADS)}")
        c, t = measure(name, args.repeats, args.seconds)
        print(f"{name} chainrule={c:.1f} torch={t:.1f} ratio={c / t:.2f}", flush=True)


if __name__ == "__main__":
    main()
