"""Training speed of the sequence models: epochs per second on CPU (and on a GPU when present).

    .venv/bin/python benchmarks/bench_torch.py [--rows 20000] [--features 8] [--epochs 3]
                                               [--repeats 3] [--write]

Each epoch is a full pass over the training windows (`sequence_length` 32, batch 64, the
default sizes of `auto_retraining_config`), timed through the same trainer `retrain` uses.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _report import machine, median, update_section

from retrain_cli.db.schema import DEFAULT_CONFIGS
from retrain_cli.trainers.base import TrainingContext, TrainingData
from retrain_cli.trainers.torch_trainer import SequenceTrainer


def data(rows: int, features: int) -> TrainingData:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(rows + 3, features))
    y = (x[:-3, 0] + 0.5 * rng.normal(size=rows) > 0).astype(np.float64)
    return TrainingData(pd.DataFrame(x[3:], columns=[f"f{i}" for i in range(features)]), y)


def epochs_per_second(kind: str, device: str, sample: TrainingData, epochs: int) -> float:
    defaults = next(c["hyperparameters"] for c in DEFAULTS if c["model_type"] == kind)
    hp = {**defaults, "max_epochs": epochs, "patience": epochs + 1, "validation_fraction": 0.0}
    trainer = SequenceTrainer(kind, hp, device)
    start = time.perf_counter()
    trainer.fit(sample, TrainingContext())
    return epochs / (time.perf_counter() - start)


DEFAULTS = DEFAULT_CONFIGS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()

    import torch

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    sample = data(args.rows, args.features)
    rows = []
    for device in devices:
        for kind in ("lstm", "transformer"):
            rates = [
                epochs_per_second(kind, device, sample, args.epochs) for _ in range(args.repeats)
            ]
            name = (
                torch.cuda.get_device_name()
                if device == "cuda"
                else (f"CPU, {torch.get_num_threads()} threads")
            )
            rows.append(
                f"| {kind} | {name} | {median(rates):.2f} | "
                f"{median(rates) * (args.rows - 31):,.0f} |"
            )
    command = (
        f"benchmarks/bench_torch.py --rows {args.rows} --features {args.features} "
        f"--epochs {args.epochs} --repeats {args.repeats} --write"
    )
    markdown = "\n".join(
        [
            f"## Sequence models: {args.rows:,} rows x {args.features} features, windows of 32",
            "",
            f"Command: `python {command}`",
            f"({machine()}, torch {torch.__version__}; medians of {args.repeats} runs; default "
            "sizes: LSTM hidden 32, Transformer d_model 32 with 4 heads and 2 layers; batch 64)",
            "",
            "| model | device | epochs / s | windows / s |",
            "|---|---|---|---|",
            *rows,
            "",
            "No GPU was available where this ran; on a machine with CUDA the same command adds "
            "GPU rows."
            if devices == ["cpu"]
            else "",
        ]
    )
    print(markdown)
    if args.write:
        update_section("bench_torch", markdown)


if __name__ == "__main__":
    main()
