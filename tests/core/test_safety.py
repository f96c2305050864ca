"""Safety screening: every rule fires when it should and only then; washouts at their edges."""

from __future__ import annotations

from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests.builders import AS_OF, a_history
from trdnav.core.history import History
from trdnav.core.safety import (
    ALERT_CODES,
    SEVERITY_RANK,
    Finding,
    _poor_metabolizer_genes,
    safety_alerts,
    screen_current,
    screen_option,
)
from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.knowledge.safety import ConditionRule, Interaction, Target

KB = default_knowledge()
OPTIONS: dict[str, tuple[str, ...]] = {
    "esketamine": ("esketamine",),
    "ketamine_iv": ("ketamine",),
    "rtms": (),
    "ect": (),
    "switch_maoi": ("phenelzine",),
    "augment_lithium": ("lithium",),
    "switch_bupropion": ("bupropion",),
    "augment_aripiprazole": ("aripiprazole",),
    "switch_citalopram": ("citalopram",),
    "switch_paroxetine": ("paroxetine",),
}


def ongoing(drug: str, mg: float | None = None, start: date = date(2024, 1, 1)) -> dict[str, Any]:
    doses = [{"from": start, "mg_per_day": mg}] if mg is not None else []
    return {"type": "medication", "drug": drug, "start": start, "doses": doses}


def stopped(drug: str, stop: date, start: date | None = None) -> dict[str, Any]:
    begin = start or stop - timedelta(days=60)
    return {"type": "medication", "drug": drug, "start": begin, "stop": stop}


def ids(findings: list[Finding]) -> set[str | None]:
    return {f.rule_id for f in findings}


def example_use(target: Target, kb: Knowledge, avoid: str | None = None) -> str:
    """A drug name matching ``target`` (different from ``avoid``)."""
    candidates = list(target.drugs)
    for cls in target.classes:
        candidates += sorted(d.id for d in kb.drugs.values() if d.drug_class == cls)
    candidates += list(target.names)
    return next(c for c in candidates if c != avoid)


def option_for(rule: ConditionRule, kb: Knowledge) -> tuple[str, tuple[str, ...]]:
    if rule.applies_to.options:
        return rule.applies_to.options[0], ()
    drug = example_use(rule.applies_to, kb)
    return f"start_{drug}", (drug,)


def with_condition(rule: ConditionRule) -> History:
    b = a_history()
    assert rule.condition is not None
    if rule.condition in {"pregnant", "breastfeeding"}:
        b.data["patient"][rule.condition] = True
    else:
        b.condition(rule.condition, rule.statuses[0] if rule.statuses else None)
    return b.build()


CONDITION_RULES = [r for r in KB.safety.rules if r.condition is not None]
NOTES = [r for r in KB.safety.rules if r.condition is None]


# --- condition rules --------------------------------------------------------------------------


@pytest.mark.parametrize("rule", CONDITION_RULES, ids=lambda r: r.id)
def test_each_condition_rule_fires_with_its_condition_and_not_without(rule, kb):
    option, drugs = option_for(rule, kb)
    assert rule.id in ids(screen_option(option, drugs, with_condition(rule), AS_OF, kb))
    assert rule.id not in ids(screen_option(option, drugs, a_history().build(), AS_OF, kb))


@pytest.mark.parametrize("rule", CONDITION_RULES, ids=lambda r: r.id)
def test_a_condition_rule_does_not_fire_for_an_unrelated_option(rule, kb):
    found = screen_option("psychotherapy_cbt", (), with_condition(rule), AS_OF, kb)
    assert rule.id not in ids(found)


@pytest.mark.parametrize("rule", NOTES, ids=lambda r: r.id)
def test_each_monitoring_note_is_given_for_its_option(rule, kb):
    option, drugs = option_for(rule, kb)
    findings = screen_option(option, drugs, a_history().build(), AS_OF, kb)
    assert rule.id in ids(findings)
    assert next(f for f in findings if f.rule_id == rule.id).severity == rule.severity


