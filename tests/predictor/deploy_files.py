"""Readers for the deployment files, shared by the tests that check them."""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]

_DEFAULT = re.compile(r"\$\{(\w+):-([^}]*)\}")
_REQUIREMENT = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)")


def load_script(name: str) -> ModuleType:
    """A module of scripts/ by file name (the folder is not a package)."""
    path = ROOT / "scripts" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"scripts_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def argv_of(command: str) -> list[str]:
    """A shell command's words, each ``${VAR:-default}`` replaced by its default."""
    return shlex.split(_DEFAULT.sub(r"\2", command))


def procfile(path: Path) -> dict[str, list[str]]:
    """Process name -> argv, with each ``${VAR:-default}`` replaced by its default."""
    processes: dict[str, list[str]] = {}
    for line in path.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _, command = line.partition(":")
        assert name not in processes, f"{path.name} declares {name} twice"
        processes[name.strip()] = argv_of(command)
    return processes


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirements(path: Path) -> dict[str, tuple[str, list[str]]]:
    """Normalized name -> (version, hashes) of a hashed requirements file."""
    pins: dict[str, tuple[str, list[str]]] = {}
    name = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _REQUIREMENT.match(line)
        if match:
            name = normalize(match[1])
            pins[name] = (match[2], [])
        elif not line.startswith("--hash"):
            raise AssertionError(f"{path.name}: not a pinned requirement: {line}")
        pins[name][1].extend(re.findall(r"--hash=sha256:([0-9a-f]{64})", line))
    return pins


def dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n", " ", path.read_text())
    steps = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            instruction, _, rest = line.partition(" ")
            steps.append((instruction.upper(), rest.strip()))
    return steps
