"""Every action the audit trail records has a label people read ("Host added", not
``host.add``); the code stays visible beside it, for searching.

The source is scanned for ``audit.record(...)`` calls (portal/, hosts/, registry/, alerts/): each
action they record, literal or built, must have a label of its own in
``portal.audit.ACTION_LABELS`` (or the admin's rule). A new action without one fails here.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from hosts.fleet.services import CONTAINER_ACTIONS
from hosts.vsphere.tasks import ACTIONS as VM_ACTIONS
from portal import audit
from portal.models import AuditEntry

REPO = Path(__file__).resolve().parent.parent

#: What each placeholder of a built action (``f"vm.{task.action}"``) stands for, as the
#: code that records it allows. A new placeholder must be added here, with its values.
PLACEHOLDERS: dict[str, tuple[str, ...]] = {
    "task.action": tuple(VM_ACTIONS),
    "action": tuple(CONTAINER_ACTIONS),
    "what": ("tag", "artifact"),  # registry.views.delete
    "obj._meta.model_name": ("host",),  # portal.audit: the admin's rule covers every model
    "model": ("host",),
    "verb": ("add", "change", "delete"),
}


def _is_record(call: ast.Call, path: Path) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr == "record":
        return isinstance(func.value, ast.Name) and func.value.id == "audit"
    # Inside portal/audit.py itself, record is called by its own name.
    return isinstance(func, ast.Name) and func.id == "record" and path.name == "audit.py"


def _assigned(tree: ast.Module, name: str) -> list[ast.expr]:
    """The values assigned to ``name`` anywhere in the module."""
    values = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if any(isinstance(t, ast.Name) and t.id == name for t in targets):
            values.append(value)
    return values


def _codes(node: ast.expr, tree: ast.Module, where: str) -> Iterator[str]:
    """Every action ``node`` may be: a literal, either branch of ``a if c else b``, a name
    assigned in the module (a constant, or ``TABLE.get(key, default)``), or an f-string
    with its placeholders expanded."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        yield node.value
    elif isinstance(node, ast.IfExp):
        yield from _codes(node.body, tree, where)
        yield from _codes(node.orelse, tree, where)
    elif isinstance(node, ast.Name) and _assigned(tree, node.id):
        for value in _assigned(tree, node.id):
            yield from _codes(value, tree, where)
    elif isinstance(node, ast.Dict):
        for value in node.values:
            yield from _codes(value, tree, where)
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "get"
        and isinstance(node.func.value, ast.Name)
    ):
        yield from _codes(node.func.value, tree, where)  # the table's values
        for default in node.args[1:]:
            yield from _codes(default, tree, where)
    elif isinstance(node, ast.JoinedStr):
        variants = [""]
        for part in node.values:
            if isinstance(part, ast.Constant):
                variants = [v + str(part.value) for v in variants]
            else:
                assert isinstance(part, ast.FormattedValue)
                expression = ast.unparse(part.value)
                assert expression in PLACEHOLDERS, (
                    f"{where}: say what {{{expression}}} may be in PLACEHOLDERS"
                )
                variants = [v + value for v in variants for value in PLACEHOLDERS[expression]]
        yield from variants
    else:
        raise AssertionError(f"{where}: the action recorded is not readable here: {ast.unparse(node)}")


def recorded_actions() -> dict[str, str]:
    """Every action the code records -> where."""
    found: dict[str, str] = {}
    for package in ("portal", "hosts", "registry", "alerts", "directory", "sso"):
        for path in sorted((REPO / package).rglob("*.py")):
            tree = ast.parse(path.read_text(), filename=str(path))
            for call in ast.walk(tree):
                if isinstance(call, ast.Call) and _is_record(call, path) and call.args:
                    where = f"{path.relative_to(REPO)}:{call.lineno}"
                    for code in _codes(call.args[0], tree, where):
                        found.setdefault(code, where)
    return found


def test_the_scan_finds_the_actions_it_must() -> None:
    found = recorded_actions()
    expected = {"host.add", "host.disable", "container.deploy_result", "change.failed", "vm.power_on.failed"}
    assert expected <= set(found)
    assert {"registry.delete_tag", "auth.login", "admin.host.change"} <= set(found)


def test_every_recorded_action_has_a_label() -> None:
    unlabelled = {
        code: where for code, where in recorded_actions().items() if audit.known_label(code) is None
    }
    assert not unlabelled, f"give these a label in portal.audit.ACTION_LABELS: {unlabelled}"


@pytest.mark.parametrize(
    ("code", "label"),
    [
        ("host.add", "Host added"),
        ("container.deploy_result", "Deploy finished"),
        ("vm.power_on.failed", "VM power on failed"),
        ("admin.host.delete", "Admin: host deleted"),
        ("admin.tag.change", "Admin: tag changed"),
        ("someday.new_thing", "Someday: new thing"),
        ("plain", "Plain"),
    ],
)
def test_a_label_reads_as_words(code: str, label: str) -> None:
    assert audit.label_for(code) == label


@pytest.mark.django_db
def test_the_trail_shows_the_label_with_the_code_beside_it(client, make_user) -> None:  # type: ignore[no-untyped-def]
    admin = make_user("root", admin=True)
    audit.record("container.deploy_result", actor=admin, after={"outcome": "ok"})
    client.force_login(admin)
    html = client.get("/audit/").content.decode()
    row = html[html.index('data-action="container.deploy_result"') :]
    row = row[: row.index("</tr>")]
    assert "Deploy finished" in row
    assert '<code class="audit-code">container.deploy_result</code>' in row
    assert AuditEntry.objects.filter(action="container.deploy_result").exists()
