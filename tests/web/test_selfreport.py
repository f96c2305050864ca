"""Self-report: a clinician hands a single-use link; the patient fills one questionnaire alone."""

from __future__ import annotations

import re
import sys
from datetime import UTC, datetime, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from trdnav.knowledge.load import Knowledge
from trdnav.storage import models as m
from trdnav.storage import records, repository
from trdnav.web import selfreport_form
from trdnav.web import selfreport_links as links
from trdnav.web.routes import selfreport
from trdnav.web.security import SESSION_COOKIE

from .conftest import TODAY, signed_in, store_examples

NO_RISK = [1, 2, 1, 2, 1, 1, 0, 1, 0]
RISK = [1, 2, 1, 2, 1, 1, 0, 1, 2]


def answers(values: list[int]) -> dict[str, str]:
    return {f"item_{n}": str(v) for n, v in enumerate(values, start=1)}


def create_link(client: TestClient, csrf: str, patient: str = "EX01", **form: str) -> str:
    """Create a link as the signed-in clinician; returns its id."""
    data = {"instrument": "phq9", "hours": "72", "csrf_token": csrf, **form}
    response = client.post(f"/patients/{patient}/selfreport", data=data)
    assert response.status_code == 303, response.text
    return str(response.headers["location"]).rsplit("/", 1)[1]


def link_address(client: TestClient, link_id: str, patient: str = "EX01") -> str:
    page = client.get(f"/patients/{patient}/selfreport/{link_id}")
    assert page.status_code == 200
    found = re.search(r'value="(http://testserver/r/[^"]+)"', page.text)
    assert found is not None, "the link page shows no address"
    return found.group(1).removeprefix("http://testserver")


def nonce(page_text: str) -> str:
    found = re.search(r'name="form_nonce" value="([^"]+)"', page_text)
    assert found is not None
    return found.group(1)


@pytest.fixture
def patient_client(app: FastAPI) -> TestClient:
    """A browser with no account and no cookie: the patient's."""
    return TestClient(app, base_url="http://testserver", follow_redirects=False)


@pytest.fixture
def address(client: TestClient, db_url: str, kb: Knowledge) -> str:
    """EX01 stored, and the path of a fresh PHQ-9 link made by the clinician."""
    store_examples(db_url, kb, "01")
    csrf = signed_in(client, "clinician")
    return link_address(client, create_link(client, csrf))


def fill(patient_client: TestClient, path: str, values: dict[str, str]) -> tuple[int, str]:
    form = patient_client.get(path)
    assert form.status_code == 200, form.text
    response = patient_client.post(path, data={**values, "form_nonce": nonce(form.text)})
    return response.status_code, response.text


def question(text: str, n: int) -> str:
    """The HTML of question ``n`` of a rendered form."""
    start = text.index(f'id="q{n}"')
    return text[start : text.index("</fieldset>", start)]


def measurements(app: FastAPI, patient: str = "EX01") -> list[tuple[str, object, object]]:
    with app.state.sessionmaker() as s:
        history = repository.load_history(s, patient)
    return [(x.instrument, x.date, x.items) for x in history.measurements]


# --- the clinician's side ----------------------------------------------------------------------


