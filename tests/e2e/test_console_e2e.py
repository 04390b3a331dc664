"""
The web console in a real browser: Debian's chromium driven by Playwright
(`executable_path`; Playwright's own browser download is never used) against
a real `pushgw serve` and the real mock providers.

What an operator does, through the pages only (the test harness plays the
outside world: the mocks' devices and credentials, an APNs outage): sign in;
create an application with the five-step helper (a bad key first, refused
inline); register endpoints; search them; send a test push and watch it reach
"delivered"; push to an unregistered device and see the endpoint disabled and
the failure listed; replay a dead letter once the provider is back; a
publish-only key gets "not allowed". Every page is checked for labelled
controls and working references, and screenshotted: the files go to
$PUSHGW_TEST_ARTIFACTS/console/ (else the test's tmp_path).

Without chromium or playwright the tests skip, except under CI=true, where
they fail (.ci/run installs chromium; the test extras install playwright).
"""

from __future__ import annotations

import datetime
import os
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.e2e.conftest import start_mocks
from tests.e2e.fleet import wait_until
from tests.e2e.harness import (
    PUBLISH_API_KEY,
    Mocks,
    Server,
    free_port,
    start_server,
)
from tests.tools import required_tool

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

if os.environ.get("CI") != "true":
    pytest.importorskip("playwright", reason="playwright is not installed")
from playwright.sync_api import Browser, Page, expect, sync_playwright  # noqa: E402

WAIT_MS = 30_000  # for what waits on a delivery (the console polls every 3 s)
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    """Debian's chromium; a laptop without it skips, CI must have it."""
    return required_tool(
        "chromium", "chromium", found=os.environ.get("PUSHGW_CHROMIUM")
    )


class Shots:
    """Numbered full-page screenshots in one directory (the test artifacts)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)
        self.count = 0

    def take(self, page: Page, name: str) -> Path:
        self.count += 1
        path = self.directory / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(name="shots")
def _shots(request: pytest.FixtureRequest, tmp_path: Path) -> Shots:
    root = os.environ.get("PUSHGW_TEST_ARTIFACTS")
    base = Path(root) / "console" if root else tmp_path / "screenshots"
    return Shots(base / request.node.name)


@pytest.fixture(name="browser")
def _browser() -> Iterator[Browser]:
    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable)
        yield browser
        browser.close()


@pytest.fixture(name="console_server")
def _console_server(tmp_path: Path) -> Iterator[tuple[Server, Mocks]]:
    mocks = start_mocks(tmp_path)
    server = start_server(
        tmp_path,
        mocks,
        delivery={"app_backoff_s": 1.0},
        # The console's HTTP subscription goes to a loopback port no one serves.
        extra={"http_subscriptions": {"allow_private_urls": True}},
    )
    yield server, mocks
    server.stop()
    mocks.stop()


class Console:
    """One browser tab on the console, failing on any script error."""

    def __init__(self, browser: Browser, server: Server, viewport: dict[str, int]):
        self.server = server
        self.page = browser.new_page(viewport=viewport)  # type: ignore[arg-type]
        self.errors: list[str] = []
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on("console", self._console_message)

    def _console_message(self, message: Any) -> None:
        # Chromium logs every 4xx answer; the console shows those itself.
        if message.type == "error" and "Failed to load resource" not in message.text:
            self.errors.append(message.text)

    def open(self, hash_: str = "") -> None:
        self.page.goto(f"{self.server.url}/console/{hash_}")

    def sign_in(self, key: str) -> None:
        self.open()
        self.page.get_by_label("API key").fill(key)
        self.page.get_by_role("button", name="Sign in").click()

    def go(self, section: str) -> None:
        self.page.get_by_role("navigation", name="Console sections").get_by_role(
            "link", name=section
        ).click()

    def heading(self, text: str) -> None:
        expect(self.page.get_by_role("heading", level=1)).to_have_text(re.compile(text))

    def check_page(self) -> None:
        """Every control has a label, every reference resolves, one h1, no
        clickable non-buttons, no horizontal overflow of the page."""
        problems = self.page.evaluate(ACCESSIBILITY_PROBE)
        assert [] == problems, problems
        assert [] == self.errors


# Run in the page: what a screen-reader or keyboard user would trip over.
ACCESSIBILITY_PROBE = """() => {
  const problems = [];
  const shown = (el) => !el.closest("[hidden], dialog:not([open])");
  for (const el of document.querySelectorAll("input, select, textarea")) {
    if (!shown(el) || el.type === "hidden") continue;
    const named = el.labels?.length || el.getAttribute("aria-label")
      || el.getAttribute("aria-labelledby");
    if (!named) problems.push(`unlabelled ${el.tagName} ${el.name}`);
  }
  for (const el of document.querySelectorAll("button, a[href], summary")) {
    if (!shown(el)) continue;
    if (!el.textContent.trim() && !el.getAttribute("aria-label")) {
      problems.push(`unnamed ${el.tagName}`);
    }
  }
  // Focusable non-controls: only main (a skip target) and labelled scroll regions.
  for (const el of document.querySelectorAll("[onclick], div[tabindex], span[tabindex]")) {
    const region = el.getAttribute("role") === "region" && el.getAttribute("aria-label");
    if (el.id !== "main" && !region) problems.push(`clickable ${el.tagName} is not a button`);
  }
  for (const name of ["aria-describedby", "aria-labelledby", "for", "list"]) {
    for (const el of document.querySelectorAll(`[${name}]`)) {
      for (const id of el.getAttribute(name).split(/\\s+/).filter(Boolean)) {
        if (!document.getElementById(id)) problems.push(`${name}=${id} names nothing`);
      }
    }
  }
  const ids = [...document.querySelectorAll("[id]")].map((el) => el.id);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (twice.length) problems.push(`duplicate ids ${twice}`);
  if (document.querySelectorAll("main h1").length !== 1) problems.push("not one h1");
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push(`page scrolls sideways: ${document.documentElement.scrollWidth}px`);
  }
  return problems;
}"""


def short_lived_certificate(days: int) -> dict[str, str]:
    """APNs certificate credentials that expire in `days` (self-signed: the
    daemon checks PEM, key match and dates offline, not the issuer)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "Apple Push Services: com.example")]
    )
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(key, hashes.SHA256())
    )
    return {
        "PlatformPrincipal": cert.public_bytes(serialization.Encoding.PEM).decode(),
        "PlatformCredential": key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    }


