"""Registries: add (Admins), browse (members of the projects a registry is shared with),
delete tags and artifacts (Project admins), all asked of portal.access.

A registry outside the user's projects is a 404, as if it did not exist. Every
failure of a registry is a page that says what went wrong (502), never a 500.
"""

from __future__ import annotations

import math
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from hosts.models import Host
from portal import access, audit

from . import images
from .browse import Browser
from .clients.distribution import DIGEST, check_reference, check_repository, valid_repository
from .clients.errors import NotFound, RegistryError
from .clients.harbor import check_project
from .forms import RegistryForm
from .grants import delete_grant
from .models import Registry
from .tag_list import TagList, list_tags

#: Tags per page of a repository; also what the benchmark renders.
TAGS_PER_PAGE = 50
REPOSITORIES_PER_PAGE = 100
HARBOR_PAGE_SIZES = (25, 50, 100)
# -- who sees what ------------------------------------------------------------------------------


def registry_for(request: HttpRequest, pk: int) -> Registry:
    access.require(request.user, "portal.use")
    return get_object_or_404(Registry.objects.visible_to(request.user), pk=pk)


def can_delete(user: Any, registry: Registry, repository: str) -> bool:
    try:
        delete_grant(user, registry, repository)
    except PermissionDenied:
        return False
    return True


def failed(
    request: HttpRequest, registry: Registry | None, error: RegistryError, *, what: str = ""
) -> HttpResponse:
    status = 404 if isinstance(error, NotFound) else 502
    context = {"registry": registry, "error": str(error), "what": what}
    return render(request, "registry/error.html", context, status=status)


def _int_param(request: HttpRequest, name: str, default: int, lowest: int = 1, highest: int = 10_000) -> int:
    try:
        return min(max(int(request.GET.get(name, default)), lowest), highest)
    except ValueError:
        return default


def _refresh(request: HttpRequest) -> bool:
    return request.GET.get("refresh") == "1"


# -- the list, adding, editing, removing (Admins) ------------------------------------------------


def index(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "portal.use")
    registries = Registry.objects.visible_to(request.user).prefetch_related("projects")
    return render(
        request,
        "registry/index.html",
        {"registries": registries, "can_manage": access.can(request.user, "registry.manage")},
    )


@require_http_methods(["GET", "POST"])
def add(request: HttpRequest) -> HttpResponse:
    access.require(request.user, "registry.manage")
    form = RegistryForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        registry = form.save()
        audit.record("registry.add", obj=registry, after=_summary(registry))
        messages.success(request, f"Registry {registry.name} added.")
        return redirect("registry:registry", pk=registry.pk)
    return render(request, "registry/form.html", {"form": form, "registry": None})


@require_http_methods(["GET", "POST"])
def edit(request: HttpRequest, pk: int) -> HttpResponse:
    access.require(request.user, "registry.manage")
    registry = get_object_or_404(Registry, pk=pk)
    before = _summary(registry)
    form = RegistryForm(request.POST or None, instance=registry)
    if request.method == "POST" and form.is_valid():
        registry = form.save()
        audit.record("registry.change", obj=registry, before=before, after=_summary(registry))
        messages.success(request, f"Registry {registry.name} saved.")
        return redirect("registry:registry", pk=registry.pk)
    return render(request, "registry/form.html", {"form": form, "registry": registry})


@require_http_methods(["GET", "POST"])
def remove(request: HttpRequest, pk: int) -> HttpResponse:
    access.require(request.user, "registry.manage")
    registry = get_object_or_404(Registry, pk=pk)
    if request.method == "POST":
        audit.record("registry.remove", obj=registry, before=_summary(registry))
        registry.delete()
        messages.success(
            request, f"Registry {registry.name} removed from the portal (nothing in it was deleted)."
        )
        return redirect("registry:index")
    return render(request, "registry/remove.html", {"registry": registry})


def _summary(registry: Registry) -> dict[str, Any]:
    # What the trail keeps: never the password.
    return {
        "name": registry.name,
        "kind": registry.kind,
        "url": registry.url,
        "auth": registry.auth,
        "username": registry.username,
        "verify_tls": registry.verify_tls,
        "projects": sorted(registry.projects.values_list("name", flat=True)) if registry.pk else [],
    }


# -- browsing -----------------------------------------------------------------------------------


