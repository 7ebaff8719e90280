"""The gradient-flow picture (chainrule.viz.gradient_flow): per-step gradients dL/dh_t from
retain_grad match the chain rule written out, vanish / explode / persist as the course says,
clipping keeps an exploding RNN finite, and the PNG is written."""
import numpy as np
import pytest

import chainrule as cr
from chainrule.viz.gradient_flow import (clipping_experiment, hidden_state_gradient_norms,
                                         plot_gradient_flow)


def test_norms_equal_the_product_of_step_jacobians():
    """For h_t = tanh(W_ih x_t + b + W_hh h_{t-1}) and L = <v, h_T>:
    dL/dh_t = dL/dh_{t+1} diag(1 - h_{t+1}^2) W_hh, written out here in NumPy."""
    T, H, D, N = 12, 5, 3, 2
    norms = hidden_state_gradient_norms("rnn", seq_len=T, hidden_size=H, input_size=D,
                                        batch_size=N, seed=4)
    # rebuild the same cell, inputs and v, then run the recursion by hand
    rng = np.random.default_rng(4)
    state = cr.get_rng_state()
    cr.manual_seed(4)
    cell = cr.nn.RNNCell(D, H, dtype="float64")
    cr.set_rng_state(state)
    W_ih, W_hh = cell.weight_ih.data, cell.weight_hh.data
    b = cell.bias_ih.data + cell.bias_hh.data
    x = rng.standard_normal((T, N, D))
    v = rng.standard_normal((N, H))
    hs, h = [], np.zeros((N, H))
    for t in range(T):
        h = np.tanh(x[t] @ W_ih.T + b + h @ W_hh.T)
        hs.append(h)
    g = v
    want = [np.linalg.norm(g)]
    for t in range(T - 1, 0, -1):
        g = (g * (1 - hs[t] ** 2)) @ W_hh
        want.append(np.linalg.norm(g))
    np.testing.assert_allclose(norms, want[::-1], rtol=1e-10)


def test_vanishing_exploding_and_the_lstm_highway():
    T = 40
    ratio = lambda n: n[0] / n[-1]                                   # noqa: E731
    rnn = hidden_state_gradient_norms("rnn", seq_len=T)
    big = hidden_state_gradient_norms("rnn", seq_len=T, recurrent_scale=3.0)
    lstm = hidden_state_gradient_norms("lstm", seq_len=T)
    lstm_f = hidden_state_gradient_norms("lstm", seq_len=T, forget_bias=3.0)
    gru = hidden_state_gradient_norms("gru", seq_len=T)
    assert rnn.shape == (T,) and np.all(np.isfinite(rnn))
    assert ratio(rnn) < 1e-6                                         # vanishes geometrically
    assert ratio(big) > 1e3                                          # explodes
    assert ratio(lstm_f) > 1e-2 and ratio(lstm_f) > 1e4 * ratio(rnn)  # the cell path carries it
    assert ratio(lstm) < ratio(lstm_f)                               # forget gates near 1 matter
    assert np.all(gru > 0)
    # the same seed gives the same numbers
    np.testing.assert_array_equal(rnn, hidden_state_gradient_norms("rnn", seq_len=T))
    # and the global generator is left alone
    cr.manual_seed(1)
    a = cr.randn(3).numpy().copy()
    cr.manual_seed(1)
    hidden_state_gradient_norms("lstm", seq_len=5)
    np.testing.assert_array_equal(cr.randn(3).numpy(), a)


def test_bad_arguments():
    with pytest.raises(ValueError, match="cell must be 'rnn', 'lstm' or 'gru'"):
        hidden_state_gradient_norms("transformer")
    with pytest.raises(ValueError, match="forget_bias applies to the LSTM only"):
        hidden_state_gradient_norms("rnn", forget_bias=1.0)
    with pytest.raises(ValueError, match="seq_len must be >= 1"):
        hidden_state_gradient_norms("rnn", seq_len=0)


def test_clipping_keeps_an_exploding_rnn_finite():
    r = clipping_experiment(max_norm=1.0, steps=30, seq_len=30, recurrent_scale=2.0, lr=0.2)
    un, cl = r["unclipped"], r["clipped"]
    assert np.isnan(un["loss"][-1])                                  # diverged, rest left NaN
    assert np.all(np.isfinite(cl["loss"])) and np.all(np.isfinite(cl["grad_norm"]))
    assert cl["grad_norm"].max() > 1.0                               # clipping had work to do
    assert un["loss"][0] == cl["loss"][0]                            # same start, same batches
    assert cl["max_norm"] == 1.0 and un["max_norm"] is None


def test_plot_writes_a_png_with_three_panels(tmp_path):
    from PIL import Image
    path = tmp_path / "sub" / "gradient_flow.png"
    d = plot_gradient_flow(path, seq_len=12, hidden_size=8, clip_steps=4, dpi=40)
    assert d["path"] == str(path)
    img = Image.open(path)
    assert img.format == "PNG" and img.size == (17 * 40, int(4.8 * 40))
    assert set(d["norms"]) == {"vanilla RNN, tanh, default init",
                               "vanilla RNN, tanh, W_hh = 3 x orthogonal",
                               "LSTM, default init (forget bias 0)", "LSTM, forget-gate bias 3"}
    assert all(len(n) == 12 for n in d["norms"].values())
    assert len(d["clipping"]["clipped"]["loss"]) == 4
