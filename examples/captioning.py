"""Image captioning (one-to-many), as in the course: a ConvNet encodes an image into a feature
vector, which sets the initial state of an LSTM that writes the caption word by word (Vinyals et
al. 2015, "Show and Tell").

The data is generated: 24x24 images of one to three coloured shapes on a 3x3 grid, each with two
captions ("a red circle above a blue square" / "a blue square below a red circle"). The captioner
trains with teacher forcing on 3600 scenes and is scored with corpus BLEU-1..4 on 400 held-out
scenes, decoding greedily and with beam search (3 beams). About 2.5 minutes on two cores
(one BLAS thread; BLEU-4 about 0.8). Writes captioning_samples.png (held-out images, their
captions and the references).

    python examples/captioning.py
    chainrule --threads 1 train-captioner --save captioner.ckpt     # the same from the command line
    chainrule caption scene.png --checkpoint captioner.ckpt
"""
import os
import time

import chainrule as cr
from chainrule.data.captions import CaptionData, build_caption_vocab
from chainrule.data.shapes import make_shapes
from chainrule.models.captioner import Captioner
from chainrule.applications.captioning import evaluate_captioner, fit_captioner


def main(n_scenes=4000, n_test=400, epochs=60, size=24, width=16, hidden=128, out=".",
         progress=True, samples=8):
    cr.set_num_threads(1)                  # small products: one BLAS thread is fastest
    cr.manual_seed(0)
    X, captions, _ = make_shapes(n_scenes, size=size, seed=0)
    data = CaptionData(X, [f"{i:05d}" for i in range(n_scenes)], captions)
    train, test = data.subset(range(n_scenes - n_test)), data.subset(range(n_scenes - n_test, n_scenes))
    vocab = build_caption_vocab(train)
    print(f"{len(train)} training scenes, {len(test)} held-out scenes, {len(vocab)} words: "
          f"{' '.join(vocab.tokens[4:])}")
    model = Captioner(len(vocab), image_size=size, width=width, hidden_size=hidden,
                      pad_index=vocab.pad_index, bos_index=vocab.bos_index,
                      eos_index=vocab.eos_index)
    print(f"captioner: {model.num_parameters()} parameters")
    t0 = time.perf_counter()
    fit_captioner(model, train, vocab, epochs=epochs, batch_size=32, lr=5e-3, seed=0,
                  progress=progress, log=print)
    print(f"trained in {time.perf_counter() - t0:.0f}s")

    results = {}
    for beam in (1, 3):
        scores, hyps = evaluate_captioner(model, test, vocab, beam_size=beam, return_captions=True)
        results[beam] = scores
        name = "greedy" if beam == 1 else f"beam {beam}"
        print(f"held-out BLEU ({name:>6}): " + "  ".join(f"{k}={v:.3f}" for k, v in scores.items()))
    for i in range(min(samples, len(test))):
        print(f"  {hyps[i]!r:<72} references: {test.captions[i]}")
    _plot(test, hyps, samples, os.path.join(out, "captioning_samples.png"))
    return results


def _plot(test, hyps, n, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import textwrap
    n = min(n, len(test))
    fig, axes = plt.subplots(2, (n + 1) // 2, figsize=(2.3 * ((n + 1) // 2), 6.4),
                             constrained_layout=True)
    for ax, i in zip(axes.flat, range(n)):
        ax.imshow(test.images[i].transpose(1, 2, 0), interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(textwrap.fill(hyps[i], 24), fontsize=7)
        ax.set_xlabel(textwrap.fill("ref: " + test.captions[i][0], 28), fontsize=6, color="gray")
    fig.suptitle("Held-out scenes: the captioner's caption (beam 3) above, a reference below",
                 fontsize=8)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return path


if __name__ == "__main__":
    main()
