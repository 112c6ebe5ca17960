"""Settings: environment variables over an embedded default that needs no service.

Embedded default: SQLite under var/, in-memory channel layer, local-memory cache,
Celery tasks run in the portal process. Production switches each piece by
environment (DATABASE_URL, REDIS_URL); see README.md, "Settings".
"""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("PORTAL_VAR_DIR", BASE_DIR / "var"))


def env_flag(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_flag("PORTAL_DEBUG")

SECRET_KEY = os.environ.get("PORTAL_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured(
            "PORTAL_SECRET_KEY is not set; set it (or PORTAL_DEBUG=1 for a development-only key)"
        )
    SECRET_KEY = "development-only-insecure-key"  # noqa: S105 - only ever with DEBUG on

#: Fernet keys, comma separated, newest first: the first encrypts, all decrypt
#: (so a key can be rotated in without losing what the old one wrote).
ENCRYPTION_KEYS = env_list("PORTAL_ENCRYPTION_KEY")

ALLOWED_HOSTS = env_list("PORTAL_ALLOWED_HOSTS", "127.0.0.1,localhost,[::1]")
CSRF_TRUSTED_ORIGINS = env_list("PORTAL_CSRF_TRUSTED_ORIGINS")

# --- Behind a TLS proxy -----------------------------------------------------------
#: The portal's address as hosts reach it (kickstart and phone-home URLs). Unset: the
#: address each request came in on, which behind a proxy may be the proxy's inside one.
PORTAL_BASE_URL = os.environ.get("PORTAL_BASE_URL", "").strip()
if PORTAL_BASE_URL:
    _base = urlsplit(PORTAL_BASE_URL)
    if _base.scheme not in {"http", "https"} or not _base.hostname or _base.query or _base.fragment:
        raise ImproperlyConfigured(
            "PORTAL_BASE_URL must be an http(s) URL such as https://portal.example.com, "
            f"not {PORTAL_BASE_URL!r}"
        )
#: The header the proxy sets to say the browser spoke HTTPS (e.g. HTTP_X_FORWARDED_PROTO, or
#: HTTP_X_FORWARDED_PROTO=https). Only set it when the proxy always overwrites that header:
#: otherwise a client could claim HTTPS itself.
_proxy_ssl_header = os.environ.get("PORTAL_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl_header:
    _header, _, _value = _proxy_ssl_header.partition("=")
    if not _header.startswith("HTTP_") or not _header.replace("_", "").isalnum():
        raise ImproperlyConfigured(
            "PORTAL_PROXY_SSL_HEADER names a request header as Django sees it, "
            f"e.g. HTTP_X_FORWARDED_PROTO, not {_header!r}"
        )
    SECURE_PROXY_SSL_HEADER = (_header.upper(), _value.strip() or "https")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_htmx",
    "csp",
    "channels",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "portal",
    "hosts",
    "registry",
    "alerts",
    "directory",
    "sso",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Deny by default: every view needs a signed-in user unless it is marked
    # @login_not_required; what a signed-in user may do is portal.access's call.
    "django.contrib.auth.middleware.LoginRequiredMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "portal.audit.AuditContextMiddleware",
    # Last, as django-axes asks: turns a locked-out sign-in into the login page's message.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "portal.urls"
ASGI_APPLICATION = "portal.asgi.application"
WSGI_APPLICATION = None

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "portal.access.navigation",
                "portal.live.position_now",
            ],
            # On every page without {% load %}: {{ value|when }}, one way to show a moment
            # (portal.templatetags.dates); {% crumb %}, a step of the breadcrumbs (.crumbs), Clarity's.
            "builtins": ["portal.templatetags.dates", "portal.templatetags.crumbs"],
        },
    },
]

# --- Database: SQLite under var/ unless DATABASE_URL says otherwise -----------
_database_url = os.environ.get("DATABASE_URL", "")
if _database_url:
    try:
        # Connections come from a pool per process (below), not kept per thread: under
        # ASGI every sync_to_async thread held its own for conn_max_age, and a burst left
        # two daphnes holding all of PostgreSQL's 100 slots for minutes.
        _database = dj_database_url.parse(_database_url, conn_max_age=0, conn_health_checks=True)
    except Exception as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a usable database URL: {exc}") from exc
    if _database["ENGINE"] not in {
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    }:
        raise ImproperlyConfigured(
            f"DATABASE_URL names {_database['ENGINE']}; the portal supports PostgreSQL and SQLite"
        )
