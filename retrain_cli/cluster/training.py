"""LightGBM training of a `compute: dask` job on the Dask cluster (`lightgbm.dask`).

The training data's Parquet files (or one file's row groups) are read by one task each and stay
in the workers' memory. The hold-out is the local one, exactly: the newest `holdout_fraction` of
labelled rows by `time_column` (ties in file order), found with `selection` on the time keys
the workers hold, without gathering them; its rows come here, where the new model and the
champion score them as for a local run. The training rows never leave the cluster: the model
trains there and comes back as LightGBM's own text model, so everything after training is
unchanged. A task that fails, an unreachable scheduler or a timeout fail the run.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from retrain_cli.cluster import partitions
from retrain_cli.cluster import profile as cluster_profile
from retrain_cli.cluster.client import gather
from retrain_cli.core.errors import DataError
from retrain_cli.data import sources, streaming
from retrain_cli.data import training as training_data
from retrain_cli.data.columns import Columns, column_kind
from retrain_cli.statistics import selection
from retrain_cli.trainers.base import Trainer, TrainingContext
from retrain_cli.trainers.lightgbm_trainer import (
    MODEL_FILE,
    LightGBMTrainer,
    refuse_monotone_categories,
)

if TYPE_CHECKING:
    import pandas as pd
    from distributed import Client, Future

    from retrain_cli.data.profile import Profile
    from retrain_cli.jobs.store import EffectiveJob


@dataclass
class ClusterRows:
    """The training rows, one pandas frame per partition in the cluster's memory."""

    client: Client
    parts: list[Future[Any]]
    features: list[str]
    target: str
    rows: int
    meta: pd.DataFrame  # no rows: the columns and their dtypes


def prepare(job: EffectiveJob, client: Client) -> training_data.Prepared[ClusterRows]:
    """`training_data.prepare` with the training rows left on the cluster."""
    spec = job.spec
    source = spec.data.train
    present = list(sources.column_types(source, "train") or {})
    features = training_data.feature_names(job, present)
    wanted = [c for c in present if c in {*features, *spec.special_columns}]
    parts = streaming.partitions(source, "train", wanted) or []
    target = training_data.Target.of(job)
    frames = client.map(partitions.read_part, parts, columns=wanted, target=target, pure=False)
    described = gather(
        client,
        partitions.describe,
        frames,
        features=features,
        declared=spec.categorical,
        time_column=spec.time_column,
    )
    rows = sum(d.rows for d in described)
    training_data.require_rows(rows, spec.target)
    categorical = next(d for d in described if d.rows).categorical
    categories = _categories(described, categorical)
    n_holdout = training_data.holdout_rows(rows, spec.holdout_fraction)
    cut = _holdout_cut(client, frames, described, spec.time_column, rows - n_holdout)
    holdout = _holdout(client, frames, cut, spec.time_column, categories)
    kept = [(frame, n) for frame, n in zip(frames, cut, strict=True) if n]  # rows to train on
    train = client.map(
        partitions.training_rows,
        [frame for frame, _ in kept],
        [n for _, n in kept],
        columns=[*features, spec.target],
        time_column=spec.time_column,
        categories=categories,
        pure=False,
    )
    return training_data.Prepared(
        features=features,
        categorical=categorical,
        train=ClusterRows(
            client,
            train,
            features,
            spec.target,
            rows - n_holdout,
            client.submit(partitions.empty, train[0], pure=False).result(),
        ),
        holdout=training_data.data_of(holdout, features, spec.target),
        holdout_returns=training_data.returns_of(holdout, spec.return_column),
        fingerprint=_fingerprint(described, spec.time_column),
    )


def _categories(
    described: list[partitions.PartitionSummary], categorical: list[str]
) -> dict[str, Any]:
    """Each categorical feature's categories over all partitions, as `astype("category")` of
    the whole column would order them."""
    import pandas as pd

    merged = {}
    for name in categorical:
        values = [value for d in described for value in d.uniques.get(name, [])]
        merged[name] = pd.Series(values).astype("category").cat.categories
    return merged


def _holdout_cut(
    client: Client,
    frames: list[Future[Any]],
    described: list[partitions.PartitionSummary],
    time_column: str | None,
    first: int,
) -> list[int]:
    """How many rows of each partition, in time order, stay in training: the row at rank
    `first` of all rows by (time, partition, row) opens the hold-out."""
    if not time_column:
        sizes = np.array([d.rows for d in described])
        starts = np.cumsum(sizes) - sizes
        return [int(k) for k in np.clip(first - starts, 0, sizes)]
    keys = client.map(partitions.sorted_keys, frames, time_column=time_column, pure=False)
    try:

        def run(brackets: list[selection.Bracket]) -> list[list[selection.Probe]]:
            return gather(client, selection.probe, keys, brackets=brackets)

        (value,) = selection.select([first], run)
        counts = gather(client, partitions.count_at, keys, value=value)
    finally:
        for future in keys:  # dropped: their dependent tasks are done
            future.release()
    ties = first - sum(below for below, _ in counts)  # rows at `value` that stay in training
    cut = []
    for below, equal in counts:
        kept = min(equal, ties)
        ties -= kept
        cut.append(below + kept)
    return cut


