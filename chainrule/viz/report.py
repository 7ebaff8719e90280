"""One self-contained HTML training report: configuration, model summary, final metrics, the plots
(embedded as base64 PNG) and the per-epoch table. No external file, font, script or network
request: it opens from disk anywhere, and can be mailed as one file.

>>> write_report("report.html", history, config=vars(args), summary=summary(model, (64,)),
...              metrics={"test_accuracy": 0.975}, confusion=cm, weights=model)
>>> report_from_run("runs/digits")        # what `chainrule report RUN_DIR` does
"""
import base64
import csv
import datetime
import html
import json
import math
import os

import numpy as np

from ..nn.summary import row_type
from . import plots

__all__ = ["build_report", "write_report", "report_from_run", "read_history_csv"]

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;
     margin:0;color:#1d2329;background:#f6f7f9}
header{background:#1d2b3a;color:#fff;padding:18px 28px}
header h1{margin:0;font-size:22px} header p{margin:4px 0 0;color:#c4ced8;font-size:13px}
main{padding:8px 28px 40px;max-width:1280px}
section{background:#fff;border:1px solid #dde2e7;border-radius:6px;padding:12px 18px;margin:16px 0}
h2{font-size:17px;margin:4px 0 10px}
table{border-collapse:collapse;font-variant-numeric:tabular-nums}
th,td{padding:3px 10px;border-bottom:1px solid #e6e9ec;text-align:left;vertical-align:top}
th{background:#f0f2f4;font-weight:600} td.num,th.num{text-align:right}
tfoot td{font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:14px}
figure{margin:0;border:1px solid #e6e9ec;border-radius:4px;padding:6px;background:#fff}
figure img{display:block;max-width:100%;height:auto;margin:0 auto}
figcaption{font-size:12px;color:#5a6570;margin-top:4px}
.scroll{max-height:520px;overflow:auto}
pre{background:#f6f7f9;padding:8px;overflow:auto}
.kv td:first-child{color:#5a6570;white-space:nowrap}
.cols{display:flex;flex-wrap:wrap;gap:10px 40px;align-items:flex-start}
h3{font-size:14px;margin:2px 0 6px;color:#3a4550}
"""

# Marks how many images decoded (document.body's data-images attribute), for tests and for a
# reader who wonders; the page needs no script to show everything.
_SCRIPT = """window.addEventListener('load',function(){var n=0,im=document.images;
for(var i=0;i<im.length;i++){if(im[i].complete&&im[i].naturalWidth>0)n++;}
document.body.setAttribute('data-images',n+'/'+im.length);});"""

_CAPTIONS = {
    "loss": "Training and validation loss per epoch.",
    "accuracy": "Training and validation accuracy; the shaded band is the gap between them "
                "(wide: overfitting).",
    "lr": "Learning rate each epoch trained with.",
    "confusion": "Confusion matrix on the test split (rows: true class, columns: predicted).",
    "weights": "First-layer weights as images.",
    "lr_find": "Learning-rate range test.",
}


def _e(x):
    return html.escape(str(x), quote=True)


def _fmt(v):
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, (int, np.integer)):
        return f"{int(v):,}" if abs(int(v)) >= 10000 else str(int(v))
    if isinstance(v, (float, np.floating)):
        v = float(v)
        if not math.isfinite(v):
            return str(v)
        if v != 0 and (abs(v) < 1e-3 or abs(v) >= 1e5):
            return f"{v:.3e}"
        return f"{v:.4f}"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x) for x in v)
    return str(v)


def _kv_table(d, table_id):
    rows = "".join(f"<tr><td>{_e(k)}</td><td class=num>{_e(_fmt(v))}</td></tr>"
                   for k, v in d.items())
    return f'<table class="kv" id="{table_id}"><tbody>{rows}</tbody></table>'


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def _img(name, png, caption):
    b64 = base64.b64encode(png).decode("ascii")
    return (f'<figure id="fig-{_e(name)}"><img id="plot-{_e(name)}" alt="{_e(name)} plot" '
            f'src="data:image/png;base64,{b64}"><figcaption>{_e(caption)}</figcaption></figure>')


def _history_dict(history):
    h = getattr(history, "history", history) or {}
    epochs = list(getattr(history, "epoch", None) or range(max((len(v) for v in h.values()),
                                                               default=0)))
    return epochs, h


def _final_metrics(epochs, h, metrics):
    out = {}
    if epochs:
        out["epochs trained"] = len(epochs)
    for k in ("loss", "accuracy", "val_loss", "val_accuracy"):
        if h.get(k):
            out[f"final {k}"] = h[k][-1]
    if h.get("val_loss"):
        i = int(np.nanargmin(np.asarray(h["val_loss"], dtype=float)))
        out["best val_loss"] = h["val_loss"][i]
        out["best epoch (val_loss)"] = int(epochs[i]) + 1 if i < len(epochs) else i + 1
    if h.get("val_accuracy"):
        out["best val_accuracy"] = max(h["val_accuracy"])
    if h.get("accuracy") and h.get("val_accuracy"):
        out["final train - val accuracy gap"] = h["accuracy"][-1] - h["val_accuracy"][-1]
    if h.get("time"):
        out["training time (s)"] = float(sum(h["time"]))
    for k, v in (metrics or {}).items():
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool):
            out[k] = v
    return out


def _per_class_table(pc, class_names):
    p, r, f, s = (np.asarray(pc[k]) for k in ("precision", "recall", "f1", "support"))
    names = class_names if class_names is not None else [str(i) for i in range(len(p))]
    rows = "".join(f"<tr><td>{_e(n)}</td><td class=num>{p[i]:.4f}</td><td class=num>{r[i]:.4f}"
                   f"</td><td class=num>{f[i]:.4f}</td><td class=num>{int(s[i])}</td></tr>"
                   for i, n in enumerate(names))
    foot = ""
    for avg in ("macro", "weighted"):
        if avg in pc:
            a = pc[avg]
            foot += (f"<tr><td>{avg} avg</td><td class=num>{a['precision']:.4f}</td><td class=num>"
                     f"{a['recall']:.4f}</td><td class=num>{a['f1']:.4f}</td><td class=num>"
                     f"{int(s.sum())}</td></tr>")
    return ('<table id="per-class-table"><thead><tr><th>class</th><th class=num>precision</th>'
            '<th class=num>recall</th><th class=num>F1</th><th class=num>support</th></tr>'
            f"</thead><tbody>{rows}</tbody><tfoot>{foot}</tfoot></table>")


def _epoch_table(epochs, h):
    keys = [k for k in h if h[k]]
    head = "".join(f"<th class=num>{_e(k)}</th>" for k in keys)
    body = []
    for i, ep in enumerate(epochs):
        cells = "".join(f"<td class=num>{_e(_fmt(h[k][i])) if i < len(h[k]) else ''}</td>"
                        for k in keys)
        body.append(f"<tr><td class=num>{int(ep) + 1}</td>{cells}</tr>")
    return (f'<div class="scroll"><table id="epoch-table"><thead><tr><th class=num>epoch</th>'
            f'{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>')


def build_report(history, config=None, summary=None, metrics=None, confusion=None,
                 class_names=None, per_class=None, weights=None, image_shape=None,
                 title="chainrule training report", subtitle=None, images=None, plots_dir=None):
    """The report as one HTML string.

    history: a History or a dict of per-epoch lists. config: a (nested) dict shown as a table.
    summary: a ``ModelSummary`` (``chainrule.nn.summary.summary``) or its ``to_dict()``.
    metrics: a dict of final numbers (e.g. test_loss, test_accuracy). confusion: a (C, C) matrix.
    per_class: ``precision_recall_f1``'s result. weights: a model or the first layer's weight
    array, drawn with ``plot_first_layer`` (``image_shape`` for an MLP on images).
    images: more {name: PNG bytes} to embed. plots_dir: also write each plot there as NAME.png.
    Plots need matplotlib; without it the report says so and has everything else.
    """
    epochs, h = _history_dict(history)
    figs, plot_error = [], None
    try:
        if h.get("loss") or h.get("val_loss"):
            figs.append(("loss", plots.figure_png(plots.plot_loss(history))))
        if h.get("accuracy") or h.get("val_accuracy"):
            figs.append(("accuracy", plots.figure_png(plots.plot_accuracy(history))))
        if h.get("lr"):
            figs.append(("lr", plots.figure_png(plots.plot_lr(history))))
        if confusion is not None:
            figs.append(("confusion", plots.figure_png(
                plots.plot_confusion_matrix(confusion, class_names=class_names))))
        if weights is not None:
            try:
                figs.append(("weights", plots.figure_png(
                    plots.plot_first_layer(weights, image_shape=image_shape))))
            except ValueError as e:        # e.g. tabular inputs: nothing image-like to show
                plot_error = f"first-layer weights not drawn: {e}"
    except ImportError as e:
        plot_error = str(e)
    for name, png in (images or {}).items():
        figs.append((name, png))
    if plots_dir and figs:
        os.makedirs(plots_dir, exist_ok=True)
        for name, png in figs:
            with open(os.path.join(plots_dir, f"{name}.png"), "wb") as f:
                f.write(png)

    parts = [f"<header><h1>{_e(title)}</h1><p>{_e(subtitle or '')} generated "
             f"{_e(datetime.datetime.now().strftime('%Y-%m-%d %H:%M'))} by chainrule</p></header>",
             "<main>"]
    if config:
        groups = {k: v for k, v in config.items() if isinstance(v, dict)}
        plain = {k: v for k, v in config.items() if not isinstance(v, dict)}
        if plain:
            groups = {"settings": plain, **groups}
        tables = "".join(f'<div><h3>{_e(g)}</h3>{_kv_table(_flatten(d), f"config-{g}")}</div>'
                         for g, d in groups.items())
        parts.append(f'<section id="configuration"><h2>Configuration</h2><div class="cols">{tables}'
                     "</div></section>")
    if summary is not None:
        sd = summary.to_dict() if hasattr(summary, "to_dict") else summary
        rows = "".join(f"<tr><td>{_e(l['name'])}</td><td>{_e(row_type(l))}</td>"
                       f"<td>{_e(l['output_shape'])}</td><td class=num>{l['params']:,}</td></tr>"
                       for l in sd["layers"])
        parts.append(
            f'<section id="model"><h2>Model: {_e(sd.get("model", ""))}, input '
            f'{_e(tuple(sd.get("input_shape", ())))}</h2><table id="summary-table"><thead><tr>'
            '<th>layer</th><th>type</th><th>output shape</th><th class=num>parameters</th></tr>'
            f'</thead><tbody>{rows}</tbody><tfoot><tr><td colspan=3>total parameters</td>'
            f'<td class=num>{sd["total_params"]:,}</td></tr><tr><td colspan=3>trainable</td>'
            f'<td class=num>{sd["trainable_params"]:,}</td></tr><tr><td colspan=3>frozen</td>'
            f'<td class=num>{sd["total_params"] - sd["trainable_params"]:,}</td></tr></tfoot>'
            '</table></section>')
    parts.append('<section id="metrics"><h2>Final metrics</h2>'
                 + _kv_table(_final_metrics(epochs, h, metrics), "metrics-table") + "</section>")
    if figs or plot_error:
        body = "".join(_img(n, png, _CAPTIONS.get(n, n)) for n, png in figs)
        note = f"<p>{_e(plot_error)}</p>" if plot_error else ""
        parts.append(f'<section id="plots"><h2>Plots</h2>{note}<div class="grid">{body}</div>'
                     "</section>")
    if per_class is not None:
        parts.append('<section id="per-class"><h2>Per-class metrics (test)</h2>'
                     + _per_class_table(per_class, class_names) + "</section>")
    if epochs:
        parts.append('<section id="epochs"><h2>Per-epoch history</h2>' + _epoch_table(epochs, h)
                     + "</section>")
    parts.append("</main>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<meta name=\"viewport\" content=\"width=device-width\"><title>{_e(title)}</title>"
            f"<style>{_CSS}</style></head><body>" + "".join(parts)
            + f"<script>{_SCRIPT}</script></body></html>\n")


def write_report(path, history, **kwargs):
    """``build_report(history, **kwargs)`` written to ``path`` (atomically); returns the path."""
    text = build_report(history, **kwargs)
    path = os.fspath(path)
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def read_history_csv(path):
    """A CSVLogger file back as (epochs, {key: list of floats})."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return [], {}
    head, body = rows[0], [r for r in rows[1:] if r]
    keys = head[1:]
    h = {k: [] for k in keys}
    epochs = []
    for r in body:
        epochs.append(int(r[0]))
        for k, cell in zip(keys, r[1:]):
            h[k].append(float(cell) if cell != "" else None)
    return epochs, h


class _H:
    def __init__(self, epoch, history):
        self.epoch, self.history = epoch, history


def _read_json(path):
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def report_from_run(run_dir, path=None, plots=True):
    """Build ``RUN_DIR/report.html`` from what ``chainrule train --out RUN_DIR`` wrote there
    (config.json, history.csv or the checkpoint's history, metrics.json, summary.json, the
    best or last checkpoint for the first-layer weights); with ``plots``, the plots also go to
    RUN_DIR/plots/*.png. Returns the report's path."""
    from ..io import load
    run_dir = os.fspath(run_dir)
    if not os.path.isdir(run_dir):
        raise FileNotFoundError(2, "chainrule report: no such run directory", run_dir)
    config = _read_json(os.path.join(run_dir, "config.json")) or {}
    metrics = _read_json(os.path.join(run_dir, "metrics.json")) or {}
    summary = _read_json(os.path.join(run_dir, "summary.json"))
    ckpt = None
    for name in ("best.ckpt", "last.ckpt"):
        p = os.path.join(run_dir, "checkpoints", name)
        if os.path.exists(p):
            ckpt = p
            break
    state = load(ckpt) if ckpt else None
    csv_path = os.path.join(run_dir, "history.csv")
    last = os.path.join(run_dir, "checkpoints", "last.ckpt")
    if os.path.exists(last):
        # the checkpoint's history is exact and is what a resumed run continues from
        st = state if ckpt == last else load(last)
        history = _H(st["training"]["history_epochs"] if "training" in st else
                     list(range(len(st["history"].get("loss", [])))), st["history"])
    elif os.path.exists(csv_path):
        history = _H(*read_history_csv(csv_path))
    else:
        raise FileNotFoundError(2, "chainrule report: the run directory has neither "
                                "history.csv nor checkpoints/last.ckpt", run_dir)
    weights = None
    if state is not None:
        for k, v in state["model"].items():
            if k.endswith("weight") and np.ndim(v) in (2, 4):
                weights = np.asarray(v)
                break
    run = config.get("run", {}) if isinstance(config, dict) else {}
    image_shape = run.get("image_shape")
    test = metrics.get("test", {})
    shown = {f"test_{k}": v for k, v in test.items() if isinstance(v, (int, float))}
    out = path or os.path.join(run_dir, "report.html")
    return write_report(
        out, history, config=config, summary=summary, metrics=shown,
        confusion=np.asarray(metrics["confusion_matrix"]) if metrics.get("confusion_matrix")
        else None,
        class_names=metrics.get("class_names"), per_class=metrics.get("per_class"),
        weights=weights, image_shape=tuple(image_shape) if image_shape else None,
        subtitle=f"run {os.path.abspath(run_dir)};",
        plots_dir=os.path.join(run_dir, "plots") if plots else None,
        title=f"chainrule training report: {os.path.basename(os.path.abspath(run_dir))}")
