"""QuickScorer gives LightGBM's scores bit for bit, or leaves the model to LightGBM."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from retrain_cli.trainers import tree_scoring
from retrain_cli.trainers.tree_scoring import compile_model

lgb = pytest.importorskip("lightgbm")


@pytest.fixture(autouse=True)
def _compiled_extension() -> None:
    if tree_scoring._treescore is None:
        message = "retrain_cli._treescore was not built (no C compiler at install?)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def train(
    params: dict[str, Any], *, missing: float = 0.0, zeros: float = 0.0, rounds: int = 25
) -> Any:
    rng = np.random.default_rng(11)
    x = rng.normal(size=(3000, 6))
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=3000) > 0).astype(np.float64)
    x[rng.random(size=x.shape) < zeros] = 0.0
    x[rng.random(size=x.shape) < missing] = np.nan
    return lgb.train({"verbosity": -1, **params}, lgb.Dataset(x, y), num_boost_round=rounds)


def awkward_rows(n: int = 4000, features: int = 6) -> np.ndarray[Any, Any]:
    """Values on every special path of LightGBM's decision rule."""
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, features))
    for value, share in [(np.nan, 0.08), (0.0, 0.05), (-0.0, 0.02), (5e-36, 0.03)]:
        x[rng.random(size=x.shape) < share] = value
    x[rng.random(size=x.shape) < 0.03] = -5e-36
    x[rng.random(size=x.shape) < 0.02] = np.inf
    x[rng.random(size=x.shape) < 0.02] = -np.inf
    return x


def columns(x: np.ndarray[Any, Any]) -> list[np.ndarray[Any, Any]]:
    return [np.ascontiguousarray(x[:, i]) for i in range(x.shape[1])]


@pytest.mark.parametrize(
    ("params", "data"),
    [
        ({"objective": "binary"}, {}),
        ({"objective": "binary"}, {"missing": 0.1}),  # NaN nodes, both default sides
        ({"objective": "binary"}, {"zeros": 0.3}),  # thresholds at +-1e-35
        ({"objective": "regression"}, {"missing": 0.1}),
        ({"objective": "cross_entropy"}, {}),
        ({"objective": "regression_l1"}, {}),
        ({"objective": "binary", "num_leaves": 200, "min_data_in_leaf": 3}, {"missing": 0.05}),
        ({"objective": "binary", "min_data_in_leaf": 10_000}, {}),  # single-leaf trees
    ],
    ids=["binary", "nan", "zeros", "regression", "xentropy", "l1", "wide-trees", "one-leaf"],
)
@pytest.mark.parametrize("simd", [True, False], ids=["simd", "scalar"])
def test_scores_are_bitwise_lightgbms(
    monkeypatch: pytest.MonkeyPatch, params: dict[str, Any], data: dict[str, float], simd: bool
) -> None:
    monkeypatch.setattr(tree_scoring, "SIMD", simd)  # AVX-512 lanes, where the CPU has them
    booster = train(params, **data)
    compiled = compile_model(booster.model_to_string())
    assert compiled is not None
    x = awkward_rows(4003)  # 500 blocks of 8 rows, and 3 left over
    assert np.array_equal(compiled.predict(columns(x)), booster.predict(x))


def test_wide_trees_take_several_words_per_tree() -> None:
    booster = train({"objective": "binary", "num_leaves": 200, "min_data_in_leaf": 3})
    compiled = compile_model(booster.model_to_string())
    assert compiled is not None and compiled.words > 1


def test_a_model_read_back_from_its_file_and_continued_scores_the_same(tmp_path: Path) -> None:
    first = train({"objective": "binary"}, missing=0.1)
    first.save_model(str(tmp_path / "model.txt"))
    loaded = lgb.Booster(model_file=str(tmp_path / "model.txt"))
    rng = np.random.default_rng(2)
    x = rng.normal(size=(3000, 6))
    continued = lgb.train(
        {"objective": "binary", "verbosity": -1},
        lgb.Dataset(x, (x[:, 0] > 0).astype(np.float64)),
        num_boost_round=5,
        init_model=loaded,
    )
    rows = awkward_rows()
    for booster in (loaded, continued):
        compiled = compile_model(booster.model_to_string())
        assert compiled is not None
        assert np.array_equal(compiled.predict(columns(rows)), booster.predict(rows))


def test_rows_are_split_across_threads_without_a_gap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_scoring, "ROWS_PER_THREAD", 7)
    monkeypatch.setattr(tree_scoring.os, "sched_getaffinity", lambda pid: set(range(3)))
    booster = train({"objective": "binary"})
    compiled = compile_model(booster.model_to_string())
    assert compiled is not None
    for n in (0, 1, 20, 23):
        x = awkward_rows(n)
        assert np.array_equal(compiled.predict(columns(x)), booster.predict(x).reshape(n))


def test_the_wrong_number_of_columns_is_refused() -> None:
    compiled = compile_model(train({"objective": "binary"}).model_to_string())
    assert compiled is not None
    with pytest.raises(ValueError, match="5 feature columns for a model of 6"):
        compiled.predict(columns(awkward_rows())[:5])


@pytest.mark.parametrize(
    "params",
    [
        {"objective": "binary", "zero_as_missing": True},
        {"objective": "binary", "linear_tree": True},
        {"objective": "binary", "sigmoid": 2.0},
        {"objective": "poisson"},
        {"objective": "multiclass", "num_class": 2},
        {"objective": "binary", "boosting": "rf", "bagging_fraction": 0.5, "bagging_freq": 1},
    ],
    ids=["zero-as-missing", "linear", "sigmoid", "poisson", "multiclass", "random-forest"],
)
def test_what_only_lightgbm_scores_is_left_to_it(params: dict[str, Any]) -> None:
    assert compile_model(train(params, rounds=5).model_to_string()) is None