def test_a_clinician_creates_a_link_and_sees_its_address_to_copy(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    csrf = signed_in(client, "clinician")
    form = client.get("/patients/EX01/selfreport/new")
    assert form.status_code == 200
    assert 'value="72"' in form.text  # settings.selfreport_link_hours
    link_id = create_link(client, csrf, hours="48")
    page = client.get(f"/patients/EX01/selfreport/{link_id}")
    assert 'data-copy="selfreport-url"' in page.text and 'id="selfreport-url"' in page.text
    assert "http://testserver/r/" in page.text
    with app.state.sessionmaker() as s:
        link = s.get(m.SelfReportLink, link_id)
        assert link is not None and link.instrument == "phq9" and link.used_at is None
        lifetime = links.as_utc(link.expires_at) - links.as_utc(link.created_at)
        assert lifetime == timedelta(hours=48)
        events = s.scalars(
            select(m.AuditEvent).where(
                m.AuditEvent.entity == "selfreport_link", m.AuditEvent.action == "create"
            )
        ).all()
    assert [(e.who, e.entity_id) for e in events] == [("clinician", "EX01")]


def test_the_link_address_uses_the_public_base_url_when_one_is_set(
    client: TestClient, db_url: str, kb: Knowledge, app: FastAPI
) -> None:
    store_examples(db_url, kb, "01")
    csrf = signed_in(client, "clinician")
    link_id = create_link(client, csrf)
    app.state.settings = app.state.settings.model_copy(
        update={"public_base_url": "https://clinic.example.org/"}
    )
    page = client.get(f"/patients/EX01/selfreport/{link_id}")
    assert 'value="https://clinic.example.org/r/' in page.text


def test_only_self_report_instruments_are_offered(
    client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    text = client.get("/patients/EX01/selfreport/new").text
    for inst in kb.instruments.values():
        offered = f'name="instrument" value="{inst.id}"' in text
        assert offered == (inst.rater == "self_report"), inst.id
    assert 'value="phq9" checked' in text


def test_a_reader_can_neither_open_nor_create_a_link(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    csrf = signed_in(client, "reader")
    assert client.get("/patients/EX01/selfreport/new").status_code == 403
    data = {"instrument": "phq9", "hours": "72", "csrf_token": csrf}
    assert client.post("/patients/EX01/selfreport", data=data).status_code == 403
    with app.state.sessionmaker() as s:
        assert s.scalars(select(m.SelfReportLink)).all() == []


def test_creating_a_link_without_the_csrf_token_is_refused(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    signed_in(client, "clinician")
    data = {"instrument": "phq9", "hours": "72"}
    assert client.post("/patients/EX01/selfreport", data=data).status_code == 403
    with app.state.sessionmaker() as s:
        assert s.scalars(select(m.SelfReportLink)).all() == []


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"instrument": "madrs"}, "instrument"),  # clinician-rated
        ({"instrument": "nope"}, "instrument"),
        ({"hours": "0"}, "hours"),
        ({"hours": str(links.MAX_LINK_HOURS + 1)}, "hours"),
        ({"hours": "three"}, "hours"),
    ],
)
def test_a_wrong_questionnaire_or_lifetime_is_shown_next_to_its_field(
    app: FastAPI,
    client: TestClient,
    db_url: str,
    kb: Knowledge,
    form: dict[str, str],
    field: str,
) -> None:
    store_examples(db_url, kb, "01")
    csrf = signed_in(client, "clinician")
    data = {"instrument": "phq9", "hours": "72", "csrf_token": csrf, **form}
    response = client.post("/patients/EX01/selfreport", data=data)
    assert response.status_code == 422
    assert f'id="{field}-error"' in response.text
    with app.state.sessionmaker() as s:
        assert s.scalars(select(m.SelfReportLink)).all() == []


def test_the_longest_lifetime_is_accepted(client: TestClient, db_url: str, kb: Knowledge) -> None:
    store_examples(db_url, kb, "01")
    csrf = signed_in(client, "clinician")
    create_link(client, csrf, hours=str(links.MAX_LINK_HOURS))


def test_a_link_for_an_unknown_patient_is_a_404(client: TestClient) -> None:
    csrf = signed_in(client, "clinician")
    assert client.get("/patients/NOPE/selfreport/new").status_code == 404
    data = {"instrument": "phq9", "hours": "72", "csrf_token": csrf}
    assert client.post("/patients/NOPE/selfreport", data=data).status_code == 404


