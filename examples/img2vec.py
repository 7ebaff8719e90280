"""img2vec: a trained ConvNet turns images into feature vectors, and the vectors are good for more
than the task the net was trained on.

Trains LeNet-5 on the digits (training split), then, on the test images, with the 84 features
before its last layer:

1. nearest neighbours by cosine similarity: for a few query images, the 5 most similar test
   images, and over all test images the share of 5 nearest neighbours with the query's label;
2. clustering: k-means (k = 10) on the vectors, scored by purity, against k-means on raw pixels;
3. a grid of queries and their neighbours (img2vec_neighbours.png).

    python examples/img2vec.py
    chainrule similar FOLDER --checkpoint pretrained.ckpt --query IMAGE    # the same on files
"""
import os

import numpy as np

import chainrule as cr
from chainrule import optim
from chainrule.data.datasets import digits_split
from chainrule.models import lenet5
from chainrule.train import Trainer
from chainrule.applications.transfer import (cluster_purity, extract_features, kmeans, nearest_neighbours)


def main(epochs=30, out="."):
    cr.manual_seed(0)
    X_tr, y_tr, X_te, y_te = digits_split(test_fraction=0.2, seed=0, images=True)
    model = lenet5(in_channels=1, num_classes=10, input_size=8)
    Trainer(model, optim.Adam(model.parameters(), lr=1e-3)).fit(
        (X_tr, y_tr), epochs=epochs, batch_size=32, seed=0, progress=False)

    from chainrule.train import predict
    print(f"LeNet-5 test accuracy on the 10 digits: {(predict(model, X_te).argmax(1) == y_te).mean():.3f}")
    feats = extract_features(model, X_te)               # (360, 84): the input of the last Linear
    print(f"features: {feats.shape} from layer {model[-2]!r} (the input of the last Linear)")

    # 1. nearest neighbours (the query itself excluded)
    idx, sims = nearest_neighbours(feats, feats, k=5, exclude=np.arange(len(feats)))
    agree = (y_te[idx] == y_te[:, None]).mean()
    pix_idx, _ = nearest_neighbours(X_te.reshape(len(X_te), -1), X_te.reshape(len(X_te), -1), k=5,
                                    exclude=np.arange(len(X_te)))
    pix_agree = (y_te[pix_idx] == y_te[:, None]).mean()
    print(f"5 nearest neighbours with the query's label: {agree:.3f} with features, "
          f"{pix_agree:.3f} with raw pixels")
    for q in range(3):
        print(f"query {q} (a {y_te[q]}): nearest labels {y_te[idx[q]].tolist()}, "
              f"similarities {np.round(sims[q], 3).tolist()}")

    # 2. clustering
    res = kmeans(feats, 10, n_init=3, seed=0)
    purity = cluster_purity(res.labels, y_te)
    raw = kmeans(X_te.reshape(len(X_te), -1), 10, n_init=3, seed=0)
    print(f"k-means (k=10) purity: {purity:.3f} on features, "
          f"{cluster_purity(raw.labels, y_te):.3f} on raw pixels")

    # 3. a picture of queries and neighbours
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return purity
    queries = [0, 1, 2, 3, 4, 5]
    fig, axes = plt.subplots(len(queries), 6, figsize=(6, len(queries)))
    for r, q in enumerate(queries):
        for c, i in enumerate([q] + idx[q].tolist()):
            ax = axes[r, c]
            ax.imshow(X_te[i, 0], cmap="gray_r")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title("query" if c == 0 else f"{sims[q, c - 1]:.2f}", fontsize=7)
    fig.suptitle("img2vec: each query and its 5 nearest neighbours (cosine similarity)", fontsize=8)
    fig.tight_layout()
    path = os.path.join(out, "img2vec_neighbours.png")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    print(f"wrote {path}")
    return purity


if __name__ == "__main__":
    main()
