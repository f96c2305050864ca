"""Patient identity in the store: round trip, versions, audit, search, validation, migration.

The round trip, stale versions, search and the migration run on SQLite and PostgreSQL (``db_url``,
tests/databases.py); the rest on SQLite only (``SQLITE_ONLY``), to keep the suite quick.
"""

from __future__ import annotations

from datetime import date

import pytest
from alembic import command
from sqlalchemy import Engine, inspect, select
from sqlalchemy.orm import Session

from trdnav.demo import DEMO_FAMILY_NAMES, DEMO_MRN_SYSTEM, demo_data, demo_identity
from trdnav.errors import InputError
from trdnav.history_files import load_history as load_file
from trdnav.identity import Identifier, PatientIdentity
from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage.engine import make_engine
from trdnav.storage.identity import (
    ENTITY,
    load_identity,
    load_identity_record,
    mrn_holders,
    parse_identity,
    save_identity,
    search_clause,
)
from trdnav.storage.migrations import alembic_config, upgrade
from trdnav.storage.repository import (
    PatientNotFoundError,
    StaleRecordError,
    load_history,
    save_history,
)

from .conftest import EXAMPLES

TODAY = date(2024, 6, 1)
SQLITE_ONLY = pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
JANE = PatientIdentity(
    given=("Jane", "Q."),
    family="Müller-Sampleton",
    birth_date=date(1981, 4, 12),
    mrn="MRN-0042",
    identifiers=(
        Identifier(system="urn:oid:2.16.840.1.113883.2.1.4.1", value="943 476 5919", type="NH"),
        Identifier(value="P-77"),
    ),
)


def _store(session: Session, kb: Knowledge, *names: str) -> list[str]:
    ids = []
    for name in names:
        path = next(p for p in EXAMPLES if p.name.startswith(name))
        ids.append(save_history(session, load_file(path, kb, TODAY), "fixture"))
    return ids


def _events(session: Session, action: str | None = None) -> list[m.AuditEvent]:
    query = select(m.AuditEvent).where(m.AuditEvent.entity == ENTITY).order_by(m.AuditEvent.id)
    if action is not None:
        query = query.where(m.AuditEvent.action == action)
    return list(session.scalars(query))


def test_an_identity_round_trips_and_each_save_and_read_is_audited(
    session: Session, kb: Knowledge
) -> None:
    (pid,) = _store(session, kb, "10")
    assert load_identity(session, pid) is None
    assert save_identity(session, pid, JANE, user="alice", ip="10.0.0.9") == 1
    session.expunge_all()
    assert load_identity(session, pid, user="bob", ip="10.0.0.8") == JANE
    created = _events(session, "create")
    assert [(e.who, e.entity_id, e.ip) for e in created] == [("alice", pid, "10.0.0.9")]
    reads = _events(session, "read")
    assert [(e.who, e.entity_id) for e in reads] == [("system", pid), ("bob", pid)]
    changed = JANE.model_copy(update={"mrn": "MRN-0043"})
    assert save_identity(session, pid, changed, user="alice") == 2
    assert load_identity_record(session, pid) == (changed, 2)
    assert [e.action for e in _events(session) if e.action != "read"] == ["create", "update"]


@SQLITE_ONLY
def test_the_history_is_untouched_by_identity_and_identity_by_a_history_save(
    session: Session, kb: Knowledge
) -> None:
    (pid,) = _store(session, kb, "10")
    before = load_history(session, pid)
    version = session.scalar(select(m.Patient.version).where(m.Patient.external_id == pid))
    save_identity(session, pid, JANE)
    assert load_history(session, pid) == before
    assert session.scalar(select(m.Patient.version).where(m.Patient.external_id == pid)) == version
    save_history(session, before, "alice")  # a whole-record save leaves identity alone
    assert load_identity(session, pid) == JANE


@SQLITE_ONLY
def test_saving_the_same_identity_again_changes_nothing(session: Session, kb: Knowledge) -> None:
    (pid,) = _store(session, kb, "10")
    save_identity(session, pid, JANE)
    writes = len(_events(session))
    assert save_identity(session, pid, PatientIdentity.model_validate(JANE.model_dump())) == 1
    assert len(_events(session)) == writes  # no new version, no audit event
    assert load_identity_record(session, pid)[1] == 1


def test_a_stale_version_stores_nothing(session: Session, kb: Knowledge) -> None:
    (pid,) = _store(session, kb, "10")
    save_identity(session, pid, JANE, expected_version=0)
    other = JANE.model_copy(update={"family": "Testwood"})
    with pytest.raises(StaleRecordError) as raised:
        save_identity(session, pid, other, expected_version=0)
    assert (raised.value.expected, raised.value.stored) == (0, 1)
    assert load_identity(session, pid) == JANE


@SQLITE_ONLY
def test_an_unknown_patient_is_refused_and_reads_as_none(session: Session) -> None:
    with pytest.raises(PatientNotFoundError):
        save_identity(session, "NOPE", JANE)
    assert load_identity(session, "NOPE") is None


