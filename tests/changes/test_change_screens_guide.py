"""The change page says what happened and what may be done next, without a reload:
actions arrive with the plan, a change with nothing to apply says so and offers no Apply,
diffs are coloured and contained, a finished apply replaces "Applying", and a setting
already in place says so instead of showing an empty diff."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone

from hosts.changes import approval, news, planning
from hosts.changes import runs as change_runs
from hosts.changes.errors import ChangeError
from hosts.changes.render import HostPlan
from hosts.models import Change, ChangeRun, Host
from portal import live
from portal.models import Project, Role
from tests.queued import record_queued

DIFF = "--- a/etc/x\n+++ b/etc/x\n@@ -1,2 +1,2 @@\n keep\n-old <i>\n+new <b>" + "y" * 400 + "\n"


@pytest.fixture
def world(db, make_user) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    project = Project.objects.create(name="fleet")
    hosts = [
        Host.objects.create(project=project, name=n, docker_url=f"tcp://{a}:2376", address=a)
        for n, a in (("h1", "10.0.0.1"), ("h2", "10.0.0.2"))
    ]
    return {
        "project": project,
        "hosts": hosts,
        "admin": make_user("pa", project=project, role=Role.PROJECT_ADMIN),
        "viewer": make_user("viewer", project=project, role=Role.VIEWER),
    }


@pytest.fixture
def published(monkeypatch) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """What was pushed to the browsers, in order."""
    sent: list[dict[str, Any]] = []
    monkeypatch.setattr(live, "publish", lambda topic, html="", data=None: sent.append({"html": html}))
    return sent


@pytest.fixture
def queued(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    """Runs whose apply task was queued (no worker, no SSH)."""
    return record_queued(monkeypatch, lambda _name, args: args[0])


def change_with(world: dict[str, Any], states: list[str], **fields: Any) -> Change:
    fields.setdefault("settings", {"sshd": {"MaxAuthTries": 3}})
    fields.setdefault("status", "planned")
    change = Change.objects.create(project=world["project"], title="t", created_by=world["admin"], **fields)
    for host, state in zip(world["hosts"], states, strict=False):
        ChangeRun.objects.create(
            change=change,
            host=host,
            state=state,
            files=[{"path": "/etc/ssh/sshd_config", "diff": DIFF}] if state == "planned" else [],
        )
    return change


def summary_of(html: str, change: Change) -> str:
    return html.split(f'id="change-{change.pk}-summary"', 1)[1]


def last_summary(published: list[dict[str, Any]], change: Change) -> str:
    """The change's summary as last pushed to its page."""
    pushed = [p["html"] for p in published if f'id="change-{change.pk}-summary"' in p["html"]]
    return summary_of(pushed[-1], change)


def planned_with(monkeypatch, world: dict[str, Any], *plans: HostPlan) -> Change:  # type: ignore[no-untyped-def]
    """A change planned through planning.plan, each host's reading replaced by ``plans``."""
    answers = iter(plans)

    async def plan_one(_item: Any) -> HostPlan:
        return next(answers)

    monkeypatch.setattr(planning, "_plan_one", plan_one)
    change = Change.objects.create(
        project=world["project"], title="t", settings={"sshd": {"MaxAuthTries": 3}}, created_by=world["admin"]
    )
    return planning.plan(change, world["hosts"][: len(plans)])


# --- 1. the actions arrive with the plan --------------------------------------------------


def test_the_plans_summary_brings_the_actions_for_whoever_reads_it(
    client, world, published, monkeypatch
) -> None:
    change = planned_with(
        monkeypatch, world, HostPlan(files=[{"path": "/etc/ssh/sshd_config", "diff": DIFF}])
    )
    assert change.status == "planned"
    pushed = last_summary(published, change)
    # Rendered once for every subscriber: it fetches the actions for the one reading it.
    actions_url = f"/hosts/changes/{change.pk}/?actions=1"
    assert f'hx-get="{actions_url}"' in pushed and 'hx-trigger="load"' in pushed
    assert "Review what you may do next" not in pushed

    client.force_login(world["admin"])
    mine = client.get(actions_url).content.decode()
    assert 'id="apply"' in mine and 'id="confirm"' in mine
    assert f'id="change-{change.pk}-actions"' in mine and "hx-get" not in mine
    client.force_login(world["viewer"])
    response = client.get(actions_url)
    assert response.status_code == 200
    assert 'id="apply"' not in response.content.decode() and 'id="approve"' not in response.content.decode()


