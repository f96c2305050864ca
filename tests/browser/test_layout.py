"""Layouts other than the desktop: the patient page on a tablet does not scroll sideways."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from .conftest import TABLET, Web

expect.set_options(timeout=10_000)

PAGE_WIDTHS = """() => ({
  viewport: document.documentElement.clientWidth,
  document: document.documentElement.scrollWidth,
  body: document.body.scrollWidth,
})"""


def assert_no_sideways_scrolling(page: Page) -> None:
    widths = page.evaluate(PAGE_WIDTHS)
    assert widths["document"] <= widths["viewport"], widths
    assert widths["body"] <= widths["viewport"], widths


def test_the_patient_page_fits_a_tablet_without_scrolling_sideways(web: Web) -> None:
    page = web.page(viewport=TABLET)
    page.goto("/patients/EX10")
    expect(page.locator(".alert-risk")).to_be_visible()
    expect(page.locator("img.chart")).to_have_js_property("complete", True)
    assert_no_sideways_scrolling(page)
    web.shot(page, "top")
    page.get_by_role("heading", name="Medication trials").scroll_into_view_if_needed()
    web.shot(page, "trials")
    web.shot(page, "full", full_page=True)


def test_the_patient_list_fits_a_tablet_without_scrolling_sideways(web: Web) -> None:
    page = web.page(viewport=TABLET)
    page.goto("/patients")
    expect(page.get_by_role("link", name="EX10", exact=True)).to_be_visible()
    assert_no_sideways_scrolling(page)
    web.shot(page, "list")
