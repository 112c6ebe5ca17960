"""What the dashboard and the header show from the apps, registered in their ``ready()``
so the core knows none of them:

- **cards**: one per area (hosts, vSphere, changes, registries), each rendered by its own
  template and kept live: a card names the topics that change it, and the page reads
  the card again (``/dashboard/cards/NAME/``) when one of them speaks;
- **first steps**: the checklist an Admin sees on a new portal, each step ticking itself
  off from the database;
- **badges**: counts beside a section in the header (changes waiting for my approval),
  live the same way as cards.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.urls import reverse


@dataclass(frozen=True)
class Card:
    name: str
    title: str
    #: The section the card's title links to (a URL name).
    url_name: str
    template: str
    #: The card's template context for a user; None hides the card from them.
    build: Callable[[Any], dict[str, Any] | None]
    #: The live topics after which the card is read again.
    topics: Callable[[Any], list[str]] = lambda user: []
    order: int = 50
    #: A card with its own live rows (the hosts' counters) is not read again as a whole.
    refresh: bool = True


@dataclass(frozen=True)
class Step:
    """One step of an Admin's first hour: done once the database says so."""

    label: str
    url_name: str
    done: Callable[[], bool]
    hint: str = ""
    order: int = 50


@dataclass(frozen=True)
class Badge:
    """A count beside a header section, e.g. the changes waiting for my approval."""

    name: str
    #: The header section it sits on (a URL name of ``portal.access.navigation``).
    section: str
    url_name: str
    count: Callable[[Any], int]
    #: Says what the count is: "{n} changes wait for your approval".
    title: str
    topics: Callable[[Any], list[str]] = lambda user: []


@dataclass
class _Registry:
    cards: dict[str, Card] = field(default_factory=dict)
    steps: list[Step] = field(default_factory=list)
    badges: dict[str, Badge] = field(default_factory=dict)


_registry = _Registry()


def register_card(card: Card) -> None:
    _registry.cards[card.name] = card


def register_step(step: Step) -> None:
    if step not in _registry.steps:
        _registry.steps.append(step)


def register_badge(badge: Badge) -> None:
    _registry.badges[badge.name] = badge


@dataclass(frozen=True)
class ShownCard:
    card: Card
    context: dict[str, Any]
    topics: list[str]

    @property
    def refresh_url(self) -> str:
        return reverse("dashboard-card", args=[self.card.name]) if self.card.refresh else ""


def card_for(user: Any, name: str) -> ShownCard | None:
    card = _registry.cards.get(name)
    if card is None:
        return None
    context = card.build(user)
    return None if context is None else ShownCard(card, context, card.topics(user))


def cards(user: Any) -> list[ShownCard]:
    ordered = sorted(_registry.cards.values(), key=lambda c: (c.order, c.name))
    return [shown for c in ordered if (shown := card_for(user, c.name)) is not None]


@dataclass(frozen=True)
class StepState:
    label: str
    url: str
    hint: str
    done: bool


def first_steps() -> list[StepState]:
    """Every step with whether it is done (an Admin's checklist; hidden once all are)."""
    ordered = sorted(_registry.steps, key=lambda s: s.order)
    return [StepState(s.label, reverse(s.url_name), s.hint, s.done()) for s in ordered]


@dataclass(frozen=True)
class ShownBadge:
    badge: Badge
    count: int
    topics: list[str]

    @property
    def id(self) -> str:
        return f"badge-{self.badge.name}"

    @property
    def url(self) -> str:
        return reverse(self.badge.url_name)

    @property
    def refresh_url(self) -> str:
        return reverse("nav-badge", args=[self.badge.name])

    @property
    def title(self) -> str:
        return self.badge.title.format(n=self.count)


def badge_for(user: Any, name: str) -> ShownBadge | None:
    badge = _registry.badges.get(name)
    if badge is None:
        return None
    return ShownBadge(badge, badge.count(user), badge.topics(user))


def badge_on(user: Any, section: str) -> ShownBadge | None:
    """The badge of a header section, if one is registered (shown even at 0: it stays
    subscribed to its topics, so the first approval to wait appears live)."""
    for badge in _registry.badges.values():
        if badge.section == section:
            return badge_for(user, badge.name)
    return None
