"""`retrain-cli drift check`: data drift between a reference and a current window."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from retrain_cli.cli.options import (
    AD_HOC,
    AdHocModel,
    Command,
    DatabaseUrl,
    Every,
    Group,
    JobNames,
    Json,
    Now,
    Quiet,
)
from retrain_cli.cli.output import Output, cell, finish_checks, table
from retrain_cli.cli.runtime import notify, open_session
from retrain_cli.core.choices import DriftMethod
from retrain_cli.core.durations import utcnow
from retrain_cli.core.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from retrain_cli.drift.check import Profiled
    from retrain_cli.drift.compare import DriftResult

app = typer.Typer(cls=Group, help="Detect data drift.", no_args_is_help=True)


@app.command("check", cls=Command)
def check(
    jobs: JobNames = None,
    every: Every = False,
    model: AdHocModel = None,
    reference: Annotated[
        Path | None, typer.Option(help="Reference window file.", rich_help_panel=AD_HOC)
    ] = None,
    current: Annotated[
        Path | None, typer.Option(help="Current window file.", rich_help_panel=AD_HOC)
    ] = None,
    threshold: Annotated[
        float, typer.Option(help="Drift threshold of the method.", rich_help_panel=AD_HOC)
    ] = 0.25,
    drift_share: Annotated[
        float, typer.Option(help="Share of drifted features.", rich_help_panel=AD_HOC)
    ] = 0.5,
    method: Annotated[
        DriftMethod, typer.Option(help="The statistic that decides.", rich_help_panel=AD_HOC)
    ] = DriftMethod.PSI,
    all_statistics: Annotated[
        bool,
        typer.Option(
            "--all-statistics",
            help="Also KS and Wasserstein for every numeric column (sorts each one).",
            rich_help_panel=AD_HOC,
        ),
    ] = False,
    report: Annotated[
        Path | None,
        typer.Option(help="Also write a self-contained HTML report here.", metavar="FILE.html"),
    ] = None,
    now: Now = None,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Compare reference and current windows per feature and for the predictions.

    Exit 0: no drift; 3: drift found; 1: an error (other jobs of --all still run).

    Example: retrain-cli drift check --all --report drift.html
    """
    from retrain_cli.cluster.placement import cluster_placement
    from retrain_cli.drift import check as monitor
    from retrain_cli.drift.compare import DriftSettings
    from retrain_cli.jobs.store import JobFailure, select_jobs

    at = now or utcnow()
    with open_session(database_url) as (settings, session):
        if model is not None:
            if jobs or every or reference is None or current is None:
                raise UsageError("the ad hoc form needs --model, --reference and --current only")
            drift_settings = DriftSettings(
                threshold=threshold,
                method=method,
                drift_share=drift_share,
                all_statistics=all_statistics,
            )
            outcomes: list[Any] = [
                monitor.check_files(session, model, reference, current, drift_settings, at)
            ]
        else:
            selected = select_jobs(session, jobs or [], every)
            with cluster_placement(settings) as placement:
                outcomes = monitor.check_jobs(
                    session, settings, selected, at, every_enabled=every, placement=placement
                )
    results = [o for o in outcomes if not isinstance(o, JobFailure)]
    notify(settings, [event for r in results for event in r.events()])
    if report is not None and results:  # a check that failed keeps the last report
        from retrain_cli.drift.report import write_report

        write_report(report, results)
    finish_checks(
        Output(as_json, quiet),
        outcomes,
        _render,
        flagged=lambda r: r.findings,
        what=(
            "drift or a broken data contract"
            if any(r.contract for r in results)
            else "drift detected"
        ),
        nothing="no enabled job has data.reference and data.current to check",
    )


