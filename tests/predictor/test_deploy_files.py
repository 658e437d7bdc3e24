"""The deployment files name real modules, commands and flags, and keep the platforms' rules.

Heroku's root Procfile, Elastic Beanstalk's two Procfiles, the EB hook and config, the hashed
requirements, the Dockerfile and docker-compose.yml: none of them runs in the test suite's
usual paths, so a typo would surface only on a platform. These tests parse each file and check
it against the code it names (gunicorn's and Celery's own option parsers, Django's commands,
the Celery app's queues).
"""

from __future__ import annotations

import importlib
import json
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from django.core.management import get_commands

from tests.predictor.deploy_files import (
    ROOT,
    argv_of,
    dockerfile,
    normalize,
    procfile,
    requirements,
)

HEROKU = ROOT / "Procfile"
EB_WEB = ROOT / "deploy" / "eb" / "Procfile.web"
EB_WORKER = ROOT / "deploy" / "eb" / "Procfile.worker"
HOOK = ROOT / ".platform" / "hooks" / "predeploy" / "01_django.sh"
DEV_ONLY = {"pytest", "ruff", "mypy", "playwright", "schemathesis", "ipykernel", "moto"}


def _check_gunicorn(argv: list[str]) -> None:
    from gunicorn.config import Config

    assert argv[0] == "gunicorn"
    parsed = Config().parser().parse_args(argv[1:])  # exits on an unknown flag
    module, _, attribute = parsed.args[0].partition(":")
    assert module == "cryptooracle.wsgi"
    wsgi = importlib.import_module(module)
    assert callable(getattr(wsgi, attribute or "application"))


def _check_celery(argv: list[str]) -> str:
    """Flags against the subcommand's own options, queues against the app's; the subcommand."""
    from celery.bin.beat import beat
    from celery.bin.worker import worker

    from cryptooracle.celery import app

    assert argv[:3] == ["celery", "-A", "cryptooracle"]
    command = {"worker": worker, "beat": beat}[argv[3]]
    known = {opt for param in command.params for opt in param.opts}
    flags = [arg for arg in argv[4:] if arg.startswith("-")]
    assert flags, argv
    assert set(flags) <= known, set(flags) - known
    if "--queues" in argv:
        queues = argv[argv.index("--queues") + 1].split(",")
        assert set(queues) <= {queue.name for queue in app.conf.task_queues}
    return str(argv[3])


def _check_process(argv: list[str]) -> str:
    if argv[0] == "gunicorn":
        _check_gunicorn(argv)
        return "gunicorn"
    if argv[:2] == ["python", "manage.py"]:
        assert argv[2] in get_commands()
        return f"manage.py {argv[2]}"
    return _check_celery(argv)


@pytest.mark.parametrize("path", [HEROKU, EB_WEB, EB_WORKER], ids=lambda path: path.name)
def test_every_procfile_process_runs_a_real_command(path: Path) -> None:
    kinds = {name: _check_process(argv) for name, argv in procfile(path).items()}
    assert kinds["web"] == "gunicorn"


def test_heroku_procfile_migrates_on_release_and_runs_each_worker_once() -> None:
    processes = procfile(HEROKU)
    assert set(processes) == {"release", "web", "worker", "training", "beat"}
    assert processes["release"] == ["python", "manage.py", "migrate", "--noinput"]
    assert "0.0.0.0:8000" in processes["web"]  # ${PORT:-8000}
    assert processes["training"][processes["training"].index("--queues") + 1] == "training"


def test_eb_web_procfile_has_only_the_web_process() -> None:
    # EB runs (and restarts) every Procfile process on every instance behind the balancer.
    assert list(procfile(EB_WEB)) == ["web"]
    assert "127.0.0.1:8000" in procfile(EB_WEB)["web"]  # where EB's nginx proxies to


def test_eb_worker_procfile_has_beat_once_and_no_release() -> None:
    processes = procfile(EB_WORKER)
    assert set(processes) == {"web", "worker", "training", "beat"}
    beats = [argv for argv in processes.values() if argv[3:4] == ["beat"]]
    assert len(beats) == 1


def test_requirements_are_pinned_hashed_and_production_has_no_dev_tools() -> None:
    production = requirements(ROOT / "requirements.txt")
    development = requirements(ROOT / "requirements-dev.txt")
    for pins in (production, development):
        assert all(hashes for _version, hashes in pins.values())
    assert not DEV_ONLY & set(production)
    assert set(development) >= DEV_ONLY
    assert "tensorflow-cpu" in production
    assert "tensorflow" not in production
    assert "tensorflow" in development


