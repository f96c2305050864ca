"""A small builder of hand-made OMOP CDM data for the phenotype tests.

Write only the rows a rule needs; the builder fills in the vocabulary (``concept``,
``concept_ancestor``, ``drug_strength``) from the codes and ingredients used, with concept ids in
OMOP's local range so that nothing depends on Athena ids::

    omop = Omop()
    omop.person(1, born=1970)
    omop.dx(1, d(0))                                  # F32.1 as a source value
    omop.drug(1, "sertraline", d(0), days=60, mg=50)  # 60 x 50 mg tablets over 60 days
    tables = omop.tables()                            # name -> pyarrow.Table

Dates are written as ``d(n)``: day ``n`` after 1 January 2020.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

import pyarrow as pa

from trdnav.knowledge.load import default_knowledge

D0 = date(2020, 1, 1)
FIRST_ID = 2_000_000_001
MDD_ROOT = ("SNOMED", "370143000", "Major depressive disorder")
MDD_CHILD = ("SNOMED", "66344007", "Recurrent major depression")
BIPOLAR_ROOT = ("SNOMED", "13746004", "Bipolar disorder")
BIPOLAR_CHILD = ("SNOMED", "16506000", "Mixed bipolar affective disorder")
PHQ9_LOINC = default_knowledge().population.parameters.phq9_total_loinc.value


def d(n: int) -> date:
    """Day ``n`` after 1 January 2020."""
    return D0 + timedelta(days=n)


_TYPES: dict[str, dict[str, pa.DataType]] = {
    "person": {
        "person_id": pa.int64(),
        "year_of_birth": pa.int64(),
        "month_of_birth": pa.int64(),
        "day_of_birth": pa.int64(),
    },
    "observation_period": {
        "person_id": pa.int64(),
        "observation_period_start_date": pa.date32(),
        "observation_period_end_date": pa.date32(),
    },
    "condition_occurrence": {
        "person_id": pa.int64(),
        "condition_concept_id": pa.int64(),
        "condition_start_date": pa.date32(),
        "condition_source_concept_id": pa.int64(),
        "condition_source_value": pa.string(),
    },
    "drug_exposure": {
        "person_id": pa.int64(),
        "drug_concept_id": pa.int64(),
        "drug_exposure_start_date": pa.date32(),
        "drug_exposure_end_date": pa.date32(),
        "quantity": pa.float64(),
        "days_supply": pa.int64(),
    },
    "procedure_occurrence": {
        "person_id": pa.int64(),
        "procedure_concept_id": pa.int64(),
        "procedure_date": pa.date32(),
        "procedure_source_concept_id": pa.int64(),
        "procedure_source_value": pa.string(),
    },
    "measurement": {
        "person_id": pa.int64(),
        "measurement_concept_id": pa.int64(),
        "measurement_date": pa.date32(),
        "value_as_number": pa.float64(),
    },
    "concept": {
        "concept_id": pa.int64(),
        "concept_name": pa.string(),
        "domain_id": pa.string(),
        "vocabulary_id": pa.string(),
        "concept_class_id": pa.string(),
        "standard_concept": pa.string(),
        "concept_code": pa.string(),
    },
    "concept_ancestor": {"ancestor_concept_id": pa.int64(), "descendant_concept_id": pa.int64()},
    "drug_strength": {
        "drug_concept_id": pa.int64(),
        "ingredient_concept_id": pa.int64(),
        "amount_value": pa.float64(),
        "amount_unit_concept_id": pa.int64(),
    },
}


@dataclass
class Omop:
    """Rows of a tiny OMOP database; :meth:`tables` returns them as typed Arrow tables."""

    rows: dict[str, list[dict[str, Any]]] = field(
        default_factory=lambda: {name: [] for name in _TYPES}
    )
    _ids: dict[tuple[str, str, str], int] = field(default_factory=dict)
    _strength: set[tuple[int, int]] = field(default_factory=set)

    # --- vocabulary ------------------------------------------------------------------------
    def concept(
        self,
        vocabulary: str,
        code: str,
        name: str | None = None,
        *,
        domain: str = "Condition",
        concept_class: str = "Clinical Finding",
    ) -> int:
        """The id of a concept (created on first use)."""
        key = (vocabulary, code, name or code)
        if key not in self._ids:
            cid = FIRST_ID + len(self._ids)
            self._ids[key] = cid
            self.rows["concept"].append(
                {
                    "concept_id": cid,
                    "concept_name": name or code,
                    "domain_id": domain,
                    "vocabulary_id": vocabulary,
                    "concept_class_id": concept_class,
                    "standard_concept": "S",
                    "concept_code": code,
                }
            )
            if vocabulary == "SNOMED" and key[:2] in {MDD_CHILD[:2], BIPOLAR_CHILD[:2]}:
                root = MDD_ROOT if key[:2] == MDD_CHILD[:2] else BIPOLAR_ROOT
                self.ancestor(self.concept(*root), cid)
        return self._ids[key]

    def ancestor(self, ancestor: int, descendant: int) -> None:
        self.rows["concept_ancestor"].append(
            {"ancestor_concept_id": ancestor, "descendant_concept_id": descendant}
        )

    def ingredient(self, ingredient: str) -> int:
        """The RxNorm Ingredient concept of a knowledge-base drug (by its RxNorm code)."""
        drug = default_knowledge().drugs[ingredient]
        code = drug.rxnorm or f"local-{ingredient}"
        cid = self.concept("RxNorm", code, ingredient, domain="Drug", concept_class="Ingredient")
        if (cid, cid) not in self._strength:
            self._strength.add((cid, cid))
            self.ancestor(cid, cid)
        return cid

    def clinical_drug(
        self, ingredient: str, mg: float | None, *, strength_table: bool = True
    ) -> int:
        """``"<ingredient> <mg> MG Oral Tablet"`` (with a drug_strength row) or ``... Oral Capsule``
        (without), below its ingredient in concept_ancestor."""
        ing = self.ingredient(ingredient)
        form = "Oral Tablet" if strength_table else "Oral Capsule"
        label = f"{ingredient} {mg:g} MG {form}" if mg is not None else f"{ingredient} Oral"
        cid = self.concept(
            "RxNorm", f"cd-{label}", label, domain="Drug", concept_class="Clinical Drug"
        )
        if (ing, cid) not in self._strength:
            self._strength.add((ing, cid))
            self.ancestor(ing, cid)
            if mg is not None and strength_table:
                self.rows["drug_strength"].append(
                    {
                        "drug_concept_id": cid,
                        "ingredient_concept_id": ing,
                        "amount_value": float(mg),
                        "amount_unit_concept_id": self.concept(
                            "UCUM", "mg", "milligram", domain="Unit", concept_class="Unit"
                        ),
                    }
                )
        return cid

    # --- clinical rows ---------------------------------------------------------------------
    def person(
        self,
        pid: int,
        born: int = 1970,
        *,
        month: int | None = None,
        day: int | None = None,
        observed: tuple[date, date] | None = (date(2010, 1, 1), date(2030, 12, 31)),
    ) -> None:
        self.rows["person"].append(
            {"person_id": pid, "year_of_birth": born, "month_of_birth": month, "day_of_birth": day}
        )
        if observed is not None:
            self.observation(pid, *observed)

    def observation(self, pid: int, start: date, end: date) -> None:
        self.rows["observation_period"].append(
            {
                "person_id": pid,
                "observation_period_start_date": start,
                "observation_period_end_date": end,
            }
        )

    def dx(self, pid: int, when: date, code: str = "F32.1", *, via: str = "source_value") -> None:
        """A condition record. ``via``: ``source_value`` (ICD-10-CM code as text, no concepts),
        ``source_concept`` (an ICD-10-CM concept in condition_source_concept_id), ``concept``
        (``code`` is a SNOMED code in condition_concept_id; MDD/bipolar children are below
        their roots)."""
        row: dict[str, Any] = {
            "person_id": pid,
            "condition_start_date": when,
            "condition_concept_id": 0,
            "condition_source_concept_id": 0,
            "condition_source_value": None,
        }
        if via == "source_value":
            row["condition_source_value"] = code
        elif via == "source_concept":
            row["condition_source_concept_id"] = self.concept("ICD10CM", code)
        elif via == "concept":
            row["condition_concept_id"] = self.concept("SNOMED", code)
        else:
            raise ValueError(via)
        self.rows["condition_occurrence"].append(row)

    def drug(
        self,
        pid: int,
        ingredient: str,
        start: date,
        days: int | None = 30,
        *,
        mg: float | None = None,
        per_day: float = 1.0,
        quantity: float | None = None,
        end: date | None = None,
        strength_table: bool = True,
        concept_id: int | None = None,
    ) -> None:
        """An exposure of ``days`` days supply. With ``mg`` a tablet strength, quantity defaults
        to ``per_day`` tablets a day (daily dose = mg x per_day); without, the drug concept is
        the ingredient itself and no dose can be derived."""
        if concept_id is None:
            concept_id = (
                self.clinical_drug(ingredient, mg, strength_table=strength_table)
                if mg is not None
                else self.ingredient(ingredient)
            )
        if quantity is None and mg is not None and days is not None:
            quantity = per_day * days
        self.rows["drug_exposure"].append(
            {
                "person_id": pid,
                "drug_concept_id": concept_id,
                "drug_exposure_start_date": start,
                "drug_exposure_end_date": end,
                "quantity": quantity,
                "days_supply": days,
            }
        )

    def proc(self, pid: int, when: date, code: str, *, via: str = "concept") -> None:
        """A procedure (CPT-4 or HCPCS code): through a concept or only as a source value."""
        vocab = "HCPCS" if code[0].isalpha() else "CPT4"
        row: dict[str, Any] = {
            "person_id": pid,
            "procedure_date": when,
            "procedure_concept_id": 0,
            "procedure_source_concept_id": 0,
            "procedure_source_value": None,
        }
        if via == "concept":
            row["procedure_concept_id"] = self.concept(vocab, code, domain="Procedure")
        elif via == "source_value":
            row["procedure_source_value"] = code
        else:
            raise ValueError(via)
        self.rows["procedure_occurrence"].append(row)

    def phq9(self, pid: int, when: date, value: float) -> None:
        cid = self.concept("LOINC", PHQ9_LOINC, "PHQ-9 total", domain="Measurement")
        self.rows["measurement"].append(
            {
                "person_id": pid,
                "measurement_concept_id": cid,
                "measurement_date": when,
                "value_as_number": value,
            }
        )

    # --- output ----------------------------------------------------------------------------
    def tables(self, *, ancestor: bool = True, strength: bool = True) -> dict[str, pa.Table]:
        """Typed Arrow tables; ``ancestor``/``strength`` False leaves those tables out."""
        out: dict[str, pa.Table] = {}
        for name, types in _TYPES.items():
            if name == "concept_ancestor" and not ancestor:
                continue
            if name == "drug_strength" and not strength:
                continue
            rows = self.rows[name]
            out[name] = pa.table(
                {col: pa.array([r.get(col) for r in rows], typ) for col, typ in types.items()}
            )
        return out


def trd_journey(omop: Omop, pid: int, *, born: int = 1970) -> None:
    """A person who meets every criterion: MDD, two adequate antidepressant trials that failed,
    then a third drug. Index date = ``d(120)``."""
    omop.person(pid, born)
    trd_journey_rows(omop, pid)


# --- scenarios: one person per rule, with the known answer ---------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One person built by ``build(omop, pid)``: the index date it must get (day offset, or None)
    and the last attrition step it passes (1 = only in ``person`` ... 10 = in the cohort)."""

    name: str
    build: Any
    index: int | None
    reaches: int


