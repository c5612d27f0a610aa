from typing import Any

AVX512: bool

def score(
    columns: tuple[Any, ...],
    start: int,
    stop: int,
    out: Any,
    thresholds: Any,
    node_tree: Any,
    node_masks: Any,
    node_offsets: Any,
    nan_tree: Any,
    nan_masks: Any,
    nan_offsets: Any,
    init_masks: Any,
    leaf_values: Any,
    leaf_offsets: Any,
    words: int,
    transform: int,
    simd: bool,
) -> None: ...
