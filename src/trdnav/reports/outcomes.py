"""Clinic-level course outcomes: response and remission rates by treatment, with counts and
Wilson 95 % confidence intervals (computed by :func:`trdnav.core.courses.outcomes.clinic_outcomes`;
this module only presents them).

Small numbers mislead: every rate is shown with its count, its denominator and its interval, and a
rate over fewer than :data:`SMALL_N` courses is flagged. Pure: the same rates give the same text.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from trdnav import __version__
from trdnav.core.assessment import DISCLAIMER
from trdnav.core.courses.results import OutcomeRate, Proportion
from trdnav.knowledge.load import Knowledge
from trdnav.reports.course_doc import Refs, render_document

SMALL_N = 10  # a rate over fewer courses than this is flagged (presentation, not a clinical rule)
TREATMENT_NAMES = {
    "esketamine": "Esketamine (intranasal)",
    "ketamine": "Ketamine",
    "rtms": "rTMS",
    "ect": "ECT",
}


def format_rate(p: Proportion) -> str:
    """``3/5 (60 %; 95 % CI 23–88 %)``; ``0/0 (none evaluable)`` when there is nothing to count."""
    if p.n == 0 or p.rate is None:
        return f"{p.count}/{p.n} (none evaluable)"
    text = f"{p.count}/{p.n} ({p.rate * 100:.0f} %"
    if p.ci_low is not None and p.ci_high is not None:
        text += f"; 95 % CI {p.ci_low * 100:.0f}–{p.ci_high * 100:.0f} %"
    return text + ")"


@dataclass(frozen=True)
class _Row:
    treatment: str
    courses: int
    response: str
    remission: str
    small: bool
    cites: tuple[str, ...]


def _row(r: OutcomeRate) -> _Row:
    return _Row(
        treatment=TREATMENT_NAMES.get(r.treatment, r.treatment),
        courses=r.courses,
        response=format_rate(r.response),
        remission=format_rate(r.remission),
        small=min(r.response.n, r.remission.n) < SMALL_N,
        cites=r.citations,
    )


def render_outcomes_html(
    rates: Sequence[OutcomeRate],
    generated_on: date,
    kb: Knowledge | None = None,
    clinic_name: str = "TRD Navigator",
) -> str:
    """The clinic's outcomes table as one self-contained HTML document.

    With ``kb`` the sources are listed in full (else by their bibliography keys) and the
    knowledge base version is printed.
    """
    return render_document(
        "course_outcomes.html",
        generated_on,
        clinic_name,
        doc_title="Interventional course outcomes",
        rows=[_row(r) for r in rates],
        small_n=SMALL_N,
        refs=Refs(kb),
        kb_version=kb.kb_version if kb is not None else None,
    )


def _proportion(p: Proportion) -> dict[str, object]:
    return {
        "count": p.count,
        "n": p.n,
        "rate": p.rate,
        "ci_low": p.ci_low,
        "ci_high": p.ci_high,
        "small_n": p.n < SMALL_N,
    }


def outcomes_json(rates: Sequence[OutcomeRate], generated_on: date) -> str:
    """The same rates as JSON (indented, keys in a fixed order), with provenance."""
    doc = {
        "generated_on": generated_on.isoformat(),
        "app_version": __version__,
        "confidence_interval": "Wilson score, 95 %",
        "small_n_below": SMALL_N,
        "rates": [
            {
                "treatment": r.treatment,
                "courses": r.courses,
                "response": _proportion(r.response),
                "remission": _proportion(r.remission),
                "citations": list(r.citations),
            }
            for r in rates
        ],
        "disclaimer": DISCLAIMER,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