def _two_failed(o: Omop, pid: int) -> None:
    """Sertraline then citalopram, 60 days each at adequate doses (adequacy d41 and d101)."""
    o.dx(pid, d(0))
    o.drug(pid, "sertraline", d(0), days=60, mg=50)
    o.drug(pid, "citalopram", d(60), days=60, mg=20)


def _base(o: Omop, pid: int) -> None:
    o.person(pid)
    trd_journey_rows(o, pid)


def trd_journey_rows(o: Omop, pid: int) -> None:
    _two_failed(o, pid)
    o.drug(pid, "venlafaxine", d(120), days=60, mg=75)


def _episode_gap(gap: int) -> Any:
    def build(o: Omop, pid: int) -> None:
        o.person(pid)
        o.dx(pid, d(0))
        o.dx(pid, d(gap))
        o.drug(pid, "sertraline", d(0), days=60, mg=50)
        o.drug(pid, "citalopram", d(400), days=60, mg=20)
        o.drug(pid, "venlafaxine", d(460), days=60, mg=75)

    return build


def _era_gap(gap: int) -> Any:
    def build(o: Omop, pid: int) -> None:
        o.person(pid)
        o.dx(pid, d(0))
        o.drug(pid, "sertraline", d(0), days=25, mg=50)  # ends d24
        o.drug(pid, "sertraline", d(24 + gap), days=25, mg=50)
        o.drug(pid, "citalopram", d(100), days=60, mg=20)
        o.drug(pid, "venlafaxine", d(160), days=60, mg=75)

    return build


