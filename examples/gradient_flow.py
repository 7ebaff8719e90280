"""Why plain RNNs forget and LSTMs remember: the gradient dL/dh_t of a loss on the last state,
plotted against t, shrinks geometrically back through time for a vanilla RNN (or explodes when its
recurrent weights are large); the LSTM's cell path keeps it alive when the forget gates are near 1.
Gradient clipping tames the exploding case. Writes gradient_flow.png (or the path given).

    python examples/gradient_flow.py [out.png]
"""
import sys

from chainrule.viz.gradient_flow import plot_gradient_flow


def main(path="gradient_flow.png", seq_len=100, clip_steps=200, dpi=110):
    data = plot_gradient_flow(path, seq_len=seq_len, clip_steps=clip_steps, dpi=dpi)
    for label, norms in data["norms"].items():
        print(f"{label:45s} ||dL/dh_1|| / ||dL/dh_{seq_len}|| = {norms[0] / norms[-1]:.3g}")
    for name, run in data["clipping"].items():
        loss = run["loss"]
        print(f"exploding RNN, {name:9s}: loss {loss[0]:.3f} -> {loss[-1]:.3f}"
              if loss[-1] == loss[-1] else f"exploding RNN, {name:9s}: diverged (NaN/inf)")
    print(f"wrote {path}")
    return data


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "gradient_flow.png")
