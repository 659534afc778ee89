"""``examples/kubernetes/Dockerfile`` without a container runtime: its base image, that every
``COPY`` source exists after the documented build step (``build-context.sh``), and its install
steps run in a Python 3.9 virtualenv, as in TorchServe's official 0.12.0 image."""

from __future__ import annotations

import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.dockerfile import instructions, one

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "examples" / "kubernetes"
DOCKERFILE = KUBERNETES / "Dockerfile"
#: TorchServe 0.12.0's docker/Dockerfile: ARG PYTHON_VERSION=3.9, a venv in /home/venv.
IMAGE_PYTHON = "3.9"


def python39() -> str | None:
    """A working Python 3.9: pyenv's, else one on PATH (a pyenv shim may not work)."""
    candidates: list[str] = []
    try:
        root = subprocess.run(
            ["pyenv", "root"], capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()
        found = sorted(Path(root, "versions").glob(f"{IMAGE_PYTHON}.*/bin/python{IMAGE_PYTHON}"))
        candidates += [str(path) for path in reversed(found)]
    except (OSError, subprocess.SubprocessError):
        pass
    on_path = shutil.which(f"python{IMAGE_PYTHON}")
    if on_path:
        candidates.append(on_path)
    for candidate in candidates:
        works = subprocess.run([candidate, "-c", "pass"], capture_output=True, timeout=60)
        if works.returncode == 0:
            return candidate
    return None


def requires_python(wheel: Path) -> str | None:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        for line in archive.read(name).decode().splitlines():
            if line.startswith("Requires-Python:"):
                return line.split(":", 1)[1].strip()
    return None


def requirements(wheel: Path) -> set[str]:
    """The names of the wheel's unconditional dependencies."""
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(name).decode().splitlines()
    found = set()
    for line in lines:
        if line.startswith("Requires-Dist:") and "extra ==" not in line:
            found.add(re.split(r"[\s<>=!~;\[(]", line.split(":", 1)[1].strip())[0].lower())
    return {n.replace("_", "-") for n in found}


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_image_builds_on_torchserves_official_image() -> None:
    steps = instructions(DOCKERFILE)
    assert one(steps, "FROM").text == "pytorch/torchserve:0.12.0-cpu"
    # Nothing comes from the package index: ts-health-handler is not published there.
    for step in steps:
        if step.keyword == "RUN" and "pip install" in step.text:
            assert "--no-index" in step.text, step.text
    assert one(steps, "WORKDIR").text == "/home/model-server"
    # PID 1 is the entrypoint that handles SIGTERM, copied from this directory.
    entrypoint = one(steps, "ENTRYPOINT").exec_form
    copies = {
        step.copy_parts()[2]: step.copy_parts()[1] for step in steps if step.keyword == "COPY"
    }
    assert copies[entrypoint[0]] == ["ts-entrypoint.sh"]
    assert (KUBERNETES / "ts-entrypoint.sh").stat().st_mode & stat.S_IXUSR


def test_copy_sources_exist_after_the_build_step_and_the_install_runs_on_python_3_9(
    tmp_path: Path,
) -> None:
    context = tmp_path / "context"
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "PYTHON": sys.executable, "PATH": f"{venv_bin}:{os.environ['PATH']}"}
    built = subprocess.run(
        ["bash", str(KUBERNETES / "build-context.sh"), str(context)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr

    # An image root in a temp dir: each COPY lands under it, each RUN sees it there.
    image = tmp_path / "image"
    steps = instructions(context / "Dockerfile")
    assert steps == instructions(DOCKERFILE), "build-context.sh copies the Dockerfile as it is"
    destinations: list[str] = []
    for step in steps:
        if step.keyword != "COPY":
            continue
        _, sources, destination = step.copy_parts()
        for source in sources:
            matches = list(context.glob(source.rstrip("/")))
            assert matches, f"COPY {source}: not in the build context {sorted(context.rglob('*'))}"
            target = image / destination.lstrip("/")
            for match in matches:
                if match.is_dir():
                    shutil.copytree(match, target, dirs_exist_ok=True)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(match, target)
        destinations.append(destination.rstrip("/"))
    assert list((image / "home/model-server/model-store").glob("*.mar"))
    assert os.access(image / "usr/local/bin/ts-entrypoint", os.X_OK)

    interpreter = python39()
    if interpreter is None:
        pytest.skip(f"no python{IMAGE_PYTHON} here to stand in for the image's /home/venv")
    venv = tmp_path / "venv"
    subprocess.run([interpreter, "-m", "venv", str(venv)], check=True, timeout=300)
    run_env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "HOME": str(image / "home/model-server"),
        "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    }
    (wheel,) = (context / "dist").glob("ts_health_handler-*.whl")
    if requires_python(wheel) not in (None, ">=3.9"):
        # Until the package's metadata says >=3.9, the wheel's code is still what is tried.
        run_env["PIP_IGNORE_REQUIRES_PYTHON"] = "1"
    for step in steps:
        if step.keyword != "RUN":
            continue
        command = step.text
        for destination in sorted(destinations, key=len, reverse=True):
            command = command.replace(destination, str(image / destination.lstrip("/")))
        done = subprocess.run(
            ["bash", "-c", command], env=run_env, capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, f"RUN {step.text}\n{done.stdout}{done.stderr}"

    python = str(venv / "bin" / "python")
    installed = subprocess.run(
        [python, "-m", "pip", "list", "--format=freeze"], capture_output=True, text=True
    )
    wanted = {"ts-health-handler", *requirements(wheel)}
    have = {line.split("==")[0].lower().replace("_", "-") for line in installed.stdout.splitlines()}
    assert wanted <= have, f"not installed: {wanted - have}"
    version = subprocess.run(
        [python, "-c", "import sys, ts_health_handler.probe; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == "(3, 9)"
    url = f"http://127.0.0.1:{closed_port()}"
    probe = subprocess.run(
        [str(venv / "bin" / "ts-health"), "ping", "--inference-url", url],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert probe.returncode == 3, probe.stdout + probe.stderr
    assert probe.stderr.startswith("ts-health: unreachable: cannot connect"), probe.stderr
