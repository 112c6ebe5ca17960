from __future__ import annotations

from django.urls import path

from . import views

app_name = "directory"

urlpatterns = [
    path("", views.settings_page, name="settings"),
    path("test/", views.test_connection, name="test"),
    path("mappings/", views.mapping_add, name="mapping_add"),
    path("mappings/<int:pk>/remove/", views.mapping_remove, name="mapping_remove"),
    path("projects/<int:pk>/groups/", views.project_group_add, name="project_group_add"),
    path(
        "projects/<int:pk>/groups/<int:mapping_pk>/remove/",
        views.project_group_remove,
        name="project_group_remove",
    ),
]