else:
    VAR_DIR.mkdir(parents=True, exist_ok=True)
    _database = {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(Path(os.environ.get("PORTAL_SQLITE_PATH", VAR_DIR / "portal.sqlite3"))),
        # Kept open by each thread: an SQLite connection is a file handle, not a server's
        # slot, and opening one (with the pragmas below) cost ~4 ms a database call.
        "CONN_MAX_AGE": None,
        # Watchers and daphne write concurrently: wait for the lock, don't fail. WAL lets
        # pages read while a task writes, and with synchronous=NORMAL a commit does not wait
        # for the disk (a power cut may lose the last commits, never corrupt the file); a
        # push to 50 hosts commits ~450 times on its one database thread.
        "OPTIONS": {
            "timeout": 20,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL",
        },
    }
if _database["ENGINE"] == "django.db.backends.postgresql":
    _database.setdefault("OPTIONS", {})["connect_timeout"] = 5
    # psycopg's pool (Django's OPTIONS["pool"]): at most PORTAL_DB_POOL_SIZE connections
    # per process, shared by its threads; a request over that waits for one (up to
    # `timeout`) instead of failing "too many clients". Idle ones close after `max_idle`.
    # CONN_HEALTH_CHECKS makes Django give the pool a check of each connection handed
    # out, so after PostgreSQL restarts the dead ones are replaced instead of answering 500.
    _database["OPTIONS"]["pool"] = {
        "min_size": 1,
        "max_size": int(os.environ.get("PORTAL_DB_POOL_SIZE", "8")),
        "max_idle": 30.0,
        "timeout": 10.0,
    }
DATABASES = {"default": _database}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Redis: channel layer, cache, Celery broker and results -------------------
REDIS_URL = os.environ.get("REDIS_URL", "")
if REDIS_URL:
    CHANNEL_LAYERS = {
        "default": {
            # Redis pub/sub: each process subscribes once to a topic its sockets follow and
            # fans an event out to them itself, so an event costs one PUBLISH whatever the
            # number of browsers, and no group membership is kept in Redis to go stale when
            # a socket dies (the list-based layer did one operation per member: channels_redis#83).
            # portal.channel_layer says what the portal's subclass changes.
            "BACKEND": "portal.channel_layer.PortalChannelLayer",
            "CONFIG": {
                "hosts": [{"address": REDIS_URL, "socket_connect_timeout": 5, "health_check_interval": 15}],
                "prefix": "portal",
            },
        }
    }
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "portal",
            # A bounded pool that waits for a free connection at its limit rather than
            # failing at once (redis-py's default pool raises "Too many connections").
            "OPTIONS": {
                "socket_connect_timeout": 2,
                "socket_timeout": 2,
                "pool_class": "redis.BlockingConnectionPool",
                "max_connections": int(os.environ.get("PORTAL_REDIS_POOL_SIZE", "16")),
                "timeout": 5,
            },
        }
    }
    CELERY_BROKER_URL = REDIS_URL
    # No result backend: the rows in the database say how work went, and the workers'
    # health is judged from their heartbeats (portal.heartbeats), so no result is read.
    CELERY_RESULT_BACKEND: str | None = None
    CELERY_TASK_ALWAYS_EAGER = False
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # Room for a large repository's details (one entry per tag and per digest): at the
    # default 300 entries, dating 1,050 tags culled a third of the cache, the order with it.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
            "OPTIONS": {"MAX_ENTRIES": 20_000},
        }
    }
    # No broker: portal.celery runs each task on a thread of the portal process,
    # so a request never waits for one.
    CELERY_BROKER_URL = "memory://"
    CELERY_RESULT_BACKEND = None
    CELERY_TASK_ALWAYS_EAGER = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A task's message is acknowledged when the task ends, not when it starts, and given back