def test_esketamine_vascular_contraindications(kb):
    for condition in (
        "aneurysmal_vascular_disease",
        "arteriovenous_malformation",
        "intracerebral_hemorrhage_history",
    ):
        h = a_history().condition(condition).build()
        found = screen_option("esketamine", ["esketamine"], h, AS_OF, kb)
        top = found[0]
        assert (top.code, top.severity, top.option_id) == (
            "contraindicated_condition",
            "contraindicated",
            "esketamine",
        )
        assert top.verified and top.citations == ("spravato_uspi_contraindications",)


def test_hypertension_status_decides_the_uncontrolled_hypertension_finding(kb):
    def codes(status: str | None) -> set[str]:
        h = a_history().condition("hypertension", status).build()
        return {f.code for f in screen_option("esketamine", ["esketamine"], h, AS_OF, kb)}

    assert "uncontrolled_hypertension" in codes("uncontrolled")
    assert "uncontrolled_hypertension" in codes(None)  # unknown status is never reassuring
    assert "uncontrolled_hypertension" not in codes("controlled")


def test_substance_use_in_remission_is_not_flagged(kb):
    h = a_history().condition("substance_use_disorder", "remission").build()
    assert "substance_use" not in {
        f.code for f in screen_option("ketamine_iv", ["ketamine"], h, AS_OF, kb)
    }
    h = a_history().condition("substance_use_disorder").build()
    assert "substance_use" in {
        f.code for f in screen_option("ketamine_iv", ["ketamine"], h, AS_OF, kb)
    }


def test_rtms_rules_match_protocol_variants_by_prefix(kb):
    h = a_history().condition("cochlear_implant").build()
    assert "rtms_cochlear_implant" in ids(screen_option("rtms_itbs", (), h, AS_OF, kb))
    assert "rtms_cochlear_implant" not in ids(screen_option("rtmsx", (), h, AS_OF, kb))


def test_bupropion_is_contraindicated_in_seizure_and_eating_disorders(kb):
    for condition in ("seizure_disorder", "eating_disorder"):
        h = a_history().condition(condition).build()
        found = screen_option("augment_bupropion", ["bupropion"], h, AS_OF, kb)
        assert found[0].severity == "contraindicated"


# --- interactions ------------------------------------------------------------------------------


@pytest.mark.parametrize("ix", KB.safety.interactions, ids=lambda i: i.id)
def test_each_interaction_fires_on_current_medications_and_only_with_both(ix: Interaction, kb):
    a = example_use(ix.a, kb)
    b = example_use(ix.b, kb, avoid=a)
    both = a_history().treatment(**ongoing(a)).treatment(**ongoing(b)).build()
    assert ix.id in ids(screen_current(both, AS_OF, kb))
    assert ix.id not in ids(screen_current(a_history().treatment(**ongoing(a)).build(), AS_OF, kb))
    assert ix.id not in ids(screen_current(a_history().treatment(**ongoing(b)).build(), AS_OF, kb))


@pytest.mark.parametrize("ix", KB.safety.interactions, ids=lambda i: i.id)
def test_each_interaction_fires_when_an_option_would_add_the_other_drug(ix: Interaction, kb):
    a = example_use(ix.a, kb)
    b = example_use(ix.b, kb, avoid=a)
    if kb.resolve_drug(b) is None:
        a, b = b, a  # the option starts a drug of the knowledge base
    h = a_history().treatment(**ongoing(a)).build()
    assert ix.id in ids(screen_option(f"augment_{b}", [b], h, AS_OF, kb))


def test_maoi_with_current_ssri_is_contraindicated_serotonin_syndrome(kb):
    h = a_history().treatment(**ongoing("phenelzine")).treatment(**ongoing("sertraline")).build()
    f = next(f for f in screen_current(h, AS_OF, kb) if f.code == "serotonin_syndrome_risk")
    assert f.severity == "contraindicated" and f.option_id is None


def test_stopped_drugs_do_not_interact(kb):
    h = (
        a_history()
        .treatment(**ongoing("lithium"))
        .treatment(**stopped("ibuprofen", AS_OF - timedelta(days=1)))
        .build()
    )
    assert "lithium_interaction" not in {f.code for f in screen_current(h, AS_OF, kb)}