def registry_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A v2 registry's catalog (paged with n / last, or searched), or a Harbor's projects."""
    registry = registry_for(request, pk)
    query = request.GET.get("q", "").strip()[:100]
    context: dict[str, Any] = {
        "registry": registry,
        "q": query,
        "can_manage": access.can(request.user, "registry.manage"),
    }
    try:
        with Browser(registry, refresh=_refresh(request)) as browser:
            if registry.kind == Registry.Kind.HARBOR:
                page = _int_param(request, "page", 1)
                size = _page_size(request)
                projects = browser.harbor_projects(page, size, query)
                context.update(_harbor_paging(request, projects.total, page, size))
                context["projects"] = projects.items
                return render(request, "registry/harbor_projects.html", context)
            if query:
                names = [name for name in browser.repositories() if query.lower() in name.lower()]
                page = _int_param(request, "page", 1)
                pages = max(1, math.ceil(len(names) / REPOSITORIES_PER_PAGE))
                context.update(
                    repositories=_linkable(
                        names[(page - 1) * REPOSITORIES_PER_PAGE : page * REPOSITORIES_PER_PAGE]
                    ),
                    matches=len(names),
                    page=page,
                    pages=pages,
                    prev_query=_query(q=query, page=page - 1) if page > 1 else "",
                    next_query=_query(q=query, page=page + 1) if page < pages else "",
                )
            else:
                last = request.GET.get("last", "")[:255]
                names, following = browser.catalog_page(REPOSITORIES_PER_PAGE, last)
                context.update(
                    repositories=_linkable(names),
                    first_query="" if not last else "?",
                    next_query=_query(last=following) if following else "",
                )
            # Distribution says nothing of a repository but its name: a tag list each, for
            # the names on this page only (bounded, and cached as the repository pages use it).
            shown = [name for name, linkable in context["repositories"] if linkable]
            counts = browser.tag_counts(shown)
            context["catalog_rows"] = [
                (name, linkable, counts.get(name)) for name, linkable in context["repositories"]
            ]
    except RegistryError as error:
        return failed(request, registry, error)
    return render(request, "registry/registry.html", context)


def harbor_project(request: HttpRequest, pk: int, project: str) -> HttpResponse:
    registry = registry_for(request, pk)
    if registry.kind != Registry.Kind.HARBOR:
        raise Http404("not a Harbor registry")
    query = request.GET.get("q", "").strip()[:100]
    page, size = _int_param(request, "page", 1), _page_size(request)
    try:
        check_project(project)
        with Browser(registry, refresh=_refresh(request)) as browser:
            repositories = browser.harbor_repositories(project, page, size, query)
    except RegistryError as error:
        return failed(request, registry, error)
    context = {"registry": registry, "project": project, "repositories": repositories.items, "q": query}
    context.update(_harbor_paging(request, repositories.total, page, size))
    return render(request, "registry/harbor_project.html", context)


def repository_page(request: HttpRequest, pk: int, repository: str) -> HttpResponse:
    registry = registry_for(request, pk)
    context: dict[str, Any] = {
        "registry": registry,
        "repository": repository,
        "can_delete": can_delete(request.user, registry, repository),
        "project": repository.split("/", 1)[0] if "/" in repository else "",
    }
    # The tag table alone (htmx: the filter box, or the placeholder of newest first).
    fragment = bool(getattr(request, "htmx", False)) and registry.kind != Registry.Kind.HARBOR
    try:
        check_repository(repository)
        with Browser(registry, refresh=_refresh(request)) as browser:
            if registry.kind == Registry.Kind.HARBOR:
                page, size = _int_param(request, "page", 1), _page_size(request)
                artifacts = browser.harbor_artifacts(repository, page, size)
                context.update(_harbor_paging(request, artifacts.total, page, size))
                sizes = browser.platform_sizes(
                    repository, sorted({str(a.get("digest", "")) for a in artifacts.items} - {""})
                )
                context["artifacts"] = [
                    {**_artifact_row(a), "sizes": sizes.get(str(a.get("digest", "")), [])}
                    for a in artifacts.items
                ]
                return render(request, "registry/harbor_repository.html", context)
            listing = list_tags(
                browser,
                repository,
                sort=request.GET.get("sort", ""),
                query=request.GET.get("q", ""),
                # A full page never waits for newest first: it shows a placeholder that asks.
                wait=fragment,
            )
            context.update(tag_page(browser, repository, listing, _int_param(request, "page", 1)))
            # The placeholder's own request recomputes what a Refresh asked for.
            context["load_query"] = context["this_query"] + ("&refresh=1" if _refresh(request) else "")
    except RegistryError as error:
        if fragment:
            # htmx swaps only a 2xx answer: the message replaces the table, in its place.
            context.update(error=str(error), what=repository)
            return render(request, "registry/_tags_failed.html", context)
        return failed(request, registry, error, what=repository)
    return render(request, "registry/_tags.html" if fragment else "registry/repository.html", context)


def tag_page(browser: Browser, repository: str, listing: TagList, page: int) -> dict[str, Any]:
    """One page of ``listing`` with its tags' details (the benchmark renders this): the
    details of that page's tags only, however the list was ordered."""
    pages = max(1, math.ceil(len(listing.tags) / TAGS_PER_PAGE))
    page = min(page, pages)
    on_page = listing.tags[(page - 1) * TAGS_PER_PAGE : page * TAGS_PER_PAGE]
    details = browser.tag_details(repository, on_page)
    keep = {"sort": listing.sort, "q": listing.query}
    return {
        "listing": listing,
        "rows": [details[tag] for tag in on_page],
        "tag_count": listing.total,
        "sort": listing.sort,
        "q": listing.query,
        "page": page,
        "pages": pages,
        "this_query": _query(**keep, page=page),
        "version_query": _query(sort="version", q=listing.query),
        "newest_query": _query(sort="newest", q=listing.query),
        "prev_query": _query(**keep, page=page - 1) if page > 1 else "",
        "next_query": _query(**keep, page=page + 1) if page < pages else "",
    }


