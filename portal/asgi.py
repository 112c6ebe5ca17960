"""ASGI entry point: HTTP to Django; websockets through origin and session checks."""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: they load models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.urls import path  # noqa: E402

from hosts.console.consumer import ConsoleConsumer  # noqa: E402
from portal.consumers import LiveConsumer  # noqa: E402
from portal.ws_origin import OriginValidator  # noqa: E402

websocket_urlpatterns = [
    path("ws/live/", LiveConsumer.as_asgi()),
    path("ws/console/<int:host>/<str:container>/", ConsoleConsumer.as_asgi()),
]

application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        # A foreign Origin (another site's page driving the user's browser, or another
        # port or scheme on the portal's name) is refused before the session is looked at.
        "websocket": OriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