def _first_trial(days: int, *, mg: float | None = 50, per_day: float = 1, **kw: Any) -> Any:
    """A first sertraline exposure of ``days`` days, then citalopram at d60 and venlafaxine at
    d120 (adequate): an index at d120 exactly when the sertraline trial is adequate."""

    def build(o: Omop, pid: int) -> None:
        o.person(pid)
        o.dx(pid, d(0))
        o.drug(pid, "sertraline", d(0), days=days, mg=mg, per_day=per_day, **kw)
        o.drug(pid, "citalopram", d(60), days=60, mg=20)
        o.drug(pid, "venlafaxine", d(120), days=60, mg=75)

    return build


def _titration(o: Omop, pid: int) -> None:
    """25 mg for 14 days, then 50 mg d14-d49: adequate-dose start d14 needs the era to d55."""
    o.person(pid)
    o.dx(pid, d(0))
    o.drug(pid, "sertraline", d(0), days=14, mg=25)
    o.drug(pid, "sertraline", d(14), days=36, mg=50)
    o.drug(pid, "citalopram", d(50), days=60, mg=20)
    o.drug(pid, "venlafaxine", d(110), days=60, mg=75)


def _aug_during(o: Omop, pid: int) -> None:
    o.person(pid)
    o.dx(pid, d(0))
    o.drug(pid, "sertraline", d(0), days=120, mg=50)
    o.drug(pid, "aripiprazole", d(60), days=60, mg=5)
    o.drug(pid, "citalopram", d(130), days=60, mg=20)