@app.command("profile", cls=Command)
def profile(
    jobs: JobNames = None,
    every: Every = False,
    database_url: DatabaseUrl = None,
    as_json: Json = False,
    quiet: Quiet = False,
) -> None:
    """Profile each job's reference window, for checks that stream only the current one.

    See docs/profiles.md. A check also builds a missing or outdated profile by itself.

    Exit 0: profiled; 1: an error (other jobs of --all still run).

    Example: retrain-cli drift profile churn
    """
    from retrain_cli.cluster.placement import cluster_placement
    from retrain_cli.drift import check as monitor
    from retrain_cli.jobs.store import select_jobs

    with open_session(database_url) as (settings, session):
        selected = select_jobs(session, jobs or [], every)
        with cluster_placement(settings) as placement:
            outcomes = monitor.profile_jobs(
                session, settings, selected, every_enabled=every, placement=placement
            )
    finish_checks(
        Output(as_json, quiet), outcomes, _render_profiles, flagged=lambda r: False, what=""
    )


def _render_profiles(console: Console, results: list[Profiled]) -> None:
    console.print(
        table(
            None,
            ["job", "model", "rows", "columns", "KS rank error", "profile"],
            [(p.job, p.model, p.rows, p.columns, f"{p.rank_error:.2%}", p.path) for p in results],
        )
    )


def _render(console: Console, results: list[DriftResult]) -> None:
    for result in results:
        verdict = "[red]DRIFT[/]" if result.drifted else "[green]no drift[/]"
        n_drifted = sum(f.drifted for f in result.features)
        prediction = ""
        if result.predictions:
            moved = any(p.drifted for p in result.predictions)
            prediction = f"; predictions {'drifted' if moved else 'stable'}"
        if result.target is not None:
            prediction += f"; target {'drifted' if result.target.drifted else 'stable'}"
        mode = ""
        if result.profile is not None:
            mode = f"; against the profile of the {result.profile['built_from']}"
        weighted = ""
        if result.weighted_share is not None:
            weighted = f", carrying {result.weighted_share:.0%} of the model's importance"
        console.print(
            f"{result.job or '(ad hoc)'} ({result.model}): {verdict} — {n_drifted}/"
            f"{len(result.features)} features drifted (share {cell(result.drift_share)}"
            f"{weighted}, alarm at {result.required_share:.2f}){prediction}{mode}"
        )
        if result.weighting_note:
            console.print(f"  {result.weighting_note}", markup=False)
        columns = result.ordered()
        console.print(
            table(
                None,
                [
                    "column",
                    "kind",
                    "importance",
                    "drifted",
                    "method",
                    "statistic",
                    "threshold",
                    "psi",
                    "ks/chi2 p",
                    "missing ref/cur",
                ],
                [
                    (
                        c.feature,
                        c.kind,
                        "-" if c.importance is None else f"{c.importance:.0%}",
                        c.drifted,
                        c.method,
                        c.statistic,
                        c.threshold,
                        c.metrics.get("psi", c.metrics.get("undefined")),
                        c.metrics.get("ks_pvalue", c.metrics.get("chi2_pvalue")),
                        f"{cell(c.missing_rate_ref)}/{cell(c.missing_rate_cur)}",
                    )
                    for c in columns
                ],
            )
        )
        found = result.multivariate
        if found is not None:
            _render_multivariate(console, found)
        if result.contract:
            console.print(f"  [red]data contract broken[/] ({len(result.contract)} rule(s)):")
            for broken in result.contract:
                console.print(f"    {broken.message}", markup=False)
        elif result.contract is not None:
            console.print("  data contract kept")


def _render_multivariate(console: Console, found: Any) -> None:
    if found.auc is None:
        console.print(f"  domain classifier: unknown ({found.reason})")
        return
    verdict = "[red]tells the windows apart[/]" if found.drifted else "[green]cannot tell[/]"
    separating = ", ".join(
        f"{f['feature']} ({f['gain_share']:.0%})" for f in found.top_features[:3]
    )
    console.print(
        f"  domain classifier: {verdict} — AUC {found.auc:.3f} "
        f"({found.ci_low:.3f}-{found.ci_high:.3f}), drift above {found.max_auc:.2f}; "
        f"{found.n_reference} + {found.n_current} rows, {found.folds} folds"
        + (f"; most separating: {separating}" if separating else "")
    )
