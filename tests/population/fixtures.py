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
        """``"<ingredient> <mg> MG Oral Tablet"``, below its ingredient in concept_ancestor."""
        ing = self.ingredient(ingredient)
        label = f"{ingredient} {mg:g} MG Oral Tablet" if mg is not None else f"{ingredient} Oral"
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


def trd_journey(omop: Omop, pid: int, *, start: int = 0, born: int = 1970) -> None:
    """A person who meets every criterion: MDD, two adequate antidepressant trials that failed,
    then a third drug. Index date = ``d(start + 120)``."""
    omop.person(pid, born)
    omop.dx(pid, d(start))
    omop.drug(pid, "sertraline", d(start), days=60, mg=50)
    omop.drug(pid, "citalopram", d(start + 60), days=60, mg=20)
    omop.drug(pid, "venlafaxine", d(start + 120), days=60, mg=75)
