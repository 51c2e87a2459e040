"""The web view in a real browser (Playwright driving Debian's chromium) on a tree of
3 real sshd hosts: they show ready; a task there shows its output; a supervised
process killed on its host shows its restart within 5 s; a stopped host turns red and
comes back green. The screenshot goes to docs/images/observer.png."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from actorcluster import Runtime, RuntimeTask
from proctree import kill_tree
from waiting import wait_until

pytest.importorskip("starlette")
pytest.importorskip("uvicorn")
playwright = pytest.importorskip("playwright.sync_api", reason="pip install playwright")

from actorcluster.observe.serve import serve  # noqa: E402

pytestmark = [pytest.mark.timeout(180), pytest.mark.slow]

SCREENSHOT = Path(__file__).resolve().parents[1] / "docs" / "images" / "observer.png"


def _chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    pytest.skip("no chromium found (apt-get install chromium; scripts/test.sh does it as root)")


@pytest.fixture
def browser_page():
    executable = _chromium()
    with playwright.sync_playwright() as driver:
        browser = driver.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            yield page
        finally:
            browser.close()


def test_the_view_follows_three_real_hosts_live(make_ssh_bed, browser_page):
    bed = make_ssh_bed(3)
    expect = playwright.expect
    runtimes = [Runtime(h.name, connection_kwargs=bed.connection_kwargs) for h in bed.hosts]
    server = serve()
    page = browser_page
    try:
        page.goto(server.url)
        for runtime in runtimes:
            card = page.locator(f'.runtime[data-host="{runtime.host}"]')
            expect(card).to_have_attribute("data-state", "ready", timeout=15_000)

        # A task started there appears with its output.
        task = RuntimeTask("hello-browser").run_command("echo from-the-host; sleep 600")
        future = runtimes[1].execute_task(task)
        item = page.locator('.runtime[data-host="host-2"] li.task', has_text="hello-browser")
        expect(item).to_be_visible(timeout=10_000)
        item.click()
        expect(page.locator("#output")).to_contain_text("from-the-host", timeout=10_000)

        # A supervised process killed on its host shows its restart within 5 s.
        process = runtimes[2].supervise("echo serving; exec sleep 604", name="web")
        wait_until(lambda: process.pid is not None, what="the process's pid")
        line = page.locator('.runtime[data-host="host-3"] li.process[data-process="web"]')
        expect(line).to_be_visible(timeout=10_000)
        kill_tree(process.pid, kill_root=True)
        expect(line).to_have_attribute("data-restarts", "1", timeout=5_000)
        line.click()
        expect(page.locator("#exits li").first).to_contain_text("restarted", timeout=5_000)
        page.screenshot(path=str(SCREENSHOT), full_page=True)

        # A stopped host turns red, and green again once it is back.
        card = page.locator('.runtime[data-host="host-1"]')
        bed.hosts[0].stop()
        expect(card).to_have_attribute("data-state", "lost", timeout=20_000)
        bed.hosts[0].start()
        expect(card).to_have_attribute("data-state", "ready", timeout=30_000)
        future.cancel()
    finally:
        server.stop()
        for runtime in runtimes:
            runtime.cleanup()
