"""Image models from any checkpoint that holds one, with the way to read their images: for
img2vec (``chainrule similar``) a model is a network to cut plus how to load and prepare its
inputs, whichever command trained it.

    >>> vm = load_vision_model("pretrained.ckpt")           # 'chainrule transfer --save'
    >>> X = vm.load(["a.png", "b.png"])                      # resized, as the model was trained

Checkpoints understood: ``save_vision_model`` (format "chainrule-vision-model"), the captioner
of ``applications.captioning.save_captioner`` (its encoder), and a training run's model
(``chainrule train --save`` / a run directory's checkpoint: an MLP on images or a ConvNet).
"""
import os

import numpy as np

VISION_FORMAT = "chainrule-vision-model"


class VisionModel:
    """A loaded network with what its inputs need: ``net`` (the module to extract features from),
    ``default_layer``, ``load(paths)`` -> input array (N, ...) and a ``description``."""

    def __init__(self, net, default_layer, mode, size, prepare=None, description=""):
        self.net, self.default_layer = net, default_layer
        self.mode, self.size, self.prepare = mode, size, prepare
        self.description = description

    def load(self, paths):
        from ..data.datasets import load_image
        X = np.stack([load_image(p, size=self.size, mode=self.mode, where="chainrule") for p in paths])
        return self.prepare(X) if self.prepare else X


def save_vision_model(path, model, config, mode="L", size=8, classes=None):
    """Save a ConvNet built by ``build_model(config)`` (chainrule.models.registry) with the way
    to read its images (PIL mode and size)."""
    import chainrule as cr
    cr.save({"format": VISION_FORMAT, "config": config, "model": model.state_dict(),
             "image": {"mode": mode, "size": [int(size), int(size)] if np.isscalar(size) else
                       [int(s) for s in size]},
             "classes": list(classes) if classes is not None else None}, path)
    return path


def load_vision_model(path):
    """A ``VisionModel`` from a checkpoint file (see the module's docstring for the kinds)."""
    import chainrule as cr
    from ..models.registry import CONV_MODELS, build_model, model_input_shape, model_inputs
    if not os.path.exists(path):
        raise FileNotFoundError(2, "no such checkpoint", path)
    state = cr.load(path)
    if not isinstance(state, dict):
        raise ValueError(f"{path} is not a model checkpoint")
    fmt = state.get("format")
    if fmt == "chainrule-captioner":
        from .captioning import load_captioner
        model, _, st = load_captioner(path)
        s = int(st["image"]["size"])
        return VisionModel(model.encoder, "", st["image"]["mode"], (s, s),
                           description=f"captioner encoder from {path}")
    if fmt == VISION_FORMAT:
        kind = state["config"].get("kind")
        if kind not in CONV_MODELS.values():
            raise ValueError(f"unknown vision model kind {kind!r} in the checkpoint")
        model = build_model(state["config"])
        model.load_state_dict(state["model"])
        model.eval()
        img = state.get("image") or {}
        return VisionModel(model, None, img.get("mode", "RGB"), tuple(img.get("size", (32, 32))),
                           description=f"{kind} from {path}")
    config = state.get("config")
    run = state.get("run_config") or {}
    if isinstance(config, dict) and "kind" in config:
        # a training run's model: an MLP trained on images, or a ConvNet (--model lenet/...)
        if config["kind"] == "mlp":
            shape = run.get("image_shape")
            if not shape:
                raise ValueError(f"{path} holds an MLP trained on {run.get('dataset', 'tabular data')}, "
                                 f"not on images; it cannot embed images")
        else:
            shape = model_input_shape(config)
        model = build_model(config)
        model.load_state_dict(state["model"])
        model.eval()
        c, h, w = (int(v) for v in shape)
        return VisionModel(model, None, "L" if c == 1 else "RGB", (h, w),
                           lambda X: model_inputs(np.asarray(X, np.float32), state),
                           description=f"{config['kind']} from {path}")
    raise ValueError(f"{path} is not a checkpoint of an image model (expected one written by "
                     f"'chainrule transfer --save', 'chainrule train-captioner' or 'chainrule "
                     f"train --save' on images)")