def _aug_outside(o: Omop, pid: int) -> None:
    o.person(pid)
    o.dx(pid, d(0))
    o.drug(pid, "aripiprazole", d(0), days=60, mg=5)
    o.drug(pid, "sertraline", d(70), days=60, mg=50)
    o.drug(pid, "citalopram", d(140), days=60, mg=20)


def _restart(o: Omop, pid: int) -> None:
    o.person(pid)
    _two_failed(o, pid)
    o.drug(pid, "sertraline", d(200), days=60, mg=50)


def _no_third(o: Omop, pid: int) -> None:
    o.person(pid)
    _two_failed(o, pid)


def _simultaneous(o: Omop, pid: int) -> None:
    o.person(pid)
    o.dx(pid, d(0))
    o.drug(pid, "sertraline", d(0), days=60, mg=50)
    o.drug(pid, "citalopram", d(0), days=60, mg=20)
    o.drug(pid, "venlafaxine", d(100), days=60, mg=75)


def _third_is(code: str, via: str = "concept") -> Any:
    def build(o: Omop, pid: int) -> None:
        o.person(pid)
        _two_failed(o, pid)
        o.proc(pid, d(130), code, via=via)

    return build


def _esketamine_drug(o: Omop, pid: int) -> None:
    o.person(pid)
    _two_failed(o, pid)
    o.drug(pid, "esketamine", d(130), days=1)


def _with_dx(code: str, via: str, when: int = 900) -> Any:
    def build(o: Omop, pid: int) -> None:
        _base(o, pid)
        o.dx(pid, d(when), code, via=via)

    return build


