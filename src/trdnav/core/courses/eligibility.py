"""The eligibility gate: the planner's safety screening for the protocol's option, reviewed.

``contraindicated`` findings block unless the course's eligibility carries an override for the
code with a written reason (at least :data:`MIN_REASON` characters, not counting spaces at the
ends); ``caution`` findings need an acknowledgement; ``info`` findings are shown. A finding the
reviewer was not shown (not in ``findings_reviewed``) means the review is out of date. Consent
must be recorded (who and when). Overridden findings stay in ``findings`` with ``overridden_by``.
"""

from __future__ import annotations

from collections.abc import Iterable

from trdnav.core.courses.model import Course
from trdnav.core.courses.results import CourseFinding, EligibilityDecision
from trdnav.core.safety import Finding
from trdnav.knowledge.protocols import Protocol

MIN_REASON = 10
_SEVERITY = {"contraindicated": "block", "caution": "warn", "info": "info"}


def review_eligibility(
    protocol: Protocol, findings: Iterable[Finding], course: Course
) -> EligibilityDecision:
    """Whether the course may start, and why not."""
    el = course.eligibility
    overrides = {
        o.code: o for o in (el.overrides if el else ()) if len(o.reason.strip()) >= MIN_REASON
    }
    acknowledged = {a.code for a in (el.acknowledged if el else ())}
    reviewed = set(el.findings_reviewed) if el else set()
    relevant = [f for f in findings if f.option_id in (protocol.option_id, None)]
    shown: list[CourseFinding] = []
    blocking: list[CourseFinding] = []
    unacknowledged: list[CourseFinding] = []
    reasons: list[str] = []
    if el is None:
        reasons.append("The safety screening for this treatment has not been reviewed.")
    for f in relevant:
        severity = _SEVERITY.get(f.severity, "warn")
        cf = CourseFinding(
            code=f.code,
            severity=severity,
            message=f.message,
            citations=f.citations,
            verified=f.verified,
            rule_id=f.rule_id,
        )
        if severity == "block":
            if f.code in overrides:
                cf = cf.model_copy(update={"overridden_by": overrides[f.code].by})
            else:
                blocking.append(cf)
                reasons.append(f"Contraindication not overridden: {f.message}")
        elif severity == "warn" and f.code not in acknowledged:
            unacknowledged.append(cf)
            reasons.append(f"Caution not acknowledged: {f.message}")
        if el is not None and f.code not in reviewed and severity != "info":
            reasons.append(f"Found after the review (review again): {f.message}")
        shown.append(cf)
    consent_missing = el is None or el.consent_recorded_by is None or el.consent_on is None
    if consent_missing:
        reasons.append("Consent is not recorded.")
    return EligibilityDecision(
        can_start=not reasons,
        blocking=tuple(blocking),
        unacknowledged=tuple(unacknowledged),
        consent_missing=consent_missing,
        reasons=tuple(reasons),
        findings=tuple(shown),
    )
