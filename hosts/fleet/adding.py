"""Adding or editing a host and verifying its endpoint, around ``HostForm``: the pages
(hosts.fleet.views) and the API (hosts.fleet.api_adding) both call these, so both refuse
the same things with the same sentence (a ``Refused``; a page puts it on the form). Nothing
is saved that was not verified: the endpoint must answer with the certificate (or SSH host
key) the person confirmed.
"""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.forms import BaseForm

from hosts.fleet import endpoint as engine_endpoint
from hosts.fleet import engine, status
from hosts.fleet import trust as engine_trust
from hosts.fleet.engine import Verification
from hosts.fleet.engine_ssh import parse_private_key
from hosts.fleet.forms import HostForm
from hosts.models import Host
from portal import access, audit
from portal.refused import Refused

TIMEOUT = 4


def refuse_invalid(form: BaseForm) -> None:
    """The form's first complaint as a ``Refused`` (400), on its field when it has one."""
    if form.is_valid():
        return
    field, errors = next(iter(form.errors.items()))
    messages = [str(e) for e in errors]
    raise Refused(" ".join(messages), field="" if field == "__all__" else field, status=400, details=messages)


def _check_material(url: str, trust: engine_trust.Trust) -> None:
    # Pasted PEM that is not PEM is the caller's mistake (400), not the engine's silence (502):
    # engine.verify says both as EngineError, so what it reads first is read here first.
    try:
        scheme = engine_endpoint.parse_endpoint(url).scheme
        if scheme == "ssh" and trust.ssh_private_key:
            parse_private_key(trust.ssh_private_key)
        elif scheme == "tcp" and not trust.insecure:
            if trust.ca:
                engine_trust.check_pem_certificates(trust.ca, "CA certificate")
            if trust.client_cert:
                engine_trust.check_pem_certificates(trust.client_cert, "client certificate")
            if trust.client_key:
                engine_trust.check_pem_key(trust.client_key)
    except engine_endpoint.EngineError as exc:
        raise Refused(str(exc), status=400) from None


def _verify(url: str, trust: engine_trust.Trust) -> Verification:
    _check_material(url, trust)
    try:
        return engine.verify(url, trust, timeout=TIMEOUT)
    except engine_endpoint.EngineError as exc:
        raise Refused(str(exc), status=502) from None


def fresh(trust: engine_trust.Trust) -> engine_trust.Trust:
    """What answers now is shown fresh: no fingerprint or host key confirmed before is used."""
    return engine_trust.Trust(
        ca=trust.ca,
        client_cert=trust.client_cert,
        client_key=trust.client_key,
        insecure=trust.insecure,
        ssh_private_key=trust.ssh_private_key,
    )


def verify_new(form: HostForm) -> Verification:
    """Verify in the add-host form: connect with what the form holds, save nothing."""
    refuse_invalid(form)
    return _verify(form.cleaned_data["docker_url"], fresh(form.trust()))


def verify_host(host: Host, actor: Any) -> Verification:
    """Verify on a host's edit form, posted back unchanged: its stored endpoint and
    credentials, with what it presents read fresh (host.manage, as the page)."""
    access.require(actor, "host.manage", host.project_id)
    return _verify(host.docker_url, fresh(engine_trust.Trust.of(host)))


def save_host(form: HostForm, actor: Any) -> Host:
    """Save a new or edited host, only when its endpoint (new or changed) answers with the
    certificate or SSH key confirmed in the form; record what it answered and audit it. The
    add and edit pages and the API all call this."""
    refuse_invalid(form)
    access.require(actor, "host.manage", form.cleaned_data.get("project") or form.instance.project)
    verification = None
    if form.endpoint_changed():
        trust = form.trust()
        _require_confirmed(form, trust)
        verification = _verify(form.cleaned_data["docker_url"], trust)
    creating = form.instance.pk is None
    try:
        with transaction.atomic():
            host = form.save()
    except IntegrityError:
        raise Refused(
            "A host with this name already exists in the project.", field="name", status=400
        ) from None
    if verification is not None:
        status.record_success(host, verification.facts)
    audit.record(
        "host.add" if creating else "host.change",
        obj=host,
        project=host.project,
        actor=actor,
        after={"docker_url": host.docker_url, "insecure": host.insecure, "fingerprint": host.tls_fingerprint},
    )
    return host


def _require_confirmed(form: HostForm, trust: engine_trust.Trust) -> None:
    if form.is_ssh():
        if not trust.ssh_host_key:
            raise Refused("Verify the endpoint first, then confirm the host's SSH key.", status=400)
        if not form.cleaned_data.get("trust_host_key"):
            raise Refused(
                "Confirm that you trust this SSH host key to save the host.",
                field="trust_host_key",
                status=400,
            )
    elif not trust.insecure:
        if not trust.fingerprint:
            raise Refused("Verify the endpoint first, then confirm its certificate.", status=400)
        if not form.cleaned_data.get("trust_certificate"):
            raise Refused(
                "Confirm that you trust this certificate to save the host.",
                field="trust_certificate",
                status=400,
            )
