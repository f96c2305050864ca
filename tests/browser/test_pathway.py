"""The clinician's pathway, all in the browser: sign in, record a trial, ask for a self-report,
act on its suicide-risk alert, and send the summary as a PDF.

Each test works on its own demo patient, so the tests do not depend on their order.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from playwright.sync_api import Page, expect

from .conftest import PASSWORD, PHONE, Web, sign_in

expect.set_options(timeout=10_000)

ACKNOWLEDGED = re.compile(r"Acknowledged by clinician on (\d{4}-\d{2}-\d{2} \d{2}:\d{2}) UTC")


def list_row(page: Page, patient_id: str) -> str:
    """The text of a patient's row in the patient list, searched for by its identifier (the
    demo has more patients than one page of the list)."""
    page.goto(f"/patients?q={patient_id}")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=patient_id, exact=True))
    expect(row).to_have_count(1)
    return row.inner_text()


def assert_acknowledged_just_now(text: str) -> None:
    found = ACKNOWLEDGED.search(text)
    assert found, text
    at = datetime.strptime(found.group(1), "%Y-%m-%d %H:%M").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - at) < timedelta(minutes=5), found.group(0)


def test_a_wrong_password_is_refused_on_the_form_and_the_right_one_opens_the_patient_list(
    web: Web,
) -> None:
    web.allow_failed_load("/signin", 401)
    page = web.page(user=None)
    sign_in(page, "clinician", "not-the-password-2026")
    expect(page.get_by_role("alert")).to_have_text("The user name or password is not right.")
    expect(page.get_by_label("User name")).to_have_value("clinician")
    expect(page.get_by_label("Password")).to_have_value("")
    web.shot(page, "wrong-password")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/patients$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Patients")
    expect(page.get_by_text(re.compile(r"^\d+ patients$"))).to_be_visible()
    expect(page.get_by_role("link", name="EX10", exact=True)).to_be_visible()
    expect(page.get_by_text("clinician", exact=True).first).to_be_visible()
    web.shot(page, "patient-list")


def test_an_existing_suicide_risk_alert_is_acknowledged_on_the_patient_page(web: Web) -> None:
    page = web.page()
    before = list_row(page, "EX15")
    assert "Suicide risk" in before
    open_before = int(re.search(r"(\d+) open", before).group(1))  # type: ignore[union-attr]

    page.get_by_role("link", name="EX15", exact=True).click()
    risk = page.locator(".alert-risk")
    expect(risk.get_by_role("heading")).to_have_text(re.compile(r"^Suicide-risk signals?$"))
    expect(risk).to_contain_text("988")  # the crisis line of the default locale
    keys = risk.locator("[data-alert-key]").evaluate_all("els => els.map(e => e.dataset.alertKey)")
    assert keys and all(k.startswith("suicide_risk|") for k in keys), keys
    web.shot(page, "open-alerts")
    for key in keys:
        item = page.locator(f'.alert-risk [data-alert-key="{key}"]')
        item.get_by_role("button", name="Acknowledge").click()
        expect(item).to_contain_text("Acknowledged by clinician")
        expect(item.get_by_role("button", name="Acknowledge")).to_have_count(0)
        assert_acknowledged_just_now(item.inner_text())
    web.shot(page, "acknowledged")

    page.reload()  # it is stored, not only swapped into the page
    for key in keys:
        expect(page.locator(f'[data-alert-key="{key}"]')).to_contain_text("Acknowledged by")
    row = list_row(page, "EX15")
    assert "Suicide risk" not in row
    assert f"{open_before - len(keys)} open" in row


def test_a_second_failed_adequate_trial_added_on_the_form_makes_the_patient_trd(web: Web) -> None:
    web.allow_failed_load("/patients/EX01/treatments/new", 422)  # the refused entry
    page = web.page()
    before = list_row(page, "EX01")
    assert "Not TRD" in before and "1 failed" in before and "Thase–Rush I " in before
    page.get_by_role("link", name="EX01", exact=True).click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^EX01\s+Not TRD$"))

    page.get_by_role("link", name="Add treatment").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Add a treatment")
    page.get_by_label("Drug", exact=False).first.fill("bupropion")
    page.get_by_label("Start").fill("2024-01-22")
    page.get_by_label("Stop").fill("2024-04-29")
    page.get_by_label("Adherence").fill("90")
    page.get_by_label("Dose step 1: from").fill("2024-01-22")
    page.get_by_label("Dose step 1: mg/day").fill("150")
    page.get_by_label("Dose step 2: from").fill("2024-02-05")
    page.get_by_label("Dose step 2: mg/day").fill("three hundred")  # a mistake first
    page.get_by_label("Outcome").select_option("no_response")
    page.get_by_role("button", name="Add treatment").click()

    # refused next to the field, everything typed kept, nothing stored
    dose = page.get_by_label("Dose step 2: mg/day")
    expect(dose).to_have_attribute("aria-invalid", "true")
    error_id = (dose.get_attribute("aria-describedby") or "").split()[-1]
    expect(page.locator(f"#{error_id}")).to_be_visible()
    expect(page.get_by_label("Drug", exact=False).first).to_have_value("bupropion")
    web.shot(page, "refused")
    dose.fill("300")
    page.get_by_role("button", name="Add treatment").click()

    expect(page).to_have_url(re.compile(r"/patients/EX01(#.*)?$"))
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^EX01\s+TRD$"))
    assessment = page.locator("section", has=page.get_by_role("heading", name="Assessment"))
    expect(assessment).to_contain_text("2 failed adequate antidepressant trials (ndri, ssri)")
    expect(assessment).to_contain_text("Thase–Rush staging: Stage II")
    trials = page.locator("section", has=page.get_by_role("heading", name="Medication trials"))
    expect(trials.get_by_role("row", name=re.compile(r"^bupropion"))).to_contain_text("failed")
    web.shot(page, "trd")

    after = list_row(page, "EX01")
    assert "TRD" in after and "Not TRD" not in after, after
    assert "2 failed" in after and "Thase–Rush II" in after, after


# item 9 (thoughts of being better off dead or of hurting oneself): "Several days"
PHQ9_ANSWERS = [
    "More than half the days",
    "More than half the days",
    "Several days",
    "Nearly every day",
    "Several days",
    "More than half the days",
    "Several days",
    "Not at all",
    "Several days",
]


def create_selfreport_link(page: Page, patient_id: str, instrument: str) -> str:
    """Make a self-report link from the patient page; returns the address to give the patient."""
    page.goto(f"/patients/{patient_id}")
    page.get_by_role("link", name="Self-report link").click()
    page.get_by_role("radio", name=re.compile(rf"^{re.escape(instrument)} —")).check()
    page.get_by_role("button", name="Create link").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(f"{instrument} link for {patient_id}")
    url = page.get_by_label("Link", exact=True).input_value()
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/r/\S+", url), url
    return url


def test_a_phq9_sent_from_a_phone_with_item_9_positive_alerts_the_clinician(web: Web) -> None:
    clinician = web.page()
    url = create_selfreport_link(clinician, "EX12", "PHQ-9")
    web.shot(clinician, "link")
    # the clinician keeps the patient page open; its alerts poll every 20 s (a fake clock here)
    clinician.clock.install()
    clinician.goto("/patients/EX12")
    expect(clinician.locator(".alert-risk")).to_have_count(0)

    phone = web.page(user=None, viewport=PHONE)  # the patient: no account, no cookies
    phone.goto(url)
    expect(phone.get_by_role("heading", level=1)).to_have_text("Your questionnaire")
    questions = phone.locator("fieldset.sr-question")
    expect(questions).to_have_count(9)
    web.shot(phone, "questionnaire")
    for n, answer in enumerate(PHQ9_ANSWERS, start=1):
        phone.locator(f"#q{n}").get_by_label(answer, exact=True).check()
    phone.get_by_role("button", name="Send my answers").click()
    crisis = phone.get_by_role("alert")
    expect(crisis).to_contain_text("Please get support now")
    expect(crisis).to_contain_text("988")
    expect(phone.get_by_role("link", name="Call 988")).to_have_attribute("href", "tel:988")
    expect(phone.get_by_role("heading", name="Thank you")).to_be_visible()
    widths = phone.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert widths[0] <= widths[1], widths
    web.shot(phone, "crisis-resources", full_page=True)

    # without a reload: the next poll of the alerts shows the new suicide-risk signal
    clinician.clock.fast_forward("00:21")
    risk = clinician.locator(".alert-risk")
    expect(risk).to_contain_text("PHQ-9 item 9")
    expect(risk).to_contain_text("2024-06-01")
    web.shot(clinician, "alert-arrived")

    patients = web.page()  # the same clinician, the list in another tab
    assert "Suicide risk" in list_row(patients, "EX12")

    keys = risk.locator("[data-alert-key]").evaluate_all("els => els.map(e => e.dataset.alertKey)")
    assert keys
    for key in keys:
        item = clinician.locator(f'.alert-risk [data-alert-key="{key}"]')
        item.get_by_role("button", name="Acknowledge").click()
        expect(item).to_contain_text("Acknowledged by clinician")
        assert_acknowledged_just_now(item.inner_text())
    web.shot(clinician, "acknowledged")
    assert "Suicide risk" not in list_row(patients, "EX12")


def test_the_pdf_summary_downloads_as_a_real_pdf(web: Web) -> None:
    page = web.page()
    page.goto("/patients/EX03")
    with page.expect_download() as download_info:
        page.get_by_role("link", name="PDF", exact=True).click()
    download = download_info.value
    assert download.suggested_filename == "trd-summary-EX03-2024-06-01.pdf"
    path = download.path()
    data = path.read_bytes()
    assert data.startswith(b"%PDF-")
    assert len(data) > 20_000, len(data)
    assert data.rstrip().endswith(b"%%EOF")
