from __future__ import annotations

from django.urls import path

from . import views

app_name = "alerts"
urlpatterns = [
    path("", views.index, name="index"),
    path("email/", views.email_choice, name="email"),
    path("global/", views.scope_global, name="global"),
    path("global/channels/", views.channel_create, name="global-channel-create"),
    path("global/rules/", views.rule_create, name="global-rule-create"),
    path("projects/<int:pk>/", views.scope_project, name="project"),
    path("projects/<int:pk>/channels/", views.channel_create, name="project-channel-create"),
    path("projects/<int:pk>/rules/", views.rule_create, name="project-rule-create"),
    path("channels/<int:pk>/", views.channel_detail, name="channel"),
    path("channels/<int:pk>/test/", views.channel_test, name="channel-test"),
    path("channels/<int:pk>/delete/", views.channel_delete, name="channel-delete"),
    path("rules/<int:pk>/delete/", views.rule_delete, name="rule-delete"),
]
