"""Settings for Crypto Oracle, read from the environment (see README, "Settings").

Nothing set gives the embedded default for one laptop: a SQLite file and a
Celery broker on the local filesystem, so web and worker run with no server.
``DATABASE_URL`` switches to PostgreSQL, ``REDIS_URL`` moves Celery (and the
cache) to Redis.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from cryptooracle import artifact_storage
from cryptooracle.cache import redis_cache, redis_ssl_options
from cryptooracle.checks import DEVELOPMENT_SECRET_KEY
from cryptooracle.env import Env
from cryptooracle.logs import logging_config

env = Env()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = env.path("CRYPTOORACLE_VAR_DIR", BASE_DIR / "var")

RUNTIME_ENVIRONMENT = env.choice(
    "DJANGO_RUNTIME_ENVIRONMENT", "development", ("development", "production")
)
PRODUCTION = RUNTIME_ENVIRONMENT == "production"
# Folders the embedded default (SQLite, file cache, filesystem broker, file locks) writes to.
# They are created at the end of this module, so every entry point (manage.py, Celery,
# gunicorn, tests) finds them: a fresh clone has no var/ and SQLite cannot create folders.
_EMBEDDED_DIRS: list[Path] = []

DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)
_secret = env.str("DJANGO_SECRET_KEY")
if PRODUCTION:
    if DEBUG:
        raise ImproperlyConfigured(
            "DJANGO_RUNTIME_ENVIRONMENT=production refuses DJANGO_DEBUG=true."
        )
    if not _secret or len(_secret) < 32:
        raise ImproperlyConfigured(
            "DJANGO_RUNTIME_ENVIRONMENT=production needs DJANGO_SECRET_KEY "
            "(at least 32 characters)."
        )
# The development key is public (it is in this file): signed cookies and password-reset
# tokens made with it can be forged, so a site without DEBUG never runs on it.
if not DEBUG and (not _secret or _secret == DEVELOPMENT_SECRET_KEY):
    raise ImproperlyConfigured(
        "DJANGO_DEBUG is off but DJANGO_SECRET_KEY is unset or the public development key; "
        "set DJANGO_SECRET_KEY to a long random value "
        "(python -c 'import secrets; print(secrets.token_urlsafe(50))')."
    )
SECRET_KEY = _secret or DEVELOPMENT_SECRET_KEY

ALLOWED_HOSTS = env.list(
    "DJANGO_ALLOWED_HOSTS", [] if PRODUCTION else ["127.0.0.1", "localhost", "[::1]", "testserver"]
)
if PRODUCTION and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_RUNTIME_ENVIRONMENT=production needs DJANGO_ALLOWED_HOSTS.")
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI and Redoc assets from the wheel, not a CDN
    "django_celery_results",
    "health_check",
    "axes",
    "predictor",
]

MIDDLEWARE = [
    "cryptooracle.middleware.RequestIdMiddleware",
    # Before anything validates the Host header or redirects to https (see its docstring).
    "cryptooracle.middleware.HealthCheckMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 page.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "cryptooracle.urls"
WSGI_APPLICATION = "cryptooracle.wsgi.application"
ASGI_APPLICATION = "cryptooracle.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

# --- Database -----------------------------------------------------------------
_database_url = env.str("DATABASE_URL")
if _database_url:
    try:
        _db = dj_database_url.parse(_database_url, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from None
    if _db.get("ENGINE") not in (
        "django.db.backends.postgresql",
        "django.db.backends.sqlite3",
    ):
        raise ImproperlyConfigured(
            f"DATABASE_URL scheme gives engine {_db.get('ENGINE')!r}; "
            "use postgres://… or sqlite:///…"
        )
else:
    _sqlite_path = env.path("SQLITE_PATH", VAR_DIR / "cryptooracle.sqlite3")
    _EMBEDDED_DIRS.append(_sqlite_path.parent)
    _db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(_sqlite_path)}
if _db["ENGINE"] == "django.db.backends.sqlite3":
    # WAL lets the web process read while a worker writes; IMMEDIATE avoids
    # "database is locked" upgrades in the middle of a transaction.
    _db.setdefault("OPTIONS", {}).update(
        {"timeout": 30, "transaction_mode": "IMMEDIATE", "init_command": "PRAGMA journal_mode=WAL;"}
    )
DATABASES = {"default": _db}
# SQLite, the filesystem broker and the file cache are one machine's: on a platform with
# several dynos or instances (or an ephemeral disk) each would have its own database and
# queue. Production refuses them unless a single-machine install says it means it.
ALLOW_EMBEDDED = env.bool("CRYPTOORACLE_ALLOW_EMBEDDED", default=False)
if PRODUCTION and not ALLOW_EMBEDDED and _db["ENGINE"] == "django.db.backends.sqlite3":
    raise ImproperlyConfigured(
        "DJANGO_RUNTIME_ENVIRONMENT=production refuses SQLite: set DATABASE_URL=postgres://… "
        "(or CRYPTOORACLE_ALLOW_EMBEDDED=1 for a single machine)."
    )
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery -------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL")
# rediss:// (Heroku Redis, ElastiCache in transit): TLS for the broker, the cache and the
# update locks alike. Certificates are checked unless REDIS_SSL_CERT_REQS says otherwise
# (Heroku Redis presents a self-signed one: "none" there).
REDIS_SSL_CERT_REQS = env.choice(
    "REDIS_SSL_CERT_REQS", "required", ("required", "optional", "none")
)
REDIS_SSL_CA_CERTS = env.str("REDIS_SSL_CA_CERTS")
# Keyword arguments for every redis.Redis the project makes itself (the update locks).
REDIS_CLIENT_KWARGS = redis_ssl_options(REDIS_URL, REDIS_SSL_CERT_REQS, REDIS_SSL_CA_CERTS)
if PRODUCTION and not ALLOW_EMBEDDED and not REDIS_URL:
    raise ImproperlyConfigured(
        "DJANGO_RUNTIME_ENVIRONMENT=production refuses the filesystem broker and file cache: "
        "set REDIS_URL=redis://… or rediss://… (or CRYPTOORACLE_ALLOW_EMBEDDED=1 for a single "
        "machine)."
    )
if REDIS_URL:
    CACHES = {"default": redis_cache(REDIS_URL, REDIS_CLIENT_KWARGS)}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, object] = {"visibility_timeout": 6 * 3600}
    if REDIS_CLIENT_KWARGS:
        CELERY_BROKER_USE_SSL = redis_ssl_options(
            REDIS_URL, REDIS_SSL_CERT_REQS, REDIS_SSL_CA_CERTS, for_kombu=True
        )
        # Results live in the database; this keeps TLS if they ever move to Redis.
        CELERY_REDIS_BACKEND_USE_SSL = CELERY_BROKER_USE_SSL
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    # kombu's filesystem transport: a directory is the queue, no server needed. Its
    # exchange table ("control") would otherwise land in the working directory.
    _broker_dir = VAR_DIR / "celery-broker"
    _control_dir = VAR_DIR / "celery-control"
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "control_folder": str(_control_dir),
        "store_processed": False,
    }
    _EMBEDDED_DIRS += [VAR_DIR / "cache", VAR_DIR / "locks", _broker_dir, _control_dir]
CELERY_RESULT_BACKEND = "django-db"
CELERY_RESULT_EXTENDED = True
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", 6 * 3600, minimum=1)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", 6 * 3600 + 300, minimum=1)
if CELERY_TASK_TIME_LIMIT <= CELERY_TASK_SOFT_TIME_LIMIT:
    raise ImproperlyConfigured("CELERY_TASK_TIME_LIMIT must exceed CELERY_TASK_SOFT_TIME_LIMIT.")
# Worker children that ran forecasts or evaluations keep models and fragment: replace one
# after this many tasks, or after a task that took its peak RSS past this many KiB. The
# peak counts the pages shared with the parent, which has TensorFlow loaded: a fresh
# child starts at ~770 MiB (docs/benchmarks.md, "Memory"), so the bound leaves ~110 MiB
# for models and an evaluation. 0: no bound, the default outside production (a laptop has
# no dyno limit, and replacing the child after each training only slows `make run`).
CELERY_WORKER_MAX_TASKS_PER_CHILD = (
    env.int("CELERY_WORKER_MAX_TASKS_PER_CHILD", 100 if PRODUCTION else 0, minimum=0) or None
)
CELERY_WORKER_MAX_MEMORY_PER_CHILD = (
    env.int("CELERY_WORKER_MAX_MEMORY_PER_CHILD", 900_000 if PRODUCTION else 0, minimum=0) or None
)

# --- Live forecasts (POST /api/predict) ---------------------------------------------------
# On, the web sends each forecast to a default-queue worker and waits for its answer, so no
# web process loads TensorFlow (a gunicorn worker starts at ~240 MiB RSS; one forecast
# in-process takes it to ~900 MiB, docs/benchmarks.md). Off, the web forecasts in-process:
# the laptop default, where one machine has the memory and an answer needs no broker trip.
# The web waits PREDICT_TIMEOUT_SECONDS for the worker (keep it under GUNICORN_TIMEOUT),
# then answers 504; a message no worker took by then is dropped unrun.
PREDICT_IN_WORKER = env.bool("PREDICT_IN_WORKER", default=PRODUCTION)
PREDICT_TIMEOUT_SECONDS = env.float("PREDICT_TIMEOUT_SECONDS", 30.0, minimum=0.1)

# --- Artifacts and data -------------------------------------------------------------
MODEL_WEIGHTS_DIR = env.path("MODEL_WEIGHTS_DIR", BASE_DIR / "model_weights")
SCALERS_DIR = env.path("SCALERS_DIR", BASE_DIR / "scalers")
DATA_DIR = env.path("DATA_DIR", BASE_DIR / "data")
# With a bucket, trained models and scalers live on S3 (or an S3-compatible store at
# ARTIFACTS_ENDPOINT_URL), so the web reads what any worker trained. Credentials come
# from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or the instance role, never from here.
ARTIFACTS_BUCKET = env.str("ARTIFACTS_BUCKET")
ARTIFACTS_PREFIX = env.str("ARTIFACTS_PREFIX", "artifacts/") or ""
ARTIFACTS_REGION = env.str("ARTIFACTS_REGION")
ARTIFACTS_ENDPOINT_URL = env.str("ARTIFACTS_ENDPOINT_URL")
ARTIFACTS_ENCRYPTION = env.str("ARTIFACTS_ENCRYPTION")
ARTIFACTS_KMS_KEY_ID = env.str("ARTIFACTS_KMS_KEY_ID")
if ARTIFACTS_ENCRYPTION not in (None, *artifact_storage.ENCRYPTIONS):
    raise ImproperlyConfigured(
        f"Environment variable ARTIFACTS_ENCRYPTION={ARTIFACTS_ENCRYPTION!r} must be one of "
        f"{', '.join(artifact_storage.ENCRYPTIONS)}."
    )
if ARTIFACTS_KMS_KEY_ID and ARTIFACTS_ENCRYPTION != "aws:kms":
    raise ImproperlyConfigured("ARTIFACTS_KMS_KEY_ID needs ARTIFACTS_ENCRYPTION=aws:kms.")
if PRODUCTION and not ARTIFACTS_BUCKET and not env.bool("ARTIFACTS_LOCAL_OK", default=False):
    # A dyno's disk is ephemeral and no two instances share one: a model trained by the
    # worker would be "artifact file missing" on the web.
    raise ImproperlyConfigured(
        "DJANGO_RUNTIME_ENVIRONMENT=production refuses local artifact folders "
        "(MODEL_WEIGHTS_DIR, SCALERS_DIR): set ARTIFACTS_BUCKET, or ARTIFACTS_LOCAL_OK=1 "
        "when every process shares one persistent disk."
    )

# --- Internationalisation: every time is UTC ------------------------------------------
LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

# --- Static files ------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", BASE_DIR / "staticfiles")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    # Trained models: <id>.keras and <id>.manifest.json; scalers: <id>.json (JSON, never pickle).
    **artifact_storage.artifact_storages(
        weights_dir=MODEL_WEIGHTS_DIR,
        scalers_dir=SCALERS_DIR,
        bucket=ARTIFACTS_BUCKET,
        prefix=ARTIFACTS_PREFIX,
        region=ARTIFACTS_REGION,
        endpoint_url=ARTIFACTS_ENDPOINT_URL,
        encryption=ARTIFACTS_ENCRYPTION,
        kms_key_id=ARTIFACTS_KMS_KEY_ID,
    ),
    "staticfiles": {
        "BACKEND": (
            "whitenoise.storage.CompressedManifestStaticFilesStorage"
            if PRODUCTION
            else "django.contrib.staticfiles.storage.StaticFilesStorage"
        )
    },
}

# --- Logins: the page, the admin and POST /api/auth/token/ all lock out guessing ----------
# django-axes counts failures per user name and client address (NUM_PROXIES decides the
# address, as for the throttles): AXES_FAILURE_LIMIT wrong passwords lock that pair out
# for AXES_COOLOFF_MINUTES; a success resets the count. Per pair, not per address alone,
# so many people behind one NAT (or a proxy count set wrong) do not lock each other out.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "cryptooracle.clientip.client_ip"
AXES_VERBOSE = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- REST API: reads public, writes need a user, JSON bodies only ---------------
# Proxies in front of the app that append to X-Forwarded-For (Heroku 1, EB with its load
# balancer and nginx 2); 0 trusts only the socket's peer. Throttles and login lockouts key
# on the client this gives (cryptooracle/clientip.py).
NUM_PROXIES = env.int("DJANGO_NUM_PROXIES", 0, minimum=0)
REST_FRAMEWORK = {
    # Token first, so an anonymous write is answered 401 with "WWW-Authenticate: Token".
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # JSON only, at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes: never pickles, numpy files or forms.
    "DEFAULT_PARSER_CLASSES": ["predictor.api.parsers.BoundedJSONParser"],
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_THROTTLE_RATES": {"predict": env.str("API_PREDICT_RATE") or "60/minute"},
    "NUM_PROXIES": NUM_PROXIES,
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Crypto Oracle API",
    "DESCRIPTION": "Markets and candles, training sessions, predictions, evaluation reports "
    "and single forecasts. Reads are public; writes need a user (token or session).",
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": "/api/",
    # Paper trading's holding modes and a session's training mode are both called "mode".
    "ENUM_NAME_OVERRIDES": {
        "HoldingModeEnum": "predictor.ml.evaluation.engine.MODES",
        "ModeEnum": "predictor.models.SessionMode",  # the name clients already know
    },
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # No badge fetched from validator.swagger.io: the docs work offline.
    "SWAGGER_UI_SETTINGS": {
        "deepLinking": True,
        "persistAuthorization": True,
        "validatorUrl": None,
    },
}

if PRODUCTION:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    # The load balancer's checker speaks plain HTTP to the instance.
    SECURE_REDIRECT_EXEMPT = [r"^health/$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", 3600, minimum=0)
    # Both bind every subdomain (and, preloaded, browsers' built-in lists) to HTTPS for
    # a long time: a choice for the domain's owner, so off unless set.
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
    SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", False)
    SECURE_CONTENT_TYPE_NOSNIFF = True

# JSON lines on stdout for the platform's log search in production, plain text on a
# laptop; every record carries the request id (cryptooracle/logs.py).
LOG_FORMAT = env.choice("DJANGO_LOG_FORMAT", "json" if PRODUCTION else "plain", ("json", "plain"))
LOGGING = logging_config(
    json=LOG_FORMAT == "json", level=(env.str("DJANGO_LOG_LEVEL") or "INFO").upper()
)

# --- Live market data (update_stocks, beat schedule, bulk download) ---------------
# Base URLs are settings so tests point them at a local server; the CoinAPI key
# lives in the environment only, never in the repository.
BINANCE_API_URL = env.str("BINANCE_API_URL") or "https://api.binance.com"
BINANCE_FUTURES_API_URL = env.str("BINANCE_FUTURES_API_URL") or "https://fapi.binance.com"
COINAPI_URL = env.str("COINAPI_URL") or "https://rest.coinapi.io"
COINAPI_KEY = env.str("COINAPI_KEY") or ""
BINANCE_VISION_URL = env.str("BINANCE_VISION_URL") or "https://data.binance.vision"
CRYPTODATADOWNLOAD_URL = env.str("CRYPTODATADOWNLOAD_URL") or "https://www.cryptodatadownload.com"
MARKET_DATA_TIMEOUT_SECONDS = env.int("MARKET_DATA_TIMEOUT_SECONDS", 30, minimum=1)
MARKET_DATA_RETRY_ATTEMPTS = env.int("MARKET_DATA_RETRY_ATTEMPTS", 5, minimum=1)
MARKET_DATA_RETRY_SECONDS = env.int("MARKET_DATA_RETRY_SECONDS", 120, minimum=1)
# A tracked market with no candles yet starts this far back, at this interval.
UPDATE_DEFAULT_INTERVAL = env.str("UPDATE_DEFAULT_INTERVAL") or "1m"
UPDATE_BACKFILL_HOURS = env.int("UPDATE_BACKFILL_HOURS", 24, minimum=1)
# The one place the schedule is defined: update every tracked market this often.
UPDATE_SCHEDULE_SECONDS = env.int("UPDATE_SCHEDULE_SECONDS", 60, minimum=1)
CELERY_BEAT_SCHEDULE = {
    "update-tracked-markets": {
        "task": "predictor.tasks.update_tracked_markets",
        "schedule": float(UPDATE_SCHEDULE_SECONDS),
        # A run that could not start before the next one is due is dropped, not queued up.
        "options": {"queue": "default", "expires": UPDATE_SCHEDULE_SECONDS},
    }
}

# θ is not chosen on a validation split with fewer real (gap-free) forecasts than this
# (predictor.ml.evaluation.report.MIN_REAL_VALIDATION_FORECASTS is the same default).
EVALUATION_MIN_VALIDATION_FORECASTS = env.int("EVALUATION_MIN_VALIDATION_FORECASTS", 100, minimum=1)

# --- Training sessions -------------------------------------------------------------------
# A running session writes a heartbeat this often; one silent for TRAINING_STALE_SECONDS
# (its worker was killed) is marked failed by the reaper, which beat runs this often.
TRAINING_HEARTBEAT_SECONDS = env.float("TRAINING_HEARTBEAT_SECONDS", 5.0, minimum=0.1)
TRAINING_STALE_SECONDS = env.float("TRAINING_STALE_SECONDS", 60.0, minimum=1.0)
TRAINING_REAP_SECONDS = env.int("TRAINING_REAP_SECONDS", 30, minimum=1)
CELERY_BEAT_SCHEDULE["reap-training-sessions"] = {
    "task": "predictor.tasks.reap_training_sessions",
    "schedule": float(TRAINING_REAP_SECONDS),
    "options": {"queue": "default", "expires": TRAINING_REAP_SECONDS},
}

# --- Notifications ----------------------------------------------------------------------
# Training sessions ending, paper positions and failed scheduled tasks are POSTed here as
# JSON (Slack's "text", Discord's "content"); empty: no notifications.
NOTIFY_WEBHOOK_URL = env.url("NOTIFY_WEBHOOK_URL")
NOTIFY_TIMEOUT_SECONDS = env.float("NOTIFY_TIMEOUT_SECONDS", 5.0, minimum=0.1)
NOTIFY_MAX_RETRIES = env.int("NOTIFY_MAX_RETRIES", 5, minimum=0)

# --- Web pages --------------------------------------------------------------------------
# Plotly.js is served from the installed plotly package (predictor/staticfinders.py),
# so the pages need no CDN and no committed copy of plotly.min.js.
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "predictor.staticfinders.PlotlyJsFinder",
]

# --- Pages -----------------------------------------------------------------------------
# The market coverage (candle counts) pages show is cached this long (0: never), keyed by
# every market's candles_token: a candle write makes it recount, a timer need not.
COVERAGE_CACHE_SECONDS = env.int("COVERAGE_CACHE_SECONDS", 3600, minimum=0)
# Coarser bars resampled from stored candles, and the index page's price chart, are cached
# this long (0: never). Keyed by the market's candles_token, which every candle write
# replaces: a cached read is never stale, only evicted.
CANDLE_CACHE_SECONDS = env.int("CANDLE_CACHE_SECONDS", 3600, minimum=0)

for _folder in _EMBEDDED_DIRS:
    try:
        _folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ImproperlyConfigured(
            f"Cannot create {_folder} for the embedded default ({exc.strerror}); "
            "set CRYPTOORACLE_VAR_DIR to a writable folder, or DATABASE_URL and REDIS_URL."
        ) from None
