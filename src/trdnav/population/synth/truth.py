"""Ground truth of a synthetic person: the phenotype's rules applied to the *true* events.

The rules of docs/population.md (1-3 diagnoses, exclusions and episodes; 4-7 ingredients, eras and
adequacy; 8-11 steps, failures, index date and cohort) are applied to the simulated events before
any recording noise: true diagnosis codes, true daily doses and days of supply, true sessions. So
the phenotype's disagreement with this truth on the recorded rows measures what the noise (and any
defect) costs, not a difference of definitions. Every number comes from the knowledge base.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from trdnav.knowledge.load import Knowledge
from trdnav.knowledge.schema import Role
from trdnav.population.synth.journeys import Fill, Person, to_date
from trdnav.population.synth.vocabulary import Vocabulary, is_antidepressant_trial_drug


@dataclass(frozen=True)
class TruthRow:
    person_id: int
    has_mdd: bool
    excluded: str | None
    is_trd: bool
    index_date: int | None  # day number
    episode_start: int | None  # the index episode's start, else the first episode's
    true_failed_adequate_trials: int
    age_at_index: int | None


@dataclass(frozen=True)
class _Era:
    start: int
    end: int
    adequacy: int | None


class _Codes:
    """ICD-10-CM prefix matching of one concept set (rule 1)."""

    def __init__(self, kb: Knowledge, set_ids: tuple[str, ...]) -> None:
        self.include: list[str] = []
        self.exclude: list[str] = []
        for set_id in set_ids:
            cset = kb.population.concept_set(set_id)
            self.include += [c.normalized for c in cset.include if c.vocabulary == "ICD10CM"]
            self.exclude += [c.normalized for c in cset.exclude if c.vocabulary == "ICD10CM"]

        self._seen: dict[str, bool] = {}

    def match(self, code: str) -> bool:
        hit = self._seen.get(code)
        if hit is None:
            norm = code.replace(".", "").upper()
            hit = any(norm.startswith(p) for p in self.include) and not any(
                norm.startswith(p) for p in self.exclude
            )
            self._seen[code] = hit
        return hit


class TruthRules:
    def __init__(self, kb: Knowledge, voc: Vocabulary) -> None:
        params = kb.population.parameters
        self.mdd = _Codes(kb, ("mdd",))
        self.exclusions = [(s, _Codes(kb, (s,))) for s in ("bipolar", "schizophrenia_spectrum")]
        self.persistence = params.era_persistence_days.value
        self.gap = params.episode_gap_days.value
        self.lookback = params.episode_lookback_days.value
        self.adequate_days = 7 * params.min_weeks_at_adequate_dose.value
        self.min_failed = params.min_failed_trials.value
        self.count_aug = params.count_augmentation_as_trial.value
        self.adult = params.min_age_at_index.value
        self.antidepressants: set[str] = set()
        self.augmentations: set[str] = set()
        self.minimum: dict[str, float | None] = {}
        for drug in kb.drugs.values():
            if is_antidepressant_trial_drug(kb, drug):
                self.antidepressants.add(drug.id)
            elif Role.AUGMENTATION in drug.roles:
                self.augmentations.add(drug.id)
            else:
                continue
            if drug.antidepressant_dose is not None:
                self.minimum[drug.id] = drug.antidepressant_dose.min_adequate_mg_per_day
            elif drug.augmentation_dose is not None:
                self.minimum[drug.id] = drug.augmentation_dose.min_mg_per_day
            else:
                self.minimum[drug.id] = None
        self.ingredient_id = voc.ingredient
        self.modality: dict[str, str] = {}
        for set_id in ("ect", "rtms", "esketamine"):
            for entry in kb.population.concept_set(set_id).include:
                self.modality[entry.code] = set_id

    def eras(self, drug: str, fills: list[Fill]) -> list[_Era]:
        """Rules 5-7 on the true fills of one ingredient."""
        minimum = self.minimum[drug]
        by_day: dict[int, Fill] = {}
        for f in fills:
            by_day.setdefault(f.day, f)
        out: list[_Era] = []
        start = end = ads = -1
        for d in sorted(by_day):
            f = by_day[d]
            f_end = d + f.days_supply - 1
            if start >= 0:
                if d - end <= self.persistence:
                    end = max(end, f_end)
                    if ads < 0 and (minimum is None or f.dose_mg >= minimum):
                        ads = d
                    continue
                out.append(self._era(start, end, ads))
            start, end = d, f_end
            ads = d if minimum is None or f.dose_mg >= minimum else -1
        if start >= 0:
            out.append(self._era(start, end, ads))
        return out

    def _era(self, start: int, end: int, ads: int) -> _Era:
        if ads < 0:
            return _Era(start, end, None)
        adequacy = ads + self.adequate_days - 1
        return _Era(start, end, adequacy if end >= adequacy else None)

    def episodes(self, days: list[int], obs_end: int) -> list[tuple[int, int]]:
        """Rule 3: runs of diagnosis days without a gap longer than the episode gap."""
        out: list[tuple[int, int]] = []
        first = last = days[0]
        for d in days[1:]:
            if d - last > self.gap:
                out.append((first, min(last + self.gap, obs_end)))
                first = d
            last = d
        out.append((first, min(last + self.gap, obs_end)))
        return out

    def truth(self, p: Person) -> TruthRow:
        excluded = None
        codes = {c for _, c in p.dx}
        for set_id, matcher in self.exclusions:
            if any(matcher.match(c) for c in codes):
                excluded = set_id
                break
        mdd_days = sorted({d for d, c in p.dx if self.mdd.match(c)})
        if not mdd_days:
            return TruthRow(p.person_id, False, excluded, False, None, None, 0, None)
        episodes = self.episodes(mdd_days, p.obs_end)
        fills: dict[str, list[Fill]] = {}
        session_days: dict[str, list[int]] = {"ect": [], "rtms": [], "esketamine": []}
        for f in p.fills:
            if not f.taken:  # collected, never taken: no trial and no treatment step
                continue
            if f.drug == "esketamine":
                session_days["esketamine"].append(f.day)
            elif f.drug in self.minimum:
                fills.setdefault(f.drug, []).append(f)
        for d, code in p.procedures:
            modality = self.modality.get(code)
            if modality is not None:
                session_days[modality].append(d)
        eras = {drug: self.eras(drug, fs) for drug, fs in sorted(fills.items())}
        ad_eras = [e for drug, es in eras.items() if drug in self.antidepressants for e in es]
        best: tuple[int, int, int] | None = None  # (index, episode start, failed trials)
        most_failed = 0
        for ep_start, ep_end in episodes:
            lo = ep_start - self.lookback
            steps: list[int] = []
            trials: list[tuple[int, int]] = []  # (adequacy date, ingredient concept id)
            for drug, es in eras.items():
                in_ep = [e for e in es if lo <= e.start <= ep_end]
                if drug not in self.antidepressants:
                    in_ep = [e for e in in_ep if any(a.start <= e.start <= a.end for a in ad_eras)]
                if not in_ep:
                    continue
                steps.append(in_ep[0].start)
                if drug in self.antidepressants or self.count_aug:
                    adequacies = [e.adequacy for e in in_ep if e.adequacy is not None]
                    if adequacies:
                        trials.append((min(adequacies), self.ingredient_id.get(drug, 0)))
            for days in session_days.values():
                inside = [d for d in days if lo <= d <= ep_end]
                if inside:
                    steps.append(min(inside))
            failed = sorted(t for t in trials if any(s > t[0] for s in steps))
            most_failed = max(most_failed, len(failed))
            if len(failed) >= self.min_failed:
                f_date = failed[self.min_failed - 1][0]
                index = min(s for s in steps if s > f_date)
                if best is None or index < best[0]:
                    best = (index, ep_start, len(failed))
        if best is None:
            return TruthRow(
                p.person_id, True, excluded, False, None, episodes[0][0], most_failed, None
            )
        index, ep_start, n_failed = best
        age = _age(p.birth, to_date(index))
        is_trd = excluded is None and p.obs_start <= index <= p.obs_end and age >= self.adult
        if not is_trd:
            return TruthRow(p.person_id, True, excluded, False, None, ep_start, n_failed, None)
        return TruthRow(p.person_id, True, None, True, index, ep_start, n_failed, age)


def _age(birth: date, at: date) -> int:
    return at.year - birth.year - ((at.month, at.day) < (birth.month, birth.day))
