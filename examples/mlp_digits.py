"""A multi-layer perceptron on scikit-learn's handwritten digits (8x8 images, 10 classes).

Shows the whole loop by hand (forward, loss, backward, update) for one epoch, then the Trainer
for the rest, with validation each epoch and the final test accuracy.

    python examples/mlp_digits.py
"""
import numpy as np

import chainrule as cr
from chainrule import nn, optim
from chainrule.data import ArrayDataset, DataLoader, train_val_split
from chainrule.data.datasets import digits_split
from chainrule.train import Trainer


def main(epochs=40, progress=True):
    cr.manual_seed(0)
    X_train, y_train, X_test, y_test = digits_split(test_fraction=0.2, seed=0)
    X_train, X_val, y_train, y_val = train_val_split(X_train, y_train, val_fraction=0.1, stratify=y_train)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0) + 1e-2   # statistics of the training set only
    X_train, X_val, X_test = ((X - mean) / std for X in (X_train, X_val, X_test))

    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 10))
    print(model, f"\n{model.num_parameters()} learnable parameters")
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)

    # one epoch written out: the four steps of every training iteration
    loader = DataLoader(ArrayDataset(X_train.astype(np.float32), y_train), batch_size=32, shuffle=True, seed=0)
    for x, y in loader:
        logits = model(x)                                   # 1. forward
        loss = nn.functional.cross_entropy(logits, y)       # 2. loss (softmax cross-entropy)
        opt.zero_grad()
        loss.backward()                                     # 3. backward: the chain rule
        opt.step()                                          # 4. update
    print(f"after one epoch by hand: loss {loss.item():.4f}")

    # the rest with the Trainer: progress bar, validation each epoch, history
    trainer = Trainer(model, opt)
    history = trainer.fit((X_train.astype(np.float32), y_train), epochs=epochs - 1,
                          val_data=(X_val.astype(np.float32), y_val), seed=0, progress=progress)
    result = trainer.evaluate((X_test.astype(np.float32), y_test))
    # .get: with epochs=1 the Trainer runs no epoch and records nothing
    print(f"val accuracy per epoch: {np.round(history.history.get('val_accuracy', []), 3).tolist()}")
    print(f"test_accuracy={result['accuracy']:.4f}")
    return result["accuracy"]


if __name__ == "__main__":
    main()
