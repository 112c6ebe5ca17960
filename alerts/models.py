"""Where alerts go (channels), which events go there (rules), and what was sent (deliveries)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal import event_kinds
from portal.fields import EncryptedTextField
from portal.models import Event, Project


class Channel(models.Model):
    """A destination. In a project (its Project admins keep it) or global (no project: Admins only)."""

    class Kind(models.TextChoices):
        EMAIL = "email", "E-mail"
        WEBHOOK = "webhook", "Webhook (signed JSON)"
        # Slack's and Mattermost's incoming webhooks take the same body: {"text": ...}.
        SLACK = "slack", "Slack / Mattermost"

    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_channels"
    )
    kind = models.CharField(max_length=10, choices=Kind.choices)
    name = models.CharField(max_length=100)
    #: E-mail channels: addresses, one per line or comma separated.
    recipients = models.TextField(blank=True)
    #: Webhook and Slack channels: where to POST.
    url = models.URLField(max_length=500, blank=True)
    #: The HMAC key of X-Portal-Signature: made by the portal, shown once, never again.
    secret = EncryptedTextField(blank=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    def addresses(self) -> list[str]:
        parts = self.recipients.replace(",", "\n").splitlines()
        return [p.strip() for p in parts if p.strip()]


#: A rule's "within N days" unless it says otherwise; at most MAX_WITHIN_DAYS.
DEFAULT_WITHIN_DAYS = 30
MAX_WITHIN_DAYS = 365


class Rule(models.Model):
    """Events of the chosen kinds (in the rule's project, or anywhere for a global one) go to its channels."""

    project = models.ForeignKey(
        Project, null=True, blank=True, on_delete=models.CASCADE, related_name="alert_rules"
    )
    name = models.CharField(max_length=100)
    kinds = models.JSONField(default=list)
    channels = models.ManyToManyField(Channel, related_name="rules")
    #: Collect the events and send them as one message every ALERT_DIGEST_MINUTES.
    digest = models.BooleanField(default=False)
    #: With "Certificate or credential expiring": how many days ahead the rule wants to hear.
    within_days = models.PositiveSmallIntegerField(default=DEFAULT_WITHIN_DAYS)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name", "id"]

    def __str__(self) -> str:
        return self.name

    @property
    def warns_of_expiry(self) -> bool:
        """It chose expiring certificates and credentials: ``within_days`` applies."""
        return event_kinds.EXPIRING in self.kinds


class ExpiryNotice(models.Model):
    """A rule was told that an item (portal.expiry) expires at ``not_after``: never again for
    that expiry, across runs and restarts. A renewed item has another ``not_after``: told anew."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="expiry_notices")
    item_key = models.CharField(max_length=200)
    not_after = models.DateTimeField()
    event = models.ForeignKey(Event, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["rule", "item_key", "not_after"], name="expiry_notice_once")
        ]

    def __str__(self) -> str:
        return f"{self.item_key} ({self.not_after:%Y-%m-%d}) told to rule {self.rule_id}"


class Delivery(models.Model):
    """One message to one channel: the delivery log. Events folded into it by dedup are listed too."""

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        SENDING = "sending", "Sending"
        RETRYING = "retrying", "Retrying"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed"
        #: A held "back ON" whose host went OFF again before it was due: not sent.
        SKIPPED = "skipped", "Not sent"

    channel = models.ForeignKey(Channel, on_delete=models.CASCADE, related_name="deliveries")
    rule = models.ForeignKey(
        Rule, null=True, blank=True, on_delete=models.SET_NULL, related_name="deliveries"
    )
    events = models.ManyToManyField(Event, related_name="alert_deliveries", blank=True)
    #: The dedup key: (rule, kind, object) within ALERT_DEDUP_WINDOW.
    kind = models.CharField(max_length=40, blank=True)
    object_key = models.CharField(max_length=120, blank=True)
    digest = models.BooleanField(default=False)
    test = models.BooleanField(default=False)
    state = models.CharField(max_length=10, choices=State.choices, default=State.QUEUED, db_index=True)
    #: Not sent before then (a held "back ON", a digest, a retry).
    due = models.DateTimeField(null=True, blank=True)
    #: Seconds before the first retry (ALERT_RETRY_BASE when queued); each next waits 3 times longer.
    retry_base = models.FloatField(default=10.0)
    attempts = models.PositiveIntegerField(default=0)
    last_status = models.CharField(max_length=100, blank=True)
    last_error = models.TextField(blank=True)
    #: Every attempt: {"at", "status", "answer"} (the answer's first 500 characters).
    log = models.JSONField(default=list)
    created = models.DateTimeField(auto_now_add=True, db_index=True)
    updated = models.DateTimeField(auto_now=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created", "-id"]
        indexes = [models.Index(fields=["rule", "channel", "kind", "object_key", "created"])]

    def __str__(self) -> str:
        return f"delivery {self.pk} to {self.channel_id}"


class EmailOptOut(models.Model):
    """A person who asked for no alert e-mail: their address is left out of every e-mail channel."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="alert_opt_out"
    )
    created = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"no alert e-mail for {self.user_id}"