def test_categorical_splits_are_left_to_lightgbm() -> None:
    rng = np.random.default_rng(4)
    x = np.column_stack([rng.integers(0, 8, size=2000), rng.normal(size=2000)]).astype(float)
    y = np.isin(x[:, 0], [1, 3, 6]).astype(np.float64)
    booster = lgb.train(
        {"objective": "binary", "verbosity": -1, "min_data_per_group": 5},
        lgb.Dataset(x, y, categorical_feature=[0]),
        num_boost_round=5,
    )
    assert "num_cat=0" not in booster.model_to_string().split("Tree=0", 1)[1].split("Tree=1")[0]
    assert compile_model(booster.model_to_string()) is None


@pytest.mark.parametrize(
    ("params", "quickscorer"), [({}, True), ({"linear_tree": True}, False)], ids=["trees", "linear"]
)
def test_the_trainer_scores_with_quickscorer_where_it_can(
    monkeypatch: pytest.MonkeyPatch, params: dict[str, Any], quickscorer: bool
) -> None:
    import pandas as pd

    from retrain_cli.trainers.base import TrainingContext, TrainingData
    from retrain_cli.trainers.lightgbm_trainer import LightGBMTrainer

    calls = []
    original = tree_scoring.CompiledTrees.predict

    def counted(self: tree_scoring.CompiledTrees, data: Any) -> Any:
        calls.append(len(data))
        return original(self, data)

    monkeypatch.setattr(tree_scoring.CompiledTrees, "predict", counted)
    rng = np.random.default_rng(9)
    frame = pd.DataFrame({"a": rng.normal(size=2000), "b": rng.normal(size=2000)})
    frame.loc[::7, "b"] = np.nan
    target = (frame["a"] > 0).to_numpy(dtype=np.float64)
    trainer = LightGBMTrainer({**params, "num_boost_round": 5}).fit(
        TrainingData(frame, target), TrainingContext()
    )
    want = trainer.booster_.predict(frame.to_numpy(dtype=np.float64))
    assert np.array_equal(trainer.predict(frame), want)
    assert calls == ([2] if quickscorer else [])


@pytest.mark.parametrize("simd", [True, False], ids=["simd", "scalar"])
def test_values_within_1e_35_of_zero_are_zero_as_in_lightgbm(
    monkeypatch: pytest.MonkeyPatch, simd: bool
) -> None:
    monkeypatch.setattr(tree_scoring, "SIMD", simd)
    # LightGBM's own binning keeps thresholds out of (-1e-35, 1e-35); a model text may not
    rng = np.random.default_rng(1)
    x = rng.normal(size=(500, 1))
    booster = train_one_split(x)
    text = "\n".join(
        "threshold=0" if line.startswith("threshold=") else line
        for line in booster.model_to_string().splitlines()
    )
    edited = lgb.Booster(model_str=text)
    compiled = compile_model(text)
    assert compiled is not None
    tiny = np.array([[5e-36], [-5e-36], [1e-34], [0.0], [np.nan], [-1e-36], [2.0], [-2.0]])
    assert np.array_equal(compiled.predict(columns(tiny)), edited.predict(tiny))
    scores = edited.predict(tiny)
    assert scores[0] == scores[1] == scores[3] != scores[2]  # 5e-36 went left with 0.0


def train_one_split(x: np.ndarray[Any, Any]) -> Any:
    y = (x[:, 0] > 0).astype(np.float64)
    params = {"objective": "binary", "verbosity": -1, "num_leaves": 2}
    return lgb.train(params, lgb.Dataset(x, y), num_boost_round=1)


@pytest.mark.parametrize("simd", [True, False], ids=["simd", "scalar"])
def test_a_value_equal_to_a_threshold_goes_left(
    monkeypatch: pytest.MonkeyPatch, simd: bool
) -> None:
    monkeypatch.setattr(tree_scoring, "SIMD", simd)
    booster = train({"objective": "binary"})
    compiled = compile_model(booster.model_to_string())
    assert compiled is not None
    rng = np.random.default_rng(8)
    x = np.empty((1000, compiled.n_features))
    for f in range(compiled.n_features):  # every value is one of this feature's thresholds
        start, stop = compiled.node_offsets[f], compiled.node_offsets[f + 1]
        x[:, f] = rng.choice(compiled.thresholds[start:stop], size=len(x))
    assert np.array_equal(compiled.predict(columns(x)), booster.predict(x))


def test_a_failure_in_any_threads_rows_reaches_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tree_scoring, "ROWS_PER_THREAD", 10)
    monkeypatch.setattr(tree_scoring.os, "sched_getaffinity", lambda pid: set(range(2)))
    compiled = compile_model(train({"objective": "binary"}).model_to_string())
    assert compiled is not None
    score = tree_scoring._treescore.score  # type: ignore[union-attr]

    def failing_second_half(data: Any, start: int, stop: int, *rest: Any) -> None:
        if start > 0:
            raise MemoryError("no memory for the bitvectors")
        score(data, start, stop, *rest)

    monkeypatch.setattr(tree_scoring._treescore, "score", failing_second_half)
    with pytest.raises(MemoryError, match="bitvectors"):
        compiled.predict(columns(awkward_rows(40)))
