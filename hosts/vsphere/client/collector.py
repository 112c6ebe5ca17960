"""The property collector: its answers read fast into plain values, paged reads of
what a filter selects, and ``WaitForUpdatesEx`` on filters made for the watchers."""

from __future__ import annotations

import contextlib
import http.client
import io
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

from pyVmomi import vim, vmodl
from pyVmomi.SoapAdapter import SoapResponseDeserializer

log = logging.getLogger(__name__)

PC = vmodl.query.PropertyCollector

#: Objects per page the portal asks for; a vCenter may send fewer.
PAGE_SIZE = 1000


@dataclass
class Counter:
    """Property-collector round trips, for the tests and the benchmark."""

    calls: int = 0


# --- The property collector, read fast ---------------------------------------------
#
# pyvmomi turns every SOAP element into a typed object through Python callbacks:
# for 2,000 VMs that is three quarters of a sync. The property collector's answers
# (RetrievePropertiesEx, ContinueRetrievePropertiesEx, WaitForUpdatesEx) are read
# here instead with ElementTree's C parser into plain values: ``Ref`` for managed
# objects, ``dict`` for data objects, lists, and scalars typed by ``xsi:type``.
# Requests and faults still go through pyvmomi, so sessions, cookies and error
# types are pyvmomi's own.

_XSI_TYPE = "{http://www.w3.org/2001/XMLSchema-instance}type"
_NS = "{urn:vim25}"
_INTEGERS = {"xsd:int", "xsd:long", "xsd:short", "xsd:byte"}


class Ref(tuple[str, str]):
    """A managed object reference: (type, id)."""

    __slots__ = ()

    def __new__(cls, kind: str, moref: str) -> Ref:
        return super().__new__(cls, (kind, moref))

    @property
    def type(self) -> str:
        return self[0]

    @property
    def moref(self) -> str:
        return self[1]


def as_list(value: Any) -> list[Any]:
    """Nested arrays arrive as a single item when they hold one: read them as lists."""
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _tag(element: ET.Element) -> str:
    tag = element.tag
    return tag[len(_NS) :] if tag.startswith(_NS) else tag


def plain(element: ET.Element) -> Any:
    """A SOAP value as plain Python."""
    kind = element.get(_XSI_TYPE, "")
    if kind == "ManagedObjectReference" or (not kind and element.get("type") and not len(element)):
        return Ref(element.get("type", ""), element.text or "")
    if kind.startswith("ArrayOf"):
        return [plain(child) for child in element]
    if not len(element):
        text = element.text or ""
        if kind in _INTEGERS:
            return int(text)
        if kind == "xsd:boolean":
            return text == "true"
        return text
    fields: dict[str, Any] = {"_type": kind} if kind else {}
    for child in element:
        name = _tag(child)
        value = plain(child)
        if name in fields and name != "_type":
            previous = fields[name]
            fields[name] = [*previous, value] if isinstance(previous, list) else [previous, value]
        else:
            fields[name] = value
    return fields


def invoke_raw(si: vim.ServiceInstance, mo: Any, method: str, *args: Any) -> ET.Element:
    """Call ``method`` on ``mo`` through the session's stub; the reply's body element.

    A SOAP fault is raised as pyvmomi raises it (vim.fault.NotAuthenticated, ...).
    """
    stub = si._stub
    info = mo._GetMethodInfo(method)
    request = stub.SerializeRequest(mo, info, list(args))
    headers = {
        "Cookie": stub.cookie,
        "SOAPAction": stub.versionId,
        "Content-Type": "text/xml; charset=UTF-8",
    }
    conn = stub.GetConnection()
    try:
        conn.request("POST", stub.path, request, headers)
        response = conn.getresponse()
        body = response.read()
    except (OSError, http.client.HTTPException):
        conn.close()
        stub.DropConnections()
        raise
    if response.status == 500:
        stub.ReturnConnection(conn)
        fault = SoapResponseDeserializer(stub).Deserialize(io.BytesIO(body), info.result)
        raise fault
    if response.status != 200:
        conn.close()
        raise http.client.HTTPException(f"{response.status} {response.reason}")
    stub.ReturnConnection(conn)
    envelope = ET.fromstring(body)  # noqa: S314 - the pinned vCenter's reply; expat expands no external entities
    soap_body = envelope.find("{http://schemas.xmlsoap.org/soap/envelope/}Body")
    if soap_body is None or not len(soap_body):
        raise http.client.HTTPException("vCenter sent a reply without a SOAP body")
    return soap_body[0]


@dataclass
class Page:
    objects: list[tuple[Ref, dict[str, Any]]]
    token: str | None


def retrieve_page(
    si: vim.ServiceInstance, pc: vmodl.query.PropertyCollector, method: str, *args: Any
) -> Page | None:
    """RetrievePropertiesEx / ContinueRetrievePropertiesEx, read fast."""
    reply = invoke_raw(si, pc, method, *args)
    returnval = reply.find(_NS + "returnval")
    if returnval is None:
        return None
    objects = []
    token = None
    for child in returnval:
        name = _tag(child)
        if name == "token":
            token = child.text
        elif name == "objects":
            ref: Ref | None = None
            props: dict[str, Any] = {}
            for part in child:
                part_name = _tag(part)
                if part_name == "obj":
                    ref = Ref(part.get("type", ""), part.text or "")
                elif part_name == "propSet":
                    prop_name = part.findtext(_NS + "name") or ""
                    val = part.find(_NS + "val")
                    props[prop_name] = plain(val) if val is not None else None
            if ref is not None:
                objects.append((ref, props))
    return Page(objects, token)


