"""The small OMOP vocabulary shipped with the synthetic data, built from the knowledge base.

Every concept lives in OMOP's local concept-id range (above 2,000,000,000), so it can never be
mistaken for an Athena id; the phenotype resolves vocabulary codes, not ids.

- RxNorm *Ingredient* concepts for every knowledge-base drug with an RxNorm code
  (``concept_code`` = the drug file's ``rxnorm``), and RxNorm *Clinical Drug* concepts named like
  ``"sertraline 50 MG Oral Tablet"``. Their strengths are product presentations invented for the
  synthetic data only: half of and exactly each minimum dose of the drug file, so that both a
  sub-therapeutic and an adequate daily dose are one tablet a day (see :func:`strengths_mg`).
- ``concept_ancestor``: ingredient -> clinical drug, SNOMED parents -> children, and self rows.
- ``drug_strength``: the clinical drugs' amounts in milligrams.
- ICD-10-CM codes under every prefix of the concept sets (plus non-mental-health noise codes),
  SNOMED CT roots of the concept sets with a few descendants, the CPT-4/HCPCS procedure codes of the
  concept sets, the PHQ-9 total LOINC code, and a few unrelated drugs and codes as noise.

The code titles below are descriptive labels of the synthetic vocabulary (recalled, not copied from
the licensed vocabularies); nothing clinical is decided from them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa

from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Drug, Role

LOCAL_CONCEPT_BASE = 2_000_000_000
"""OMOP reserves concept ids above 2,000,000,000 for local concepts."""

_VALID_START = date(1970, 1, 1)
_VALID_END = date(2099, 12, 31)

# (code, title, SNOMED code it maps to). Codes the concept sets need plus noise codes.
ICD10CM_CODES: tuple[tuple[str, str, str], ...] = (
    ("F32.0", "Major depressive disorder, single episode, mild", "36923009"),
    ("F32.1", "Major depressive disorder, single episode, moderate", "36923009"),
    (
        "F32.2",
        "Major depressive disorder, single episode, severe without psychotic features",
        "36923009",
    ),
    (
        "F32.3",
        "Major depressive disorder, single episode, severe with psychotic features",
        "36923009",
    ),
    ("F32.4", "Major depressive disorder, single episode, in partial remission", "36923009"),
    ("F32.5", "Major depressive disorder, single episode, in full remission", "36923009"),
    ("F32.9", "Major depressive disorder, single episode, unspecified", "370143000"),
    ("F32.81", "Premenstrual dysphoric disorder", "35489007"),
    ("F32.A", "Depression, unspecified", "35489007"),
    ("F33.0", "Major depressive disorder, recurrent, mild", "66344007"),
    ("F33.1", "Major depressive disorder, recurrent, moderate", "66344007"),
    ("F33.2", "Major depressive disorder, recurrent severe without psychotic features", "66344007"),
    ("F33.3", "Major depressive disorder, recurrent, severe with psychotic symptoms", "66344007"),
    ("F33.40", "Major depressive disorder, recurrent, in remission, unspecified", "66344007"),
    ("F33.8", "Other recurrent depressive disorders", "35489007"),
    ("F33.9", "Major depressive disorder, recurrent, unspecified", "66344007"),
    ("F30.10", "Manic episode without psychotic symptoms, unspecified", "13746004"),
    ("F31.30", "Bipolar disorder, current episode depressed, mild or moderate", "371596008"),
    ("F31.81", "Bipolar II disorder", "83225003"),
    ("F31.9", "Bipolar disorder, unspecified", "13746004"),
    ("F20.9", "Schizophrenia, unspecified", "58214004"),
    ("F22", "Delusional disorders", "48500005"),
    ("F25.0", "Schizoaffective disorder, bipolar type", "38368003"),
    ("F25.9", "Schizoaffective disorder, unspecified", "68890003"),
    ("F41.1", "Generalized anxiety disorder", "21897009"),
    ("G47.00", "Insomnia, unspecified", "193462001"),
    ("I10", "Essential (primary) hypertension", "38341003"),
    ("E11.9", "Type 2 diabetes mellitus without complications", "44054006"),
)

# (code, name, parent codes)
SNOMED_CODES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("35489007", "Depressive disorder", ()),
    ("370143000", "Major depressive disorder", ("35489007",)),
    ("36923009", "Major depression, single episode", ("370143000",)),
    ("66344007", "Recurrent major depression", ("370143000",)),
    ("13746004", "Bipolar disorder", ()),
    ("371596008", "Bipolar I disorder", ("13746004",)),
    ("83225003", "Bipolar II disorder", ("13746004",)),
    ("58214004", "Schizophrenia", ()),
    ("64905009", "Paranoid schizophrenia", ("58214004",)),
    ("68890003", "Schizoaffective disorder", ()),
    ("38368003", "Schizoaffective disorder, bipolar type", ("68890003",)),
    ("48500005", "Delusional disorder", ()),
    ("21897009", "Generalized anxiety disorder", ()),
    ("193462001", "Insomnia", ()),
    ("38341003", "Hypertensive disorder", ()),
    ("44054006", "Type 2 diabetes mellitus", ()),
)

NOISE_PROCEDURES: tuple[tuple[str, str, str], ...] = (
    ("CPT4", "99213", "Office or other outpatient visit, established patient"),
)

HBA1C_LOINC = ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood")
PHQ9_NAME = "PHQ-9 quick depression assessment panel total score"

# Unrelated drugs as noise: (name, RxNorm ingredient code, strength mg). Not knowledge-base drugs.
NOISE_DRUGS: tuple[tuple[str, str, float], ...] = (
    ("atorvastatin", "83367", 20.0),
    ("metformin", "6809", 500.0),
    ("lisinopril", "29046", 10.0),
)

FALLBACK_STRENGTH_MG: dict[str, float] = {"lithium": 300.0}
"""Presentations for drugs whose file gives no dose (simulation only, not a dosing fact)."""

_FORMS: dict[str, str] = {
    "mg/day": "Oral Tablet",
    "mg/24h": "Transdermal System",
    "mg/session": "Nasal Spray",
}


@dataclass(frozen=True)
class ClinicalDrug:
    concept_id: int
    drug_id: str
    strength_mg: float
    name: str


@dataclass
class Vocabulary:
    """Lookups of the synthetic vocabulary by code, used by the journey generator."""

    ingredient: dict[str, int] = field(default_factory=dict)  # drug id -> ingredient concept
    clinical: dict[str, tuple[ClinicalDrug, ...]] = field(default_factory=dict)  # by drug id
    icd10: dict[str, int] = field(default_factory=dict)  # "F33.1" -> concept id
    icd10_snomed: dict[str, int] = field(default_factory=dict)  # "F33.1" -> SNOMED concept id
    snomed: dict[str, int] = field(default_factory=dict)
    procedure: dict[str, int] = field(default_factory=dict)  # CPT4/HCPCS code -> concept id
    loinc: dict[str, int] = field(default_factory=dict)
    mg_unit: int = 0
    tables: dict[str, pa.Table] = field(default_factory=dict)


def _fmt(x: float) -> str:
    return f"{x:g}"


def ingredient_name(drug: Drug) -> str:
    """The drug's name without a parenthesised qualifier: ``"esketamine (intranasal)"`` ->
    ``"esketamine"``."""
    return drug.name.split("(")[0].strip()


def role_minimums(drug: Drug) -> list[float]:
    """The drug file's minimum doses (antidepressant and augmentation), those given."""
    out: list[float] = []
    if drug.antidepressant_dose is not None:
        out.append(drug.antidepressant_dose.min_adequate_mg_per_day)
    if drug.augmentation_dose is not None and drug.augmentation_dose.min_mg_per_day is not None:
        out.append(drug.augmentation_dose.min_mg_per_day)
    return out