def tag(request: HttpRequest, pk: int, repository: str, reference: str) -> HttpResponse:
    """A tag (or, in Harbor, an artifact by digest): platforms, layers, config, shared digest."""
    registry = registry_for(request, pk)
    context: dict[str, Any] = {
        "registry": registry,
        "repository": repository,
        "reference": reference,
        "can_delete": can_delete(request.user, registry, repository),
        "project": repository.split("/", 1)[0] if "/" in repository else "",
    }
    try:
        check_repository(repository)
        check_reference(reference)
        with Browser(registry, refresh=_refresh(request)) as browser:
            artifact: dict[str, Any] | None = None
            if registry.kind == Registry.Kind.HARBOR:
                artifact = browser.harbor_artifact(repository, reference)
                context["artifact"] = _artifact_row(artifact)
            details = browser.tag(repository, reference)
            if details.error:
                raise (NotFound if details.error_kind == "NotFound" else RegistryError)(details.error)
            if artifact is not None:
                shared = sorted(str(t.get("name")) for t in artifact.get("tags") or [] if isinstance(t, dict))
            else:
                shared = browser.tags_on(repository, details.digest)
    except RegistryError as error:
        return failed(request, registry, error, what=f"{repository}:{reference}")
    separator = "@" if DIGEST.match(reference) else ":"
    context.update(
        details=details,
        shared_tags=[t for t in shared if t != reference],
        # The hosts' deploy flow takes this as the image to pull (issue 4).
        pull_reference=f"{registry.host}/{repository}{separator}{reference}",
        pull_by_digest=f"{registry.host}/{repository}@{details.digest}",
        deploy_hosts=deploy_hosts(request.user, registry),
        may_template=access.projects(request.user, "app.manage").exists(),
    )
    return render(request, "registry/tag.html", context)


def deploy_hosts(user: Any, registry: Registry) -> QuerySet[Host]:
    """Hosts ``user`` may deploy to, in the projects this registry is shared with."""
    hosts = Host.objects.filter(enabled=True, project__in=access.projects(user, "host.operate"))
    if not access.is_admin(user):
        hosts = hosts.filter(project__in=registry.projects.all())
    return hosts.select_related("project").order_by("project__name", "name")


# -- deleting -----------------------------------------------------------------------------------


