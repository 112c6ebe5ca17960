from __future__ import annotations

from django.urls import path

from . import views

app_name = "hosts"
urlpatterns = [
    path("", views.index, name="index"),
    path("changes/", views.changes, name="changes"),
]
