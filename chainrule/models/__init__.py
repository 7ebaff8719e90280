"""Ready-made models."""
from .convnets import alexnet_small, lenet5, vgg_small
from .mlp import mlp
from .perceptron import Perceptron
