"""Per-person features of the cohort and a Maudsley-style stage (docs/population.md, Features).

"To index" means strictly before the index date; "after index" means on or after it (the index
step itself starts on the index date). Counts are over the index episode.
"""

from __future__ import annotations

from collections.abc import Sequence

import ibis
import ibis.expr.types as ir

from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.population import ScoreBand
from trdnav.knowledge.schema import Band
from trdnav.population.concepts import KIND_ANTIDEPRESSANT, KIND_AUGMENTATION
from trdnav.population.phenotype.util import count_true
from trdnav.population.schema import OmopTables


def whole_months(start: ir.DateValue, end: ir.DateValue) -> ir.IntegerValue:
    """Whole calendar months from ``start`` to ``end`` (the day of month counts)."""
    months = (end.year() - start.year()) * 12 + (end.month() - start.month())
    return months - ibis.ifelse(end.day() < start.day(), 1, 0)


def _band_points(value: ir.NumericValue, bands: Sequence[Band]) -> ir.Value:
    cases = []
    for band in bands:
        hit = value >= band.min
        if band.max is not None:
            hit = hit & (value <= band.max)
        cases.append((hit, ibis.literal(band.points).cast("int64")))
    return ibis.cases(*cases, else_=ibis.null("int64"))


def _band_label(value: ir.NumericValue, bands: Sequence[Band]) -> ir.Value:
    cases = []
    for band in bands:
        hit = value >= band.min
        if band.max is not None:
            hit = hit & (value <= band.max)
        cases.append((hit, ibis.literal(band.label)))
    return ibis.cases(*cases, else_=ibis.null("string"))


def _score_points(value: ir.NumericValue, bands: Sequence[ScoreBand]) -> ir.Value:
    cases = [
        ((value >= b.min) & (value <= b.max), ibis.literal(b.points).cast("int64")) for b in bands
    ]
    return ibis.cases(*cases, else_=ibis.null("int64"))


def phq9_records(tables: OmopTables, kb: Knowledge) -> ir.Table:
    """``(person_id, measurement_date, value)`` of PHQ-9 totals (LOINC code from the KB)."""
    concept = tables.concept
    loinc = kb.population.parameters.phq9_total_loinc.value
    ids = concept.filter((concept.vocabulary_id == "LOINC") & (concept.concept_code == loinc))
    ids = ids.select(concept_id=ids.concept_id.cast("int64"))
    m = tables.measurement
    m = m.select(
        person_id=m.person_id.cast("int64"),
        concept_id=m.measurement_concept_id.cast("int64"),
        measurement_date=m.measurement_date.cast("date"),
        value=m.value_as_number.cast("float64"),
    )
    m = m.filter(m.value.notnull()).semi_join(ids, "concept_id")
    return m.select("person_id", "measurement_date", "value")


