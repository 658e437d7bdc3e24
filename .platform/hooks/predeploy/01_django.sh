#!/bin/bash
# Elastic Beanstalk, every instance, every deployment (new instances too), after the
# platform has installed requirements.txt into the staging virtualenv and before the app
# moves to /var/app/current.
#
# collectstatic runs here, on each instance, because the manifest it writes lives on the
# instance's own disk: an instance without it answers 500 for every page. The migration is
# not here: it runs once per deployment as a leader_only container command
# (.ebextensions/01_django.config): leader_only is where EB documents which instance leads.
set -euo pipefail

# Hooks do not see the environment properties; the platform's get-config prints them.
GET_CONFIG=${EB_GET_CONFIG:-/opt/elasticbeanstalk/bin/get-config}
if [ -x "$GET_CONFIG" ]; then
    eval "$("$GET_CONFIG" --output json environment \
        | python3 -c 'import json, shlex, sys
for key, value in json.load(sys.stdin).items():
    print(f"export {key}={shlex.quote(value)}")')"
fi

# The staging virtualenv the platform built (one per platform version).
if [ -z "${VIRTUAL_ENV:-}" ]; then
    # shellcheck disable=SC1090
    source "$(ls -d /var/app/venv/*/bin | head -n 1)/activate"
fi

python manage.py collectstatic --noinput
python manage.py check --deploy --fail-level ERROR
