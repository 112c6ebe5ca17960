"""plan_host: which transitions a selection makes, and when a reboot is planned."""

from __future__ import annotations

import json

import pytest

from hosts.patches.plan import HostPatchPlan, PlanError, Selection, plan_host
from hosts.patches.records import Advisory, AdvisoryPackage, Nevra, RepoMetadata
from tests.patches.repos import nevra

INSTALLED = [
    nevra("openssl-3.0.9-1.ph5"),
    nevra("linux-esx-6.1.10-1.ph5"),
    nevra("curl-8.1.2-1.ph5"),
    nevra("vim-9.0-1.ph5"),
    nevra("tzdata-2023c-1.ph5", "noarch"),
    nevra("systemd-253-1.ph5"),
    nevra("docker-24.0.5-1.ph5"),
]


def _adv(id: str, kind: str, packages: list[Nevra], reboot: frozenset[str] = frozenset()) -> Advisory:
    return Advisory(
        id=id,
        type=kind,
        severity="Important" if kind == "security" else "",
        title=id,
        issued="2026-11-30",
        cves=(),
        packages=tuple(AdvisoryPackage(p, p.name in reboot) for p in packages),
    )


REPO = RepoMetadata(
    url="http://repo.test/updates/",
    revision="1",
    repomd_sha256="0" * 64,
    packages=(
        nevra("openssl-3.0.9-2.ph5"),
        nevra("openssl-3.0.9-3.ph5"),  # newer than the fix: the plan takes the newest
        nevra("linux-esx-6.1.11-1.ph5"),
        nevra("curl-8.1.2-2.ph5"),
        nevra("vim-9.0-2.ph5"),
        nevra("tzdata-2024a-1.ph5", "noarch"),
        nevra("systemd-253-2.ph5"),
    ),
    advisories=(
        _adv("PHSA-1", "security", [nevra("openssl-3.0.9-2.ph5")]),
        _adv("PHSA-2", "security", [nevra("linux-esx-6.1.11-1.ph5")]),
        _adv("PHSA-3", "security", [nevra("curl-8.1.2-2.ph5")]),
        _adv("PHBA-4", "bugfix", [nevra("vim-9.0-2.ph5"), nevra("tzdata-2024a-1.ph5", "noarch")]),
        _adv("PHSA-9", "security", [nevra("notinstalled-1-1.ph5")]),
    ),
)


def _moves(plan: HostPatchPlan) -> dict[str, str]:
    return {t.key: str(t.target) for t in plan.transitions}


def test_security_takes_every_applicable_security_advisory_and_nothing_else() -> None:
    plan = plan_host(INSTALLED, [REPO], Selection("security"))
    assert _moves(plan) == {
        "openssl.x86_64": "openssl-3.0.9-3.ph5.x86_64",
        "linux-esx.x86_64": "linux-esx-6.1.11-1.ph5.x86_64",
        "curl.x86_64": "curl-8.1.2-2.ph5.x86_64",
    }
    by_key = {t.key: t for t in plan.transitions}
    assert by_key["openssl.x86_64"].installed == nevra("openssl-3.0.9-1.ph5")
    assert by_key["openssl.x86_64"].advisories == ("PHSA-1",)


def test_chosen_advisories_only() -> None:
    plan = plan_host(INSTALLED, [REPO], Selection("advisories", ("PHBA-4", "PHSA-3", "PHSA-404")))
    assert _moves(plan) == {
        "curl.x86_64": "curl-8.1.2-2.ph5.x86_64",
        "vim.x86_64": "vim-9.0-2.ph5.x86_64",
        "tzdata.noarch": "tzdata-2024a-1.ph5.noarch",
    }


def test_all_updates_including_those_no_advisory_names() -> None:
    plan = plan_host(INSTALLED, [REPO], Selection("all"))
    assert set(_moves(plan)) == {
        "openssl.x86_64",
        "linux-esx.x86_64",
        "curl.x86_64",
        "vim.x86_64",
        "tzdata.noarch",
        "systemd.x86_64",
    }
    # docker has no update in the repository: not in any plan.
    assert "docker.x86_64" not in _moves(plan)


def test_excluded_names_and_globs_are_left_out_and_shown() -> None:
    plan = plan_host(INSTALLED, [REPO], Selection("all", exclude=("linux*", "vim")))
    assert set(_moves(plan)) == {"openssl.x86_64", "curl.x86_64", "tzdata.noarch", "systemd.x86_64"}
    assert {t.key for t in plan.excluded} == {"linux-esx.x86_64", "vim.x86_64"}
    # A pattern matches the whole name, as a glob does: "cur" is not a prefix match.
    plan = plan_host(INSTALLED, [REPO], Selection("all", exclude=("cur",)))
    assert "curl.x86_64" in _moves(plan)


@pytest.mark.parametrize(
    ("selection", "reboot", "reason"),
    [
        (Selection("advisories", ("PHSA-1",)), False, ""),
        (Selection("advisories", ("PHSA-2",)), True, "linux-esx: kernel"),
        (Selection("all", exclude=("linux-esx",)), True, "systemd: systemd"),
        (Selection("all", exclude=("linux-esx", "systemd")), False, ""),
    ],
)
def test_reboot_for_photon_kernels_and_systemd(selection: Selection, reboot: bool, reason: str) -> None:
    plan = plan_host(INSTALLED, [REPO], selection)
    assert plan.reboot is reboot
    assert any(r.startswith(reason) for r in plan.reboot_reasons) if reboot else plan.reboot_reasons == ()


def test_reboot_when_an_advisory_suggests_it() -> None:
    repo = RepoMetadata(
        url=REPO.url,
        revision="1",
        repomd_sha256="0" * 64,
        packages=(nevra("linux-demo-6.1.11-1.ph5"), nevra("curl-8.1.2-2.ph5")),
        advisories=(
            _adv(
                "PHSA-7",
                "security",
                [nevra("linux-demo-6.1.11-1.ph5"), nevra("curl-8.1.2-2.ph5")],
                reboot=frozenset({"linux-demo"}),
            ),
        ),
    )
    installed = [nevra("linux-demo-6.1.10-1.ph5"), nevra("curl-8.1.2-1.ph5")]
    plan = plan_host(installed, [repo], Selection("security"))
    assert plan.reboot_reasons == ("linux-demo: PHSA-7 suggests a reboot",)
    # The flag is per package: curl alone needs none.
    assert not plan_host(installed, [repo], Selection("security", exclude=("linux-demo",))).reboot


def test_a_plan_round_trips_through_json() -> None:
    plan = plan_host(INSTALLED, [REPO], Selection("all", exclude=("vim",)), host="photon-01")
    data = json.loads(json.dumps(plan.to_json()))
    assert HostPatchPlan.from_json(data) == plan
    assert data["transitions"][0]["installed"] == list(plan.transitions[0].installed.to_json())


def test_an_up_to_date_host_gets_an_empty_plan() -> None:
    assert plan_host([nevra("docker-24.0.5-1.ph5")], [REPO], Selection("all")).empty


@pytest.mark.parametrize(("kind", "ids"), [("everything", ()), ("advisories", ())], ids=["unknown", "no-ids"])
def test_a_bad_selection_is_refused(kind: str, ids: tuple[str, ...]) -> None:
    with pytest.raises(PlanError):
        Selection(kind, ids)