def eventually(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("not reached in time")
        time.sleep(0.2)


def test_console_operator_flow(
    browser: Browser, console_server: tuple[Server, Mocks], shots: Shots
) -> None:
    server, mocks = console_server
    console = Console(browser, server, DESKTOP)
    page = console.page

    # -- sign in: the key goes to session storage, the overview comes up -------
    console.open()
    console.heading("Sign in")
    shots.take(page, "sign-in")
    page.get_by_label("API key").fill("not-a-key")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("The daemon does not know this key (401).")).to_be_visible()
    expect(page.get_by_label("API key")).to_have_attribute("aria-invalid", "true")
    console.sign_in(server.api_key)
    console.heading("Overview")
    assert server.api_key == page.evaluate(
        "sessionStorage.getItem('pushgw.console.key')"
    )
    expect(page.get_by_text("No deliveries in the last hour.")).to_be_visible()
    console.check_page()

    # -- the five-step helper: APNs token credentials from the mock --------------
    credentials = mocks.credentials("APNS")
    console.go("Applications")
    console.heading("Platform applications")
    page.get_by_role("link", name="Create application").click()
    console.heading("Create a platform application")
    expect(page.locator('[aria-current="step"]')).to_contain_text("Platform")
    page.get_by_role("button", name="Next").click()  # nothing chosen
    expect(page.get_by_text("Choose the push service")).to_be_visible()
    page.get_by_label("Apple Push Notification service (APNs), production").check()
    console.check_page()
    shots.take(page, "helper-1-platform")
    page.get_by_role("button", name="Next").click()
    page.get_by_label("Application name").fill("bad name!")
    page.get_by_label("Application name").press("Enter")  # implicit submission
    expect(page.get_by_text("Use only letters, digits")).to_be_visible()
    page.get_by_label("Application name").fill("console-app")
    page.get_by_label("Application name").press("Enter")
    expect(page.get_by_role("heading", name="Step 3 of 5: Credentials")).to_be_focused()
    # A key that is not a .p8 key: the daemon refuses it at the last step.
    page.get_by_label("Signing key (.p8)", exact=True).fill(
        "-----BEGIN PRIVATE KEY-----\nnope"
    )
    page.get_by_label("Key ID").fill(credentials["PlatformPrincipal"])
    page.get_by_label("Team ID").fill(credentials["ApplePlatformTeamID"])
    page.get_by_label("Bundle ID").fill(credentials["ApplePlatformBundleID"])
    console.check_page()
    shots.take(page, "helper-3-credentials")
    page.get_by_role("button", name="Next").click()
    expect(
        page.get_by_role("heading", name="Step 4 of 5: Events and options")
    ).to_be_visible()
    page.get_by_label("Success sample rate (%)").fill("100")
    console.check_page()
    page.get_by_role("button", name="Next").click()
    expect(page.get_by_role("heading", name="Step 5 of 5: Review")).to_be_visible()
    expect(page.get_by_text("Provided (")).to_be_visible()  # the key is not shown
    console.check_page()
    shots.take(page, "helper-5-review")
    page.get_by_role("button", name="Create application").click()
    # Back at the credentials step, the API's reason at the key's field.
    expect(page.get_by_role("heading", name="Step 3 of 5: Credentials")).to_be_visible()
    key_field = page.get_by_label("Signing key (.p8)", exact=True)
    expect(key_field).to_have_attribute("aria-invalid", "true")
    expect(key_field).to_be_focused()
    expect(page.get_by_role("alert")).to_contain_text("PlatformCredential")
    console.check_page()
    shots.take(page, "helper-refused-inline")
    key_field.fill(credentials["PlatformCredential"])
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Next").click()
    page.get_by_role("button", name="Create application").click()
    console.heading("console-app")
    expect(page.get_by_text("AuthenticationMethod")).to_be_visible()
    console.check_page()
    shots.take(page, "application")
    app_arn = server.json("GET", "/v1/platform-applications").json()[
        "platformApplications"
    ][0]["platformApplicationArn"]
    assert app_arn.endswith(":app/APNS/console-app")

    # -- register endpoints (a good device, a gone one, one for the outage) -------
    good = mocks.device("APNS")["token"]
    gone = mocks.device("APNS", state="unregistered")["token"]
    later = mocks.device("APNS")["token"]
    console.go("Endpoints")
    console.heading("Endpoints")
    page.get_by_text("Register an endpoint").click()
    for token, data in ((good, "alice"), (gone, "broken-device"), (later, "carol")):
        page.get_by_label("Device token").fill(token)
        page.get_by_label("CustomUserData (optional)").fill(data)
        page.get_by_role("button", name="Register endpoint").click()
        expect(page.get_by_role("cell", name=data)).to_be_visible()
    expect(page.locator("tbody tr")).to_have_count(3)
    console.check_page()
    # Search by CustomUserData, then by token prefix (the new JSON endpoint).
    page.get_by_label("CustomUserData", exact=True).fill("broken-device")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_role("cell", name="broken-device")).to_be_visible()
    page.get_by_label("CustomUserData", exact=True).fill("")
    page.get_by_label("Token prefix").fill(good[:12])
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    expect(page.get_by_role("cell", name="alice")).to_be_visible()
    assert "tokenPrefix=" in page.evaluate("location.hash")
    shots.take(page, "endpoints-search")

    # -- a test push, followed to "delivered" ------------------------------------
    page.locator("tbody tr").first.get_by_role("link").click()
    console.heading("Endpoint ")
    status = page.locator(".push-status")
    expect(status).to_have_attribute("aria-live", "polite")
    page.get_by_role("button", name="Send test push").click()
    outcome = status.locator("[data-outcome]")
    expect(outcome).to_have_attribute("data-outcome", "delivered", timeout=WAIT_MS)
    expect(outcome).to_have_text("Delivered")
    assert [m["payload"] for m in mocks.received(good)]
    console.check_page()
    shots.take(page, "endpoint-test-push-delivered")
    status.get_by_role("link").click()
    console.heading("Message")
    expect(page.locator("[data-outcome]")).to_have_text("Delivered")
    expect(page.get_by_role("cell", name="APNS")).to_be_visible()
    console.check_page()
    shots.take(page, "message")

    # -- an unregistered device: the endpoint is disabled, the failure listed -----
    console.go("Endpoints")
    page.get_by_label("CustomUserData", exact=True).fill("broken-device")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("tbody tr")).to_have_count(1)
    page.locator("tbody tr").first.get_by_role("link").click()
    console.heading("Endpoint ")
    expect(page.locator(".details").get_by_text("Enabled", exact=True)).to_be_visible()
    page.get_by_role("button", name="Send test push").click()
    outcome = page.locator(".push-status [data-outcome]")
    expect(outcome).to_have_attribute("data-outcome", "failed", timeout=WAIT_MS)
    expect(outcome).to_contain_text("InvalidPlatformToken")
    # Live: the page shows the endpoint disabled without a reload.
    expect(page.locator(".details").get_by_text("Disabled", exact=True)).to_be_visible(
        timeout=WAIT_MS
    )
    failed_rows = page.locator("tbody tr").filter(has_text="InvalidPlatformToken")
    expect(failed_rows).to_have_count(1, timeout=WAIT_MS)
    shots.take(page, "endpoint-disabled")
    # Enable and disable it again from the list: the row's state follows.
    console.go("Endpoints")
    page.get_by_label("CustomUserData", exact=True).fill("broken-device")
    page.get_by_role("button", name="Search").click()
    broken = page.locator("tbody tr").filter(has_text="broken-device")
    expect(broken.get_by_text("Disabled", exact=True)).to_be_visible()
    broken.get_by_role("button", name=re.compile("^Enable endpoint")).click()
    expect(broken.get_by_text("Enabled", exact=True)).to_be_visible()
    (enabled,) = server.json(
        "GET",
        f"/v1/platform-applications/{app_arn}/endpoints/search"
        "?customUserData=broken-device",
    ).json()["endpoints"]
    assert "true" == enabled["attributes"]["Enabled"]
    broken.get_by_role("button", name=re.compile("^Disable endpoint")).click()
    expect(broken.get_by_text("Disabled", exact=True)).to_be_visible()
    console.go("Failures")
    console.heading("Failures")
    expect(failed_rows).to_have_count(1)
    console.check_page()

    # -- an APNs outage: a push with a 2 s TTL expires; replayed once APNs is back --
    later_arn = next(
        e["endpointArn"]
        for e in server.json(
            "GET", f"/v1/platform-applications/{app_arn}/endpoints/search"
        ).json()["endpoints"]
        if e["attributes"]["Token"] == later
    )
    mocks.faults(
        "APNS", [{"kind": "unavailable", "token_prefix": later, "retry_after": 0.2}]
    )
    sent = server.json(
        "POST",
        "/v1/publish",
        {
            "targetArn": later_arn,
            "message": "sent during the outage",
            "messageAttributes": {
                "AWS.SNS.MOBILE.APNS.TTL": {"dataType": "String", "stringValue": "2"}
            },
        },
    )
    assert 200 == sent.status_code, sent.text
    outage_id = sent.json()["messageId"]
    console.open(f"#/messages/{outage_id}")
    console.heading("Message")
    message_outcome = page.locator(".push-status [data-outcome]")
    expect(message_outcome).to_have_attribute("data-outcome", "pending")
    # Live: the page turns to Expired when the TTL runs out, without a reload.
    expect(message_outcome).to_have_attribute("data-outcome", "failed", timeout=WAIT_MS)
    expect(message_outcome).to_contain_text("Expired: NotificationTTLExpired")
    console.go("Failures")
    page.get_by_label("Reason").select_option("NotificationTTLExpired")
    page.get_by_role("button", name="Apply filter").click()
    row = page.locator("tbody tr").filter(has_text="NotificationTTLExpired")
    expect(row).to_have_count(1, timeout=WAIT_MS)  # the list refreshes itself
    expect(page.locator("tbody tr")).to_have_count(1)
    assert [] == mocks.received(later)
    mocks.faults("APNS", [])  # APNs is back
    shots.take(page, "failures")
    row.get_by_role("checkbox").check()
    replay = page.get_by_role("button", name="Replay selected (1)")
    replay.click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_role("button", name="Cancel")).to_be_focused()
    shots.take(page, "replay-confirmation")
    page.keyboard.press("Escape")  # changed my mind: nothing is replayed
    expect(dialog).to_be_hidden()
    expect(replay).to_be_focused()
    replay.click()
    page.keyboard.press("Tab")
    expect(dialog.get_by_role("button", name="Replay")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("main").get_by_text("Replayed 1 dead letter.")).to_be_visible()
    received = eventually(lambda: mocks.received(later))
    assert 1 == len(received)
    console.open(f"#/messages/{outage_id}")
    expect(message_outcome).to_contain_text("1 delivered, 1 expired", timeout=WAIT_MS)
    console.go("Failures")
    page.get_by_label("Show replayed ones too").check()
    page.get_by_role("button", name="Apply filter").click()
    expect(row.get_by_text("Replayed")).to_be_visible()
    expect(row.get_by_role("checkbox")).to_be_disabled()
    console.check_page()
    shots.take(page, "failures-replayed")

    # -- the overview now has traffic -------------------------------------------
    console.go("Overview")
    traffic = page.get_by_role("row").filter(
        has=page.get_by_role("rowheader", name="APNS", exact=True)
    )
    # The test push and the replay delivered, one gone device, one expiry.
    expect(traffic.get_by_role("cell")).to_have_text(
        ["2", "1", "1", "50.0 %", ""], timeout=WAIT_MS
    )
    chart = traffic.get_by_role("img")
    expect(chart).to_have_attribute(
        "aria-label", re.compile(r"^APNS per 5 minutes, oldest first: ")
    )

    def charted() -> tuple[int, int]:
        """Delivered and failed summed over the chart's buckets (the run may
        straddle a 5-minute boundary)."""
        pairs = re.findall(
            r"(\d+) delivered, (\d+) failed", chart.get_attribute("aria-label") or ""
        )
        return sum(int(d) for d, _ in pairs), sum(int(f) for _, f in pairs)

    wait_until(lambda: charted() == (2, 2), timeout=WAIT_MS / 1000, what="the chart")
    console.check_page()
    shots.take(page, "overview")

    # -- topics and an HTTP subscription pending confirmation --------------------
    console.go("Topics")
    console.heading("Topics and subscriptions")
    page.get_by_text("Create a topic").click()
    page.get_by_label("Topic name").fill("news")
    page.get_by_role("button", name="Create topic").click()
    console.heading("Topic news")
    page.locator("summary", has_text="Subscribe").click()
    page.get_by_label("Protocol").select_option("http")
    page.get_by_label("Endpoint ARN or URL").fill(f"http://127.0.0.1:{free_port()}/sns")
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_text("Pending confirmation").first).to_be_visible()
    page.get_by_label("Protocol").select_option("application")
    page.get_by_label("Endpoint ARN or URL").fill(later_arn)
    page.get_by_role("button", name="Subscribe").click()
    expect(page.get_by_role("button", name=re.compile("^Unsubscribe"))).to_be_visible()
    console.check_page()
    shots.take(page, "topic")
    console.go("Topics")
    expect(page.get_by_role("cell", name="http", exact=True)).to_be_visible()
    console.check_page()
    shots.take(page, "topics")

    # -- an application disabled shows on the overview; enabled again -----------
    def switch_app(now: str, then: str) -> None:
        console.go("Applications")
        page.get_by_role("link", name=re.compile("^console-app")).first.click()
        page.get_by_role("button", name=f"{now} application").click()
        expect(page.get_by_role("button", name=f"{then} application")).to_be_visible()

    switch_app("Disable", "Enable")
    console.go("Overview")
    disabled = page.get_by_role("table", name="Disabled applications")
    expect(disabled.get_by_text("Disabled", exact=True)).to_be_visible(timeout=WAIT_MS)
    shots.take(page, "overview-app-disabled")
    switch_app("Enable", "Disable")

    # -- "Replay all matching" with no filter: every dead letter not replayed ----
    console.go("Failures")
    page.get_by_label("Reason").select_option("")
    page.get_by_label("Show replayed ones too").uncheck()
    page.get_by_role("button", name="Apply filter").click()
    expect(page.locator("tbody tr")).to_have_count(1)  # the gone device's
    page.get_by_role("button", name="Replay all matching").click()
    page.get_by_role("dialog").get_by_role("button", name="Replay all").click()
    expect(page.locator("main").get_by_text("Replayed 1 dead letter.")).to_be_visible()
    left = server.json("GET", "/v1/deliveries?deadLetter=true&replayed=false").json()[
        "deliveries"
    ]
    assert all(d["messageId"] != sent.json()["messageId"] for d in left)

    # A link to something that is gone says so.
    missing = quote("arn:aws:sns:us-east-1:123456789012:gone", safe="")
    console.open(f"#/topics/{missing}")
    console.heading("Not found")
    expect(page.get_by_role("alert")).to_contain_text("NotFound")
    expect(page.get_by_role("button", name="Try again")).to_be_visible()
    assert [] == console.errors


