"""Transfer learning, the course's worked experiment: pretrain LeNet-5 on the digits 0-4, then learn
the digits 5-9 from only 10 labelled images per class, and compare

    (a)  training from scratch on the 50 images,
    (b)  a linear classifier on the pretrained net's frozen top-layer (penultimate) features,
    (b') a linear classifier on its frozen convolutional features ("from a different stage"),
    (c)  fine-tuning every layer, the pretrained ones with a 10x smaller learning rate
         (optimizer parameter groups), and (c') with one learning rate,
    (d)  fine-tuning only the last two layers,

each averaged over 5 seeds (each seed pretrains its own net and draws its own 50 images), as a table
and a bar chart (transfer_digits.png). About a minute on two cores.

    python examples/transfer_digits.py
    chainrule transfer --plot transfer_digits.png          # the same from the command line
"""
import os

from chainrule.applications.transfer_experiment import digits_transfer_experiment


def main(seeds=5, shots=10, pretrain_epochs=20, epochs=60, out="."):
    res = digits_transfer_experiment(seeds=seeds, shots=shots, pretrain_epochs=pretrain_epochs,
                                     epochs=epochs)
    print()
    print(res.table())
    path = res.plot(os.path.join(out, "transfer_digits.png"))
    print(f"wrote {path}")
    return res


if __name__ == "__main__":
    main()