# to the queue when its worker process dies: work is redone or marked failed by the task
# itself (hosts: a row found "running" by a redelivery), never lost with the worker.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Nobody reads tasks' return values but /healthz's ping (portal.tasks, ignore_result=False):
# not storing them also spares each publish a subscription to the result backend, whose
# retries kept a request 19 s when Redis was down.
CELERY_TASK_IGNORE_RESULT = True
#: Seconds an unacknowledged message (its worker killed outright) waits before Redis gives
#: it to another worker: longer than the longest task, or a task still running is started
#: twice. Longest: a provisioning request cloning its VMs one after another (about 10 min a
#: clone, 10 VMs), before a change's apply on one host (SSH: restarts up to 120 s each) or
#: a VM action (300 s). Rows left meanwhile are swept (hosts.stale_work) well before.
TASK_VISIBILITY_TIMEOUT = int(os.environ.get("PORTAL_TASK_VISIBILITY_TIMEOUT", str(3 * 3600)))
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "socket_connect_timeout": 2,
    "visibility_timeout": TASK_VISIBILITY_TIMEOUT,
}
CELERY_REDIS_SOCKET_CONNECT_TIMEOUT = 2
# Publishing gives up on an unreachable broker within this many seconds (portal.queueing
# also makes it a single try): the request answers 503 rather than hanging.
CELERY_BROKER_CONNECTION_TIMEOUT = 2

# --- Auth ---------------------------------------------------------------------
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = env_flag("PORTAL_SECURE_COOKIES")
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
# Served over HTTPS (PORTAL_SECURE_COOKIES): browsers are told to use nothing else
# (HSTS), and plain http is redirected (behind a proxy, PORTAL_PROXY_SSL_HEADER tells
# Django the browser's request was https; /healthz stays answerable over http).
if SESSION_COOKIE_SECURE:
    SECURE_HSTS_SECONDS = int(os.environ.get("PORTAL_HSTS_SECONDS", str(365 * 24 * 3600)))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env_flag("PORTAL_HSTS_INCLUDE_SUBDOMAINS", True)
    SECURE_HSTS_PRELOAD = env_flag("PORTAL_HSTS_PRELOAD", True)
    SECURE_SSL_REDIRECT = env_flag("PORTAL_SSL_REDIRECT", True)
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]

# --- Content-Security-Policy (django-csp): no inline script, no inline style -------
# Page behaviour lives in static/ files (static/portal/page.js for the small things);
# htmx's indicator style is in portal.css (htmx-config in base.html turns its own off).
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        # Clarity's CSS draws its icons from data: SVGs.
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'", "data:"],
        # 'self' covers the live websocket (ws/wss to the same host) too.
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Brakes: sign-in lockout (django-axes) and throttles on anonymous endpoints --
# The lockout backend comes first: it refuses a locked-out name+address before any
# password is checked. API tokens never pass through authenticate(), so they are
# not locked out with their user's password.
AUTHENTICATION_BACKENDS = [
    "portal.lockout.LockoutBackend",
    "django.contrib.auth.backends.ModelBackend",
    # Sign-in with LDAP / Active Directory, configured by Admins in the portal (directory app):
    # after the local accounts, so those never wait for (or depend on) the directory.
    "directory.backend.DirectoryBackend",
    # Single sign-on with an OpenID Connect provider (sso app): its callback signs people in
    # through this backend itself; here so their sessions find their user.
    "sso.backend.OIDCBackend",
]
#: Failed sign-ins of one user name from one address before both are locked out together.
AXES_FAILURE_LIMIT = max(1, int(os.environ.get("PORTAL_LOGIN_FAILURE_LIMIT", "5")))
AXES_COOLOFF_TIME = timedelta(minutes=max(1, int(os.environ.get("PORTAL_LOGIN_COOLOFF_MINUTES", "15"))))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
# A refused attempt during the cool-off neither extends it nor grows the attempt row.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_CLIENT_IP_CALLABLE = "portal.audit.client_address"
AXES_LOCKOUT_CALLABLE = "portal.lockout.locked_out"
AXES_DISABLE_ACCESS_LOG = True  # sign-ins are in the audit trail already
# Masked in the attempt record (the password always is).
AXES_SENSITIVE_PARAMETERS = ["username", "ip_address", "csrfmiddlewaretoken"]
AXES_VERBOSE = False
#: Throttles (portal.throttle): "requests/seconds" per client address, on Django's cache.
THROTTLE_ENROLL = os.environ.get("PORTAL_THROTTLE_ENROLL", "20/60")
THROTTLE_KICKSTART = os.environ.get("PORTAL_THROTTLE_KICKSTART", "20/60")
THROTTLE_API_TOKEN_FAILURES = os.environ.get("PORTAL_THROTTLE_API_TOKEN_FAILURES", "20/60")
THROTTLE_API_TOKEN_CREATE = os.environ.get("PORTAL_THROTTLE_API_TOKEN_CREATE", "10/3600")
#: Single sign-on's anonymous steps (sso: the start and the provider's callback) per address.
THROTTLE_SSO = os.environ.get("PORTAL_THROTTLE_SSO", "30/60")
#: Seconds one refusal event per address gathers repeats before a new one starts.
REFUSAL_EVENT_WINDOW = max(1, int(os.environ.get("PORTAL_REFUSAL_EVENT_WINDOW", "3600")))
#: Seconds anonymous /healthz answers from the last real check.
HEALTHZ_CACHE_SECONDS = max(0.0, float(os.environ.get("PORTAL_HEALTHZ_CACHE_SECONDS", "5")))

