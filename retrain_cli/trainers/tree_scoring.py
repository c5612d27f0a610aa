"""Score LightGBM models with numerical splits exactly as LightGBM does, 3-5 times faster.

Every retrain scores the new model and the champion on the whole hold-out, and LightGBM's
`predict` walks each tree node by node: a data-dependent branch per level. QuickScorer
(Lucchese et al., SIGIR 2015; the C loop is `retrain_cli/_treescore.c`) instead visits, for each
row and feature, the nodes whose test fails, from one list per feature sorted by threshold, and
clears the leaves those nodes rule out from the tree's bitvector. The exit leaf of a tree is the
leftmost leaf left. Where the CPU has AVX-512, eight rows go at once, one per lane, and read
each feature's node list once; elsewhere rows go in pairs that share each feature's run of false
nodes. The trees, leaves and leaf values are LightGBM's own, read from its model text (which
keeps every double exactly), and are summed in LightGBM's order, so the scores are bitwise those
of `Booster.predict`; the tests check that on models with missing values, tiny values, values
equal to thresholds, single-leaf trees and wide trees, on both paths.

LightGBM's decision rule for a numerical node (`Tree::NumericalDecision`), reproduced here:
  - a value with |x| <= 1e-35f is 0.0 (LightGBM's dense input drops it as zero);
  - NaN goes to the default side when the node's missing type is NaN, and is compared as 0.0
    when it is None;
  - otherwise x goes left when x <= threshold.

Anything else is left to LightGBM: categorical splits, linear trees, `zero_as_missing` nodes,
several trees per iteration, random-forest averaging, objectives whose output transform is not
listed in `TRANSFORMS`, and a build of retrain-cli without its compiled extension.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

_treescore: ModuleType | None
try:
    from retrain_cli import _treescore
except ImportError:  # built without a C compiler: LightGBM scores every model
    _treescore = None

IDENTITY, SIGMOID = 0, 1
# LightGBM's ConvertOutput for each objective's name as its model text writes it
TRANSFORMS = {
    "binary sigmoid:1": SIGMOID,
    "cross_entropy": SIGMOID,
    "regression": IDENTITY,
    "regression_l1": IDENTITY,
    "huber": IDENTITY,
    "fair": IDENTITY,
    "quantile": IDENTITY,
}
MISSING_ZERO, MISSING_NAN = 1, 2  # LightGBM's missing types (0 is None: NaN compares as 0.0)
CATEGORICAL_BIT, DEFAULT_LEFT_BIT = 1, 2
SIMD = True  # eight rows at a time where the CPU runs AVX-512
ROWS_PER_THREAD = 20_000  # below this, one thread scores everything
Array = np.ndarray[Any, Any]


@dataclass(frozen=True)
class CompiledTrees:
    """QuickScorer tables of one model; `predict` takes one float64 array per feature."""

    n_features: int
    words: int  # 64-bit words per tree's leaf bitvector
    transform: int
    thresholds: Array  # float64, the nodes grouped by feature, ascending threshold
    node_tree: Array  # int32
    node_masks: Array  # uint64, (nodes, words): clears the node's left-subtree leaves
    node_offsets: Array  # int64, n_features + 1
    nan_tree: Array  # the nodes that send NaN right, grouped by feature
    nan_masks: Array
    nan_offsets: Array
    init_masks: Array  # uint64, (trees, words): every leaf of the tree set
    leaf_values: Array  # float64, each tree's leaves left to right
    leaf_offsets: Array  # int64, one per tree

    def predict(self, columns: Sequence[Array]) -> np.ndarray[Any, np.dtype[np.float64]]:
        if len(columns) != self.n_features:
            raise ValueError(f"{len(columns)} feature columns for a model of {self.n_features}")
        data = tuple(np.ascontiguousarray(c, dtype=np.float64) for c in columns)
        rows = len(data[0]) if data else 0
        out = np.empty(rows, dtype=np.float64)
        threads = max(1, min(len(os.sched_getaffinity(0)), rows // ROWS_PER_THREAD))
        bounds = [rows * i // threads for i in range(threads + 1)]
        # the C loop runs without the GIL; result() hands any thread's error to the caller
        with ThreadPoolExecutor(max_workers=threads) as pool:
            chunks = [
                pool.submit(self._score, data, start, stop, out)
                for start, stop in itertools.pairwise(bounds)
            ]
            for chunk in chunks:
                chunk.result()
        return out

    def _score(self, data: tuple[Array, ...], start: int, stop: int, out: Array) -> None:
        assert _treescore is not None  # compile_model builds no tables without it
        _treescore.score(
            data,
            start,
            stop,
            out,
            self.thresholds,
            self.node_tree,
            self.node_masks,
            self.node_offsets,
            self.nan_tree,
            self.nan_masks,
            self.nan_offsets,
            self.init_masks,
            self.leaf_values,
            self.leaf_offsets,
            self.words,
            self.transform,
            SIMD,
        )


def compile_model(model_text: str) -> CompiledTrees | None:
    """QuickScorer tables for a LightGBM model text, or None when LightGBM must score it."""
    if _treescore is None:
        return None
    header, trees = _parse(model_text)
    if (
        header.get("num_tree_per_iteration", "1") != "1"
        or "average_output" in header
        or header.get("objective") not in TRANSFORMS
        or "max_feature_idx" not in header
        or not trees
    ):
        return None
    leaves = [int(tree["num_leaves"]) for tree in trees]
    words = (max(leaves) + 63) // 64
    nodes: list[tuple[int, float, int, int, bool]] = []  # feature, threshold, tree, mask, NaN right
    init: list[int] = []
    values: list[float] = []
    offsets: list[int] = []
    for index, tree in enumerate(trees):
        compiled = _compile_tree(tree)
        if compiled is None:
            return None
        tree_nodes, tree_values = compiled
        nodes += [(f, t, index, mask, nan_right) for f, t, mask, nan_right in tree_nodes]
        init.append((1 << len(tree_values)) - 1)
        offsets.append(len(values))
        values += tree_values
    n_features = int(header["max_feature_idx"]) + 1
    if any(not 0 <= node[0] < n_features for node in nodes):
        return None
    order = sorted(range(len(nodes)), key=lambda k: (nodes[k][0], nodes[k][1]))
    ordered = [nodes[k] for k in order]
    nan = [node for node in ordered if node[4]]
    return CompiledTrees(
        n_features=n_features,
        words=words,
        transform=TRANSFORMS[header["objective"]],
        thresholds=np.array([node[1] for node in ordered], dtype=np.float64),
        node_tree=np.array([node[2] for node in ordered], dtype=np.int32),
        node_masks=_words([node[3] for node in ordered], words),
        node_offsets=_offsets([node[0] for node in ordered], n_features),
        nan_tree=np.array([node[2] for node in nan], dtype=np.int32),
        nan_masks=_words([node[3] for node in nan], words),
        nan_offsets=_offsets([node[0] for node in nan], n_features),
        init_masks=_words(init, words),
        leaf_values=np.array(values, dtype=np.float64),
        leaf_offsets=np.array(offsets, dtype=np.int64),
    )


def _parse(model_text: str) -> tuple[dict[str, str], list[dict[str, str]]]:
    """The header's keys (a bare line maps to "") and each tree's keys, up to 'end of trees'."""
    header: dict[str, str] = {}
    trees: list[dict[str, str]] = []
    current = header
    for line in model_text.splitlines():
        if line.startswith("Tree="):
            current = {}
            trees.append(current)
        elif line == "end of trees":
            break
        elif line:
            key, _, value = line.partition("=")
            current[key] = value
    return header, trees


def _compile_tree(
    tree: dict[str, str],
) -> tuple[list[tuple[int, float, int, bool]], list[float]] | None:
    """(feature, threshold, left-subtree mask, NaN goes right) per node and the leaf values
    left to right; None for a tree QuickScorer cannot reproduce."""
    if tree.get("num_cat", "0") != "0" or tree.get("is_linear", "0") != "0":
        return None
    n_leaves = int(tree["num_leaves"])
    leaf_value = [float(v) for v in tree["leaf_value"].split()]
    if n_leaves == 1:
        return [], leaf_value[:1]
    feature = [int(v) for v in tree["split_feature"].split()]
    threshold = [float(v) for v in tree["threshold"].split()]
    decision = [int(v) for v in tree["decision_type"].split()]
    left = [int(v) for v in tree["left_child"].split()]
    right = [int(v) for v in tree["right_child"].split()]

    position = [0] * n_leaves  # each leaf's place, left to right
    span = [(0, 0)] * (n_leaves - 1)  # each node's first leaf and first right-subtree leaf
    placed = 0
    stack: list[tuple[int, int]] = [(0, 0)]  # (child, stage); a leaf is ~index
    first: dict[int, int] = {}
    while stack:
        child, stage = stack.pop()
        if child < 0:
            position[~child] = placed
            placed += 1
        elif stage == 0:
            first[child] = placed
            stack += [(child, 1), (left[child], 0)]
        else:
            span[child] = (first[child], placed)
            stack.append((right[child], 0))
    full = (1 << n_leaves) - 1
    nodes = []
    for node in range(n_leaves - 1):
        kind = decision[node]
        missing = (kind >> 2) & 3
        if kind & CATEGORICAL_BIT or missing == MISSING_ZERO:
            return None
        # a NaN goes to the default side of a NaN node; any other node compares it as 0.0
        nan_right = not kind & DEFAULT_LEFT_BIT if missing == MISSING_NAN else 0.0 > threshold[node]
        lo, mid = span[node]
        mask = full & ~(((1 << (mid - lo)) - 1) << lo)
        nodes.append((feature[node], threshold[node], mask, nan_right))
    values = [0.0] * n_leaves
    for leaf, place in enumerate(position):
        values[place] = leaf_value[leaf]
    return nodes, values


def _words(masks: list[int], words: int) -> Array:
    """Python-int bitmasks as rows of 64-bit words, least significant first."""
    low = (1 << 64) - 1
    return np.array(
        [[(mask >> (64 * w)) & low for w in range(words)] for mask in masks], dtype=np.uint64
    ).reshape(len(masks), words)


def _offsets(features: list[int], n_features: int) -> Array:
    """Where each feature's run of nodes starts in a list grouped by feature."""
    counts = np.bincount(np.array(features, dtype=np.int64), minlength=n_features)
    return np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
