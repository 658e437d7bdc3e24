#!/usr/bin/env bash
# Web + Celery worker (with embedded beat) for one machine, supervised: if either
# process exits, the other is stopped and this script exits non-zero, so a site whose
# jobs never run is never left serving. Ctrl-C (or SIGTERM) stops both and exits 0.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
VAR="${CRYPTOORACLE_VAR_DIR:-var}"

stopping=0
children=()

GRACE_SECONDS="${DEVSERVER_GRACE_SECONDS:-20}"

alive() {
    for pid in "${children[@]}"; do kill -0 "$pid" 2>/dev/null && return 0; done
    return 1
}

stop_children() {
    # TERM first (Celery finishes its warm shutdown); whatever still runs after the grace
    # period is killed with its own children (a pool child caught mid-replacement can hang).
    for pid in "${children[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for _ in $(seq $((GRACE_SECONDS * 4))); do alive || break; sleep 0.25; done
    if alive; then
        echo "Still running after ${GRACE_SECONDS} s: killing what is left" >&2
        for pid in "${children[@]}"; do
            pkill -KILL -P "$pid" 2>/dev/null
            kill -KILL "$pid" 2>/dev/null
        done
    fi
    for pid in "${children[@]}"; do wait "$pid" 2>/dev/null; done
}

on_signal() {
    stopping=1
    echo "Stopping Crypto Oracle (web and worker)"
    stop_children
    exit 0
}
trap on_signal INT TERM

"$BIN/celery" -A cryptooracle worker --beat --loglevel INFO --queues default,training \
    --concurrency 1 --schedule "$VAR/celerybeat-schedule" &
worker=$!
children+=("$worker")
"$BIN/python" manage.py runserver "$HOST:$PORT" --noreload &
web=$!
children+=("$web")
echo "Crypto Oracle on http://$HOST:$PORT/ (web pid $web, worker pid $worker)"

# wait -n returns when the first child exits (or when a trapped signal arrives).
wait -n "$worker" "$web"
status=$?
[ "$stopping" = 1 ] && exit 0
if ! kill -0 "$worker" 2>/dev/null; then
    echo "The Celery worker exited (status $status): training and forecasts cannot run." >&2
    echo "Stopping the web server too; see the worker's output above." >&2
else
    echo "The web server exited (status $status); stopping the worker." >&2
fi
stop_children
exit $((status == 0 ? 1 : status))