def test_both_locks_pin_what_pyproject_pins_at_the_same_versions() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    production = requirements(ROOT / "requirements.txt")
    development = requirements(ROOT / "requirements-dev.txt")
    for spec in [*project["dependencies"], *project["optional-dependencies"]["cpu"]]:
        name, _, version = spec.partition("==")
        name = normalize(name.split("[")[0])
        assert name in production, spec
        if version:
            assert production[name][0] == version, spec
    shared = set(production) & set(development)
    assert shared == set(production) - {"tensorflow-cpu"}
    assert {name: production[name] for name in shared} == {
        name: development[name] for name in shared
    }


def test_python_version_file_matches_pyproject() -> None:
    version = (ROOT / ".python-version").read_text().strip()
    assert version == "3.11"
    assert (
        ">=3.11"
        in tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    )


def test_eb_config_migrates_on_the_leader_only_and_leaves_static_files_to_the_hook() -> None:
    config = yaml.safe_load((ROOT / ".ebextensions" / "01_django.config").read_text())
    commands = config["container_commands"]
    migrate = [c for c in commands.values() if "manage.py migrate" in c["command"]]
    assert len(migrate) == 1
    assert migrate[0]["leader_only"] is True
    assert not [c for c in commands.values() if "collectstatic" in c["command"]]
    assert "WSGIPath" not in str(config)  # a Procfile overrides it on EB


def test_eb_health_checks_ask_the_health_endpoint_that_answers_an_alb() -> None:
    from django.test import Client, override_settings

    from cryptooracle.middleware import HEALTH_PATH

    options = yaml.safe_load((ROOT / ".ebextensions" / "01_django.config").read_text())[
        "option_settings"
    ]
    # The target group's path is the web environment's alone (the worker has no ALB).
    assert "aws:elasticbeanstalk:environment:process:default" not in options
    options |= yaml.safe_load((ROOT / "deploy/eb/web/02_health.config").read_text())[
        "option_settings"
    ]
    assert options["aws:elasticbeanstalk:application"]["Application Healthcheck URL"] == HEALTH_PATH
    process = options["aws:elasticbeanstalk:environment:process:default"]
    assert process["HealthCheckPath"] == HEALTH_PATH
    assert process["MatcherHTTPCode"] == "200"
    # What the ALB sends: the instance's address as Host, plain HTTP, production's redirect on.
    with override_settings(SECURE_SSL_REDIRECT=True, ALLOWED_HOSTS=["oracle.example.com"]):
        response = Client().get(HEALTH_PATH, HTTP_HOST="10.0.3.17")
    assert response.status_code != 301  # answered here, not redirected to https
    assert response.status_code != 400  # nor refused for its Host


def _run_hook(tmp_path: Path, environment: dict[str, str]) -> list[str]:
    """Run the hook with stand-ins for EB's get-config and the venv's python; their calls."""
    calls = tmp_path / "calls"
    get_config = tmp_path / "get-config"
    get_config.write_text(
        "#!/bin/sh\n"
        f'[ "$*" = "--output json environment" ] || exit 3\n'
        f"cat <<'JSON'\n{json.dumps(environment)}\nJSON\n"
    )
    python = tmp_path / "bin" / "python"
    python.parent.mkdir()
    python.write_text(
        f'#!/bin/sh\necho "$* | key=$DJANGO_SECRET_KEY | hosts=$DJANGO_ALLOWED_HOSTS" >> {calls}\n'
    )
    for script in (get_config, python):
        script.chmod(0o755)
    env = {
        # The stand-in python first; a real python3 (the hook's JSON reader) after it.
        "PATH": f"{python.parent}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "VIRTUAL_ENV": str(tmp_path),
        "EB_GET_CONFIG": str(get_config),
    }
    subprocess.run(["bash", str(HOOK)], cwd=ROOT, env=env, check=True, timeout=30)
    return calls.read_text().splitlines()


def test_eb_hook_is_executable_and_collects_static_files_with_the_environment(
    tmp_path: Path,
) -> None:
    assert HOOK.stat().st_mode & stat.S_IXUSR
    assert HOOK.read_text().startswith("#!/bin/bash\n")
    secret = "it's a $ecret with spaces"
    calls = _run_hook(tmp_path, {"DJANGO_SECRET_KEY": secret, "DJANGO_ALLOWED_HOSTS": "a,b"})
    assert calls[0] == f"manage.py collectstatic --noinput | key={secret} | hosts=a,b"
    assert not [call for call in calls if "migrate" in call]  # the leader's container command