def test_current_medications_are_screened_with_ongoing_treatments(kb):
    b = a_history().treatment(**ongoing("lithium"))
    b.data["current_medications"] = [{"drug": "Hydrochlorothiazide", "mg_per_day": 25}]
    assert "lithium_thiazide" in ids(screen_current(b.build(), AS_OF, kb))


def test_current_medications_supply_the_dose_for_caps(kb):
    b = a_history()
    b.data["current_medications"] = [{"drug": "Celexa", "mg_per_day": 60}]
    assert "citalopram_max" in ids(screen_current(b.build(), AS_OF, kb))


# --- washouts ----------------------------------------------------------------------------------

STOP = date(2024, 5, 1)


def washout_findings(prior: str, option: str, drugs: list[str], days_after: int) -> list[Finding]:
    h = a_history().treatment(**stopped(prior, STOP)).build()
    found = screen_option(option, drugs, h, STOP + timedelta(days=days_after), KB)
    return [f for f in found if f.code == "maoi_washout_required"]


@pytest.mark.parametrize(
    ("prior", "option", "drugs", "days"),
    [
        ("fluoxetine", "switch_maoi", ["phenelzine"], 35),
        ("sertraline", "switch_maoi", ["phenelzine"], 14),
        ("venlafaxine", "switch_maoi", ["tranylcypromine"], 14),
        ("vortioxetine", "switch_maoi", ["phenelzine"], 21),
        ("phenelzine", "switch_sertraline", ["sertraline"], 14),
        ("phenelzine", "switch_fluoxetine", ["fluoxetine"], 14),
        ("tranylcypromine", "switch_maoi", ["phenelzine"], 14),
    ],
)
def test_washout_is_required_until_the_safe_date_and_not_on_it(prior, option, drugs, days):
    safe = STOP + timedelta(days=days)
    day_before = washout_findings(prior, option, drugs, days - 1)
    assert len(day_before) == 1
    assert day_before[0].until == safe and day_before[0].severity == "contraindicated"
    assert washout_findings(prior, option, drugs, days) == []


def test_fluoxetine_needs_five_weeks_where_other_ssris_need_two(kb):
    assert washout_findings("fluoxetine", "switch_maoi", ["phenelzine"], 20) != []
    assert washout_findings("sertraline", "switch_maoi", ["phenelzine"], 20) == []


def test_no_washout_between_non_maoi_antidepressants(kb):
    assert washout_findings("sertraline", "switch_bupropion", ["bupropion"], 1) == []


def test_switching_from_a_current_ssri_to_an_maoi_counts_the_washout_from_today(kb):
    h = a_history().treatment(**ongoing("fluoxetine", 20)).build()
    found = [
        f
        for f in screen_option("switch_maoi", ["phenelzine"], h, AS_OF, kb)
        if f.code == "maoi_washout_required"
    ]
    assert [f.until for f in found] == [AS_OF + timedelta(days=35)]


def test_adding_an_maoi_to_a_current_ssri_is_a_contraindicated_combination(kb):
    h = a_history().treatment(**ongoing("sertraline", 100)).build()
    found = screen_option("augment_phenelzine", ["phenelzine"], h, AS_OF, kb)
    assert ("serotonin_syndrome_risk", "contraindicated") in {(f.code, f.severity) for f in found}


def test_a_current_drug_started_inside_a_washout_is_flagged(kb):
    h = (
        a_history()
        .treatment(**stopped("fluoxetine", STOP))
        .treatment(**ongoing("phenelzine", 45, start=STOP + timedelta(days=20)))
        .build()
    )
    found = [f for f in screen_current(h, AS_OF, kb) if f.code == "maoi_washout_required"]
    assert [f.until for f in found] == [STOP + timedelta(days=35)]
    h = (
        a_history()
        .treatment(**stopped("fluoxetine", STOP))
        .treatment(**ongoing("phenelzine", 45, start=STOP + timedelta(days=35)))
        .build()
    )
    assert "maoi_washout_required" not in {f.code for f in screen_current(h, AS_OF, kb)}


# --- dose caps ----------------------------------------------------------------------------------


def citalopram_patient(mg: float, born: date = date(1980, 1, 1), *conditions: str) -> History:
    b = a_history().treatment(**ongoing("citalopram", mg))
    b.data["patient"]["birth_date"] = born
    for c in conditions:
        b.condition(c)
    return b.build()


