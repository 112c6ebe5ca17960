from __future__ import annotations

from django.urls import path

from .views import changes, fleet

app_name = "hosts"
urlpatterns = [
    # --- fleet: hosts and containers ---
    path("", fleet.index, name="index"),
    # --- vSphere: vCenters and VMs ---
    # --- configuration changes ---
    path("changes/", changes.changes, name="changes"),
]