# --- Static files: ours from static/, Clarity's CSS from node_modules ----------
STATIC_URL = "static/"
STATIC_ROOT = Path(os.environ.get("PORTAL_STATIC_ROOT", VAR_DIR / "static"))
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns about a missing root
STATICFILES_DIRS = [
    BASE_DIR / "static",
    ("vendor/clr-ui", BASE_DIR / "node_modules" / "@clr" / "ui"),
    # The container console's terminal (hosts.console).
    ("vendor/xterm", BASE_DIR / "node_modules" / "@xterm" / "xterm"),
    ("vendor/xterm-addon-fit", BASE_DIR / "node_modules" / "@xterm" / "addon-fit"),
    # The last hour's resource charts (hosts.stats).
    ("vendor/uplot", BASE_DIR / "node_modules" / "uplot" / "dist"),
]
# Serve straight from the finders too, so `make run` needs no collectstatic step.
WHITENOISE_USE_FINDERS = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("PORTAL_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

# --- REST API ------------------------------------------------------------------
REST_FRAMEWORK = {
    # A service's Refused answered as JSON, the same sentence the UI shows (portal.refused).
    "EXCEPTION_HANDLER": "portal.api_common.exception_handler",
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "portal.api_auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["portal.api_policy.SignedIn"],
    "DEFAULT_PAGINATION_CLASS": "portal.api_policy.Pages",
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Photon Portal API",
    "DESCRIPTION": "Hosts, vCenters, registries, configuration changes, audit and events. "
    "Authenticate with a personal token: `Authorization: Bearer pp_…` (made under Account → API tokens).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["portal.api_policy.SignedIn"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "portal.api_schema.add_error_responses",
        "portal.api_schema.add_links",
    ],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # Two models have a "status" field: name their enums (else `check --deploy` warns).
    "ENUM_NAME_OVERRIDES": {
        "HostStatusEnum": "hosts.models.host.HostStatus",
        "ChangeStatusEnum": "hosts.models.changes.ChangeStatus",
        "PatchChangeStatusEnum": "hosts.models.patches.PatchChangeStatus",
        "PatchRunStateEnum": "hosts.models.patches.PatchRunState",
    },
    "SECURITY": [{"bearerAuth": []}],
    "APPEND_COMPONENTS": {"securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer"}}},
}

