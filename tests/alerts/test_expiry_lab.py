"""A lab engine the portal reaches with a client certificate that lapses in 5 days: the expiry
check mails the lab's SMTP server about it once, however often it runs."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import pytest

from alerts import expiry_check, services
from hosts.fleet import engine
from portal.models import Project
from tests.alerts.conftest import settled, smtp_settings
from tests.hosts.conftest import trusted_host
from tests.lab import pki, smtp
from tests.lab.common import wait_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.lab]


def _mails_about(lab_smtp: dict[str, Any], name: str) -> list[Any]:
    return [m for m in smtp.messages(lab_smtp) if name in m.get_payload()]


@pytest.mark.timeout(120)
def test_a_client_certificate_lapsing_in_5_days_mails_once_across_two_runs(
    tmp_path: Path,
    lab_engines: list[dict[str, Any]],
    lab_smtp: dict[str, Any],
    project: Project,
    people: dict[str, Any],
    in_process_tasks: None,
) -> None:
    (info,) = [e for e in lab_engines if e["tls"]]
    # A client certificate of the lab's own CA (the one the engine trusts), made to lapse soon.
    lab_ca = pki.CertificateAuthority.load(Path(info["tls"]["ca"]).parent)
    short = lab_ca.issue_client(tmp_path, "short-lived", "photon-portal", days=5)
    host = trusted_host({**info, "tls": {**info["tls"], **short.as_dict()}}, project, "short-cert")
    with contextlib.closing(engine.client_for(host, timeout=10)) as sdk:
        assert sdk.ping()  # the engine takes it: it is the portal's working certificate
    mail = services.create_channel(
        people["manager"], project, kind="email", name="ops mail", recipients="ops@example.com", url=""
    ).channel
    services.create_rule(
        people["manager"],
        project,
        name="certificates",
        kinds=["expiry.soon"],
        channel_ids=[mail.pk],
        digest=False,
        within_days=30,
    )
    with smtp_settings(lab_smtp):
        assert len(expiry_check.run()) == 1
        wait_until(lambda: _mails_about(lab_smtp, "short-cert"), timeout=30, what="the warning mailed")
        assert expiry_check.run() == []  # the second run: told already
        wait_until(lambda: settled(mail), timeout=30, what="nothing left to send")
    (sent,) = _mails_about(lab_smtp, "short-cert")
    assert str(sent["Subject"]).startswith("[Photon Portal] Certificate or credential expiring")
    body = sent.get_payload()
    assert "The Docker client certificate of host short-cert expires on " in body
    assert "(in 5 days)" in body and f"/hosts/{host.pk}/edit/" in body
    assert "ops@example.com" in str(sent["X-Lab-Rcpt-To"])