def caps(h: History) -> list[Finding]:
    return [f for f in screen_current(h, AS_OF, KB) if f.code == "qtc_dose_cap"]


def test_citalopram_above_40_mg_is_capped_and_40_is_not():
    assert caps(citalopram_patient(40)) == []
    assert len(caps(citalopram_patient(60))) == 1


def test_citalopram_cap_is_20_mg_over_60_years():
    sixty_today = date(AS_OF.year - 60, AS_OF.month, AS_OF.day)
    assert caps(citalopram_patient(40, sixty_today)) == []  # exactly 60: not over 60
    over = sixty_today - timedelta(days=1)
    assert caps(citalopram_patient(20, over)) == []
    assert caps(citalopram_patient(30, over))[0].rule_id == "citalopram_over_60"


def test_citalopram_cap_is_20_mg_with_hepatic_impairment():
    assert caps(citalopram_patient(30, date(1980, 1, 1), "hepatic_impairment"))[0].rule_id == (
        "citalopram_hepatic"
    )


def test_citalopram_option_states_the_patient_cap(kb):
    young = screen_option("switch_citalopram", ["citalopram"], a_history().build(), AS_OF, kb)
    cap = next(f for f in young if f.code == "qtc_dose_cap")
    assert cap.severity == "info" and "40 mg/day" in cap.message
    old = citalopram_patient(10, date(1950, 1, 1))
    cap = next(
        f
        for f in screen_option("switch_citalopram", ["citalopram"], old, AS_OF, kb)
        if f.code == "qtc_dose_cap"
    )
    assert cap.severity == "caution" and "20 mg/day" in cap.message


def test_citalopram_cap_is_20_mg_for_cyp2c19_poor_metabolisers():
    b = a_history().treatment(**ongoing("citalopram", 30))
    b.data["pgx"] = [{"gene": "CYP2C19", "phenotype": "poor"}]
    assert caps(b.build())[0].rule_id == "citalopram_cyp2c19_poor"


def test_poor_metabolizer_genes_are_read_from_either_shape():
    rows = SimpleNamespace(pgx=[SimpleNamespace(gene="cyp2c19", phenotype="Poor metabolizer")])
    assert _poor_metabolizer_genes(rows) == {"CYP2C19"}  # type: ignore[arg-type]
    table = SimpleNamespace(pgx={"CYP2D6": "normal metabolizer", "CYP2C19": "poor"})
    assert _poor_metabolizer_genes(table) == {"CYP2C19"}  # type: ignore[arg-type]
    assert _poor_metabolizer_genes(a_history().build()) == set()


# --- alerts -------------------------------------------------------------------------------------


def alert_codes(h: History) -> set[str]:
    return {a.code for a in safety_alerts(h, AS_OF, KB)}


def test_a_plain_history_has_no_safety_alert():
    assert safety_alerts(a_history().build(), AS_OF, KB) == []


def test_each_alert_code_can_be_raised():
    maoi_stopped = a_history().treatment(**stopped("phenelzine", AS_OF - timedelta(days=3)))
    assert "maoi_washout_required" in alert_codes(maoi_stopped.build())
    combo = a_history().treatment(**ongoing("phenelzine")).treatment(**ongoing("sertraline"))
    assert "serotonin_syndrome_risk" in alert_codes(combo.build())
    assert "qtc_dose_cap" in alert_codes(citalopram_patient(60))
    assert "uncontrolled_hypertension" in alert_codes(
        a_history().condition("hypertension", "uncontrolled").build()
    )
    assert "substance_use" in alert_codes(a_history().condition("alcohol_use_disorder").build())
    pregnant = a_history().treatment(**ongoing("lithium"))
    pregnant.data["patient"]["pregnant"] = True
    alerts = safety_alerts(pregnant.build(), AS_OF, KB)
    preg = next(a for a in alerts if a.code == "pregnancy")
    assert preg.severity == "high" and "lithium" in preg.message
    lithium = a_history().treatment(**ongoing("lithium")).treatment(**ongoing("naproxen"))
    assert "lithium_interaction" in alert_codes(lithium.build())
    raised = set().union(
        *(
            alert_codes(h)
            for h in (maoi_stopped.build(), combo.build(), citalopram_patient(60), lithium.build())
        )
    )
    assert raised <= set(ALERT_CODES)


