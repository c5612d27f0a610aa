"""HTML from Jinja2 templates shipped in a package's `templates/` folder, autoescaped: every value
a template prints is escaped unless it is `Markup` (an SVG that matplotlib or the code drew)."""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from jinja2 import Environment


def render(package: str, name: str, **context: Any) -> str:
    """`package`'s template `name`, rendered with `context`."""
    return _environment(package).get_template(name).render(**context)


@cache
def _environment(package: str) -> Environment:
    # Jinja2 loads with the first page written: the commands that write none stay light
    from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

    return Environment(
        loader=PackageLoader(package),
        autoescape=select_autoescape(default=True, default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=False,
    )
