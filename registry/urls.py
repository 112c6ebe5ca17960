from __future__ import annotations

from django.urls import path

from . import views

app_name = "registry"
# Repository names have slashes; "/-/" can't be part of one (a name component starts
# with a letter or digit), so it separates the repository from what follows.
urlpatterns = [
    path("", views.index, name="index"),
    path("add/", views.add, name="add"),
    path("<int:pk>/", views.registry_page, name="registry"),
    path("<int:pk>/edit/", views.edit, name="edit"),
    path("<int:pk>/remove/", views.remove, name="remove"),
    path("<int:pk>/projects/<str:project>/", views.harbor_project, name="harbor_project"),
    path("<int:pk>/r/<path:repository>/-/tags/<str:reference>/", views.tag, name="tag"),
    path("<int:pk>/r/<path:repository>/-/delete/", views.delete, name="delete"),
    path("<int:pk>/r/<path:repository>/", views.repository_page, name="repository"),
]