@SQLITE_ONLY
def test_an_empty_identity_clears_it_with_a_new_version(session: Session, kb: Knowledge) -> None:
    (pid,) = _store(session, kb, "10")
    save_identity(session, pid, JANE)
    assert save_identity(session, pid, PatientIdentity()) == 2
    assert load_identity_record(session, pid) == (None, 2)
    with pytest.raises(StaleRecordError):  # a form opened before the clearing
        save_identity(session, pid, JANE, expected_version=1)


def _found(session: Session, query: str) -> list[str]:
    clause = search_clause(query)
    assert clause is not None
    return list(
        session.scalars(
            select(m.Patient.external_id)
            .join(m.PatientIdentityRow, m.PatientIdentityRow.patient_id == m.Patient.id)
            .where(clause)
            .order_by(m.Patient.external_id)
        )
    )


def test_search_matches_every_word_in_names_mrn_identifiers_and_birth_date(
    session: Session, kb: Knowledge
) -> None:
    jane, john = _store(session, kb, "10", "01")
    save_identity(session, jane, JANE)
    save_identity(session, john, PatientIdentity(given=("John",), family="Testwood", mrn="A%1"))
    assert _found(session, "muller") == [jane]  # accents and case ignored
    assert _found(session, "MÜLLER-SAMPLETON, jane") == [jane]  # as the list displays it
    assert _found(session, "jane testwood") == []  # every word must match
    assert _found(session, "mrn-0042") == [jane]
    assert _found(session, "943 476") == [jane]  # an NHS-style number, in parts
    assert _found(session, "P-77") == [jane]
    assert _found(session, "1981-04") == [jane]
    assert _found(session, "a%1") == [john]  # LIKE wildcards are matched literally
    assert _found(session, "%") == [john]
    assert search_clause("  , ") is None


@SQLITE_ONLY
def test_an_mrn_held_by_another_patient_is_found_and_that_read_audited(
    session: Session, kb: Knowledge
) -> None:
    jane, john = _store(session, kb, "10", "01")
    save_identity(session, jane, JANE)
    assert mrn_holders(session, "mrn-0042", besides=john, user="alice") == [jane]
    assert mrn_holders(session, "MRN-0042", besides=jane) == []
    assert [(e.who, e.entity_id) for e in _events(session, "read")] == [("alice", jane)]


def test_invalid_identity_data_names_every_field_at_once() -> None:
    data = {
        "given": ["Jane", " "],
        "family": "x" * 201,
        "birth_date": "2030-01-01",
        "identifiers": [{"value": "1"}, {"value": "1"}, {"system": "s"}],
        "nickname": "JJ",
    }
    with pytest.raises(InputError) as raised:
        parse_identity(data, TODAY, "identity", "p.yaml")
    locs = {p.loc: p.code for p in raised.value.problems}
    assert locs == {  # the well-typed fields are still checked: every problem at once
        "identity.given[1]": "empty_name",
        "identity.family": "string_too_long",
        "identity.birth_date": "date_in_future",
        "identity.identifiers[1].value": "duplicate_identifier",
        "identity.identifiers[2].value": "missing",
        "identity.nickname": "extra_forbidden",
    }
    assert all(p.file == "p.yaml" for p in raised.value.problems)
    # once the types are right, the rules the types cannot say
    data = {"given": ["Jane", " "], "birth_date": "2030-01-01"}
    data |= {"identifiers": [{"value": "1"}, {"value": "1"}]}
    with pytest.raises(InputError) as raised:
        parse_identity(data, TODAY)
    found = {p.loc: p.code for p in raised.value.problems}
    assert found == {
        "given[1]": "empty_name",
        "birth_date": "date_in_future",
        "identifiers[1].value": "duplicate_identifier",
    }
    with pytest.raises(InputError) as raised:
        parse_identity({"birth_date": "1850-02-03"}, TODAY)
    assert "from 1900-01-01 on" in raised.value.problems[0].message
    with pytest.raises(InputError) as raised:
        parse_identity(["Jane"], TODAY, "identity")
    assert raised.value.problems[0].code == "not_a_mapping"


def test_the_migration_downgrades_and_upgrades_again(db_url: str, kb: Knowledge) -> None:
    def tables() -> set[str]:
        engine: Engine = make_engine(db_url)
        try:
            return set(inspect(engine).get_table_names())
        finally:
            engine.dispose()

    assert "patient_identities" in tables()
    command.downgrade(alembic_config(db_url), "0004")
    assert "patient_identities" not in tables() and "patients" in tables()
    upgrade(db_url)
    assert "patient_identities" in tables()


def test_the_demo_patients_get_distinct_clearly_synthetic_identities() -> None:
    found = [demo_identity(n, date(1980, 1, n % 28 + 1)) for n in range(len(demo_data(TODAY)))]
    assert len({i.display_name for i in found}) == len(found)
    assert len({i.mrn for i in found}) == len(found)
    for identity in found:
        assert identity.family in DEMO_FAMILY_NAMES
        assert identity.mrn is not None and identity.mrn.startswith("DEMO-")
        (ident,) = identity.identifiers
        assert (ident.system, ident.value, ident.type) == (DEMO_MRN_SYSTEM, identity.mrn, "MR")
