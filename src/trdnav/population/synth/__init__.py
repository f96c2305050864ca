"""Synthetic OMOP CDM v5.4 data with depression journeys and their ground truth.

``generate_omop(out_dir, persons, seed)`` writes the Parquet tables, ``ground_truth.parquet`` and
``manifest.json``; ``build_vocabulary(kb)`` gives the small vocabulary subset (``concept``,
``concept_ancestor``, ``drug_strength``) alone. The population mix and noise rates are in
:mod:`trdnav.population.synth.settings`; every clinical number comes from the knowledge base.
"""

from trdnav.population.synth.settings import (
    DEFAULT_SETTINGS,
    GENERATOR_VERSION,
    JourneySettings,
    NoiseRates,
    PopulationMix,
    SynthSettings,
)
from trdnav.population.synth.vocabulary import LOCAL_CONCEPT_BASE, build_vocabulary
from trdnav.population.synth.writer import SynthSummary, generate_omop

__all__ = [
    "DEFAULT_SETTINGS",
    "GENERATOR_VERSION",
    "LOCAL_CONCEPT_BASE",
    "JourneySettings",
    "NoiseRates",
    "PopulationMix",
    "SynthSettings",
    "SynthSummary",
    "build_vocabulary",
    "generate_omop",
]