def test_alerts_carry_full_citations_and_the_as_of_date():
    alerts = safety_alerts(citalopram_patient(60), AS_OF, KB)
    assert alerts and all(a.date == AS_OF for a in alerts)
    assert all(a.citation == KB.citation(a.citations[0]) for a in alerts)


def test_the_maoi_washout_alert_ends_on_the_safe_date():
    h = a_history().treatment(**stopped("phenelzine", STOP)).build()
    assert "maoi_washout_required" in {
        a.code for a in safety_alerts(h, STOP + timedelta(days=13), KB)
    }
    assert safety_alerts(h, STOP + timedelta(days=14), KB) == []


def test_pregnancy_without_flagged_drugs_is_a_moderate_alert():
    b = a_history()
    b.data["patient"]["breastfeeding"] = True
    alert = next(a for a in safety_alerts(b.build(), AS_OF, KB) if a.code == "pregnancy")
    assert alert.severity == "moderate" and not alert.verified


# --- property -------------------------------------------------------------------------------------

CONDITIONS = [(c.id, s) for c in KB.conditions.values() for s in (None, *c.statuses)]


def max_severity(findings: list[Finding]) -> int:
    return max((SEVERITY_RANK[f.severity] for f in findings), default=-1)


@given(
    base=st.lists(st.sampled_from(CONDITIONS), max_size=4),
    extra=st.sampled_from(CONDITIONS),
    option=st.sampled_from(sorted(OPTIONS)),
)
def test_adding_a_condition_never_makes_an_option_look_safer(base, extra, option):
    before = a_history()
    after = a_history()
    for name, status in base:
        before.condition(name, status)
        after.condition(name, status)
    after.condition(*extra)
    drugs = OPTIONS[option]
    f0 = screen_option(option, drugs, before.build(), AS_OF, KB)
    f1 = screen_option(option, drugs, after.build(), AS_OF, KB)
    assert max_severity(f1) >= max_severity(f0)
    # a patient's dose cap is the lowest applicable one: a condition may replace the general cap by
    # a stricter one (citalopram 40 -> 20 mg/day with hepatic impairment), never by a looser one
    caps0 = [f for f in f0 if f.code == "qtc_dose_cap"]
    caps1 = [f for f in f1 if f.code == "qtc_dose_cap"]
    assert max_severity(caps1) >= max_severity(caps0)
    assert {(f.rule_id, f.severity) for f in f0 if f.code != "qtc_dose_cap"} <= {
        (f.rule_id, f.severity) for f in f1 if f.code != "qtc_dose_cap"
    }


# --- the loader reports defects as problems ---------------------------------------------------


def copy_data(tmp_path):
    import shutil

    from trdnav.knowledge.load import _data_dir

    root = tmp_path / "data"
    shutil.copytree(_data_dir(), root)
    return root


def load_problems(root) -> list[str]:
    from trdnav.knowledge.safety import load_safety

    problems: list = []
    result = load_safety(root, problems)
    assert (result is None) == bool(problems)
    return [p.code for p in problems]


def test_the_packaged_safety_data_has_no_defect(tmp_path):
    assert load_problems(copy_data(tmp_path)) == []


