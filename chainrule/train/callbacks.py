"""Callbacks: hooks into the fit loop, in Keras' shape (History is one of them)."""


class Callback:
    """Subclass and override any of the hooks; ``self.trainer`` is set before training starts.

    ``logs`` is a dict of the numbers known at that point (loss, accuracy, val_loss, lr ...).
    Set ``self.trainer.stop_training = True`` to end training after the current epoch.
    """

    trainer = None

    def set_trainer(self, trainer):
        self.trainer = trainer

    def on_train_begin(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_batch_end(self, step, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass


class History(Callback):
    """Per-epoch numbers: ``history.history['val_accuracy'][-1]``, ``history.epoch``."""

    def __init__(self):
        self.epoch = []
        self.history = {}

    def on_epoch_end(self, epoch, logs=None):
        self.epoch.append(epoch)
        for k, v in (logs or {}).items():
            self.history.setdefault(k, []).append(v)

    def __getitem__(self, key):
        return self.history[key]

    def __repr__(self):
        last = {k: round(v[-1], 4) for k, v in self.history.items() if v}
        return f"History(epochs={len(self.epoch)}, last={last})"