def test_the_second_read_carries_the_actions_themselves(client, world) -> None:
    change = change_with(world, ["planned"], status="awaiting_approval")
    client.force_login(world["admin"])
    cards = client.get(f"/hosts/changes/{change.pk}/?runs=1").content.decode()
    assert 'id="approve"' in cards and "hx-get" not in summary_of(cards, change)
    client.force_login(world["viewer"])
    cards = client.get(f"/hosts/changes/{change.pk}/?runs=1").content.decode()
    assert 'id="approve"' not in cards and 'id="apply"' not in cards


# --- 2. nothing to apply --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("plans", "label", "status"),
    [
        ([HostPlan(state="refused", reason="no"), HostPlan(state="refused", reason="no")], "Refused on all hosts", "failed"),  # noqa: E501
        ([HostPlan(state="unreachable", reason="timeout")], "Unreachable on all hosts", "failed"),
        ([HostPlan(state="unchanged"), HostPlan(state="unchanged")], "Nothing to apply", "applied"),
        ([HostPlan(state="refused", reason="no"), HostPlan(state="unreachable", reason="t")], "Refused or unreachable on all hosts", "failed"),  # noqa: E501
    ],
)  # fmt: skip
def test_a_plan_with_nothing_to_apply_says_so_and_offers_no_apply(
    client, world, published, queued, monkeypatch, plans, label, status
) -> None:
    change = planned_with(monkeypatch, world, *plans)
    assert change.status == status
    assert f'id="change-status">{label}</span>' in last_summary(published, change)
    client.force_login(world["admin"])
    page = client.get(f"/hosts/changes/{change.pk}/").content.decode()
    assert f'id="change-status">{label}</span>' in page
    button = page.split('id="apply"', 1)[1].split(">", 1)[0]
    assert "disabled" in button and 'title="Nothing to apply' in button and label.lower() in button.lower()
    assert 'id="reject"' not in page and 'id="approve"' not in page
    listed = client.get("/hosts/changes/").content.decode()
    assert f">{label}</span>" in listed
    with pytest.raises(ChangeError, match=r"^Nothing to apply") as refused:
        approval.start_apply(change, world["admin"])
    assert label.lower() in str(refused.value).lower()
    response = client.post(f"/hosts/changes/{change.pk}/apply/", {"confirm": "yes"}, follow=True)
    assert str(refused.value) in response.content.decode()
    assert queued == [] and set(change.runs.values_list("state", flat=True)) <= {s.state for s in plans}


def test_a_host_unreachable_when_planned_is_not_applied_with_the_others(world, queued) -> None:
    # It was never read: there is no plan for it to apply; a new plan will read it.
    change = change_with(world, ["planned", "unreachable"])
    planned_run = change.runs.get(state="planned")
    assert approval.start_apply(change, world["admin"]) == [planned_run.pk]
    assert queued == [planned_run.pk]
    assert change.runs.get(host=world["hosts"][1]).state == "unreachable"


# --- 3. coloured, contained diffs ------------------------------------------------------------


def test_diffs_are_coloured_escaped_and_kept_inside_their_box(client, world) -> None:
    change = change_with(world, ["planned"])
    client.force_login(world["admin"])
    page = client.get(f"/hosts/changes/{change.pk}/").content.decode()
    assert '<link rel="stylesheet" href="/static/hosts/changes.css">' in page
    assert '<span class="diff-line diff-del">-old &lt;i&gt;\n</span>' in page
    assert '<span class="diff-line diff-add">+new &lt;b&gt;yyy' in page
    assert '<span class="diff-line diff-hunk">@@ -1,2 +1,2 @@\n</span>' in page
    assert '<span class="diff-line diff-file">--- a/etc/x\n</span>' in page
    assert '<span class="diff-line"> keep\n</span>' in page
    assert "<b>" not in page.split('id="runs"', 1)[1]
    listing = client.get("/hosts/changes/").content.decode()
    assert '<link rel="stylesheet" href="/static/hosts/changes.css">' in listing


def test_the_diff_stylesheet_colours_lines_and_wraps_long_ones() -> None:
    css = (settings.BASE_DIR / "static" / "hosts" / "changes.css").read_text()
    box = css.split("pre.diff", 1)[1].split("}", 1)[0]
    assert "white-space: pre-wrap" in box and "overflow-wrap: anywhere" in box and "max-width: 100%" in box
    for kind in ("diff-add", "diff-del", "diff-hunk"):
        assert f".{kind}" in css


# --- 4. "Applying" gives way to how it ended ------------------------------------------------


