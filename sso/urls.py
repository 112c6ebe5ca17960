from __future__ import annotations

from django.contrib.auth.decorators import login_not_required
from django.urls import path

from . import signin_views, views

app_name = "sso"

urlpatterns = [
    path("", views.settings_page, name="settings"),
    path("test/", views.test_provider, name="test"),
    path("mappings/", views.mapping_add, name="mapping_add"),
    path("mappings/<int:pk>/remove/", views.mapping_remove, name="mapping_remove"),
    # The code flow's two steps are reached before anyone is signed in.
    path("authenticate/", login_not_required(signin_views.start), name="authenticate"),
    path("callback/", login_not_required(signin_views.callback), name="callback"),
    path("button/", login_not_required(signin_views.button), name="button"),
]