# --- Portal's own --------------------------------------------------------------
#: Seconds between engine health checks (/info), and how many run at once.
HOST_CHECK_INTERVAL = max(1.0, float(os.environ.get("PORTAL_HOST_CHECK_INTERVAL", "15")))
HOST_CHECK_CONCURRENCY = max(1, int(os.environ.get("PORTAL_HOST_CHECK_CONCURRENCY", "16")))
#: A container console with no keystroke for this many seconds is closed (an abandoned tab).
CONSOLE_IDLE_SECONDS = max(5.0, float(os.environ.get("PORTAL_CONSOLE_IDLE_SECONDS", "900")))
#: Seconds between sweeps of work stuck queued or running (hosts.stale_work).
STALE_WORK_INTERVAL = max(1.0, float(os.environ.get("PORTAL_STALE_WORK_INTERVAL", "60")))
#: Seconds between drift checks of hosts' managed files.
DRIFT_INTERVAL = max(10.0, float(os.environ.get("PORTAL_DRIFT_INTERVAL", "900")))
#: Seconds between refreshes of each host's patch status (hosts.patches.schedule).
PATCH_REFRESH_INTERVAL = max(60.0, float(os.environ.get("PORTAL_PATCH_REFRESH_INTERVAL", "21600")))
#: Seconds a patched host may take to come back from its reboot before its run fails.
PATCH_REBOOT_TIMEOUT = max(5.0, float(os.environ.get("PORTAL_PATCH_REBOOT_TIMEOUT", "600")))
#: Registry calls: seconds per read, for a whole answer, and how long answers are cached.
REGISTRY_TIMEOUT = float(os.environ.get("PORTAL_REGISTRY_TIMEOUT", "10"))
REGISTRY_DEADLINE = float(os.environ.get("PORTAL_REGISTRY_DEADLINE", "30"))
REGISTRY_CACHE_SECONDS = int(os.environ.get("PORTAL_REGISTRY_CACHE_SECONDS", "60"))
#: Seconds between syncs of directory users' groups to their roles (directory.watch).
DIRECTORY_SYNC_INTERVAL = max(10.0, float(os.environ.get("PORTAL_DIRECTORY_SYNC_INTERVAL", "900")))
#: How long the audit trail is kept (days); older entries are pruned.
AUDIT_RETENTION_DAYS = int(os.environ.get("PORTAL_AUDIT_RETENTION_DAYS", "365"))

# --- Notifications (alerts) -------------------------------------------------------
#: Seconds in which the same (rule, kind, object) sends one message (README, "Notifications").
ALERT_DEDUP_WINDOW = max(1, int(os.environ.get("PORTAL_ALERT_DEDUP_WINDOW", "600")))
#: A failed send is tried again after this many seconds, then 3 times longer each time...
ALERT_RETRY_BASE = max(0.1, float(os.environ.get("PORTAL_ALERT_RETRY_BASE", "10")))
#: ... until this many attempts were made.
ALERT_RETRY_TRIES = max(1, int(os.environ.get("PORTAL_ALERT_RETRY_TRIES", "5")))
#: Networks a webhook may reach although they are loopback, link-local or reserved
#: (alerts.targets), comma separated CIDRs; a machine the portal manages is refused anyway.
ALERT_ALLOWED_NETWORKS = [
    n.strip() for n in os.environ.get("PORTAL_ALERT_ALLOWED_NETWORKS", "").split(",") if n.strip()
]
#: A digest rule's events go out together every this many minutes.
ALERT_DIGEST_MINUTES = max(1, int(os.environ.get("PORTAL_ALERT_DIGEST_MINUTES", "15")))
#: Seconds between checks for certificates and credentials about to expire (alerts.expiry_check).
ALERT_EXPIRY_INTERVAL = max(1.0, float(os.environ.get("PORTAL_ALERT_EXPIRY_INTERVAL", "86400")))
#: Alert e-mail: through the SMTP server at EMAIL_HOST:EMAIL_PORT when EMAIL_HOST is set,
#: else written to the console (the embedded default sends nothing anywhere).
EMAIL_HOST = os.environ.get("EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = os.environ.get("EMAIL_USE_TLS", "") == "1"
EMAIL_TIMEOUT = 10
EMAIL_BACKEND = (
    "django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = os.environ.get("PORTAL_EMAIL_FROM", "photon-portal@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("PORTAL_LOG_LEVEL", "INFO")},
    "loggers": {
        "daphne": {"level": "WARNING"},
        "django.channels.server": {"level": "WARNING"},
        "celery.app.trace": {"level": "WARNING"},  # one line per /healthz ping otherwise
        # The pool warns at every reconnect attempt while PostgreSQL is away; the requests
        # that cannot get a connection say so themselves.
        "psycopg.pool": {"level": "ERROR"},
        # Seven INFO lines per SSH connection (opened, addresses, auth, channel, closed): a
        # push to 50 hosts wrote 1,150 of them, and what fails is reported by the run itself.
        "asyncssh": {"level": "WARNING"},
    },
}
