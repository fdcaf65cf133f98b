"""The dashboard on a 390 px phone: no page scrolls sideways, and the feed link copies."""

from __future__ import annotations

from tests.e2e.conftest import LiveServer, sign_in

PHONE = {"width": 390, "height": 844}
# How wide the page scrolls, and the first elements reaching past the viewport's right edge.
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const past = [...document.querySelectorAll("body *")]
    .filter((el) => el.getBoundingClientRect().right > width + 1)
    .map((el) => el.tagName.toLowerCase() + (el.id ? "#" + el.id : ""));
  return {scroll: document.documentElement.scrollWidth, width, past: past.slice(0, 5)};
}"""


def _no_sideways_scroll(page, path: str) -> None:  # type: ignore[no-untyped-def]
    page.goto(path)
    found = page.evaluate(OVERFLOW)
    assert found["scroll"] <= found["width"] and not found["past"], (path, found)


def test_main_pages_fit_a_phone_and_the_feed_link_copies(page, live_server: LiveServer) -> None:  # type: ignore[no-untyped-def]
    from playwright.sync_api import expect

    page.set_viewport_size(PHONE)
    sign_in(page, "coordinator@carematix.local")
    patient = live_server.ids["patient"]
    for path in (
        "/",
        "/appointments/",
        "/appointments/new",
        "/patients/",
        f"/patients/{patient}",
        f"/patients/{patient}/edit",
        "/nurses/",
        "/calls/",
        "/notifications/",
        "/callbacks/",
    ):
        _no_sideways_scroll(page, path)
    expect(page.locator("nav[aria-label=Main] [aria-current=page]")).to_have_text("Callbacks")
    page.click("form[action='/logout'] button")

    sign_in(page, "alice.wilson@carematix.local")
    for path in ("/my-schedule", "/appointments/", "/patients/"):
        _no_sideways_scroll(page, path)
    page.goto("/my-schedule")
    page.context.grant_permissions(
        ["clipboard-read", "clipboard-write"], origin=live_server.base_url
    )
    page.click("#calendar-link button[type=submit]")
    link = page.locator("#calendar-feed-url")
    expect(link).to_be_visible()
    page.click("[data-copy=calendar-feed-url]")
    expect(page.locator("#calendar-feed-copied")).to_have_text("Copied.")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert copied == link.input_value() and "/calendar/" in copied and copied.endswith(".ics")
    _no_sideways_scroll(page, "/my-schedule")


def test_the_header_stays_one_line_on_a_laptop_with_the_longest_menu(  # type: ignore[no-untyped-def]
    page, live_server: LiveServer
) -> None:
    """The admin's menu is the longest, the coordinator's address the longest of the demo's;
    on a 1280 px screen neither may push pages down."""
    page.set_viewport_size({"width": 1280, "height": 900})
    for email in ("admin@carematix.local", "coordinator@carematix.local"):
        sign_in(page, email)
        # Centres, not tops: the menu and the account links differ in size but share one row.
        centres = page.evaluate(
            """() => [...document.querySelectorAll("header.top nav a, header.top .who > *")]
                  .map((el) => el.getBoundingClientRect())
                  .map((box) => (box.top + box.bottom) / 2)"""
        )
        assert len(centres) > 10 and max(centres) - min(centres) < 8, (email, centres)
        page.click("form[action='/logout'] button")