def _mdd_by(code: str, via: str) -> Any:
    def build(o: Omop, pid: int) -> None:
        o.person(pid)
        o.dx(pid, d(0), code, via=via)
        o.drug(pid, "sertraline", d(0), days=60, mg=50)
        o.drug(pid, "citalopram", d(60), days=60, mg=20)
        o.drug(pid, "venlafaxine", d(120), days=60, mg=75)

    return build


def _born(year: int, month: int | None = None, day: int | None = None) -> Any:
    def build(o: Omop, pid: int) -> None:
        o.person(pid, year, month=month, day=day)
        trd_journey_rows(o, pid)

    return build


def _observed_until(last: int) -> Any:
    def build(o: Omop, pid: int) -> None:
        o.person(pid, observed=(date(2010, 1, 1), d(last)))
        trd_journey_rows(o, pid)

    return build


def _with_phq9(when: int, value: float) -> Any:
    def build(o: Omop, pid: int) -> None:
        _base(o, pid)
        o.phq9(pid, d(when), value)

    return build


def _psychotic(o: Omop, pid: int) -> None:
    _base(o, pid)
    o.dx(pid, d(30), "F32.3")
    o.phq9(pid, d(110), 12)


def _maudsley_full(o: Omop, pid: int) -> None:
    """A 26-month episode; sertraline, ECT, aripiprazole added, then mirtazapine (index d800);
    PHQ-9 23 before index: MSM 3 + 4 + 1 + 1 + 1 = 10 (moderate)."""
    o.person(pid)
    o.dx(pid, d(0))
    o.dx(pid, d(300))
    o.dx(pid, d(600))
    o.drug(pid, "sertraline", d(600), days=120, mg=50)
    o.proc(pid, d(630), "90870")
    o.drug(pid, "aripiprazole", d(650), days=60, mg=5)
    o.drug(pid, "mirtazapine", d(800), days=60, mg=30)
    o.phq9(pid, d(790), 23)


def _lithium(o: Omop, pid: int) -> None:
    """Lithium (no minimum in mg) added to sertraline: judged on duration alone."""
    o.person(pid)
    o.dx(pid, d(0))
    o.drug(pid, "sertraline", d(0), days=120, mg=50)
    o.drug(pid, "lithium", d(60), days=60, mg=300, per_day=3)
    o.drug(pid, "citalopram", d(130), days=60, mg=20)


def _exposure_ends(o: Omop, pid: int) -> None:
    """End from end_date (d10), from days_supply when the end precedes the start (d119), from the
    default supply (d229, d329 with days_supply 0); the first row twice."""
    o.person(pid)
    o.dx(pid, d(0))
    o.drug(pid, "sertraline", d(0), days=30, mg=50, end=d(10))
    o.drug(pid, "sertraline", d(0), days=30, mg=50, end=d(10))
    o.drug(pid, "sertraline", d(100), days=20, mg=50, end=d(90))
    o.drug(pid, "sertraline", d(200), days=None, mg=50)
    o.drug(pid, "sertraline", d(300), days=0, mg=50, quantity=30)


def _excluded_code_only(o: Omop, pid: int) -> None:
    o.person(pid)
    o.dx(pid, d(0), "F33.8")
    o.drug(pid, "sertraline", d(0), days=60, mg=50)


def _no_drugs(o: Omop, pid: int) -> None:
    o.person(pid)
    o.dx(pid, d(0))


def _one_inadequate(o: Omop, pid: int) -> None:
    o.person(pid)
    o.dx(pid, d(0))
    o.drug(pid, "sertraline", d(0), days=20, mg=50)


def _one_adequate(o: Omop, pid: int) -> None:
    o.person(pid)
    o.dx(pid, d(0))
    o.drug(pid, "sertraline", d(0), days=60, mg=50)


def _drug_before_episode(lead: int) -> Any:
    """Sertraline starting ``lead`` days before the first diagnosis."""

    def build(o: Omop, pid: int) -> None:
        o.person(pid)
        o.dx(pid, d(lead))
        o.drug(pid, "sertraline", d(0), days=60, mg=50)
        o.drug(pid, "citalopram", d(60), days=60, mg=20)
        o.drug(pid, "venlafaxine", d(120), days=60, mg=75)

    return build