def strengths_mg(drug: Drug) -> tuple[float, ...]:
    """Synthetic presentations of ``drug``: half of and exactly each minimum dose of its file.

    A fallback presentation is used for a drug whose file has no dose (lithium); drugs with neither
    get none (and no clinical drug concept).
    """
    mins = role_minimums(drug)
    if not mins:
        fallback = FALLBACK_STRENGTH_MG.get(drug.id)
        return () if fallback is None else (fallback,)
    return tuple(sorted({m / 2 for m in mins} | set(mins)))


class _Ids:
    def __init__(self) -> None:
        self.next = LOCAL_CONCEPT_BASE + 1

    def take(self) -> int:
        cid = self.next
        self.next += 1
        return cid


def _icd_class(code: str) -> str:
    return f"{len(code.replace('.', ''))}-char billing code"


def _loinc_code(kb: Knowledge) -> str:
    return kb.population.parameters.phq9_total_loinc.value


def concept_set_codes(kb: Knowledge) -> Iterable[tuple[str, str]]:
    """(vocabulary, code) of every include and exclude entry of every concept set."""
    for cset in kb.population.concept_sets.values():
        for entry in (*cset.include, *cset.exclude):
            yield entry.vocabulary, entry.code


def build_vocabulary_index(kb: Knowledge) -> Vocabulary:
    """The vocabulary tables and their lookups (see the module docstring)."""
    ids = _Ids()
    voc = Vocabulary()
    concepts: list[tuple[int, str, str, str, str, str | None, str]] = []
    ancestors: list[tuple[int, int, int]] = []
    strengths: list[tuple[int, int, float]] = []

    def concept(
        name: str, domain: str, vocabulary: str, cls: str, standard: str | None, code: str
    ) -> int:
        cid = ids.take()
        concepts.append((cid, name, domain, vocabulary, cls, standard, code))
        return cid

    voc.mg_unit = concept("milligram", "Unit", "UCUM", "Unit", "S", "mg")

    drugs: list[tuple[str, str, tuple[float, ...], str]] = []  # (key, name, strengths, form)
    for drug in sorted(kb.drugs.values(), key=lambda d: d.id):
        if drug.rxnorm is None:
            continue
        ing = concept(ingredient_name(drug), "Drug", "RxNorm", "Ingredient", "S", drug.rxnorm)
        voc.ingredient[drug.id] = ing
        drugs.append((drug.id, ingredient_name(drug), strengths_mg(drug), _FORMS[drug.dose_unit]))
    for name, rxnorm, strength in NOISE_DRUGS:
        voc.ingredient[name] = concept(name, "Drug", "RxNorm", "Ingredient", "S", rxnorm)
        drugs.append((name, name, (strength,), "Oral Tablet"))
    code_no = 0
    for key, name, strength_list, form in drugs:
        ing = voc.ingredient[key]
        ancestors.append((ing, ing, 0))
        clinical: list[ClinicalDrug] = []
        for s in strength_list:
            code_no += 1
            unit = "MG/24HR" if form == "Transdermal System" else "MG"
            cname = f"{name} {_fmt(s)} {unit} {form}"
            cid = concept(cname, "Drug", "RxNorm", "Clinical Drug", "S", f"TRDSYN{code_no:05d}")
            clinical.append(ClinicalDrug(cid, key, s, cname))
            ancestors.append((ing, cid, 1))
            ancestors.append((cid, cid, 0))
            strengths.append((cid, ing, s))
        voc.clinical[key] = tuple(clinical)

    parents: dict[str, tuple[str, ...]] = {}
    for code, name, parent_codes in SNOMED_CODES:
        voc.snomed[code] = concept(name, "Condition", "SNOMED", "Disorder", "S", code)
        parents[code] = parent_codes
    for code in voc.snomed:  # self rows and every ancestor with its separation
        frontier = [(code, 0)]
        while frontier:
            anc, level = frontier.pop()
            ancestors.append((voc.snomed[anc], voc.snomed[code], level))
            frontier.extend((p, level + 1) for p in parents[anc])

    for code, name, snomed in ICD10CM_CODES:
        voc.icd10[code] = concept(name, "Condition", "ICD10CM", _icd_class(code), None, code)
        voc.icd10_snomed[code] = voc.snomed[snomed]

    for cset in kb.population.concept_sets.values():
        if cset.role != "procedure":
            continue
        for entry in cset.include:
            if entry.code in voc.procedure:
                continue
            domain = "Drug" if entry.code[0] in "JS" else "Procedure"
            voc.procedure[entry.code] = concept(
                entry.name or entry.code,
                domain,
                entry.vocabulary,
                entry.vocabulary,
                "S",
                entry.code,
            )
    for vocabulary, code, name in NOISE_PROCEDURES:
        voc.procedure[code] = concept(name, "Procedure", vocabulary, vocabulary, "S", code)

    phq = _loinc_code(kb)
    for code, name in ((phq, PHQ9_NAME), HBA1C_LOINC):
        voc.loinc[code] = concept(name, "Measurement", "LOINC", "Clinical Observation", "S", code)

    voc.tables = {
        "concept": _concept_table(concepts),
        "concept_ancestor": pa.table(
            {
                "ancestor_concept_id": pa.array([a for a, _, _ in ancestors], pa.int64()),
                "descendant_concept_id": pa.array([d for _, d, _ in ancestors], pa.int64()),
                "min_levels_of_separation": pa.array([lv for _, _, lv in ancestors], pa.int32()),
                "max_levels_of_separation": pa.array([lv for _, _, lv in ancestors], pa.int32()),
            }
        ),
        "drug_strength": pa.table(
            {
                "drug_concept_id": pa.array([d for d, _, _ in strengths], pa.int64()),
                "ingredient_concept_id": pa.array([i for _, i, _ in strengths], pa.int64()),
                "amount_value": pa.array([s for _, _, s in strengths], pa.float64()),
                "amount_unit_concept_id": pa.array([voc.mg_unit] * len(strengths), pa.int64()),
                "valid_start_date": pa.array([_VALID_START] * len(strengths), pa.date32()),
                "valid_end_date": pa.array([_VALID_END] * len(strengths), pa.date32()),
            }
        ),
    }
    return voc


