"""The champion/challenger gate: promote a new version only when it is better on the same data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from retrain_cli.core.choices import LOWER_IS_BETTER


@dataclass(frozen=True)
class GateDecision:
    promote: bool
    reasons: list[str]
    values: dict[str, Any] = field(default_factory=dict)
    candidate: bool = False  # passed, and became a rollout's candidate instead

    @property
    def decision(self) -> str:
        return "promote" if self.promote else "candidate" if self.candidate else "hold"

    @property
    def changes_serving(self) -> bool:
        """Promoted, or made a rollout's candidate: what serves the model changed."""
        return self.promote or self.candidate

    def document(self) -> dict[str, Any]:
        """The decision as `retraining_job_history.gate` and `--json` hold it."""
        return {"decision": self.decision, "reasons": self.reasons, "values": self.values}


def decide(
    metric: str,
    challenger: float | None,
    champion: float | None,
    *,
    threshold: float | None,
    min_improvement: float,
    n_holdout: int,
    min_samples: int,
    allow_ties: bool = False,
) -> GateDecision:
    """Promote when the challenger meets the threshold, has at least `min_samples` hold-out rows,
    and beats the champion (if any) by more than `min_improvement` (a tie is no improvement;
    with `allow_ties`, by at least). A NULL metric holds.

    >>> decide("auc", 0.9, 0.85, threshold=0.8, min_improvement=0.0, n_holdout=100,
    ...        min_samples=30).promote
    True
    >>> decide("auc", 0.9, 0.9, threshold=0.8, min_improvement=0.0, n_holdout=100,
    ...        min_samples=30).promote
    False
    >>> decide("auc", 0.9, None, threshold=0.95, min_improvement=0.0, n_holdout=100,
    ...        min_samples=30).reasons
    ['challenger auc 0.9 misses the threshold 0.95']
    """
    values = {
        "metric": metric,
        "challenger": challenger,
        "champion": champion,
        "threshold": threshold,
        "min_improvement": min_improvement,
        "allow_ties": allow_ties,
        "n_holdout": n_holdout,
        "min_samples": min_samples,
    }
    if n_holdout < min_samples:
        return GateDecision(
            False, [f"hold-out has {n_holdout} rows, fewer than {min_samples}"], values
        )
    if challenger is None:
        return GateDecision(False, [f"challenger {metric} is undefined on the hold-out"], values)
    sign = -1.0 if metric in LOWER_IS_BETTER else 1.0
    direction = " (lower is better)" if sign < 0 else ""
    if threshold is not None and sign * challenger < sign * threshold:
        return GateDecision(
            False,
            [
                f"challenger {metric} {challenger:.4g} misses the threshold "
                f"{threshold:.4g}{direction}"
            ],
            values,
        )
    if champion is None:
        met = "" if threshold is None else f" meets the threshold {threshold:.4g}{direction}"
        held = f"no threshold{direction}" if threshold is None else ""
        return GateDecision(
            True, [f"no champion to beat; challenger {metric} {challenger:.4g}{met}{held}"], values
        )
    margin = sign * (challenger - champion)
    values["margin"] = margin
    needed = f"at least {min_improvement:.4g}" if allow_ties else f"more than {min_improvement:.4g}"
    if margin > min_improvement or (allow_ties and margin == min_improvement):
        return GateDecision(
            True,
            [
                f"challenger {metric} {challenger:.4g} beats the champion's {champion:.4g} "
                f"by {margin:.4g} (needed {needed}){direction}"
            ],
            values,
        )
    return GateDecision(
        False,
        [
            f"challenger {metric} {challenger:.4g} does not beat the champion's "
            f"{champion:.4g} by {needed} (margin {margin:.4g})"
        ],
        values,
    )