@dataclass
class Change:
    ref: Ref
    kind: str  # enter, modify, leave
    changes: dict[str, Any]  # property path -> new value (None: unset)


def wait_for_updates(
    si: vim.ServiceInstance, pc: vmodl.query.PropertyCollector, version: str, max_wait_seconds: int
) -> tuple[str, list[Change]] | None:
    """One WaitForUpdatesEx on ``pc``; None when nothing changed within ``max_wait_seconds``."""
    options = vmodl.query.PropertyCollector.WaitOptions(maxWaitSeconds=max_wait_seconds)
    reply = invoke_raw(si, pc, "WaitForUpdatesEx", version, options)
    returnval = reply.find(_NS + "returnval")
    if returnval is None:
        return None
    new_version = returnval.findtext(_NS + "version") or version
    found: list[Change] = []
    for filter_set in returnval.iterfind(_NS + "filterSet"):
        for update in filter_set.iterfind(_NS + "objectSet"):
            obj = update.find(_NS + "obj")
            if obj is None:
                continue
            changes: dict[str, Any] = {}
            for change in update.iterfind(_NS + "changeSet"):
                val = change.find(_NS + "val")
                op = change.findtext(_NS + "op") or "assign"
                changes[change.findtext(_NS + "name") or ""] = (
                    plain(val) if val is not None and op != "remove" else None
                )
            found.append(
                Change(Ref(obj.get("type", ""), obj.text or ""), update.findtext(_NS + "kind") or "", changes)
            )
    return new_version, found


# --- Paged reads ---------------------------------------------------------------------


def container_filter(view: vim.view.ContainerView, properties: dict[type, list[str]]) -> PC.FilterSpec:
    return PC.FilterSpec(
        objectSet=[
            PC.ObjectSpec(
                obj=view,
                skip=True,
                selectSet=[
                    PC.TraversalSpec(name="view", path="view", skip=False, type=vim.view.ContainerView)
                ],
            )
        ],
        propSet=[PC.PropertySpec(type=kind, pathSet=paths) for kind, paths in properties.items()],
    )


def retrieve(
    si: vim.ServiceInstance,
    pc: vmodl.query.PropertyCollector,
    specs: list[PC.FilterSpec],
    *,
    page_size: int = PAGE_SIZE,
    counter: Counter | None = None,
    on_page: Callable[[int], None] | None = None,
) -> Iterator[tuple[Ref, dict[str, Any]]]:
    """Every object the specs select with its properties, a page per round trip."""
    counter = counter or Counter()
    page = retrieve_page(si, pc, "RetrievePropertiesEx", specs, PC.RetrieveOptions(maxObjects=page_size))
    counter.calls += 1
    pages = 1
    token: str | None = None
    try:
        while page is not None:
            token = page.token
            yield from page.objects
            if on_page is not None:
                on_page(pages)
            if not token:
                return
            page = retrieve_page(si, pc, "ContinueRetrievePropertiesEx", token)
            counter.calls += 1
            pages += 1
    except BaseException:
        # A read stopped early (a failed page, a caller that gives up, a closed
        # generator) would otherwise hold the rest of the result on vCenter.
        if token:
            _cancel(pc, token)
        raise


def _cancel(pc: vmodl.query.PropertyCollector, token: str) -> None:
    try:
        pc.CancelRetrievePropertiesEx(token)
    except Exception:
        log.debug("could not cancel a property retrieval", exc_info=True)


# --- Filters for WaitForUpdatesEx --------------------------------------------------------


def watch_vms(si: vim.ServiceInstance, properties: list[str]) -> vmodl.query.PropertyCollector:
    """A property collector of its own with a filter over ``properties`` of every VM."""
    content = si.RetrieveContent()
    pc = content.propertyCollector.CreatePropertyCollector()
    views = content.viewManager
    assert views is not None  # every vCenter's ServiceContent has its ViewManager
    view = views.CreateContainerView(content.rootFolder, [vim.VirtualMachine], True)
    spec = container_filter(view, {vim.VirtualMachine: properties})
    pc.CreateFilter(spec, True)
    return pc


def watch_task(si: vim.ServiceInstance, vtask: vim.Task) -> vmodl.query.PropertyCollector:
    """A property collector of its own with a filter over a vSphere task's state, progress and error."""
    pc = si.content.propertyCollector.CreatePropertyCollector()
    spec = PC.FilterSpec(
        objectSet=[PC.ObjectSpec(obj=vtask)],
        propSet=[PC.PropertySpec(type=vim.Task, pathSet=["info.state", "info.progress", "info.error"])],
    )
    pc.CreateFilter(spec, True)
    return pc


def destroy_quietly(pc: vmodl.query.PropertyCollector) -> None:
    """Destroy a property collector made by ``watch_vms``, whose session may be gone already."""
    with contextlib.suppress(vmodl.MethodFault, OSError):
        pc.DestroyPropertyCollector()


def destroy(pc: vmodl.query.PropertyCollector) -> None:
    """Destroy a property collector made by ``watch_task``; a failure is only logged."""
    try:
        pc.DestroyPropertyCollector()
    except Exception:
        log.debug("could not destroy a property collector", exc_info=True)