def _concept_table(rows: list[tuple[int, str, str, str, str, str | None, str]]) -> pa.Table:
    n = len(rows)
    return pa.table(
        {
            "concept_id": pa.array([r[0] for r in rows], pa.int64()),
            "concept_name": pa.array([r[1] for r in rows], pa.string()),
            "domain_id": pa.array([r[2] for r in rows], pa.string()),
            "vocabulary_id": pa.array([r[3] for r in rows], pa.string()),
            "concept_class_id": pa.array([r[4] for r in rows], pa.string()),
            "standard_concept": pa.array([r[5] for r in rows], pa.string()),
            "concept_code": pa.array([r[6] for r in rows], pa.string()),
            "valid_start_date": pa.array([_VALID_START] * n, pa.date32()),
            "valid_end_date": pa.array([_VALID_END] * n, pa.date32()),
            "invalid_reason": pa.array([None] * n, pa.string()),
        }
    )


def build_vocabulary(kb: Knowledge) -> dict[str, pa.Table]:
    """The synthetic vocabulary: ``concept``, ``concept_ancestor`` and ``drug_strength``."""
    return dict(build_vocabulary_index(kb).tables)


def is_antidepressant_trial_drug(kb: Knowledge, drug: Drug) -> bool:
    """An oral antidepressant trial ingredient (docs/population.md rule 4): not NMDA antagonists."""
    cls = kb.classes.get(drug.drug_class)
    return (
        Role.ANTIDEPRESSANT in drug.roles
        and cls is not None
        and cls.antidepressant
        and drug.drug_class != "nmda_antagonist"
    )
