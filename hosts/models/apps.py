"""Applications' templates: a Compose file per version, kept per project (issue 16)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from portal.models import Project

USER = settings.AUTH_USER_MODEL


class AppTemplate(models.Model):
    """A named application in a project's catalog. What it deploys is its versions' Compose
    files: the newest is what a deploy takes unless one asks for another."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="app_templates")
    name = models.CharField(max_length=100)
    description = models.TextField(blank=True)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["project", "name"], name="app_template_name_per_project")
        ]

    def __str__(self) -> str:
        return self.name


class TemplateVersion(models.Model):
    """One save of a template: its Compose file exactly as given (an export gives these very
    bytes back, comments and key order included), never edited afterwards."""

    template = models.ForeignKey(AppTemplate, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    source = models.TextField()
    #: What changed, in the saver's words (optional).
    note = models.CharField(max_length=200, blank=True)
    created_by = models.ForeignKey(USER, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-number"]
        constraints = [models.UniqueConstraint(fields=["template", "number"], name="template_version_number")]

    def __str__(self) -> str:
        return f"{self.template} v{self.number}"
