"""The web console in a real headless Chromium against a real mesh: list, submit, a request page that
moves to succeeded without a reload, a failed request's error, cancelling a running request, the
workers page. A screenshot of each
page is kept in test-artifacts/screenshots/."""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import SCREENSHOTS
from tests.e2e.conftest import EXAMPLES, MeshFactory
from tests.e2e.helpers import simple_request, write_script

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]
TOKEN = "browser-console-token"
WAIT_MS = 30_000


def _submit(base: str, xml: bytes) -> str:
    request = urllib.request.Request(f"{base}/valuation", data=xml, method="POST", headers={
        "Content-Type": "application/xml", "Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return str(json.loads(response.read())["requestId"])


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda error: errors.append(str(error)))
    try:
        yield opened
    finally:
        context.close()
    assert not errors, errors  # no uncaught script error on any page


def _sign_in(page: Any, base: str) -> None:
    page.goto(f"{base}/console")
    page.get_by_test_id("token-input").fill(TOKEN)
    page.get_by_test_id("token-form").locator("button").click()
    page.get_by_test_id("request-list").wait_for(timeout=WAIT_MS)


def test_submit_from_the_list_and_watch_the_request_succeed_without_a_reload(
        start_mesh: MeshFactory, tmp_path: Path, page: Any) -> None:
    slow = write_script(tmp_path, "slow.sh", f'sleep 1\nexec {sys.executable} {EXAMPLES / "price.py"}\n')
    mesh = start_mesh(VNAS_SCRIPT=str(slow), GATEWAY_API_TOKENS=TOKEN, GATEWAY_SSE_PROGRESS_MS="200")
    earlier = _submit(mesh.http, simple_request(groups=1, tasks=1))
    _sign_in(page, mesh.http)
    page.locator(f'[data-request-id="{earlier}"]').wait_for(timeout=WAIT_MS)
    page.screenshot(path=str(SCREENSHOTS / "requests.png"), full_page=True)
    page.get_by_test_id("submit-xml").fill(simple_request(groups=2, tasks=3).decode())
    page.get_by_test_id("submit-button").click()
    page.wait_for_url("**/console#/requests/*", timeout=WAIT_MS)
    status = page.get_by_test_id("detail-status")
    status.wait_for(timeout=WAIT_MS)
    assert status.inner_text() in ("received", "started")
    navigations: list[str] = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url))
    expect(status).to_have_text("succeeded", timeout=WAIT_MS)
    assert all("#/requests/" in url for url in navigations), navigations  # no reload, no new page
    page.get_by_test_id("response-xml").wait_for(timeout=WAIT_MS)
    assert "<vnml" in page.get_by_test_id("response-xml").inner_text()
    groups = page.get_by_test_id("group")
    assert groups.count() == 2
    assert "3 / 3 tasks" in groups.nth(1).get_by_test_id("group-tasks").inner_text()
    assert page.get_by_test_id("events").locator("li").count() >= 5
    assert page.get_by_test_id("cancel").count() == 0  # a finished request cannot be cancelled
    page.screenshot(path=str(SCREENSHOTS / "request-succeeded.png"), full_page=True)
    page.get_by_test_id("nav-requests").click()
    page.get_by_test_id("status-filter").select_option("succeeded")
    page.locator('[data-testid="request-row"]').first.wait_for(timeout=WAIT_MS)
    texts = page.get_by_test_id("request-status").all_inner_texts()
    assert texts and set(texts) == {"succeeded"}


def test_a_failed_request_shows_its_error_and_the_workers_page_lists_the_workers(
        start_mesh: MeshFactory, tmp_path: Path, page: Any) -> None:
    broken = write_script(tmp_path, "broken.sh", 'echo "no curve for EUR" >&2\nexit 9\n')
    mesh = start_mesh(VNAS_SCRIPT=str(broken), MAX_TASK_RETRIES="2", GATEWAY_API_TOKENS=TOKEN)
    failed = _submit(mesh.http, simple_request(groups=1, tasks=2))
    _sign_in(page, mesh.http)
    page.goto(f"{mesh.http}/console#/requests/{failed}")
    expect(page.get_by_test_id("detail-status")).to_have_text("failed", timeout=WAIT_MS)
    page.get_by_test_id("failure-detail").wait_for(timeout=WAIT_MS)
    assert "no curve for EUR" in page.get_by_test_id("failure-detail").inner_text()
    assert "no curve for EUR" in page.get_by_test_id("troubled").first.inner_text()
    page.screenshot(path=str(SCREENSHOTS / "request-failed.png"), full_page=True)
    page.get_by_test_id("nav-workers").click()
    page.get_by_test_id("consumer-row").first.wait_for(timeout=WAIT_MS)
    assert page.get_by_test_id("consumer-row").count() >= 2  # this mesh's two workers (and earlier ones)
    assert "stream:task:dispatch" in page.get_by_test_id("streams").inner_text()
    page.screenshot(path=str(SCREENSHOTS / "workers.png"), full_page=True)


def test_the_cancel_button_cancels_a_running_request(start_mesh: MeshFactory, tmp_path: Path, page: Any) -> None:
    stuck = write_script(tmp_path, "stuck.sh", 'sleep 60\n')
    mesh = start_mesh(VNAS_SCRIPT=str(stuck), GATEWAY_API_TOKENS=TOKEN)
    running = _submit(mesh.http, simple_request(groups=2, tasks=2))
    _sign_in(page, mesh.http)
    page.goto(f"{mesh.http}/console#/requests/{running}")
    status = page.get_by_test_id("detail-status")
    expect(status).to_have_text("started", timeout=WAIT_MS)
    page.get_by_test_id("cancel").click()
    expect(status).to_have_text("cancelled", timeout=WAIT_MS)
    expect(page.get_by_test_id("cancel")).to_have_count(0, timeout=WAIT_MS)
    page.screenshot(path=str(SCREENSHOTS / "request-cancelled.png"), full_page=True)
    request = urllib.request.Request(f"{mesh.http}/valuation/{running}/status",
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert json.loads(response.read())["status"] == "cancelled"
