"""`retrain-cli report`: a static site of every model's history, built from the tables alone.

`data` reads and aggregates the tables, `charts` draws with matplotlib (the `report` extra),
`pages` writes the HTML; this module puts the pages in place, each whole or not at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.orm import Session

from retrain_cli.core.errors import DataError
from retrain_cli.core.private import private_dir, write_private_text
from retrain_cli.ops.report import charts, pages
from retrain_cli.ops.report.data import load_history
from retrain_cli.store import objects

GENERATOR = b"<meta name='generator' content='retrain-cli report'>"


def require_report_folder(out: Path) -> None:
    """`out` must be new, empty, or an earlier report (its `index.html` says retrain-cli wrote
    it): `report --out /` or `--out ~` would otherwise scatter pages among other files."""
    if not out.exists():
        return
    if not out.is_dir():
        raise DataError(f"{out} is not a folder")
    index = out / "index.html"
    if not any(out.iterdir()):
        return
    try:
        earlier = GENERATOR in index.read_bytes()[:4096]
    except OSError:
        earlier = False
    if not earlier:
        raise DataError(
            f"{out} holds other files and no earlier report: give `--out` a new or empty folder"
        )


@dataclass(frozen=True)
class Written:
    index: str  # a path, or a store's URL
    pages: dict[str, str]  # model -> its page
    alerts: dict[str, list[str]]  # model -> its open alerts, the most urgent models first


def write_report(
    session: Session,
    out: Path | str,
    now: datetime,
    since: datetime,
    models: list[str],
    slots_in_use: int,
) -> Written:
    """Write `index.html` and one page per model into `out`: a folder (created 0700, files
    0600), or a store's prefix (`s3://bucket/report/`, one PUT a page, the prefix claimed by
    the database as a home is)."""
    if isinstance(out, Path):
        require_report_folder(out)
    history = load_history(session, now, since, models, slots_in_use)
    with charts.drawing():
        documents = {pages.page_name(m.model): pages.model_page(history, m) for m in history.models}
    documents["index.html"] = pages.index_page(history)
    if isinstance(out, Path):
        try:
            private_dir(out)
            for name, document in documents.items():
                write_private_text(out / name, document)
        except OSError as exc:
            raise DataError(f"cannot write the report into {out}: {exc.strerror or exc}") from exc
    else:
        for name, document in documents.items():  # the pages first, the index last
            if name != "index.html":
                objects.put_text(objects.join(out, name), document)
        objects.put_text(objects.join(out, "index.html"), documents["index.html"])

    def where(name: str) -> str:
        return str(out / name) if isinstance(out, Path) else objects.join(out, name)

    return Written(
        index=where("index.html"),
        pages={m.model: where(pages.page_name(m.model)) for m in history.models},
        alerts={m.model: m.alerts for m in history.models},
    )
