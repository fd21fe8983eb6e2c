"""Figures of the fine-tuning job and study: the loss/held-back curve and IoU against polygon count."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: fine-tuning runs from the CLI and the plugin's engine process
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_finetune_curve(history: dict[str, list], best_step: int, path: Path, title: str) -> None:
    """Training loss per step (frozen and unfrozen phases), held-back loss and water IoU per evaluation."""
    fig, ax = plt.subplots(figsize=(7, 3.6))
    steps, loss = np.asarray(history["step"]), np.asarray(history["loss"], dtype=float)
    if len(loss):
        ax.plot(steps, loss, color="#bbbbbb", lw=0.6, label="training loss")
        k = max(1, len(loss) // 20)
        ax.plot(steps[k - 1 :], np.convolve(loss, np.ones(k) / k, mode="valid"), color="black", lw=1.3,
                label=f"training loss ({k}-step mean)")  # fmt: skip
        unfrozen = [s for s, p in zip(history["step"], history["phase"], strict=True) if p == "unfrozen"]
        if unfrozen:
            ax.axvline(unfrozen[0] - 0.5, color="#888888", ls=":", lw=1, label="encoder unfrozen")
    if history.get("eval_step"):
        ax.plot(
            history["eval_step"], history["eval_loss"], "s-", color="#e31a1c", ms=3, label="held-back loss"
        )
        ax2 = ax.twinx()
        iou = [np.nan if v is None else v for v in history["eval_iou"]]
        ax2.plot(history["eval_step"], iou, "o-", color="#1f78b4", ms=3, label="held-back water IoU")
        ax2.set_ylim(0, 1)
        ax2.set_ylabel("water IoU")
        ax2.legend(loc="upper right", fontsize=8)
        ax.axvline(best_step, color="#1f78b4", ls="--", lw=1, label=f"kept: step {best_step}")
    ax.set_xlabel("step")
    ax.set_ylabel("class-balanced cross-entropy")
    ax.legend(loc="upper left", fontsize=7)
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
