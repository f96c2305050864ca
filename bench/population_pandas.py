"""Baseline for the population benchmark: the TRD cohort in plain pandas, as analysts write it.

The same cohort definition as ``trdnav.population.phenotype`` (docs/population.md, numbers from the
knowledge base), written the common way: every table read whole with ``pd.read_parquet`` (all
columns), concept sets resolved with ``isin``, merges, sort + ``shift``/``cummax`` for eras and
episodes, and a ``groupby(...).apply`` over episodes for the step logic. Honest code, neither
deliberately slow nor tuned: it is what the Ibis phenotype is compared against in
``bench/bench_population.py``.

    .venv/bin/python bench/population_pandas.py --omop DIR [--out cohort.parquet]

prints the attrition and a ``RESULT {json}`` line (seconds taken, cohort size), and writes the
cohort (cohort_definition_id, subject_id, cohort_start_date, cohort_end_date) when ``--out`` is
given.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from trdnav.knowledge.load import Knowledge, default_knowledge
from trdnav.knowledge.population import ConceptSet
from trdnav.knowledge.schema import Role
from trdnav.population.schema import OMOP_TABLES

TABLES = OMOP_TABLES
STRENGTH = r"([0-9]+(?:\.[0-9]+)?) mg"
DAY = pd.Timedelta(days=1)


@dataclass(frozen=True)
class Ingredient:
    id: str
    name: str
    rxnorm: str | None
    kind: str  # "antidepressant" | "augmentation" | "esketamine"
    min_mg_per_day: float | None

    @property
    def word(self) -> str:
        """The leading word of the name, as drug concept names start (``selegiline``)."""
        found = re.match(r"[a-z]+", self.name.lower())
        return found.group(0) if found else self.id


def ingredients(kb: Knowledge) -> list[Ingredient]:
    out = []
    for drug in kb.drugs.values():
        if drug.id == "esketamine":
            out.append(Ingredient(drug.id, drug.name, drug.rxnorm, "esketamine", None))
        elif kb.is_antidepressant(drug) and drug.drug_class != "nmda_antagonist":
            assert drug.antidepressant_dose is not None  # noqa: S101 - the schema guarantees it
            out.append(
                Ingredient(
                    drug.id,
                    drug.name,
                    drug.rxnorm,
                    "antidepressant",
                    drug.antidepressant_dose.min_adequate_mg_per_day,
                )
            )
        elif Role.AUGMENTATION in drug.roles and drug.augmentation_dose is not None:
            out.append(
                Ingredient(
                    drug.id,
                    drug.name,
                    drug.rxnorm,
                    "augmentation",
                    drug.augmentation_dose.min_mg_per_day,
                )
            )
    return out


def norm(s: pd.Series) -> pd.Series:
    return s.fillna("").astype(str).str.replace(".", "", regex=False).str.upper()


def resolve(cset: ConceptSet, concept: pd.DataFrame, ancestor: pd.DataFrame | None) -> set[int]:
    """Concept ids of a concept set: ICD-10-CM by code prefix, others by code, plus descendants."""
    code = norm(concept["concept_code"])

    def ids_of(entries: Any) -> set[int]:
        ids: set[int] = set()
        for c in entries:
            same_vocab = concept["vocabulary_id"] == c.vocabulary
            if c.vocabulary == "ICD10CM":
                hit = same_vocab & code.str.startswith(c.normalized)
            else:
                hit = same_vocab & (concept["concept_code"] == c.code)
            roots = set(concept.loc[hit, "concept_id"].tolist())
            ids |= roots
            if c.descendants and ancestor is not None:
                below = ancestor["ancestor_concept_id"].isin(roots)
                ids |= set(ancestor.loc[below, "descendant_concept_id"].tolist())
        return ids

    return ids_of(cset.include) - ids_of(cset.exclude)


def source_match(values: pd.Series, cset: ConceptSet) -> pd.Series:
    """Source values (dots removed, upper case) that start with an included code (not SNOMED) and
    with none of the excluded ones."""
    v = norm(values)
    hit = pd.Series(False, index=values.index)
    for c in cset.include:
        if c.vocabulary != "SNOMED":
            hit |= v.str.startswith(c.normalized)
    for c in cset.exclude:
        if c.vocabulary != "SNOMED":
            hit &= ~v.str.startswith(c.normalized)
    return hit


def records_in(df: pd.DataFrame, prefix: str, cset: ConceptSet, ids: set[int]) -> pd.DataFrame:
    hit = (
        df[f"{prefix}_concept_id"].isin(ids)
        | df[f"{prefix}_source_concept_id"].isin(ids)
        | source_match(df[f"{prefix}_source_value"], cset)
    )
    return df[hit]


def read(folder: Path) -> dict[str, pd.DataFrame]:
    out = {}
    for name in TABLES:
        path = folder / f"{name}.parquet"
        if path.exists():
            out[name] = pd.read_parquet(path)
    return out


def to_date(s: pd.Series) -> pd.Series:
    return pd.to_datetime(s)


def cohort(
    t: dict[str, pd.DataFrame], kb: Knowledge
) -> tuple[pd.DataFrame, list[tuple[int, str, int]]]:
    p = kb.population.parameters
    sets = kb.population.concept_sets
    concept = t["concept"]
    ancestor = t.get("concept_ancestor")
    attrition: list[tuple[int, str, int]] = [(1, "persons in person", len(t["person"]))]

    # 1-2 diagnoses and exclusions
    co = t["condition_occurrence"]
    co = co.assign(condition_start_date=to_date(co["condition_start_date"]))
    mdd = records_in(co, "condition", sets["mdd"], resolve(sets["mdd"], concept, ancestor))
    attrition.append((2, "with an MDD diagnosis", mdd["person_id"].nunique()))
    excluded: set[int] = set()
    for set_id in ("bipolar", "schizophrenia_spectrum"):
        rows = records_in(co, "condition", sets[set_id], resolve(sets[set_id], concept, ancestor))
        excluded |= set(rows["person_id"].tolist())
    mdd = mdd[~mdd["person_id"].isin(excluded)]
    eligible = set(mdd["person_id"].tolist())
    attrition.append((3, "without exclusion diagnoses", len(eligible)))

    # 3 episodes
    op = t["observation_period"].copy()
    op["observation_period_start_date"] = to_date(op["observation_period_start_date"])
    op["observation_period_end_date"] = to_date(op["observation_period_end_date"])
    dx = (
        mdd[["person_id", "condition_start_date"]]
        .drop_duplicates()
        .sort_values(["person_id", "condition_start_date"])
    )
    gap = dx.groupby("person_id")["condition_start_date"].diff().dt.days
    dx["episode"] = (gap.isna() | (gap > p.episode_gap_days.value)).cumsum()
    episodes = dx.groupby("episode").agg(
        person_id=("person_id", "first"),
        episode_start=("condition_start_date", "min"),
        last_dx=("condition_start_date", "max"),
    )
    episodes["episode_end"] = episodes["last_dx"] + p.episode_gap_days.value * DAY
    holding = episodes.reset_index().merge(op, on="person_id")
    holding = holding[
        (holding["observation_period_start_date"] <= holding["last_dx"])
        & (holding["last_dx"] <= holding["observation_period_end_date"])
    ]
    cut = holding.groupby("episode")["observation_period_end_date"].max()
    episodes["episode_end"] = np.minimum(
        episodes["episode_end"], cut.reindex(episodes.index).fillna(episodes["episode_end"])
    )
    episodes = episodes.reset_index()

    # 4 ingredients of drug concepts: through concept_ancestor, the ingredient concept itself, or
    # (for drug concepts matched by neither) the leading word of the concept name
    ingr = pd.DataFrame([{**vars(i), "word": i.word} for i in ingredients(kb)])
    ing_concepts = concept[
        (concept["vocabulary_id"] == "RxNorm") & (concept["concept_class_id"] == "Ingredient")
    ].merge(ingr.dropna(subset=["rxnorm"]), left_on="concept_code", right_on="rxnorm")
    ing_concepts = ing_concepts.rename(columns={"concept_id": "ingredient_concept_id"})
    maps = [
        ing_concepts[["ingredient_concept_id", "id"]].assign(
            drug_concept_id=ing_concepts["ingredient_concept_id"]
        )
    ]
    if ancestor is not None:
        below = ancestor.merge(
            ing_concepts[["ingredient_concept_id", "id"]],
            left_on="ancestor_concept_id",
            right_on="ingredient_concept_id",
        )
        maps.append(
            below[["ingredient_concept_id", "id", "descendant_concept_id"]].rename(
                columns={"descendant_concept_id": "drug_concept_id"}
            )
        )
    mapped = pd.concat(maps).drop_duplicates()
    drugs = concept[concept["domain_id"] == "Drug"]
    unmapped = drugs[~drugs["concept_id"].isin(mapped["drug_concept_id"])]
    word = unmapped["concept_name"].str.lower().str.extract(r"^([a-z]+)", expand=False)
    by_name = (
        pd.DataFrame({"drug_concept_id": unmapped["concept_id"], "word": word})
        .merge(ingr[["id", "word"]], on="word")
        .drop(columns="word")
    )
    drug_map = pd.concat([mapped, by_name], ignore_index=True)

    # 5 strength (drug_strength in mg, else "<n> mg" after the ingredient's name), end, dose
    drug_map = drug_map.merge(
        concept[["concept_id", "concept_name"]].rename(columns={"concept_id": "drug_concept_id"}),
        on="drug_concept_id",
        how="left",
    ).merge(ingr[["id", "word"]], on="id")
    lowered = drug_map["concept_name"].fillna("").str.lower()
    rest = [name[max(name.find(w), 0) :] for name, w in zip(lowered, drug_map["word"], strict=True)]
    drug_map["strength"] = (
        pd.Series(rest, index=drug_map.index).str.extract(STRENGTH, expand=False).astype(float)
    )
    ds = t.get("drug_strength")
    if ds is not None:
        ucum = concept.loc[concept["vocabulary_id"] == "UCUM", ["concept_id", "concept_code"]]
        ds = ds.merge(ucum, left_on="amount_unit_concept_id", right_on="concept_id", how="left")
        ds = ds[
            (ds["concept_code"].isna() | (ds["concept_code"].str.lower() == "mg"))
            & (ds["amount_value"] > 0)
        ]
        table_mg = ds.groupby(["drug_concept_id", "ingredient_concept_id"], as_index=False)[
            "amount_value"
        ].max()
        drug_map = drug_map.merge(
            table_mg, on=["drug_concept_id", "ingredient_concept_id"], how="left"
        )
        drug_map["strength"] = drug_map["amount_value"].where(
            drug_map["amount_value"].notna(), drug_map["strength"]
        )

    de = t["drug_exposure"]
    de = de[de["person_id"].isin(eligible) & de["drug_exposure_start_date"].notna()].copy()
    de["drug_exposure_start_date"] = to_date(de["drug_exposure_start_date"])
    de["drug_exposure_end_date"] = to_date(de["drug_exposure_end_date"])
    de = de.merge(drug_map[["drug_concept_id", "id", "strength"]], on="drug_concept_id")
    # duplicate rows (same person, drug, start) count once, with their largest values
    de = de.groupby(
        ["person_id", "drug_concept_id", "drug_exposure_start_date", "id"], as_index=False
    ).agg(
        end_date=("drug_exposure_end_date", "max"),
        quantity=("quantity", "max"),
        days_supply=("days_supply", "max"),
        strength=("strength", "max"),
    )
    de = de.merge(ingr[["id", "kind", "min_mg_per_day"]], on="id")
    de["start"] = de["drug_exposure_start_date"]
    end = de["end_date"]
    supply = de["days_supply"].where(de["days_supply"] > 0)
    fallback = de["start"] + (supply.fillna(p.default_days_supply.value) - 1).astype(float) * DAY
    de["end"] = end.where(end.notna() & (end >= de["start"]), fallback)
    ok = (de["quantity"] > 0) & (supply > 0) & (de["strength"] > 0)
    de["dose"] = (de["quantity"] * de["strength"] / supply.astype(float)).where(ok)

    # esketamine sessions: drug exposures of the ingredient join the procedures below
    esk_drug = de.loc[de["kind"] == "esketamine", ["person_id", "start"]]
    de = de[de["kind"] != "esketamine"]

    # 6 eras
    de = de.sort_values(["person_id", "id", "start", "end"])
    running = de.groupby(["person_id", "id"])["end"].cummax()
    prev = running.groupby([de["person_id"], de["id"]]).shift()
    de["era"] = (prev.isna() | (de["start"] > prev + p.era_persistence_days.value * DAY)).cumsum()

    # 7 adequacy
    weeks_days = 7 * p.min_weeks_at_adequate_dose.value - 1
    known = de["dose"].notna()
    enough = known & (de["dose"] >= de["min_mg_per_day"])
    de["adequate_from"] = de["start"].where(enough)
    eras = de.groupby("era").agg(
        person_id=("person_id", "first"),
        id=("id", "first"),
        kind=("kind", "first"),
        era_start=("start", "min"),
        era_end=("end", "max"),
        dose=("dose", "max"),
        adequate_from=("adequate_from", "min"),
    )
    min_dose = ingr.set_index("id")["min_mg_per_day"]
    unknown = eras["dose"].isna() | eras["id"].map(min_dose).isna()
    if p.unknown_dose_is_adequate.value:
        no_dose = eras["adequate_from"].isna() & unknown
        eras["adequate_from"] = eras["adequate_from"].where(~no_dose, eras["era_start"])
    due = eras["adequate_from"] + weeks_days * DAY
    eras["adequacy_date"] = due.where(eras["era_end"] >= due)
    eras = eras.reset_index()

    # procedures (ECT, rTMS, esketamine sessions)
    po = t["procedure_occurrence"]
    po = po.assign(procedure_date=to_date(po["procedure_date"]))
    sessions = []
    for modality in ("ect", "rtms", "esketamine"):
        rows = records_in(
            po, "procedure", sets[modality], resolve(sets[modality], concept, ancestor)
        )
        sessions.append(
            pd.DataFrame(
                {
                    "person_id": rows["person_id"],
                    "date": rows["procedure_date"],
                    "modality": modality,
                }
            )
        )
    sessions.append(
        pd.DataFrame(
            {
                "person_id": esk_drug["person_id"],
                "date": esk_drug["start"],
                "modality": "esketamine",
            }
        )
    )
    sessions_df = pd.concat(sessions)
    sessions_df = sessions_df[sessions_df["person_id"].isin(eligible)]

    # 8 steps per episode
    lookback = p.episode_lookback_days.value * DAY
    ep_eras = episodes.merge(eras, on="person_id")
    ep_eras = ep_eras[
        (ep_eras["era_start"] >= ep_eras["episode_start"] - lookback)
        & (ep_eras["era_start"] <= ep_eras["episode_end"])
    ]
    ad = ep_eras[ep_eras["kind"] == "antidepressant"]
    remaining = set(ad["person_id"].tolist())
    attrition.append((4, "with an antidepressant era in an episode", len(remaining)))
    # augmentation eras count only when they start while an antidepressant era runs
    aug = ep_eras[ep_eras["kind"] == "augmentation"]
    running_ad = aug[["era", "person_id", "era_start"]].merge(
        eras.loc[eras["kind"] == "antidepressant", ["person_id", "era_start", "era_end"]].rename(
            columns={"era_start": "era_start_ad", "era_end": "era_end_ad"}
        ),
        on="person_id",
    )
    during = running_ad[
        (running_ad["era_start_ad"] <= running_ad["era_start"])
        & (running_ad["era_start"] <= running_ad["era_end_ad"])
    ]["era"].unique()
    aug = aug[aug["era"].isin(during)]
    trial_kinds = ["antidepressant"] + (
        ["augmentation"] if p.count_augmentation_as_trial.value else []
    )
    ing_steps = pd.concat([ad, aug])
    steps = (
        ing_steps.groupby(["episode", "id"])
        .agg(
            kind=("kind", "first"),
            step_start=("era_start", "min"),
            adequacy_date=("adequacy_date", "min"),
        )
        .reset_index()
    )
    ep_sessions = episodes.merge(sessions_df, on="person_id")
    ep_sessions = ep_sessions[
        (ep_sessions["date"] >= ep_sessions["episode_start"] - lookback)
        & (ep_sessions["date"] <= ep_sessions["episode_end"])
    ]
    mod_steps = (
        ep_sessions.groupby(["episode", "modality"])["date"]
        .min()
        .reset_index()
        .rename(columns={"modality": "id", "date": "step_start"})
    )
    mod_steps["kind"] = "procedure"
    mod_steps["adequacy_date"] = pd.NaT
    steps = pd.concat([steps, mod_steps], ignore_index=True)
    steps["trial"] = steps["kind"].isin(trial_kinds)
    steps = steps.merge(episodes[["episode", "person_id"]], on="episode")

    adequate = steps[steps["trial"] & steps["adequacy_date"].notna()]
    remaining &= set(adequate["person_id"].tolist())
    attrition.append((5, "with an adequate trial", len(remaining)))
    per_ep = adequate.groupby("episode").size()
    two = per_ep[per_ep >= p.min_failed_trials.value].index
    remaining &= set(episodes.loc[episodes["episode"].isin(two), "person_id"].tolist())
    attrition.append((6, f"with {p.min_failed_trials.value} adequate trials", len(remaining)))

    # 9-10 failures and the index date, one episode at a time
    def index_of(group: pd.DataFrame) -> pd.Series:
        starts = group["step_start"].to_numpy()
        trials = group[group["trial"] & group["adequacy_date"].notna()]
        failed = [
            (adequacy, ingredient)
            for adequacy, ingredient in zip(trials["adequacy_date"], trials["id"], strict=True)
            if (starts > np.datetime64(adequacy)).any()
        ]
        failed.sort()
        n_failed = len(failed)
        index = pd.NaT
        if n_failed >= p.min_failed_trials.value:
            f_date = np.datetime64(failed[p.min_failed_trials.value - 1][0])
            after = starts[starts > f_date]
            if len(after):
                index = pd.Timestamp(after.min())
        return pd.Series({"failed": n_failed, "index_date": index})

    candidates = steps[steps["episode"].isin(two)]
    per_episode = candidates.groupby("episode")[
        ["id", "kind", "step_start", "adequacy_date", "trial"]
    ].apply(index_of)
    per_episode = per_episode.join(episodes.set_index("episode")[["person_id"]])
    failed_two = per_episode[per_episode["failed"] >= p.min_failed_trials.value]
    remaining &= set(failed_two["person_id"].tolist())
    attrition.append(
        (7, f"with {p.min_failed_trials.value} failed adequate trials", len(remaining))
    )
    indexed = failed_two.dropna(subset=["index_date"])
    remaining &= set(indexed["person_id"].tolist())
    attrition.append((8, "with a following step (index date)", len(remaining)))
    indexed = indexed[indexed["person_id"].isin(remaining)]
    entry = indexed.groupby("person_id")["index_date"].min().reset_index()

    # 11 observation period and age
    inside = entry.merge(op, on="person_id")
    inside = inside[
        (inside["observation_period_start_date"] <= inside["index_date"])
        & (inside["index_date"] <= inside["observation_period_end_date"])
    ]
    inside = inside.sort_values("observation_period_end_date").drop_duplicates(
        "person_id", keep="last"
    )
    attrition.append((9, "index in an observation period", len(inside)))
    person = t["person"]
    birth = person[["person_id", "year_of_birth"]].copy()
    birth["month"] = person["month_of_birth"] if "month_of_birth" in person else np.nan
    birth["day"] = person["day_of_birth"] if "day_of_birth" in person else np.nan
    # no month of birth: 1 July; no day: the 1st
    birth["day"] = birth["day"].where(birth["month"].notna() & birth["day"].notna(), 1)
    birth["month"] = birth["month"].fillna(7)
    inside = inside.merge(birth, on="person_id")
    idx = inside["index_date"]
    age = (
        idx.dt.year
        - inside["year_of_birth"]
        - (
            (idx.dt.month < inside["month"])
            | ((idx.dt.month == inside["month"]) & (idx.dt.day < inside["day"]))
        )
    )
    adults = inside[age >= p.min_age_at_index.value]
    attrition.append((10, "adult at index (the cohort)", len(adults)))
    out = pd.DataFrame(
        {
            "cohort_definition_id": p.cohort_definition_id.value,
            "subject_id": adults["person_id"].astype("int64"),
            "cohort_start_date": adults["index_date"].dt.date,
            "cohort_end_date": adults["observation_period_end_date"].dt.date,
        }
    ).sort_values("subject_id", ignore_index=True)
    return out, attrition


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--omop", type=Path, required=True, help="folder of OMOP Parquet tables")
    parser.add_argument("--out", type=Path, help="where to write the cohort (Parquet)")
    args = parser.parse_args()
    kb = default_knowledge()
    t0 = time.perf_counter()
    tables = read(args.omop)
    t_read = time.perf_counter() - t0
    result, attrition = cohort(tables, kb)
    if args.out:
        result.to_parquet(args.out, index=False)
    elapsed = time.perf_counter() - t0
    for step, criterion, persons in attrition:
        print(f"  {step:>2} {criterion:<45} {persons:>10,}")
    figures = {
        "seconds": elapsed,
        "read_seconds": t_read,
        "cohort": len(result),
        "attrition": [{"step": s, "criterion": c, "persons": n} for s, c, n in attrition],
    }
    print("RESULT " + json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
