#!/usr/bin/env bash
# Web + Celery worker (with embedded beat) for one machine; Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"

"$BIN/celery" -A cryptooracle worker --beat --loglevel INFO --queues default,training \
    --concurrency 1 --schedule var/celerybeat-schedule &
worker=$!
trap 'kill "$worker" 2>/dev/null; wait "$worker" 2>/dev/null' EXIT INT TERM
echo "Crypto Oracle on http://$HOST:$PORT/ (worker pid $worker)"
"$BIN/python" manage.py runserver "$HOST:$PORT" --noreload