def test_applying_is_replaced_by_the_end_live_and_on_reload(client, world, published, queued) -> None:
    change = change_with(world, ["planned"])
    client.force_login(world["admin"])
    page = client.post(f"/hosts/changes/{change.pk}/apply/", {"confirm": "yes"}, follow=True).content.decode()
    summary = summary_of(page, change)
    assert 'id="change-status">Applying</span>' in summary and "this page updates itself" in summary
    # No message outside the summary that the live update could not take back.
    assert "Applying." not in page.split(f'id="change-{change.pk}-summary"', 1)[0]

    ChangeRun.objects.filter(change=change).update(state="applied", progress=100)
    change_runs.finish_change(change.pk)
    pushed = last_summary(published, change)
    assert 'id="change-status">Applied</span>' in pushed
    assert "Applying" not in pushed and "updates itself" not in pushed
    page = client.get(f"/hosts/changes/{change.pk}/").content.decode()
    assert "Applying" not in page and 'id="change-status">Applied</span>' in page


# --- 5. already set -----------------------------------------------------------------------------


def test_a_file_already_as_wanted_says_already_set_instead_of_an_empty_diff(client, world) -> None:
    wanted = {"sshd": {"MaxAuthTries": 3}, "sysctl": {"vm.swappiness": "10"}}
    change = change_with(world, ["planned", "unchanged"], settings=wanted)
    client.force_login(world["admin"])
    page = client.get(f"/hosts/changes/{change.pk}/").content.decode()
    h1 = page.split('data-host="h1"', 1)[1].split('data-host="h2"', 1)[0]
    h2 = page.split('data-host="h2"', 1)[1]
    # h1: sshd_config changes, the sysctl file is as wanted already (the firewall is not managed).
    assert "diff-del" in h1 and h1.count("Already set on this host") == 1
    assert "/etc/sysctl.d/" in h1.split("Already set on this host", 1)[0].rsplit("<p", 1)[1]
    # h2: every managed file already as wanted.
    assert h2.count("Already set on this host") == 2 and '<pre class="diff"' not in h2


def test_a_host_not_read_claims_nothing_is_set(client, world) -> None:
    change = change_with(world, ["unreachable"], status="failed")
    client.force_login(world["admin"])
    page = client.get(f"/hosts/changes/{change.pk}/").content.decode()
    assert "Already set" not in page


def test_the_run_card_pushed_live_says_already_set_too(world, published) -> None:
    change = change_with(world, ["unchanged"])
    news.publish_run(change.runs.select_related("host", "change").get())
    assert "Already set on this host" in published[0]["html"]


def test_a_step_of_an_apply_moves_the_card_in_place_in_two_queries(
    client, world, published, django_assert_num_queries
) -> None:
    """Every host of a push reports its steps through one database thread: a report costs two
    queries and re-sends the parts of the card that move, not its diffs."""
    import re

    change = change_with(world, ["planned"], status="applying")
    run = change.runs.get()
    client.force_login(world["admin"])
    card = client.get(f"/hosts/changes/{change.pk}/").content.decode().split('data-host="h1"', 1)[1]
    assert f'id="run-{run.pk}-log" hidden' in card  # no log yet: nothing shown

    with django_assert_num_queries(2):
        change_runs.report_step(run.pk, "validating", 40, "validating 1 file(s) <on> the host")
    change_runs.report_step(run.pk, "writing", 55, "moving the new files into place")
    html = published[-1]["html"]
    sent_ids = re.findall(r'id="(run-\d+[^"]*)"', html)
    # Each fragment replaces an element the page has (live.js swaps by id).
    assert sorted(sent_ids) == sorted([f"run-{run.pk}-head", f"run-{run.pk}-progress", f"run-{run.pk}-log"])
    assert all(f'id="{i}"' in card for i in sent_ids)
    assert "writing" in html and 'value="55"' in html and "diff-del" not in html
    assert "validating 1 file(s) &lt;on&gt; the host" in html and "moving the new files into place" in html
    run.refresh_from_db()
    assert (run.step, run.progress) == ("writing", 55) and run.log.count("\n") == 2
    page = client.get(f"/hosts/changes/{change.pk}/").content.decode()
    assert f'id="run-{run.pk}-log" hidden' not in page and "diff-del" in page

    # Reports of several runs made while a write was under way go together: one UPDATE each
    # and one read for all of them, in one transaction.
    other = ChangeRun.objects.create(change=change, host=world["hosts"][1], state="applying")
    said = timezone.now()
    with django_assert_num_queries(3):
        change_runs.report_steps(
            {
                run.pk: change_runs.StepReport("verifying", 85, [(said, "a new SSH login works")]),
                other.pk: change_runs.StepReport("reading", 15),
            }
        )
    cards = {
        pk: next(m["html"] for m in published[-2:] if f'id="run-{pk}-head"' in m["html"])
        for pk in (run.pk, other.pk)
    }
    assert "verifying" in cards[run.pk] and "a new SSH login works" in cards[run.pk]
    assert "reading" in cards[other.pk]
    run.refresh_from_db()
    assert run.log.splitlines()[-1] == f"{said:%H:%M:%S} a new SSH login works"