@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, pk: int, repository: str) -> HttpResponse:
    """Confirm (GET), then delete (POST) a tag or an artifact by digest.

    The confirmation lists every tag on the digest, read fresh from the registry;
    the POST refuses if the tag has moved to another digest since.
    """
    registry = registry_for(request, pk)
    try:
        project = delete_grant(request.user, registry, repository)
    except PermissionDenied as refused:
        context = {"registry": registry, "error": str(refused), "what": repository}
        return render(request, "registry/error.html", context, status=403)
    params = request.POST if request.method == "POST" else request.GET
    reference = params.get("reference", "")
    harbor = registry.kind == Registry.Kind.HARBOR
    what = "tag" if harbor and params.get("what") == "tag" and not DIGEST.match(reference) else "artifact"
    back = reverse("registry:repository", args=[registry.pk, repository])
    try:
        check_repository(repository)
        check_reference(reference)
        with Browser(registry, refresh=True) as browser:
            if harbor:
                artifact = browser.harbor_artifact(repository, reference)
                digest = str(artifact["digest"])
                tags = sorted(str(t.get("name")) for t in artifact.get("tags") or [] if isinstance(t, dict))
            else:
                digest = (
                    reference
                    if DIGEST.match(reference)
                    else browser.distribution.digest(repository, reference)
                )
                tags = browser.tags_on(repository, digest)
            if request.method == "GET":
                context = {
                    "registry": registry,
                    "repository": repository,
                    "reference": reference,
                    "digest": digest,
                    "tags": tags,
                    "what": what,
                    "harbor": harbor,
                    "back": back,
                }
                return render(request, "registry/confirm_delete.html", context)
            if request.POST.get("digest") != digest:
                messages.error(
                    request,
                    f"{repository}:{reference} changed since you confirmed; nothing was deleted.",
                )
                return redirect(back)
            if what == "tag":
                browser.harbor.delete_tag(repository, digest, reference)
                browser.forget_harbor_repository(repository, [reference, digest])
            else:
                if harbor:
                    browser.harbor.delete_artifact(repository, digest)
                    browser.forget_harbor_repository(repository, [*tags, digest])
                else:
                    browser.distribution.delete(repository, digest)
                browser.forget_repository(repository, [*tags, digest])
    except RegistryError as error:
        return failed(request, registry, error, what=f"{repository}:{reference}")
    removed = [reference] if what == "tag" else tags
    audit.record(
        f"registry.delete_{what}",
        obj=registry,
        project=project,
        before={"repository": repository, "digest": digest, "tags": tags},
        after={"removed_tags": removed},
    )
    gone = ", ".join(removed) if removed else digest
    messages.success(request, f"Deleted from {repository}: {gone}.")
    return redirect(back)


# -- helpers ------------------------------------------------------------------------------------


def _linkable(names: list[str]) -> list[tuple[str, bool]]:
    """Names as the registry sent them, and whether each may become a link (a valid name)."""
    return [(name, valid_repository(name)) for name in names]


def _query(**params: Any) -> str:
    return "?" + urlencode({k: v for k, v in params.items() if v not in (None, "")})


def _page_size(request: HttpRequest) -> int:
    size = _int_param(request, "page_size", HARBOR_PAGE_SIZES[0])
    return size if size in HARBOR_PAGE_SIZES else HARBOR_PAGE_SIZES[0]


def _harbor_paging(request: HttpRequest, total: int, page: int, size: int) -> dict[str, Any]:
    pages = max(1, math.ceil(total / size))
    q = request.GET.get("q", "").strip()[:100]
    return {
        "total": total,
        "page": page,
        "pages": pages,
        "page_size": size,
        "prev_query": _query(q=q, page=page - 1, page_size=size) if page > 1 else "",
        "next_query": _query(q=q, page=page + 1, page_size=size) if page < pages else "",
    }


def _artifact_row(artifact: dict[str, Any]) -> dict[str, Any]:
    """What the pages show of a Harbor artifact, from its API representation."""
    extra = found if isinstance(found := artifact.get("extra_attrs"), dict) else {}
    references = found if isinstance(found := artifact.get("references"), list) else []
    platforms = [
        "/".join(
            str(ref.get("platform", {}).get(k, ""))
            for k in ("os", "architecture")
            if ref.get("platform", {}).get(k)
        )
        for ref in references
        if isinstance(ref, dict) and isinstance(ref.get("platform"), dict)
    ]
    if not platforms and extra.get("os"):
        platforms = [f"{extra.get('os')}/{extra.get('architecture', '')}"]
    accessories = found if isinstance(found := artifact.get("accessories"), list) else []
    kinds = [str(a.get("type", "")) for a in accessories if isinstance(a, dict)]
    labels = [
        {"name": str(label.get("name", "")), "description": str(label.get("description", ""))}
        for label in artifact.get("labels") or []
        if isinstance(label, dict)
    ]
    return {
        "digest": str(artifact.get("digest", "")),
        "tags": [str(t.get("name", "")) for t in artifact.get("tags") or [] if isinstance(t, dict)],
        "media_type": str(artifact.get("manifest_media_type", "")),
        "size": artifact.get("size") if isinstance(artifact.get("size"), int) else 0,
        "push_time": str(artifact.get("push_time") or ""),
        "pull_time": str(artifact.get("pull_time") or ""),
        "platforms": platforms,
        "labels": labels,
        "scan": images.scan_summary(artifact),
        "signed": any(k.startswith("signature") for k in kinds),
        "sbom": any("sbom" in k for k in kinds),
        "accessories": kinds,
        "annotations": {str(k): str(v) for k, v in (artifact.get("annotations") or {}).items()}
        if isinstance(artifact.get("annotations"), dict)
        else {},
        "created": str(extra.get("created") or ""),
    }
