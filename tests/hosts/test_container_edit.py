"""Edit and recreate, what needs no engine (issue 17): the port lines read and written back as the
form shows them, bad ones refused by name; who may open the form. The swap itself is tested on a
lab engine (test_container_edit_on_lab.py)."""

from __future__ import annotations

import pytest
from django import forms
from django.urls import reverse

from hosts.fleet.forms import parse_environment, parse_port_bindings, port_lines
from hosts.models import Host

pytestmark = pytest.mark.django_db


def test_port_lines_round_trip_and_bad_ones_are_named() -> None:
    text = "127.0.0.1:5432:5432\n8080:80\n9000:90/udp\n8443:80"
    bindings = parse_port_bindings(text)
    assert bindings == {
        "5432/tcp": [{"HostIp": "127.0.0.1", "HostPort": "5432"}],
        "80/tcp": [{"HostIp": "", "HostPort": "8080"}, {"HostIp": "", "HostPort": "8443"}],
        "90/udp": [{"HostIp": "", "HostPort": "9000"}],
    }
    assert parse_port_bindings(port_lines(bindings)) == bindings
    for bad in ("70000:80", "1.2.3.999:80:80", "80", "a:b", "8080:80/sctp"):
        with pytest.raises(forms.ValidationError, match="is not"):
            parse_port_bindings(bad)
    assert parse_environment("A=1\n\nB=x=y") == {"A": "1", "B": "x=y"}
    with pytest.raises(forms.ValidationError, match="Line 2"):
        parse_environment("A=1\n1X=2")


def test_only_a_provisioner_of_the_hosts_project_opens_the_form(client, people, project) -> None:
    host = Host.objects.create(project=project, name="h", docker_url="tcp://127.0.0.1:9", insecure=True)
    url = reverse("hosts:container_edit", args=[host.pk, "ab" * 32])
    client.force_login(people["viewer"])
    assert client.get(url).status_code == 403
    client.force_login(people["outsider"])
    assert client.get(url).status_code == 404
    client.force_login(people["provisioner"])
    assert client.get(reverse("hosts:container_edit", args=[host.pk, "nothex"])).status_code == 404
    # The engine does not answer: back to the host page, saying so; nothing queued.
    answer = client.get(url, follow=True)
    assert answer.redirect_chain[-1][0] == reverse("hosts:host", args=[host.pk])
    assert "h: " in answer.content.decode()
