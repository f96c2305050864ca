"""Interventional courses in the browser: a contraindication overridden with a reason, an
esketamine session deferred for high blood pressure, and a full IV ketamine course whose chart
follows the sessions. Each test plans its own course on its own demo patient."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from .conftest import Web

expect.set_options(timeout=10_000)


def plan_course(page: Page, patient_id: str, protocol: str, weight: str = "") -> None:
    page.goto(f"/patients/{patient_id}")
    page.get_by_role("link", name="Start a course").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Start a course")
    page.locator(f'input[name="protocol_id"][value="{protocol}"]').check()
    page.get_by_label("Start date").fill("2024-06-03")
    if weight:
        page.get_by_role("textbox", name="Weight").fill(weight)
    page.get_by_role("button", name="Plan the course").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Eligibility review")


def complete_review(page: Page) -> None:
    """Acknowledge every caution, record consent, save, start."""
    for box in page.locator('input[name="ack"]').all():
        box.check()
    page.get_by_label("Consent given on").fill("2024-06-01")
    page.get_by_role("button", name="Save the review").click()
    page.get_by_role("button", name="Start the course").click()
    expect(page.get_by_role("heading", level=1)).to_have_text(re.compile(r"^Course C-"))


def fill_vitals(page: Page, systolic: str, diastolic: str) -> None:
    page.get_by_label("Time", exact=True).fill("09:00")
    page.get_by_label("Systolic", exact=True).fill(systolic)
    page.get_by_label("Diastolic", exact=True).fill(diastolic)
    page.get_by_label("Heart rate", exact=True).fill("72")
    page.get_by_label("SpO₂", exact=True).fill("98")


def test_a_contraindicated_course_is_overridden_with_a_written_reason_then_started(
    web: Web,
) -> None:
    page = web.page()
    plan_course(page, "EX14", "esketamine_trd")
    contra = page.locator(".finding.alert-risk").first
    expect(contra).to_contain_text("contraindicated")
    expect(page.locator("#cannot-start")).to_be_visible()
    web.shot(page, "blocked", full_page=True)
    contra.get_by_label(re.compile("written reason")).fill(
        "Aneurysm repaired in 2019; cardiology cleared esketamine after review."
    )
    contra.get_by_role("button", name="Override this contraindication").click()
    expect(page.locator(".override").first).to_contain_text("Overridden by clinician")
    for form in page.locator(".override-form").all():  # any further contraindication
        form.get_by_role("textbox").fill("Reviewed with cardiology: benefit outweighs the risk.")
        form.get_by_role("button").click()
    complete_review(page)
    expect(page.locator(".badge-course-active").first).to_be_visible()
    web.shot(page, "started", full_page=True)


def test_an_esketamine_session_is_deferred_for_high_blood_pressure(web: Web) -> None:
    page = web.page()
    plan_course(page, "EX10", "esketamine_trd")
    for form in page.locator(".override-form").all():
        form.get_by_role("textbox").fill("Reviewed: proceed with monitoring as per protocol.")
        form.get_by_role("button").click()
    complete_review(page)
    page.get_by_role("link", name="Record session 1", exact=True).click()
    fill_vitals(page, "150", "95")
    page.get_by_label("Dose given").fill("56")
    page.get_by_label("Dose time").fill("09:10")
    page.get_by_role("button", name="Record the session").click()
    expect(page.get_by_role("heading", name=re.compile("Session deferred"))).to_be_visible()
    expect(page.locator(".finding-block").first).to_be_visible()
    web.shot(page, "deferred", full_page=True)
    page.get_by_role("link", name="Back to the course").click()
    expect(page.locator("#session-1")).to_contain_text("deferred")


def test_a_full_iv_ketamine_course_is_recorded_and_its_chart_follows(web: Web) -> None:
    page = web.page()
    plan_course(page, "EX12", "ketamine_iv", weight="80")
    for form in page.locator(".override-form").all():
        form.get_by_role("textbox").fill("Reviewed: proceed with monitoring as per protocol.")
        form.get_by_role("button").click()
    complete_review(page)
    chart = page.locator("#course-chart")
    expect(chart).to_have_attribute("data-sessions", "0")
    before = chart.get_attribute("src")
    for n in range(1, 7):
        page.get_by_role("link", name=f"Record session {n}", exact=True).click()
        fill_vitals(page, "124", "78")
        page.get_by_label("Dose time").fill("09:10")
        expect(page.locator("#dose-computed")).to_contain_text("0.5 mg/kg × 80.0 kg = 40.0 mg")
        page.get_by_label("Dose given").fill("40")
        for box in page.locator('#session-form input[type="checkbox"]').all():
            box.check()  # the protocol's pre-checks and discharge criteria
        for row in page.locator("#session-form tbody tr").all():
            minutes = int(row.get_by_label(re.compile("^minutes after dose")).input_value())
            row.get_by_label(re.compile("^at")).fill(
                f"{9 + (10 + minutes) // 60:02d}:{(10 + minutes) % 60:02d}"
            )
            row.get_by_label(re.compile("^systolic")).fill("132")
            row.get_by_label(re.compile("^diastolic")).fill("84")
            row.get_by_label(re.compile("^heart rate")).fill("80")
            row.get_by_label(re.compile("^spo2")).fill("97")
        page.get_by_label("CADSS total").fill("12")
        page.get_by_label("MOAA/S (lowest)").fill("5")
        page.get_by_label("Observed until").fill("11:00")
        page.get_by_label("Transport home").fill("Collected by his sister")
        if n == 1:
            web.shot(page, "session-form", full_page=True)
        page.get_by_role("button", name="Record the session").click()
        expect(page.get_by_role("heading", name=f"Session {n} recorded")).to_be_visible()
        expect(page.locator("#discharge")).to_contain_text("the discharge criteria are met")
        if n == 1:
            web.shot(page, "first-session", full_page=True)
            expect(page.locator("#dose-formula")).to_contain_text("mg/kg")
        page.get_by_role("link", name="Back to the course").click()
        expect(chart).to_have_attribute("data-sessions", str(n))
    assert chart.get_attribute("src") != before
    web.shot(page, "course-done", full_page=True)
