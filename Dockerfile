# syntax=docker/dockerfile:1
# Crypto Oracle's production image: the hashed production requirements (tensorflow-cpu) in a
# virtualenv built in the first stage, copied into a slim runtime that runs as a non-root user.
# One image for every process; docker-compose.yml and heroku.yml pick the command.
ARG PYTHON_VERSION=3.11

FROM python:${PYTHON_VERSION}-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY requirements.txt /tmp/requirements.txt
# Wheels only: nothing compiles, so the runtime needs no compiler and no headers.
RUN /opt/venv/bin/pip install --require-hashes --only-binary :all: -r /tmp/requirements.txt

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=cryptooracle.settings \
    DJANGO_RUNTIME_ENVIRONMENT=production \
    CRYPTOORACLE_VAR_DIR=/app/var \
    OMP_NUM_THREADS=2 \
    PORT=8000
# LightGBM's wheel links the system's OpenMP runtime (libgomp.so.1), which slim images lack.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
# The code stays root-owned (read-only to the app); only the data folders are the app's, and
# var/ (beat schedule, locks) is writable by anyone, like /tmp: Heroku's container stack runs
# the image as a user of its own.
COPY . .
# The static manifest is part of the image, so every container serves the same one. The
# values below exist for this one command only: the settings refuse production without them.
RUN DJANGO_SECRET_KEY=collectstatic-at-build-time-only-not-a-real-secret \
    DJANGO_ALLOWED_HOSTS=localhost \
    CRYPTOORACLE_ALLOW_EMBEDDED=1 \
    ARTIFACTS_LOCAL_OK=1 \
    CRYPTOORACLE_VAR_DIR=/tmp/build-var \
    python manage.py collectstatic --noinput \
    && rm -rf /tmp/build-var \
    && mkdir -p var model_weights scalers data \
    && chown -R app:app var model_weights scalers data \
    && chmod 1777 var
USER app
EXPOSE 8000
CMD ["sh", "-c", "exec gunicorn cryptooracle.wsgi --bind 0.0.0.0:${PORT}"]
