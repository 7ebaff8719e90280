"""Seeing training: plots (loss and accuracy curves, learning rate, confusion matrix, first-layer
weights, a ConvNet's feature maps, the LR range test), the model summary and the self-contained HTML report.

matplotlib (``pip install chainrule[plot]``) is imported only when a plot is drawn.
"""
from ..nn.summary import ModelSummary, summary
from .plots import (figure_png, plot_accuracy, plot_confusion_matrix, plot_feature_maps,
                    plot_first_layer, plot_history, plot_loss, plot_lr, plot_lr_find)
from .report import build_report, read_history_csv, report_from_run, write_report

__all__ = ["summary", "ModelSummary", "plot_loss", "plot_accuracy", "plot_lr",
           "plot_confusion_matrix", "plot_first_layer", "plot_feature_maps", "plot_lr_find",
           "plot_history", "figure_png", "build_report", "write_report", "report_from_run",
           "read_history_csv"]