SCENARIOS: tuple[Scenario, ...] = (
    Scenario("base", _base, 120, 10),
    Scenario("episode_gap_365_one_episode", _episode_gap(365), 460, 10),
    Scenario("episode_gap_366_two_episodes", _episode_gap(366), None, 6),
    Scenario("era_gap_30_joins", _era_gap(30), 160, 10),
    Scenario("era_gap_31_splits", _era_gap(31), None, 6),
    Scenario("dose_from_drug_strength", _first_trial(60, mg=25, per_day=2), 120, 10),
    Scenario(
        "dose_from_concept_name",
        _first_trial(60, mg=25, per_day=2, strength_table=False),
        120,
        10,
    ),
    Scenario("dose_below_minimum", _first_trial(60, mg=25, per_day=1), None, 6),
    Scenario("adequate_42_days", _first_trial(42), 120, 10),
    Scenario("inadequate_41_days", _first_trial(41), None, 6),
    Scenario("titration_start", _titration, None, 6),
    Scenario("unknown_dose_adequate", _first_trial(60, mg=None), 120, 10),
    Scenario("augmentation_during_antidepressant", _aug_during, 130, 10),
    Scenario("augmentation_without_antidepressant", _aug_outside, None, 6),
    Scenario("same_ingredient_restart", _restart, None, 6),
    Scenario("no_later_step", _no_third, None, 6),
    Scenario("simultaneous_trials", _simultaneous, 100, 10),
    Scenario("ect_concept", _third_is("90870"), 130, 10),
    Scenario("rtms_source_value", _third_is("90868", via="source_value"), 130, 10),
    Scenario("esketamine_hcpcs", _third_is("G2082"), 130, 10),
    Scenario("esketamine_drug", _esketamine_drug, 130, 10),
    Scenario("bipolar_source_value", _with_dx("F31.1", "source_value"), None, 2),
    Scenario("bipolar_snomed_descendant", _with_dx(BIPOLAR_CHILD[1], "concept"), None, 2),
    Scenario("schizophrenia_source_concept", _with_dx("F20.0", "source_concept"), None, 2),
    Scenario("mdd_excluded_code_only", _excluded_code_only, None, 1),
    Scenario("mdd_snomed_descendant", _mdd_by(MDD_CHILD[1], "concept"), 120, 10),
    Scenario("mdd_icd_source_concept", _mdd_by("F33.1", "source_concept"), 120, 10),
    Scenario("age_17_at_index", _born(2002), 120, 9),
    Scenario("age_18_on_birthday", _born(2002, 4, 30), 120, 10),
    Scenario("age_17_day_before_birthday", _born(2002, 5, 1), 120, 9),
    Scenario("index_outside_observation", _observed_until(-10), 120, 8),
    Scenario("episode_cut_at_observation_end", _observed_until(119), None, 6),
    Scenario("phq9_in_window", _with_phq9(30, 22), 120, 10),
    Scenario("phq9_outside_window", _with_phq9(29, 22), 120, 10),
    Scenario("psychotic_features", _psychotic, 120, 10),
    Scenario("maudsley_full", _maudsley_full, 800, 10),
    Scenario("lithium_augmentation", _lithium, 130, 10),
    Scenario("exposure_ends", _exposure_ends, None, 4),
    Scenario("mdd_only", _no_drugs, None, 3),
    Scenario("one_inadequate_trial", _one_inadequate, None, 4),
    Scenario("one_adequate_trial", _one_adequate, None, 5),
    Scenario("drug_30_days_before_episode", _drug_before_episode(30), 120, 10),
    Scenario("drug_31_days_before_episode", _drug_before_episode(31), None, 6),
)


def scenario_pid(name: str) -> int:
    """The person id a scenario gets in :func:`all_scenarios` (1-based position)."""
    return [s.name for s in SCENARIOS].index(name) + 1


def all_scenarios() -> Omop:
    """Every scenario, person ``k`` being the ``k``-th of :data:`SCENARIOS`."""
    omop = Omop()
    for pid, scenario in enumerate(SCENARIOS, start=1):
        scenario.build(omop, pid)
    return omop
