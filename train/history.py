"""The per-epoch training log saved as CSV and JSON, and plotted to PNG when matplotlib is installed."""

from __future__ import annotations

import csv
import json
import logging
from pathlib import Path

from .run_directory import CURVES_FILE, HISTORY_CSV_FILE, HISTORY_JSON_FILE

log = logging.getLogger(__name__)

COLUMNS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds")


def save_history(history: dict[str, list[float]], folder: Path) -> None:
    """history.csv, history.json and curves.png (loss and accuracy, train vs validation)."""
    epochs = len(history["loss"])
    columns = [c for c in COLUMNS if c in history]
    with (folder / HISTORY_CSV_FILE).open("w", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["epoch", *columns])
        for epoch in range(epochs):
            writer.writerow([epoch + 1, *(f"{history[c][epoch]:.6g}" for c in columns)])
    (folder / HISTORY_JSON_FILE).write_text(json.dumps({c: history[c] for c in columns}, indent=2))
    _plot(history, folder / CURVES_FILE)


def _plot(history: dict[str, list[float]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("matplotlib is not installed: no curves.png")
        return
    epochs = range(1, len(history["loss"]) + 1)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy")):
        axis.plot(epochs, history[metric], marker="o", label=f"train {metric}")
        axis.plot(epochs, history[f"val_{metric}"], marker="o", label=f"validation {metric}")
        axis.set_xlabel("epoch")
        axis.set_title(metric)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