def test_publish_only_key_is_not_allowed(
    browser: Browser, console_server: tuple[Server, Mocks], shots: Shots
) -> None:
    """A valid key without admin scope gets the "not allowed" page, keeps
    nothing in session storage, and may try another key."""
    server, _ = console_server
    console = Console(browser, server, DESKTOP)
    page = console.page

    console.sign_in(PUBLISH_API_KEY)

    console.heading("Not allowed")
    expect(page.get_by_role("alert")).to_contain_text("403")
    expect(page.get_by_role("navigation", name="Console sections")).to_be_hidden()
    assert None is page.evaluate("sessionStorage.getItem('pushgw.console.key')")
    console.check_page()
    shots.take(page, "not-allowed")
    page.get_by_role("button", name="Use another key").click()
    console.heading("Sign in")
    page.get_by_label("API key").fill(server.api_key)
    page.get_by_role("button", name="Sign in").click()
    console.heading("Overview")


def test_phone_layout_keyboard_and_paging(
    browser: Browser, console_server: tuple[Server, Mocks], shots: Shots
) -> None:
    """At 390 px every page fits (no sideways scroll), the sections are one
    row of links; the skip link and focus order work from the keyboard; an
    app with more endpoints than a page is paged, never loaded whole."""
    server, mocks = console_server
    made = server.json(
        "POST",
        "/v1/platform-applications",
        {"name": "big", "platform": "GCM", "attributes": mocks.credentials("GCM")},
    )
    app_arn = made.json()["platformApplicationArn"]
    for n in range(60):
        server.json(
            "POST",
            f"/v1/platform-applications/{app_arn}/endpoints",
            {"token": f"device-{n:03d}", "customUserData": f"user-{n % 7}"},
        )
    made = server.json(
        "POST",
        "/v1/platform-applications",
        {
            "name": "expiring",
            "platform": "APNS",
            "attributes": short_lived_certificate(10),
        },
    )
    assert 201 == made.status_code, made.text
    console = Console(browser, server, PHONE)
    page = console.page
    console.sign_in(server.api_key)
    console.heading("Overview")
    # The certificate that runs out in 10 days is flagged.
    soon = page.get_by_role("region", name="Credentials expiring soon")
    expect(soon.get_by_role("rowheader")).to_have_text("expiring")
    expect(soon.get_by_role("cell").last).to_have_text(re.compile(r"^9 days$"))

    # Keyboard: on a fresh load (signed in: the key is in session storage) the
    # first Tab reaches the skip link, and Enter moves to the page.
    page.reload()
    console.heading("Overview")
    expect(page.get_by_text("The queue is empty.")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_be_focused()
    console.check_page()
    shots.take(page, "phone-overview")

    for section, title in [
        ("Applications", "Platform applications"),
        ("Endpoints", "Endpoints"),
        ("Topics", "Topics and subscriptions"),
        ("Messages", "Messages"),
        ("Failures", "Failures"),
    ]:
        console.go(section)
        console.heading(title)
        # A route change moves focus to the new page's heading.
        expect(page.get_by_role("heading", level=1)).to_be_focused()
        if section == "Applications":
            expiring = page.get_by_role("row").filter(has_text="expiring")
            expect(expiring.get_by_role("cell").nth(3)).to_contain_text("9 days left")
        console.check_page()
        shots.take(page, f"phone-{section.lower()}")

    console.go("Endpoints")
    pages: list[list[str]] = []
    for n in range(1, 4):
        expect(page.locator(".pager .where")).to_have_text(f"Page {n}")
        tokens = page.locator("tbody tr th code").all_inner_texts()
        pages.append(tokens)
        if n < 3:
            page.get_by_role("button", name="Next page").click()
    assert [25, 25, 10] == [len(p) for p in pages]
    assert [f"device-{n:03d}" for n in range(60)] == [t for p in pages for t in p]
    next_button = page.get_by_role("button", name="Next page")
    expect(next_button).to_have_attribute("aria-disabled", "true")
    page.get_by_role("button", name="Previous page").click()
    expect(page.locator(".pager .where")).to_have_text("Page 2")
    expect(page.locator("tbody tr th code").first).to_have_text("device-025")
    assert [] == console.errors
