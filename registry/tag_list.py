"""A repository's tags as its page and the API list them: filtered, ordered, one function for both.

By version costs the tag list alone. Newest first needs every tag's creation date:
``Browser.newest_order`` computes it once per tag list and every page after reads
it from the cache; a page that must not wait for it (``wait=False``) gets a
``pending`` list and shows a placeholder that asks again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .browse import Browser
from .clients.errors import NotFound
from .images import version_key

SORTS = ("version", "newest")
#: Longest filter text taken (tag names are at most 128 characters).
QUERY_LENGTH = 128


@dataclass(frozen=True)
class TagList:
    #: The tags that match ``query``, in order (none while ``pending``).
    tags: list[str] = field(default_factory=list)
    #: Every tag of the repository, matching or not.
    total: int = 0
    sort: str = "version"
    query: str = ""
    #: The catalog names the repository but it has no tags (deleted, not yet garbage-collected).
    gone: bool = False
    #: Newest first is still to be computed.
    pending: bool = False
    #: Tags without a creation date, listed last in newest first.
    undated: int = 0


def clean_sort(sort: str) -> str:
    return sort if sort in SORTS else SORTS[0]


def clean_query(text: str) -> str:
    return text.strip()[:QUERY_LENGTH]


def list_tags(
    browser: Browser, repository: str, *, sort: str = "version", query: str = "", wait: bool = True
) -> TagList:
    """The tags of ``repository`` whose names contain ``query`` (any case), sorted by ``sort``.

    Raises NotFound only for a repository the catalog does not name either; one it
    names whose tag list is gone (404 or ``"tags": null``) is an empty ``gone`` list.
    """
    sort, query = clean_sort(sort), clean_query(query)
    try:
        tags = browser.tags(repository)
    except NotFound:
        if not browser.listed(repository):
            raise
        tags = []
    if not tags:
        return TagList(sort=sort, query=query, gone=True)
    undated = 0
    if sort == "newest":
        order = (
            browser.newest_order(repository, tags) if wait else browser.cached_newest_order(repository, tags)
        )
        if order is None:
            return TagList(total=len(tags), sort=sort, query=query, pending=True)
        ordered, undated = order.tags, order.undated
    else:
        ordered = sorted(tags, key=version_key, reverse=True)
    needle = query.lower()
    matching = [tag for tag in ordered if needle in tag.lower()] if needle else ordered
    return TagList(matching, len(tags), sort, query, undated=undated)
