"""Keyboard-only use and accessible names: the sign-in form and the patient list work with Tab
and Enter in a sensible order, and every form control on the main pages has a label."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from .conftest import PASSWORD, Web

expect.set_options(timeout=10_000)

FOCUSED = """() => {
  const e = document.activeElement;
  if (!e || e === document.body) return {tag: "body", id: "", name: "", visible: false};
  const r = e.getBoundingClientRect();
  return {
    tag: e.tagName.toLowerCase(),
    id: e.id || "",
    name: (e.getAttribute("aria-label") || e.innerText || e.value || "").trim().slice(0, 60),
    visible: r.width > 0 && r.height > 0 && r.right > 0 && r.bottom > 0,
    outline: getComputedStyle(e).outlineStyle,
  };
}"""

# Controls without an accessible name (label, aria-label, aria-labelledby, title or own text),
# and images without alt text.
UNLABELLED = """() => {
  const text = (s) => (s || "").trim();
  const byIds = (ids) => text(ids).split(/\\s+/).some(
    (id) => id && document.getElementById(id) && text(document.getElementById(id).textContent));
  const named = (el) =>
    (el.labels && Array.from(el.labels).some((l) => text(l.textContent))) ||
    text(el.getAttribute("aria-label")) || byIds(el.getAttribute("aria-labelledby")) ||
    text(el.getAttribute("title")) ||
    (el.tagName === "BUTTON" && text(el.textContent)) ||
    (el.tagName === "INPUT" && ["submit", "button", "reset"].includes(el.type) && text(el.value));
  const controls = document.querySelectorAll(
    "input:not([type=hidden]), select, textarea, button");
  const bad = Array.from(controls).filter((el) => !named(el)).map((el) => el.outerHTML);
  const images = Array.from(document.querySelectorAll("img:not([alt])")).map((el) => el.outerHTML);
  return {controls: controls.length, unlabelled: bad.map((h) => h.slice(0, 160)), images};
}"""


def focused(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = page.evaluate(FOCUSED)
    return result


def tab(page: Page) -> dict[str, Any]:
    page.keyboard.press("Tab")
    return focused(page)


def test_the_sign_in_form_is_used_with_the_keyboard_alone(web: Web) -> None:
    page = web.page(user=None)
    page.goto("/signin")
    assert focused(page)["id"] == "username"  # autofocus: typing starts in the user name
    page.keyboard.type("clinician")
    assert tab(page)["id"] == "password"
    page.keyboard.type(PASSWORD)
    button = tab(page)
    assert (button["tag"], button["name"]) == ("button", "Sign in")
    assert button["outline"] != "none"  # the focus is visible
    web.shot(page, "focus-on-sign-in")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/patients$"))


def test_the_first_tab_stop_is_a_visible_skip_link_past_the_header(web: Web) -> None:
    page = web.page()
    page.goto("/patients")
    skip = tab(page)
    assert (skip["tag"], skip["name"]) == ("a", "Skip to content")
    assert skip["visible"]
    web.shot(page, "skip-link")
    page.keyboard.press("Enter")
    assert focused(page)["id"] == "main"
    after = tab(page)  # the next stop is the page's own first control, not the header
    assert page.evaluate("() => document.getElementById('main').contains(document.activeElement)")
    assert after["name"] not in ("Patients", "Sign out"), after


def test_the_patient_list_is_searched_and_a_patient_opened_with_the_keyboard(web: Web) -> None:
    page = web.page()
    page.goto("/patients")
    page.evaluate("() => document.activeElement.blur()")
    stops = [tab(page) for _ in range(14)]
    names = [s["id"] or s["name"] for s in stops]
    assert names[0] == "Skip to content"
    assert "q" in names and "show" in names, names
    # each row: the patient's name (FAMILY, Given), then the clinic id, both link to the page
    first_patient = next(i for i, s in enumerate(stops) if re.fullmatch(r"[A-Z]+, \w+", s["name"]))
    # header, then the search box and the filter, then the rows
    assert names.index("Sign out") < names.index("q") < names.index("show") < first_patient
    assert all(s["visible"] for s in stops[1:]), stops

    page.locator("#q").focus()
    page.keyboard.type("EX01")
    expect(page.get_by_text("1 patient matching “EX01”")).to_be_visible()
    assert tab(page)["id"] == "show"
    link = tab(page)
    assert link["tag"] == "a" and re.fullmatch(r"[A-Z]+, \w+", link["name"]), link
    same_row = tab(page)
    assert (same_row["tag"], same_row["name"]) == ("a", "EX01")
    web.shot(page, "focus-on-patient")
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/patients/EX01$"))
    expect(page.get_by_role("heading", level=1)).to_contain_text("EX01")


MAIN_PAGES = [
    pytest.param(None, "/signin", id="signin"),
    pytest.param("clinician", "/patients", id="patient-list"),
    pytest.param("clinician", "/patients/EX10", id="patient-page"),
    pytest.param("clinician", "/patients/new", id="new-patient"),
    pytest.param("clinician", "/patients/EX02/treatments/new", id="add-treatment"),
    pytest.param("clinician", "/patients/EX02/treatments/0/edit", id="edit-treatment"),
    pytest.param("clinician", "/patients/EX02/measurements/new", id="add-measure"),
    pytest.param("clinician", "/patients/EX02/labs/new", id="add-lab"),
    pytest.param("clinician", "/patients/EX02/pgx/new", id="add-pgx"),
    pytest.param("clinician", "/patients/EX02/selfreport/new", id="selfreport-link"),
    pytest.param("admin", "/admin/audit", id="audit-log"),
]


@pytest.mark.parametrize(("user", "path"), MAIN_PAGES)
def test_every_form_control_on_the_main_pages_has_an_accessible_name(
    web: Web, user: str | None, path: str
) -> None:
    page = web.page(user=user)
    response = page.goto(path)
    assert response is not None and response.status == 200, path
    web.shot(page, "page", full_page=True)
    found = page.evaluate(UNLABELLED)
    assert found["unlabelled"] == [], found["unlabelled"]
    assert found["images"] == [], found["images"]
    assert found["controls"] > 0  # the check looked at a real page
