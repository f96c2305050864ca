from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, settings

from trdnav.knowledge.load import Knowledge, default_knowledge

pytest_plugins = ["tests.databases"]

settings.register_profile("dev", max_examples=60, deadline=None)
settings.register_profile(
    "ci", max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile("ci" if os.environ.get("CI") else "dev")


@pytest.fixture(scope="session")
def kb() -> Knowledge:
    return default_knowledge()