def test_eb_hook_stops_the_deployment_when_a_step_fails(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    failing = tmp_path / "bin" / "python"
    failing.write_text("#!/bin/sh\nexit 7\n")
    failing.chmod(0o755)
    env = {"PATH": f"{failing.parent}:/usr/bin:/bin", "VIRTUAL_ENV": str(tmp_path)}
    env["EB_GET_CONFIG"] = str(tmp_path / "absent")
    done = subprocess.run(["bash", str(HOOK)], cwd=ROOT, env=env, check=False, timeout=30)
    assert done.returncode == 7


def _compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_compose_has_every_process_and_service_of_a_one_machine_install() -> None:
    services = _compose()["services"]
    assert {"web", "worker", "training", "beat", "db", "redis", "s3"} <= set(services)
    app = ["web", "worker", "training", "beat", "migrate", "bucket"]
    for name in app:
        assert services[name]["build"] == "."
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgres://")
        assert env["REDIS_URL"].startswith("redis://redis:")
        assert env["ARTIFACTS_ENDPOINT_URL"] == "http://s3:9000"
        assert env["DJANGO_RUNTIME_ENVIRONMENT"] == "production"
    for name in ["web", "worker", "training", "beat"]:
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["db"]["condition"] == "service_healthy"


def test_compose_commands_run_real_entry_points() -> None:
    services = _compose()["services"]
    kinds = {}
    for name in ["web", "worker", "training", "beat", "migrate"]:
        command = services[name]["command"]
        argv = argv_of(command)
        if argv[:2] == ["sh", "-c"]:
            argv = argv_of(argv[2].removeprefix("exec "))
        kinds[name] = _check_process(argv)
    assert kinds == {
        "web": "gunicorn",
        "worker": "worker",
        "training": "worker",
        "beat": "beat",
        "migrate": "manage.py migrate",
    }
    bucket = services["bucket"]["command"].split()
    assert bucket[0] == "python"
    assert (ROOT / bucket[1]).is_file()


def test_dockerfile_is_multi_stage_non_root_and_installs_production_requirements() -> None:
    steps = dockerfile(ROOT / "Dockerfile")
    stages = [args for op, args in steps if op == "FROM"]
    assert len(stages) >= 2
    assert stages[-1].split()[0] == stages[0].split()[0]
    copies = [args for op, args in steps if op == "COPY"]
    assert "requirements.txt /tmp/requirements.txt" in copies
    assert (ROOT / "requirements.txt").is_file()
    runs = " ".join(args for op, args in steps if op == "RUN")
    assert "--require-hashes" in runs
    assert "-r /tmp/requirements.txt" in runs
    assert "requirements-dev" not in runs
    assert "manage.py collectstatic --noinput" in runs
    users = [args for op, args in steps if op == "USER"]
    assert users
    assert users[-1] not in ("root", "0")
    order = [op for op, _args in steps]
    assert order.index("USER") < order.index("CMD")
    cmd = yaml.safe_load([args for op, args in steps if op == "CMD"][-1])  # a JSON array
    assert cmd[:2] == ["sh", "-c"]
    _check_gunicorn(argv_of(cmd[2].removeprefix("exec ").replace("${PORT}", "8000")))


def test_dockerignore_keeps_local_state_and_dev_tools_out_of_the_image() -> None:
    ignored = set((ROOT / ".dockerignore").read_text().split())
    assert {".git", ".venv", "var", "requirements-dev.txt", "tests"} <= ignored
    assert "requirements.txt" not in ignored


def test_hook_is_committed_executable() -> None:
    # git keeps only the executable bit of a file; EB needs it on the hook.
    listed = subprocess.run(
        ["git", "ls-files", "-s", str(HOOK.relative_to(ROOT))],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert listed.startswith("100755 "), listed


def test_heroku_yml_builds_the_dockerfile_and_runs_the_procfiles_commands() -> None:
    manifest = yaml.safe_load((ROOT / "heroku.yml").read_text())
    assert (ROOT / manifest["build"]["docker"]["web"]).is_file()
    processes = procfile(HEROKU)
    assert manifest["release"]["image"] == "web"
    assert [argv_of(c) for c in manifest["release"]["command"]] == [processes.pop("release")]
    assert {name: argv_of(command) for name, command in manifest["run"].items()} == processes