@pytest.mark.parametrize(
    ("file", "text", "code"),
    [
        ("rules.yaml", "- {id: x}\n", "knowledge_invalid"),
        ("rules.yaml", "{a: 1}\n", "knowledge_invalid"),
        ("rules.yaml", "- [unclosed\n", "yaml_invalid"),
        (
            "rules.yaml",
            "- {id: a, code: c, condition: nope, severity: info, applies_to: {options: [x]},"
            " message: 'long enough text', source: [k], verified: false}\n",
            "unknown_condition",
        ),
        (
            "rules.yaml",
            "- {id: a, code: c, condition: hypertension, statuses: [mild], severity: info,"
            " applies_to: {options: [x]}, message: 'long enough text', source: [k],"
            " verified: false}\n",
            "unknown_status",
        ),
        (
            "rules.yaml",
            "- {id: a, code: c, statuses: [mild], severity: info, applies_to: {options: [x]},"
            " message: 'long enough text', source: [k], verified: false}\n",
            "statuses_without_condition",
        ),
        (
            "rules.yaml",
            "- {id: a, code: c, severity: info, applies_to: {drugs: [nodrug], classes: [nocls]},"
            " message: 'long enough text', source: [k], verified: false}\n"
            "- {id: a, code: c, severity: info, applies_to: {options: [x]},"
            " message: 'long enough text', source: [k], verified: false}\n",
            "unknown_target",
        ),
        (
            "dose_caps.yaml",
            "- {id: a, code: c, drug: nodrug, max_mg_per_day: 1, conditions: [nope],"
            " message: 'long enough text', source: [k], verified: false}\n",
            "unknown_drug",
        ),
        (
            "washouts.yaml",
            "- {id: a, stopped: {}, starting: {drugs: [x]}, days: 1}\n",
            "knowledge_invalid",
        ),
    ],
)
def test_the_loader_reports_each_defect(tmp_path, file, text, code):
    root = copy_data(tmp_path)
    (root / "safety" / file).write_text(text)
    assert code in load_problems(root)


def test_duplicate_rule_ids_and_missing_files_are_reported(tmp_path):
    root = copy_data(tmp_path)
    rule = (
        "- {id: a, code: c, severity: info, applies_to: {options: [x]},"
        " message: 'long enough text', source: [k], verified: false}\n"
    )
    (root / "safety" / "rules.yaml").write_text(rule * 2)
    assert "duplicate_id" in load_problems(root)
    (root / "safety" / "washouts.yaml").unlink()
    assert "knowledge_missing" in load_problems(root)


def test_an_unreadable_vocabulary_skips_the_cross_check(tmp_path):
    root = copy_data(tmp_path)
    (root / "conditions.yaml").write_text("- [unclosed\n")
    (root / "classes.yaml").write_text("- [unclosed\n")
    assert load_problems(root) == []


# --- options with several candidate drugs ----------------------------------------------------

MAOIS = ["phenelzine", "tranylcypromine", "isocarboxazid", "selegiline_transdermal"]
SSRIS = ["escitalopram", "sertraline", "citalopram", "fluoxetine", "paroxetine", "fluvoxamine"]


def test_a_washout_for_every_candidate_stays_contraindicated_and_is_reported_once():
    h = a_history().treatment(**stopped("fluoxetine", STOP)).build()
    found = [
        f
        for f in screen_option("switch_maoi", MAOIS, h, STOP + timedelta(days=20), KB)
        if f.code == "maoi_washout_required"
    ]
    assert len(found) == 1
    assert found[0].severity == "contraindicated" and found[0].until == STOP + timedelta(days=35)


def test_a_rule_hitting_one_candidate_is_a_caution_naming_that_drug():
    b = a_history()
    b.data["patient"]["pregnant"] = True
    found = screen_option("switch_ssri", SSRIS, b.build(), AS_OF, KB)
    paroxetine = next(f for f in found if f.rule_id == "paroxetine_pregnancy")
    assert paroxetine.severity == "caution" and paroxetine.message.startswith("paroxetine only")


def test_a_contraindication_of_one_candidate_is_downgraded_for_the_option():
    h = a_history().treatment(**stopped("phenelzine", AS_OF - timedelta(days=3))).build()
    mixed = screen_option("augment_mix", ["lithium", "bupropion"], h, AS_OF, KB)
    f = next(f for f in mixed if f.code == "maoi_washout_required")
    assert f.severity == "caution" and f.message.startswith("bupropion only")


def test_every_packaged_option_can_be_screened(kb):
    h = (
        a_history()
        .condition("seizure_disorder")
        .condition("hypertension")
        .treatment(**ongoing("sertraline", 100))
        .treatment(**stopped("fluoxetine", AS_OF - timedelta(days=5)))
        .build()
    )
    for option in kb.options.options.values():
        for f in screen_option(option.id, option.drugs, h, AS_OF, kb):
            assert f.option_id == option.id and f.citations
            assert all(k in kb.bibliography for k in f.citations)
