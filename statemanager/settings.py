"""Settings, all read from the environment with defaults that run the embedded demo."""

import os
from pathlib import Path

import dj_database_url

from core.conf import Conf

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    return int(value) if value else default


def env_float(name: str, default: float) -> float:
    value = os.environ.get(name, "").strip()
    return float(value) if value else default


def env_list(name: str, default: str = "") -> list[str]:
    return [part.strip() for part in os.environ.get(name, default).split(",") if part.strip()]


SECRET_KEY = os.environ.get("SECRET_KEY", "insecure-development-key-change-me")
DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_q",
    "statemanager.apps.StateManagerConfig",
    "connections",
    "apicalls",
    "hosts",
    "blueprints",
    "orders",
]

MIDDLEWARE = [
    "statemanager.middleware.RequestSizeLimit",
    "statemanager.url_text.UnstorableURLText",
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "statemanager.urls"
WSGI_APPLICATION = "statemanager.wsgi.application"

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
            ],
        },
    },
]

# Persistent connections: a thread keeps its connection for DATABASE_CONN_MAX_AGE seconds,
# checked before it is reused, so a request or a django-q2 task does not connect afresh
# (on PostgreSQL a connection costs a server process, ~8 ms and ~1.4 ms of CPU here). Safe
# for every process: django-q2 closes them before it forks a worker, and the engine's
# batch threads close theirs when the batch ends. Not psycopg's pool: a process-wide pool
# would need sizing for every batch, branch and heartbeat thread (a thread past its size
# waits for a connection), and it keeps its connections open across those forks.
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get("DATABASE_URL", f"sqlite:///{BASE_DIR / 'var' / 'statemanager.sqlite3'}"),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60),
        conn_health_checks=env_bool("DATABASE_CONN_HEALTH_CHECKS", True),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets readers run beside the one writer; IMMEDIATE makes a writer wait for the
    # lock (up to the timeout) instead of failing with "database is locked" mid-transaction.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 30,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so worker threads and processes in tests share it; one per test
    # process, so test runs side by side never share a database.
    DATABASES["default"]["TEST"] = {"NAME": str(BASE_DIR / "var" / f"test-{os.getpid()}.sqlite3")}
    (BASE_DIR / "var").mkdir(exist_ok=True)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
# Dates and times as 2026-01-05 10:00:00 on every page (statemanager/formats/en/).
FORMAT_MODULE_PATH = ["statemanager.formats"]
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

DATA_UPLOAD_MAX_MEMORY_SIZE = Conf.from_environ().max_request_bytes

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "statemanager.authentication.TokenAuthentication",  # DRF's, cheaper
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": [
        "core.parsers.JSONParser",
        "core.parsers.FormParser",
        "core.parsers.MultiPartParser",
    ],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "statemanager.api.exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "webhook": os.environ.get("STATE_MANAGER_WEBHOOK_RATE", "6000/minute"),
    },
}

SPECTACULAR_SETTINGS = {
    "TITLE": "State Manager API",
    "DESCRIPTION": "Post orders, watch them move through their blueprints, reprocess them.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["core.api.ReadsTheApi"],
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    # The enums of a connection's keys, named for what they are rather than the key alone.
    "ENUM_NAME_OVERRIDES": {
        "ApiKeyInEnum": "connections.validation.API_KEY_LOCATIONS",
        "OAuth2ClientAuthEnum": "connections.validation.CLIENT_AUTH_METHODS",
        "HmacAlgorithmEnum": "connections.validation.HMAC_ALGORITHMS",
        "HmacEncodingEnum": "connections.validation.HMAC_ENCODINGS",
    },
}

REDIS_URL = os.environ.get("REDIS_URL", "")

# Every STATE_MANAGER_* setting, typed, with its default: core/conf.py.
STATE_MANAGER = Conf.from_environ()

# E-mail, for alert rules: Django's SMTP backend at EMAIL_HOST:EMAIL_PORT unless told.
EMAIL_BACKEND = os.environ.get("EMAIL_BACKEND", "django.core.mail.backends.smtp.EmailBackend")
EMAIL_HOST = os.environ.get("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = os.environ.get("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = env_bool("EMAIL_USE_SSL", False)
EMAIL_TIMEOUT = env_int("EMAIL_TIMEOUT", 10)
DEFAULT_FROM_EMAIL = os.environ.get("STATE_MANAGER_ALERT_FROM", "state-manager@localhost")

Q_CLUSTER = {
    "name": "statemanager",
    "workers": env_int("Q_WORKERS", 3),
    "timeout": STATE_MANAGER.batch_timeout_seconds,
    # retry must exceed timeout so a long batch is never handed out a second time.
    "retry": STATE_MANAGER.batch_timeout_seconds + 600,
    "max_attempts": 1,
    "catch_up": False,
    "save_limit": 250,
    "queue_limit": 50,
    "poll": 1,
    "label": "Task queue",
}
if REDIS_URL:
    Q_CLUSTER["redis"] = REDIS_URL
    # One cache for all processes, so per-token webhook rate limits hold across them.
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}
    }
else:
    Q_CLUSTER["orm"] = "default"

# Every handler masks the secrets (statemanager/logfilters.py), Django's own included: its
# DEFAULT_LOGGING handlers are replaced by masked ones of the same behaviour.
MASKED = ["mask_secrets"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
        "json": {"()": "statemanager.logfilters.JsonLines"},
        "django.server": {
            "()": "django.utils.log.ServerFormatter",
            "format": "[{server_time}] {message}",
            "style": "{",
        },
    },
    "filters": {
        "mask_secrets": {"()": "statemanager.logfilters.MaskSecrets"},
        "refused_without_traceback": {"()": "statemanager.logfilters.RefusedWithoutTraceback"},
        "require_debug_false": {"()": "django.utils.log.RequireDebugFalse"},
        "require_debug_true": {"()": "django.utils.log.RequireDebugTrue"},
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "plain", "filters": MASKED},
        "django.console": {
            "class": "logging.StreamHandler",
            "filters": ["require_debug_true", *MASKED],
        },
        "django.server": {
            "class": "logging.StreamHandler",
            "formatter": "django.server",
            "filters": MASKED,
        },
        "mail_admins": {
            "class": "django.utils.log.AdminEmailHandler",
            "filters": ["require_debug_false", *MASKED],
        },
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "django": {"handlers": ["django.console", "mail_admins"], "level": "INFO"},
        "django.server": {"handlers": ["django.server"], "level": "INFO", "propagate": False},
        "django.db.backends": {"level": "WARNING"},
        # A 403 or 400 is one line; only 5xx bring a traceback.
        "django.request": {"filters": ["refused_without_traceback"]},
    },
}
# LOG_FORMAT=json: every line one JSON object (with order_id, step and attempt where they
# apply), on every handler that writes lines; e-mails to the admins stay text.
LOG_FORMAT = os.environ.get("LOG_FORMAT", "plain").strip().lower()
if LOG_FORMAT == "json":
    for _handler in ("console", "django.console", "django.server"):
        LOGGING["handlers"][_handler]["formatter"] = "json"
