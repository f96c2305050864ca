from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trdnav.errors import KnowledgeError
from trdnav.knowledge.load import load_knowledge

from .conftest import KB

DATA = Path(__file__).parents[3] / "src" / "trdnav" / "knowledge" / "data" / "protocols"
REQUIRED = {
    "esketamine_trd",
    "ketamine_iv",
    "ketamine_im",
    "ketamine_oral",
    "rtms_10hz",
    "rtms_itbs",
    "rtms_accelerated_itbs",
    "ect_rul_ultrabrief",
    "ect_bitemporal",
}


def test_every_required_protocol_is_packaged_and_cites_real_sources():
    assert REQUIRED <= set(KB.protocols)
    for p in KB.protocols.values():
        assert not p.clinic and p.option_id in KB.options.options
        assert set(p.source) <= set(KB.bibliography)


def test_the_label_facts_keep_their_verification_status():
    esk = KB.protocols["esketamine_trd"]
    induction = esk.phase("induction")
    assert (induction.sessions, induction.per_week, induction.weeks) == (8, 2, 4)
    assert induction.dose and induction.dose.first_session_mg == 56 and induction.dose.verified
    assert esk.observation and esk.observation.minimum_minutes == 120 and esk.observation.verified
    pre = {t.id: t for t in esk.thresholds}
    assert pre["predose_systolic"].value == 140 and not pre["predose_systolic"].verified
    review = esk.review_points[0]  # end of induction: read on the manufacturer's dosing pages
    assert review.verified and review.checked_against and esk.rems and not esk.off_label
    ket = KB.protocols["ketamine_iv"]
    assert ket.off_label and ket.phases[0].dose and ket.phases[0].dose.mg_per_kg == 0.5
    assert {t.value for t in ket.thresholds if t.measure == "systolic"} == {180}
    assert all(not t.verified for t in ket.thresholds)
    for pid in ("ketamine_im", "ketamine_oral"):
        dose = KB.protocols[pid].phases[0].dose
        assert dose and dose.clinician_sets_dose and not dose.verified
    saint = KB.protocols["rtms_accelerated_itbs"].phases[0]
    assert (saint.per_day, saint.intersession_minutes, saint.sessions) == (10, 50, 50)


def clinic_dir(tmp_path: Path, name: str, change: dict) -> Path:
    raw = yaml.safe_load((DATA / "ketamine_iv.yaml").read_text())
    raw.update(change)
    (tmp_path / f"{name}.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    return tmp_path


def test_a_clinic_template_is_loaded_and_marked(tmp_path, monkeypatch):
    folder = clinic_dir(
        tmp_path,
        "ketamine_iv_local",
        {
            "id": "ketamine_iv_local",
            "source": ["clinic_local_policy"],
            "verified": False,
        },
    )
    monkeypatch.setenv("TRDNAV_PROTOCOLS_DIR", str(folder))
    kb = load_knowledge()
    assert kb.protocols["ketamine_iv_local"].clinic and not kb.protocols["ketamine_iv"].clinic


@pytest.mark.parametrize(
    ("name", "change", "loc", "code"),
    [
        ("ketamine_iv", {}, "id", "protocol_id_taken"),
        ("mine", {"id": "mine", "dose_per_kilo": 1}, "dose_per_kilo", "knowledge_invalid"),
        ("mine", {"id": "mine", "source": ["no_such_key"]}, "mine.source", "unknown_citation"),
        ("mine", {"id": "other"}, "id", "id_mismatch"),
        ("mine", {"id": "mine", "option_id": "nope"}, "option_id", "unknown_option"),
    ],
)
def test_an_invalid_clinic_template_names_its_file_and_field(tmp_path, name, change, loc, code):
    folder = clinic_dir(tmp_path, name, change)
    with pytest.raises(KnowledgeError) as e:
        load_knowledge(protocols_dir=folder)
    hits = [p for p in e.value.problems if p.code == code]
    assert hits and hits[0].loc == loc and hits[0].file and hits[0].file.startswith(str(tmp_path))


def test_phase_arithmetic_and_review_points_are_checked(tmp_path):
    raw = yaml.safe_load((DATA / "ketamine_iv.yaml").read_text())
    raw["id"] = "bad"
    raw["phases"][0]["sessions"] = 7  # 2 a week × 3 weeks = 6
    raw["review_points"][0]["end_of_phase"] = "nowhere"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(KnowledgeError) as e:
        load_knowledge(protocols_dir=tmp_path)
    locs = {p.loc for p in e.value.problems}
    assert "phases.0" in locs or "phases.0.sessions" in locs or any("phases" in x for x in locs)
    messages = " ".join(p.message for p in e.value.problems)
    assert "per_week × per_day × weeks" in messages


def test_a_threshold_with_a_timing_its_measure_cannot_have_is_refused(tmp_path):
    raw = yaml.safe_load((DATA / "ketamine_iv.yaml").read_text())
    raw["id"] = "bad"
    raw["thresholds"][0]["measure"] = "cadss"
    raw["thresholds"][0]["timing"] = "pre_dose"
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(raw, allow_unicode=True))
    with pytest.raises(KnowledgeError) as e:
        load_knowledge(protocols_dir=tmp_path)
    assert any(p.loc.startswith("thresholds.0") for p in e.value.problems)
