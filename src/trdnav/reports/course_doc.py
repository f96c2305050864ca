"""What the course documents share: the Jinja environment and the stylesheets of the treatment
summary (:mod:`trdnav.reports.summary`), with the course stylesheet appended, and the header and
footer every document carries (clinic, app version, knowledge base version, disclaimer)."""

from __future__ import annotations

from datetime import date
from functools import cache
from importlib import resources
from typing import Any

from markupsafe import Markup

from trdnav import __version__
from trdnav.core.assessment import DISCLAIMER
from trdnav.knowledge.load import Knowledge
from trdnav.reports.summary import _environment, _Refs, _stylesheet


@cache
def course_stylesheet() -> str:
    """summary.css then course_summary.css: the course documents look like the summary."""
    extra = (resources.files("trdnav.reports") / "templates" / "course_summary.css").read_text(
        "utf-8"
    )
    return _stylesheet() + "\n" + extra


def render_document(template: str, generated_on: date, clinic_name: str, **context: Any) -> str:
    """A self-contained HTML document from ``templates/<template>`` (which extends
    ``_course_base.html``); ``generated_on`` is printed, never read from a clock."""
    base: dict[str, Any] = {
        "css": Markup(course_stylesheet()),  # noqa: S704 - our own stylesheets, from the package
        "clinic_name": clinic_name,
        "generated_on": generated_on,
        "app_version": __version__,
        "kb_version": None,
        "disclaimer": DISCLAIMER,
    }
    base.update(context)
    return _environment().get_template(template).render(base)


class Refs(_Refs):
    """The summary's numbered citations (numbers in reading order); without a knowledge base a
    source is listed by its bibliography key."""

    def __init__(self, kb: Knowledge | None) -> None:
        self.citations: dict[str, str] = {}
        self.kb_or_none = kb
        self.number: dict[str, int] = {}

    def sources(self) -> list[tuple[int, str, str]]:
        out = []
        for key, n in self.number.items():
            entry = self.kb_or_none.bibliography.get(key) if self.kb_or_none else None
            out.append((n, key, entry.citation if entry is not None else key))
        return out
