"""A self-contained HTML report of a run: class counts per split, sample images per label,
training curves from the TensorBoard events, and the confusion matrix of the predictions."""

from __future__ import annotations

import base64
import html
import os
from collections import defaultdict

import pandas as pd
import tensorflow as tf

from dataset.manifest import Manifest


def _events(folder: str, tags: tuple[str, ...]) -> dict[str, list[tuple[int, float]]]:
    series: dict[str, list[tuple[int, float]]] = defaultdict(list)
    verbosity = tf.compat.v1.logging.get_verbosity()
    tf.compat.v1.logging.set_verbosity(tf.compat.v1.logging.ERROR)  # summary_iterator's deprecation notice
    try:
        return _read_events(folder, tags, series)
    finally:
        tf.compat.v1.logging.set_verbosity(verbosity)


def _read_events(folder: str, tags: tuple[str, ...], series: dict) -> dict[str, list[tuple[int, float]]]:
    for path in sorted(tf.io.gfile.glob(f"{folder}/events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag in tags:
                    number = (
                        value.simple_value if value.HasField("simple_value") else float(tf.make_ndarray(value.tensor))
                    )
                    series[value.tag].append((int(event.step), number))
    return {tag: sorted(points) for tag, points in series.items()}


def _svg_curve(points: list[tuple[int, float]], title: str, width: int = 360, height: int = 180) -> str:
    if not points:
        return f"<p>{html.escape(title)}: no data</p>"
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    x0, x1, y0, y1 = min(xs), max(xs) or 1, min(ys), max(ys)
    span_x, span_y = (x1 - x0) or 1, (y1 - y0) or 1
    xy = [(30 + (x - x0) / span_x * (width - 40), height - 20 - (y - y0) / span_y * (height - 40)) for x, y in points]
    line = " ".join(f"{x:.1f},{y:.1f}" for x, y in xy)
    dots = "".join(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="#1f77b4"/>' for x, y in xy) if len(xy) <= 3 else ""
    label = f"{html.escape(title)}: {ys[0]:.3g} → {ys[-1]:.3g} (step {x1})"
    return (
        f'<figure><svg width="{width}" height="{height}" style="border:1px solid #ccc">'
        f'<polyline fill="none" stroke="#1f77b4" stroke-width="2" points="{line}"/>{dots}'
        f'<text x="30" y="14" font-size="12">{label}</text></svg></figure>'
    )


def _counts_table(manifest: Manifest) -> str:
    splits = sorted(manifest.splits)
    rows = "".join(
        f"<tr><td>{html.escape(label)}</td>"
        + "".join(f"<td>{manifest.splits[s].label_counts.get(label, 0)}</td>" for s in splits)
        + "</tr>"
        for label in manifest.labels
    )
    return f"<table><tr><th>label</th>{''.join(f'<th>{s}</th>' for s in splits)}</tr>{rows}</table>"


def _samples(samples: dict[str, list[bytes]]) -> str:
    rows = []
    for label, images in samples.items():
        tags = "".join(
            f'<img width="48" height="48" style="image-rendering:pixelated" '
            f'src="data:image/png;base64,{base64.b64encode(data).decode()}"/>'
            for data in images
        )
        rows.append(f"<tr><td>{html.escape(label)}</td><td>{tags}</td></tr>")
    return f"<table>{''.join(rows)}</table>"


def _confusion(predictions: pd.DataFrame, labels: tuple[str, ...]) -> str:
    table = pd.crosstab(predictions["true_label"], predictions["predicted_label"]).reindex(
        index=list(labels), columns=list(labels), fill_value=0
    )
    top = max(1, int(table.to_numpy().max()))
    cells = "".join(
        f"<tr><th>{html.escape(true)}</th>"
        + "".join(
            f'<td style="background:rgba(31,119,180,{table.loc[true, pred] / top:.2f})">{table.loc[true, pred]}</td>'
            for pred in labels
        )
        + "</tr>"
        for true in labels
    )
    return (
        f"<table><tr><th>true \\ predicted</th>{''.join(f'<th>{html.escape(p)}</th>' for p in labels)}</tr>"
        f"{cells}</table>"
    )


def write_report(
    path: str,
    manifest: Manifest,
    samples: dict[str, list[bytes]],
    model_dir: str,
    eval_split: str,
    predictions: pd.DataFrame,
    metrics: dict,
) -> str:
    """Write the report to `path` (one HTML file, images inline) and return the path."""
    train = _events(model_dir, ("loss", "accuracy/train_batch"))
    evaluated = _events(os.path.join(model_dir, f"eval_{eval_split}"), ("accuracy", "loss"))
    accuracy = (predictions["true_label"] == predictions["predicted_label"]).mean()
    body = [
        "<h1>tfrecordpipe run report</h1>",
        f"<p>Test accuracy of the export: <b>{accuracy:.4f}</b> on {len(predictions)} images; "
        f"global step {metrics['global_step']}, {metrics['num_proc']} Horovod processes, "
        f"{metrics['examples_per_sec_total']:.0f} examples/s.</p>",
        "<h2>Records per label and split</h2>",
        _counts_table(manifest),
        "<h2>Samples per label</h2>",
        _samples(samples),
        "<h2>Training</h2>",
        _svg_curve(train.get("loss", []), "training loss"),
        _svg_curve(train.get("accuracy/train_batch", []), "training batch accuracy"),
        _svg_curve(evaluated.get("accuracy", []), f"{eval_split} accuracy"),
        f"<h2>Confusion matrix ({eval_split})</h2>",
        _confusion(predictions, manifest.labels),
    ]
    style = "body{font-family:sans-serif;margin:2em} td,th{padding:4px 8px;text-align:right} table{border-collapse:collapse}"
    with tf.io.gfile.GFile(path, "w") as out:
        out.write(
            f"<!doctype html><html><head><meta charset='utf-8'><title>tfrecordpipe report</title>"
            f"<style>{style}</style></head><body>{''.join(body)}</body></html>"
        )
    return path
