"""W3: character-level LSTM language model, one full training step, chainrule against PyTorch.

vocabulary 65 -> Embedding 64 -> LSTM(64, 128) -> Linear(128, 65); sequences of T = 64, batch 32,
cross-entropy over all steps, gradient clipping at norm 5, Adam. A step is (zero grad, forward,
backward, clip, update). Both libraries start from the same weights (copied from PyTorch).

    python benchmarks/w3_lstm.py [--repeats 5] [--seconds 1.0]     # = benchmarks/run.py W3

prints ``W3 chainrule=<steps/s> torch=<steps/s> ratio=<chainrule/torch>`` (medians of alternating
rounds). Timings on shared machines are noisy: compare the ratio, measured in one run, and note the
load average printed in the header (other processes on the cores slow both libraries' spinning
BLAS/OpenMP threads). Both libraries run with their default thread settings; ``benchmarks/run.py
--threads 1 --cpu-time`` compares them on one core each.
"""
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import chainrule as cr  # noqa: E402
from chainrule import nn, optim  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402

V, E, H, T, N = 65, 64, 128, 64, 32


def w3(seed=0):
    """Build the W3 model in both libraries; returns (chainrule step, torch step)."""
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


def main(argv=None):
    """The same measurement as ``benchmarks/run.py W3`` (one timing loop for all workloads)."""
    from run import main as run_main
    run_main(["W3"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
