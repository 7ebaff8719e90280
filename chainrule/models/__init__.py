"""Ready-made models."""
from .mlp import mlp
from .perceptron import Perceptron