def features(
    candidates: ir.Table,
    episodes: ir.Table,
    steps: ir.Table,
    sessions: ir.Table,
    psychotic: ir.Table,
    phq9: ir.Table,
    kb: Knowledge,
) -> ir.Table:
    """One row per cohort person; columns as listed in docs/population.md."""
    params = kb.population.parameters
    msm = kb.staging["maudsley"]
    lookback = params.episode_lookback_days.value
    window = params.severity_window_days.value

    c = candidates.filter(candidates.in_cohort).select("person_id", "episode_id", "index_date")
    ep = episodes.select("person_id", "episode_id", "episode_start", "episode_end")
    base = c.join(ep, ["person_id", "episode_id"])

    s = steps.join(c, ["person_id", "episode_id"])
    before = s.step_start < s.index_date
    trial = s.is_trial & before
    ad = (s.step_kind == KIND_ANTIDEPRESSANT) & before
    failed = s.failed & (s.adequacy_date < s.index_date)
    counts = s.group_by("person_id").aggregate(
        trials_to_index=count_true(trial),
        adequate_trials_to_index=count_true(trial & s.adequacy_date.notnull()),
        failed_adequate_trials=count_true(failed),
        failed_antidepressants=count_true(failed & (s.step_kind == KIND_ANTIDEPRESSANT)),
        antidepressant_classes_tried=ibis.ifelse(ad, s.drug_class, ibis.null("string")).nunique(),
        augmentation_used=((s.step_kind == KIND_AUGMENTATION) & before).any(),
        dose_unknown_trials=count_true(trial & s.dose_unknown),
    )

    w = base.select("person_id", "index_date", "episode_start", "episode_end")
    ss = sessions.join(
        w,
        [
            sessions.person_id == w.person_id,
            sessions.step_date >= w.episode_start - ibis.interval(days=lookback),
            sessions.step_date <= w.episode_end,
        ],
    )
    flags: dict[str, ir.Value] = {}
    for modality in ("ect", "rtms", "esketamine"):
        is_mod = ss.modality == modality
        flags[f"{modality}_to_index"] = (is_mod & (ss.step_date < ss.index_date)).any()
        flags[f"{modality}_after_index"] = (is_mod & (ss.step_date >= ss.index_date)).any()
    proc = ss.group_by(person_id=ss.person_id).aggregate(**flags)

    pq = phq9.join(
        w,
        [
            phq9.person_id == w.person_id,
            phq9.measurement_date >= w.index_date - ibis.interval(days=window),
            phq9.measurement_date <= w.index_date,
        ],
    )
    last = pq.group_by(person_id=pq.person_id).aggregate(last_date=pq.measurement_date.max())
    pq2 = pq.join(last, [pq.person_id == last.person_id, pq.measurement_date == last.last_date])
    phq = pq2.group_by(person_id=pq2.person_id).aggregate(phq9_before_index=pq2.value.max())

    ps = psychotic.join(
        w,
        [
            psychotic.person_id == w.person_id,
            psychotic.condition_date >= w.episode_start - ibis.interval(days=lookback),
            psychotic.condition_date <= w.index_date,
        ],
    )
    psy = ps.select(person_id=ps.person_id, psychotic=ibis.literal(True)).distinct()

    f = (
        base.left_join(counts, "person_id")
        .drop("person_id_right")
        .left_join(proc, "person_id")
        .drop("person_id_right")
        .left_join(phq, "person_id")
        .drop("person_id_right")
        .left_join(psy, "person_id")
        .drop("person_id_right")
    )
    months = whole_months(f.episode_start, f.index_date)
    zero = ibis.literal(0).cast("int64")
    out = f.select(
        subject_id=f.person_id,
        index_date=f.index_date,
        episode_start=f.episode_start,
        episode_months_to_index=months.cast("int64"),
        trials_to_index=f.trials_to_index.fill_null(0).cast("int64"),
        adequate_trials_to_index=f.adequate_trials_to_index.fill_null(0).cast("int64"),
        failed_adequate_trials=f.failed_adequate_trials.fill_null(0).cast("int64"),
        failed_antidepressants=f.failed_antidepressants.fill_null(0).cast("int64"),
        antidepressant_classes_tried=f.antidepressant_classes_tried.fill_null(0).cast("int64"),
        augmentation_used=f.augmentation_used.fill_null(False),
        dose_unknown_trials=f.dose_unknown_trials.fill_null(0).cast("int64"),
        **{k: f[k].fill_null(False) for k in flags},
        phq9_before_index=f.phq9_before_index,
        psychotic=f.psychotic.fill_null(False),
    )
    severity = ibis.ifelse(
        out.psychotic,
        ibis.literal(int(msm.parameters["severity_severe_psychotic"])).cast("int64"),
        _score_points(out.phq9_before_index, params.phq9_to_msm_severity.bands),
    )
    aug_points = int(msm.parameters["augmentation_used"])
    ect_points = int(msm.parameters["ect_used"])
    out = out.mutate(
        msm_duration_points=_band_points(out.episode_months_to_index, msm.bands["duration_months"]),
        msm_failed_points=_band_points(
            out.failed_antidepressants, msm.bands["failed_antidepressants"]
        ),
        msm_augmentation_points=ibis.ifelse(out.augmentation_used, aug_points, zero).cast("int64"),
        msm_ect_points=ibis.ifelse(out.ect_to_index, ect_points, zero).cast("int64"),
        msm_severity_points=severity,
    )
    out = out.mutate(
        msm_partial_score=(
            out.msm_duration_points
            + out.msm_failed_points
            + out.msm_augmentation_points
            + out.msm_ect_points
        ).cast("int64")
    )
    out = out.mutate(msm_score=(out.msm_partial_score + out.msm_severity_points).cast("int64"))
    out = out.mutate(msm_band=_band_label(out.msm_score, msm.bands["total"]))
    return out.drop("psychotic")
