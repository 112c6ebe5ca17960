"""What each engine holds (its containers, images and volumes), as the engines watcher last saw
it: the fleet search (hosts.inventory) answers from these rows instead of asking every engine.

A copy, never the truth: hosts.inventory.keeping writes it from the watcher's snapshots and
events, and nothing else may (an edit would be undone by the next snapshot)."""

from __future__ import annotations

from django.db import models

from hosts.models.host import Host


class EngineObject(models.Model):
    class Kind(models.TextChoices):
        CONTAINER = "container", "Container"
        IMAGE = "image", "Image"
        VOLUME = "volume", "Volume"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="engine_objects")
    kind = models.CharField(max_length=10, choices=Kind.choices)
    #: The engine's own key: a container's or an image's id, a volume's name.
    engine_id = models.CharField(max_length=255)
    #: A container's name, an image's first tag (its short id when untagged), a volume's name.
    name = models.CharField(max_length=255)
    #: A container's image; an image's every tag, one per line.
    image = models.TextField(blank=True)
    #: A container's state (running, exited...); "removed" once an event said it went, kept
    #: until the next snapshot so that a snapshot read before the removal cannot bring it back.
    #: A volume's driver.
    state = models.CharField(max_length=20, blank=True)
    labels = models.JSONField(default=dict)
    #: A container's ports as its host page shows them ("0.0.0.0:8080->80/tcp", "53/udp").
    ports = models.JSONField(default=list)
    #: What a search matches, lowercased, one field per line: the name, the image, each label
    #: as "key=value", each port. One column, so that a search term is one LIKE, not four.
    haystack = models.TextField()
    #: When the engine was last read for this row (a snapshot leaves alone rows newer than it).
    updated = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["host", "kind", "engine_id"], name="engine_object_per_host"),
        ]
        indexes = [models.Index(fields=["kind", "name"], name="engine_object_kind_name")]

    def __str__(self) -> str:
        return f"{self.kind} {self.name} on host {self.host_id}"

    @property
    def short_id(self) -> str:
        return self.engine_id.removeprefix("sha256:")[:12]

    @property
    def running(self) -> bool:
        return self.kind == self.Kind.CONTAINER and self.state == "running"

    @property
    def label_lines(self) -> list[str]:
        return [f"{key}={value}" for key, value in sorted(self.labels.items())]
