"""The jti replay store shared by the worker processes of the CDS service (a SQLite file)."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from trdnav.errors import InputError
from trdnav.interop.cdshooks.auth import (
    JwtVerifier,
    ReplayStore,
    SqliteReplayStore,
    replay_store_for,
)
from trdnav.interop.cdshooks.config import REPLAY_ENV_VAR, CdsSettings, settings_from_env
from trdnav.interop.cdshooks.errors import CdsError

from .test_cdshooks_helpers import BASE, settings, sign


class Clock:
    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_a_jti_spent_in_one_process_is_refused_in_another(tmp_path: Path) -> None:
    clock = Clock()
    a = SqliteReplayStore(tmp_path / "jti.sqlite", clock)
    b = SqliteReplayStore(tmp_path / "jti.sqlite", clock)  # another worker's connection
    assert a.first_use("https://ehr", "j-1", until=1_300)
    assert not b.first_use("https://ehr", "j-1", until=1_300)
    assert not a.first_use("https://ehr", "j-1", until=1_300)
    assert b.first_use("https://other-ehr", "j-1", until=1_300)  # per issuer
    assert len(a) == len(b) == 2


def test_an_expired_pair_may_be_used_again_and_is_purged(tmp_path: Path) -> None:
    clock = Clock()
    store = SqliteReplayStore(tmp_path / "jti.sqlite", clock)
    assert store.first_use("iss", "j", until=1_100)
    clock.now = 1_099.9
    assert not store.first_use("iss", "j", until=1_400)
    clock.now = 1_100.0  # the token (and its leeway) has expired: it is refused by exp anyway
    assert store.first_use("iss", "j", until=1_400)
    assert not store.first_use("iss", "j", until=1_400)
    clock.now = 2_000.0
    assert store.first_use("iss", "other", until=2_100)  # purges what expired
    assert len(store) == 1


def _spend(path: str, jtis: list[str], out: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    store = SqliteReplayStore(Path(path))
    out.put(sum(store.first_use("iss", j, until=4_000_000_000) for j in jtis))


def test_worker_processes_racing_on_the_same_tokens_accept_each_once(tmp_path: Path) -> None:
    jtis = [f"j-{n}" for n in range(300)]
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    workers = [
        ctx.Process(target=_spend, args=(str(tmp_path / "jti.sqlite"), jtis, out)) for _ in range(3)
    ]
    for w in workers:
        w.start()
    accepted = [out.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=60)
    assert sum(accepted) == len(jtis)


def test_the_verifier_uses_the_store_the_settings_name(tmp_path: Path) -> None:
    path = tmp_path / "jti.sqlite"
    settings = CdsSettings(replay_store=str(path))
    assert isinstance(replay_store_for(settings), SqliteReplayStore)
    assert type(replay_store_for(CdsSettings())) is ReplayStore
    verifier = JwtVerifier(settings)
    assert isinstance(verifier.replay, SqliteReplayStore) and path.exists()


def test_a_replay_store_that_cannot_be_opened_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError) as raised:
        replay_store_for(CdsSettings(replay_store=str(tmp_path / "missing" / "dir" / "j.db")))
    assert raised.value.problems[0].loc == "replay_store"


def test_the_environment_names_the_shared_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRDNAV_CDS_CONFIG", raising=False)
    monkeypatch.setenv(REPLAY_ENV_VAR, str(tmp_path / "shared.sqlite"))
    assert settings_from_env().replay_store == str(tmp_path / "shared.sqlite")


def test_two_services_sharing_a_store_refuse_a_token_replayed_across_them(
    tmp_path: Path,
) -> None:
    """What the workers of ``trdnav cds serve --workers 2`` do: each its own verifier."""
    shared = str(tmp_path / "jti.sqlite")
    one = JwtVerifier(settings(replay_store=shared))
    two = JwtVerifier(settings(replay_store=shared))
    url = f"{BASE}/cds-services/trdnav-patient-view"
    token = f"Bearer {sign(url)}"
    assert one.verify(token, url)["jti"]
    with pytest.raises(CdsError, match="already used"):
        two.verify(token, url)
