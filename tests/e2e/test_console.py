"""A Provisioner opens a console on a lab container in Chromium (issue 17): types a command and reads
its answer in xterm.js, resizes the window and the shell sees the new size, closes it; the exec is
gone from the engine afterwards (asked with the docker SDK, not the portal), also when the page
itself is closed."""

from __future__ import annotations

import re
import uuid
from contextlib import closing

import pytest
from playwright.sync_api import expect

from portal.models import Project, Role
from tests.e2e.test_sign_in_and_live_activity import sign_in
from tests.hosts.conftest import trusted_host
from tests.hosts.test_console_on_lab import execs_running
from tests.lab import engines
from tests.lab.common import wait_until

pytestmark = pytest.mark.lab


def terminal_text(page) -> str:  # type: ignore[no-untyped-def]
    return page.locator("#console-terminal .xterm-rows").inner_text().replace("\xa0", " ")


@pytest.mark.timeout(180)
def test_open_type_resize_and_close_a_console(
    daphne_factory, make_user, browser, screenshot, lab_engines
) -> None:
    tls_engine = next(e for e in lab_engines if e["tls"])
    project = Project.objects.create(name="Consoles")
    make_user("prov", project=project, role=Role.PROVISIONER)
    host = trusted_host(tls_engine, project, name="photon-console")
    busybox = next(ref for ref in tls_engine["images"] if ref.startswith("lab/busybox"))
    server = daphne_factory("daphne-console")
    with closing(engines.connect(tls_engine)) as sdk:
        container = sdk.containers.run(
            busybox,
            engines.SERVE_CMD,
            name=f"e2e-console-{uuid.uuid4().hex[:6]}",
            detach=True,
            network_mode="none",
        )
    try:
        page = browser.new_context(viewport={"width": 1200, "height": 900}).new_page()
        sign_in(page, server.url, "prov")
        page.goto(f"{server.url}/hosts/{host.pk}/containers/{container.id}/")
        page.click("#console-link")
        page.click("#console-open")
        expect(page.locator("#console-state")).to_have_text("connected", timeout=20000)
        expect(page.locator("#console-terminal .xterm-rows")).to_contain_text("#", timeout=20000)
        page.keyboard.type("echo hello; hostname")
        page.keyboard.press("Enter")
        wait_until(
            lambda: re.search(r"\nhello\n" + container.id[:12], terminal_text(page)),
            timeout=20,
            what="the shell's answer",
        )

        before = page.locator("#console-terminal").get_attribute("data-size")
        page.set_viewport_size({"width": 800, "height": 700})
        wait_until(
            lambda: page.locator("#console-terminal").get_attribute("data-size") != before,
            timeout=10,
            what="the terminal to fit the window",
        )
        cols, rows = page.locator("#console-terminal").get_attribute("data-size").split("x")
        page.keyboard.type("stty size")
        page.keyboard.press("Enter")
        wait_until(
            lambda: f"{rows} {cols}" in terminal_text(page), timeout=20, what="the shell to see the new size"
        )
        screenshot(page, "console")

        assert execs_running(tls_engine, container.id)
        page.click("#console-close")
        expect(page.locator("#console-state")).to_have_text("disconnected", timeout=10000)
        wait_until(lambda: not execs_running(tls_engine, container.id), timeout=20, what="the exec to end")

        # Open again, then close the page itself: the shell goes too.
        page.click("#console-open")
        expect(page.locator("#console-state")).to_have_text("connected", timeout=20000)
        wait_until(lambda: execs_running(tls_engine, container.id), timeout=20, what="the second shell")
        page.close()
        wait_until(lambda: not execs_running(tls_engine, container.id), timeout=20, what="the exec to end")
    finally:
        container.remove(force=True)
