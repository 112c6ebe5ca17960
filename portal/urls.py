from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from hosts.changes import approval_views

from . import account_views, audit_views, project_views, token_views, views, work_views

urlpatterns = [
    path("", views.dashboard, name="dashboard"),
    path("dashboard/cards/<slug:name>/", views.dashboard_card, name="dashboard-card"),
    path("nav/badges/<slug:name>/", views.nav_badge, name="nav-badge"),
    path("accounts/login/", views.PortalLoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("healthz", views.healthz, name="healthz"),
    path("healthz/live", views.healthz_live, name="healthz-live"),
    path("healthz/ready", views.healthz_ready, name="healthz-ready"),
    path("status/", views.status, name="status"),
    path("audit/", audit_views.audit_list, name="audit"),
    path("audit/export.csv", audit_views.audit_export, name="audit-export"),
    path("events/", audit_views.event_list, name="events"),
    path("work/", work_views.my_work, name="work"),
    # The approvals queue is the hosts app's; its place in the portal's menu stays here.
    path("work/approvals/", approval_views.approvals, name="approvals"),
    path("work/approvals/<int:pk>/approve/", approval_views.approve, name="approval-approve"),
    path("work/approvals/<int:pk>/reject/", approval_views.reject, name="approval-reject"),
    path("projects/", project_views.project_list, name="projects"),
    path("projects/new/", project_views.project_create, name="project-create"),
    path("projects/<int:pk>/", project_views.project_detail, name="project-detail"),
    path("projects/<int:pk>/members/", project_views.member_add, name="project-member-add"),
    path(
        "projects/<int:pk>/members/<int:membership_pk>/", project_views.member_change, name="project-member"
    ),
    path("hosts/", include("hosts.urls")),
    path("registries/", include("registry.urls")),
    path("alerts/", include("alerts.urls")),
    path("directory/", include("directory.urls")),
    path("sso/", include("sso.urls")),
    path("account/", account_views.account, name="account"),
    path(
        "account/sign-out-elsewhere/",
        account_views.account_sign_out_elsewhere,
        name="account-sign-out-elsewhere",
    ),
    path("accounts/password/<uidb64>/<token>/", account_views.PasswordSetView.as_view(), name="password-set"),
    path("people/", account_views.people, name="people"),
    path("people/<int:pk>/reset/", account_views.person_reset, name="person-reset"),
    path("people/<int:pk>/active/", account_views.person_active, name="person-active"),
    path("people/<int:pk>/delete/", account_views.person_delete, name="person-delete"),
    path("account/tokens/", token_views.token_list, name="api-tokens"),
    path("account/tokens/<int:pk>/revoke/", token_views.token_revoke, name="api-token-revoke"),
    path("api/", include("portal.api_urls")),
    path("admin/", admin.site.urls),
]

handler404 = "portal.views.not_found"
handler500 = "portal.views.server_error"