def _holdout(
    client: Client,
    frames: list[Future[Any]],
    cut: list[int],
    time_column: str | None,
    categories: dict[str, Any],
) -> pd.DataFrame:
    """The hold-out rows of every partition, here, in time order (ties in file order)."""
    import pandas as pd

    pieces = gather(client, partitions.holdout_rows, frames, cut, time_column=time_column)
    holdout = pd.concat([piece for piece in pieces if len(piece)], ignore_index=True)
    if time_column:
        order = training_data.time_order(holdout[time_column], time_column)
        if not order.is_monotonic_increasing:
            holdout = holdout.sort_values(time_column, kind="stable", key=lambda _: order)
    holdout = holdout.reset_index(drop=True)
    for name, known in categories.items():
        holdout[name] = holdout[name].astype(pd.CategoricalDtype(known))
    return holdout


def _fingerprint(
    described: list[partitions.PartitionSummary], time_column: str | None
) -> dict[str, Any]:
    """Rows, time range, and a sha256 over the partitions' own digests in file order (a local
    run's digest is over the rows in time order: switching `compute` retrains once)."""
    digest = hashlib.sha256(b"partitions\0")
    for d in described:
        digest.update(bytes.fromhex(d.sha256))
    result: dict[str, Any] = {"rows": sum(d.rows for d in described)}
    result["sha256"] = digest.hexdigest()
    result["partitions"] = len(described)
    if time_column:
        spans = [d.span for d in described if d.span is not None]
        result["time_min"] = str(min(low for low, _ in spans))
        result["time_max"] = str(max(high for _, high in spans))
    return result


def fit(
    trainer: Trainer,
    rows: ClusterRows,
    context: TrainingContext,
    init_from: Path | None,
) -> LightGBMTrainer:
    """Train `trainer`'s model with `lightgbm.dask` on the rows the cluster holds. Training runs
    on a thread while this one watches the deadline and the run's lease (`context.step`); when
    either stops the run, the client is closed and the scheduler drops its tasks (one already
    running finishes on its worker and is dropped)."""
    import dask.dataframe as dd
    import lightgbm as lgb

    if not isinstance(trainer, LightGBMTrainer):
        raise TypeError(f"{trainer.name} models train here; LightGBM trains on the cluster")
    client = rows.client
    parts, meta = rows.parts, rows.meta
    # the worker's cores, not this host's share: LightGBM sets num_threads per worker itself
    # (and its classes: the classifier counts them in the labels itself)
    params = {k: v for k, v in trainer.params.items() if k not in ("num_threads", "num_class")}
    categorical = [c for c in rows.features if str(meta[c].dtype) == "category"]
    refuse_monotone_categories(params, rows.features, categorical)  # before a worker aborts
    # the estimator of the objective: a regressor's `fit` leaves the labels as they are
    estimator = lgb.DaskLGBMRegressor if trainer.regression else lgb.DaskLGBMClassifier
    model = estimator(client=client, n_estimators=trainer.num_boost_round, **params)
    init_model = lgb.Booster(model_file=str(init_from / MODEL_FILE)) if init_from else None
    outcome: dict[str, BaseException] = {}
    done = threading.Event()

    def train() -> None:
        try:
            # lightgbm.dask prints its progress ("Finding random open ports") on stdout, where
            # --json goes, and warns on every fit that it sets each worker's threads itself
            quiet = contextlib.redirect_stdout(io.StringIO())
            with client.as_current(), quiet, warnings.catch_warnings():
                warnings.filterwarnings("ignore", "Parameter n_jobs will be ignored")
                frame = dd.from_delayed(parts, meta=meta, verify_meta=False)
                model.fit(frame[rows.features], frame[rows.target], init_model=init_model)
        except BaseException as exc:  # handed to the watching thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=train, name="lightgbm.dask", daemon=True).start()
    total = trainer.num_boost_round
    try:
        while not done.wait(1.0):
            context.step(0, total)
    except BaseException:
        # a closed client's tasks are released by the scheduler, the standard way a run's work
        # is dropped (cancelling the inputs of lightgbm.dask's own tasks trips the scheduler)
        client.close()
        done.wait(10.0)  # the training thread sees its client gone and ends
        raise
    if "error" in outcome:
        error = outcome["error"]
        if isinstance(error, DataError):
            raise error
        raise DataError(f"training on the Dask cluster failed: {error}") from error
    context.step(total, total)
    trainer.booster_ = model.booster_
    return trainer


def profile_rows(rows: ClusterRows, categorical: list[str], bins: int) -> Profile:
    """The profile of the training rows, built where they are (`cluster.profile`)."""
    import pyarrow as pa

    client = rows.client
    columns = Columns(features=rows.features, categorical=categorical)
    schema = pa.Schema.from_pandas(rows.meta[rows.features], preserve_index=False)
    kinds = {name: column_kind(schema.field(name).type, name, columns) for name in rows.features}
    return cluster_profile.build(
        client, rows.parts, partitions.frame_column, kinds, bins, rows.rows, "training data"
    )