def test_the_clinician_sees_each_links_status_and_can_revoke_an_unused_one(
    app: FastAPI, client: TestClient, patient_client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    csrf = signed_in(client, "clinician")
    used, expired, revoked, unused = (create_link(client, csrf) for _ in range(4))
    assert fill(patient_client, link_address(client, used), answers(NO_RISK))[0] == 200
    with app.state.sessionmaker() as s:
        past = datetime.now(UTC) - timedelta(minutes=1)
        s.execute(
            update(m.SelfReportLink)
            .where(m.SelfReportLink.id == expired)
            .values(created_at=past - timedelta(hours=1), expires_at=past)
        )
        s.commit()
    revoked_address = link_address(client, revoked)
    data = {"csrf_token": csrf}
    response = client.post(f"/patients/EX01/selfreport/{revoked}/revoke", data=data)
    assert response.status_code == 303
    text = client.get("/patients/EX01/selfreport/new").text
    statuses = {
        status: text.count(f'data-link-status="{status}"')
        for status in ("unused", "used", "expired", "revoked")
    }
    assert statuses == {"unused": 1, "used": 1, "expired": 1, "revoked": 1}
    assert f"/patients/EX01/selfreport/{unused}/revoke" in text
    assert f"/patients/EX01/selfreport/{revoked}/revoke" not in text
    assert patient_client.get(revoked_address).status_code == 410
    with app.state.sessionmaker() as s:
        actions = s.scalars(
            select(m.AuditEvent.action).where(m.AuditEvent.entity == "selfreport_link")
        ).all()
    assert "revoke" in actions


def test_revoking_needs_the_writer_role_and_the_csrf_token(
    app: FastAPI, client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    csrf = signed_in(client, "clinician")
    link_id = create_link(client, csrf)
    assert client.post(f"/patients/EX01/selfreport/{link_id}/revoke").status_code == 403
    reader = TestClient(app, base_url="http://testserver", follow_redirects=False)
    reader_csrf = signed_in(reader, "reader")
    revoke = f"/patients/EX01/selfreport/{link_id}/revoke"
    assert reader.post(revoke, data={"csrf_token": reader_csrf}).status_code == 403
    with app.state.sessionmaker() as s:
        link = s.get(m.SelfReportLink, link_id)
        assert link is not None
        status = links.link_status(link.created_at, link.expires_at, None, datetime.now(UTC))
    assert status is links.LinkStatus.UNUSED


# --- the patient's side ------------------------------------------------------------------------


def test_the_patient_fills_a_phq9_without_any_cookie_and_the_answers_land_in_the_record(
    app: FastAPI, patient_client: TestClient, address: str
) -> None:
    before = measurements(app)
    form = patient_client.get(address)
    assert form.status_code == 200
    assert "set-cookie" not in form.headers
    assert "Little interest or pleasure in doing things" in form.text  # stored wording
    assert "Nearly every day" in form.text
    assert "EX01" not in form.text and "1992" not in form.text  # nothing identifies the patient
    assert "1 June 2024" in form.text  # today, from the server
    response = patient_client.post(
        address, data={**answers(NO_RISK), "form_nonce": nonce(form.text)}
    )
    assert response.status_code == 200
    assert "Thank you" in response.text
    assert "sr-crisis" not in response.text
    assert "set-cookie" not in response.headers
    assert patient_client.cookies.get("trdnav_session") is None
    assert measurements(app) == [*before, ("PHQ-9", TODAY, tuple(NO_RISK))]


def test_the_submission_is_audited_under_the_links_name(
    app: FastAPI, patient_client: TestClient, address: str
) -> None:
    assert fill(patient_client, address, answers(NO_RISK))[0] == 200
    with app.state.sessionmaker() as s:
        link_id = s.scalars(select(m.SelfReportLink.id)).one()
        events = s.scalars(
            select(m.AuditEvent).where(m.AuditEvent.who == f"selfreport:{link_id[:8]}")
        ).all()
    assert ("update", "patient", "EX01") in {(e.action, e.entity, e.entity_id) for e in events}
    assert ("open", "selfreport_link", "EX01") in {
        (e.action, e.entity, e.entity_id) for e in events
    }


def test_a_second_submission_of_the_same_link_is_refused_and_stores_nothing(
    app: FastAPI, patient_client: TestClient, address: str
) -> None:
    form = patient_client.get(address)
    data = {**answers(NO_RISK), "form_nonce": nonce(form.text)}
    assert patient_client.post(address, data=data).status_code == 200
    after_first = measurements(app)
    again = patient_client.post(address, data=data)
    assert again.status_code == 410
    assert "already been sent" in again.text and "Traceback" not in again.text
    assert patient_client.get(address).status_code == 410
    assert measurements(app) == after_first


def test_an_expired_link_is_refused_and_stores_nothing(
    app: FastAPI, patient_client: TestClient, address: str
) -> None:
    form = patient_client.get(address)
    before = measurements(app)
    with app.state.sessionmaker() as s:
        past = datetime.now(UTC) - timedelta(seconds=1)
        s.execute(update(m.SelfReportLink).values(expires_at=past))
        s.commit()
    page = patient_client.get(address)
    assert page.status_code == 410 and "expired" in page.text
    response = patient_client.post(
        address, data={**answers(NO_RISK), "form_nonce": nonce(form.text)}
    )
    assert response.status_code == 410
    assert "EX01" not in response.text
    assert measurements(app) == before


def _a_session_token(app: FastAPI) -> str:
    """A real session's cookie token (another credential of this app) of a signed-in clinician."""
    with TestClient(app, follow_redirects=False) as browser:
        signed_in(browser, "clinician")
        token = browser.cookies[SESSION_COOKIE]
    assert token
    return token


def _flip(token: str, i: int) -> str:
    return token[:i] + ("A" if token[i] != "A" else "B") + token[i + 1 :]


@pytest.mark.parametrize("tamper", ["flip", "truncate", "garbage", "session", "unknown_id"])
def test_a_tampered_or_unknown_token_is_a_plain_404(
    app: FastAPI, patient_client: TestClient, address: str, tamper: str
) -> None:
    token = address.removeprefix("/r/")
    secret = app.state.settings.secret_key
    bad = {
        # a character of the signature's first half: every bit there counts (the last one may
        # differ from its neighbour only in base64 padding bits)
        "flip": _flip(token, len(token) - 12),
        "truncate": token[:-3],
        "garbage": "not-a-token",
        "session": _a_session_token(app),
        "unknown_id": links.sign_link(secret, links.new_link_id()),
    }[tamper]
    for response in (
        patient_client.get(f"/r/{bad}"),
        patient_client.post(f"/r/{bad}", data=answers(NO_RISK)),
    ):
        assert response.status_code == 404
        assert "does not work" in response.text
        assert "EX01" not in response.text and "Traceback" not in response.text


@pytest.mark.parametrize(
    ("change", "item"),
    [({"item_3": ""}, 3), ({"item_5": "7"}, 5), ({"item_9": "-1"}, 9), ({"item_2": "x"}, 2)],
)
def test_a_missing_or_out_of_range_answer_is_shown_next_to_that_question(
    app: FastAPI,
    patient_client: TestClient,
    address: str,
    change: dict[str, str],
    item: int,
) -> None:
    before = measurements(app)
    status, text = fill(patient_client, address, {**answers(NO_RISK), **change})
    assert status == 422
    wrong = question(text, item)
    assert f'id="item_{item}-error"' in wrong and "Please choose" in wrong
    assert text.count('class="field-error"') == 1
    assert 'value="1" checked' in question(text, 1)  # the answers given are kept
    assert measurements(app) == before
    # the link can still be used
    assert fill(patient_client, address, answers(NO_RISK))[0] == 200
    assert len(measurements(app)) == len(before) + 1


def test_a_form_without_its_nonce_is_refused_and_the_link_stays_usable(
    app: FastAPI, patient_client: TestClient, address: str
) -> None:
    before = measurements(app)
    response = patient_client.post(address, data=answers(NO_RISK))
    assert response.status_code == 400
    secret = app.state.settings.secret_key
    other = links.form_nonce(secret, links.new_link_id())  # made for another link
    response = patient_client.post(address, data={**answers(NO_RISK), "form_nonce": other})
    assert response.status_code == 400
    assert measurements(app) == before
    assert fill(patient_client, address, answers(NO_RISK))[0] == 200


def test_item_9_positive_shows_the_crisis_line_and_alerts_the_clinic(
    app: FastAPI, client: TestClient, patient_client: TestClient, address: str
) -> None:
    row = client.get("/patients").text
    assert "row-risk" not in row  # EX01 has no suicide-risk signal yet
    status, text = fill(patient_client, address, answers(RISK))
    assert status == 200
    crisis = text[text.index('class="sr-crisis"') : text.index("</section>")]
    assert "988" in crisis and 'href="tel:988"' in crisis
    assert "emergency department" in crisis
    assert "Your clinic has been told" in text
    patients = client.get("/patients").text
    start = patients.index("<tr", patients.index("<tbody"))
    ex01 = patients[start : patients.index("</tr>", start)]
    assert "EX01" in ex01 and "row-risk" in ex01 and "Suicide risk" in ex01
    alerts = client.get("/patients/EX01/alerts").text
    assert "Suicide-risk signal" in alerts
    assert f"PHQ-9 item 9 (suicidal thoughts) answered 2 on {TODAY.isoformat()}" in alerts


def test_the_patient_pages_carry_the_security_headers_and_no_inline_script_or_style(
    patient_client: TestClient, address: str
) -> None:
    responses = [
        patient_client.get(address),
        patient_client.get("/r/not-a-token"),
    ]
    for response in responses:
        assert "script-src 'self'" in response.headers["content-security-policy"]
        assert response.headers["referrer-policy"] == "no-referrer"
        assert response.headers["cache-control"] == "no-store"
        assert "<script" not in response.text
        assert "style=" not in response.text and "<style" not in response.text


def test_a_signed_in_clinicians_cookie_plays_no_part_in_the_patients_form(
    app: FastAPI, client: TestClient, address: str
) -> None:
    # the clinician's own browser: the form still needs its nonce, not the session's CSRF token
    before = measurements(app)
    assert client.post(address, data=answers(NO_RISK)).status_code == 400
    assert measurements(app) == before
    assert fill(client, address, answers(NO_RISK))[0] == 200


# --- the rules behind the pages ----------------------------------------------------------------


def test_a_link_already_used_makes_the_whole_change_fail(
    app: FastAPI, address: str, kb: Knowledge
) -> None:
    before = measurements(app)
    with app.state.sessionmaker() as s:
        link = s.scalars(select(m.SelfReportLink)).one()
        s.execute(update(m.SelfReportLink).values(used_at=datetime.now(UTC)))
        s.commit()

        def add(data: records.HistoryData) -> None:
            data["measurements"].append(
                {"instrument": "PHQ-9", "date": TODAY.isoformat(), "items": NO_RISK}
            )

        with pytest.raises(selfreport.LinkUnavailableError):
            records.change(
                s,
                "EX01",
                add,
                kb,
                TODAY,
                user=links.who(link.id),
                expected_version=None,
                also=selfreport.mark_used(s, link.id, datetime.now(UTC)),
            )
    assert measurements(app) == before


def test_tokens_are_bound_to_the_secret_and_the_link_salt() -> None:
    link_id = links.new_link_id()
    token = links.sign_link("secret-a" * 5, link_id)
    assert links.verify_link("secret-a" * 5, token) == link_id
    assert links.verify_link("secret-b" * 5, token) is None
    assert links.verify_link("secret-a" * 5, token + "x") is None
    assert links.verify_link("secret-a" * 5, "x" * 500) is None
    assert links.verify_link("secret-a" * 5, links.sign_link("secret-a" * 5, "short")) is None


def test_a_form_nonce_matches_only_its_own_link() -> None:
    secret = "s" * 40
    mine, other = links.new_link_id(), links.new_link_id()
    n = links.form_nonce(secret, mine)
    assert links.nonce_matches(secret, n, mine)
    assert not links.nonce_matches(secret, n, other)
    assert not links.nonce_matches("t" * 40, n, mine)
    assert not links.nonce_matches(secret, None, mine)
    assert not links.nonce_matches(secret, links.sign_link(secret, mine), mine)
    assert links.form_nonce(secret, mine) != n  # a fresh one per rendering


def test_a_links_status_is_used_then_revoked_then_expired_then_unused() -> None:
    made = datetime(2024, 6, 1, 12, tzinfo=UTC)
    until = made + timedelta(hours=72)
    status = links.link_status
    assert status(made, until, None, made) is links.LinkStatus.UNUSED
    assert status(made, until, None, until - timedelta(seconds=1)) is links.LinkStatus.UNUSED
    assert status(made, until, None, until) is links.LinkStatus.EXPIRED
    assert status(made, made, None, made) is links.LinkStatus.REVOKED
    assert status(made, until, made, made) is links.LinkStatus.USED
    naive = made.replace(tzinfo=None)  # as SQLite returns it
    assert status(naive, naive + timedelta(hours=1), None, made) is links.LinkStatus.UNUSED


@pytest.mark.parametrize(
    ("contact", "number"),
    [
        ("call, text or chat 988", "988"),
        ("call or text 9-8-8", "988"),
        ("call 116 123 (free, 24 hours)", "116123"),
        ("999 or 112", "999"),
        ("online chat", None),
    ],
)
def test_the_number_to_dial_is_read_from_the_crisis_lines_contact(
    contact: str, number: str | None
) -> None:
    assert links.dial_number(contact) == number


def test_qids_questions_of_one_domain_need_only_one_answer(kb: Knowledge) -> None:
    qids = kb.instruments["qids_sr16"]
    full = {f"item_{n}": "1" for n in range(1, 17)}
    _, errors = selfreport_form.parse_answers(qids, {**full, "item_7": "", "item_9": ""})
    assert errors == {}
    blank_domain = {f"item_{n}": "" for n in (6, 7, 8, 9)}
    _, errors = selfreport_form.parse_answers(qids, {**full, **blank_domain})
    assert errors == {"item_6": "Please answer at least one of questions 6 to 9."}
    _, errors = selfreport_form.parse_answers(qids, {**full, "item_12": ""})
    assert errors == {"item_12": "Please choose an answer."}


def test_every_phq9_question_must_be_answered_even_where_scoring_would_prorate(
    kb: Knowledge,
) -> None:
    phq9 = kb.instruments["phq9"]
    _, errors = selfreport_form.parse_answers(phq9, {**answers(NO_RISK), "item_4": ""})
    assert errors == {"item_4": "Please choose an answer."}


def test_yes_no_forms_show_no_and_yes_and_unstored_wording_shows_numbers(kb: Knowledge) -> None:
    mdq = selfreport_form.questions(kb.instruments["mdq"])
    assert mdq[0].choices == ((0, "No"), (1, "Yes")) and mdq[0].text is None
    isi = selfreport_form.questions(kb.instruments["isi"])
    assert isi[0].numbers_only and isi[0].text is None
    phq9 = selfreport_form.questions(kb.instruments["phq9"])
    assert phq9[8].text is not None and not phq9[8].numbers_only


def test_without_segno_the_link_page_has_no_qr_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "segno", None)  # import segno -> ImportError
    assert selfreport.qr_svg("http://testserver/r/abc") is None


def test_with_segno_the_link_is_an_inline_svg_qr_code() -> None:
    pytest.importorskip("segno")
    svg = selfreport.qr_svg("http://testserver/r/abc")
    assert svg is not None and svg.startswith("<svg") and "style=" not in svg


def test_a_qids_sr16_left_blank_where_its_form_allows_is_stored_with_those_blanks(
    app: FastAPI, client: TestClient, patient_client: TestClient, db_url: str, kb: Knowledge
) -> None:
    store_examples(db_url, kb, "01")
    csrf = signed_in(client, "clinician")
    path = link_address(client, create_link(client, csrf, instrument="qids_sr16"))
    given = {f"item_{n}": "1" for n in range(1, 17)} | {"item_7": "", "item_9": ""}
    status, text = fill(patient_client, path, given)
    assert status == 200, text
    expected = tuple(None if n in (7, 9) else 1 for n in range(1, 17))
    assert measurements(app)[-1] == ("QIDS-SR16", TODAY, expected)
