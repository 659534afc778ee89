"""Archive a handler into a ``.mar`` with ``torch-model-archiver``, as users do.

Standard library only: the archiver runs as a process, found next to the running interpreter
(a virtualenv's ``bin``) or else on ``PATH``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Union

from .._errors import ServerError

__all__ = ["archive_model", "find_executable", "model_config"]

PathLike = Union[str, "os.PathLike[str]"]


def find_executable(name: str) -> str:
    """``name`` next to the running interpreter (a virtualenv's ``bin``), else on ``PATH``.

    Raises:
        ServerError: neither place has it.
    """
    beside = Path(sys.executable).parent / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise ServerError(
            f"{name} not found next to {sys.executable} nor on PATH; "
            "install torchserve==0.12.0 and torch-model-archiver==0.12.0"
        )
    return found


def archive_model(
    handler: PathLike,
    model_name: str,
    export_dir: PathLike,
    *,
    version: str = "1.0",
    config_file: PathLike | None = None,
    config: Mapping[str, Any] | None = None,
    extra_files: Sequence[PathLike] = (),
    serialized_file: PathLike | None = None,
    requirements_file: PathLike | None = None,
    timeout: float = 300.0,
) -> Path:
    """Build ``<export_dir>/<model_name>.mar`` with ``torch-model-archiver --force``.

    Args:
        handler: the handler ``.py`` file (exactly one class defined in it).
        model_name: the model name, also the file name of the archive.
        export_dir: created when missing; usually the server's model store.
        version: the model version written into the manifest.
        config_file: a ``model-config.yml`` to pack (its settings override
            ``config.properties`` defaults for this model).
        config: the ``model-config.yml`` as a mapping instead (see :func:`model_config`).
        extra_files: more files packed next to the handler.
        serialized_file: weights, if the handler loads any.
        requirements_file: a ``requirements.txt`` (installed only with
            ``install_py_dep_per_model=true``).
        timeout: seconds the archiver may take.

    Returns:
        The path of the ``.mar`` file.

    Raises:
        ServerError: a missing input, or the archiver failed (with its stderr tail).
    """
    if config is not None and config_file is not None:
        raise ServerError(f"cannot archive {model_name}: pass config_file or config, not both")
    with _config_file(config, config_file) as config_path:
        optional = {
            "--config-file": config_path,
            "--serialized-file": serialized_file,
            "--requirements-file": requirements_file,
        }
        handler_py = Path(handler)
        _check_inputs(model_name, handler_py, extra_files, optional.values())
        export = Path(export_dir)
        export.mkdir(parents=True, exist_ok=True)
        command = _archiver_command(model_name, version, handler_py, export, optional, extra_files)
        return _run_archiver(command, model_name, export / f"{model_name}.mar", timeout)


@contextlib.contextmanager
def _config_file(
    config: Mapping[str, Any] | None, config_file: PathLike | None
) -> Iterator[PathLike | None]:
    """``config_file``, or else ``config`` written to a ``model-config.yml`` that exists
    until the block ends."""
    if config is None:
        yield config_file
        return
    with tempfile.TemporaryDirectory(prefix="ts-health-archive-") as scratch:
        written = Path(scratch) / "model-config.yml"
        # JSON is YAML: TorchServe's yaml.safe_load reads it, and no YAML writer is needed.
        written.write_text(json.dumps(dict(config), indent=2), encoding="utf-8")
        yield written


def _check_inputs(
    model_name: str,
    handler: Path,
    extra_files: Sequence[PathLike],
    optional: Iterable[PathLike | None],
) -> None:
    """Raise :class:`ServerError` naming the first file to pack that does not exist: the
    handler, the extra files, then the ``optional`` ones given (``None``: not given)."""
    inputs = [handler, *(Path(f) for f in extra_files)]
    for given in optional:
        if given is not None:
            inputs.append(Path(given))
    for path in inputs:
        if not path.exists():
            raise ServerError(f"cannot archive {model_name}: {path} does not exist")


def _archiver_command(
    model_name: str,
    version: str,
    handler: Path,
    export: Path,
    optional: Mapping[str, PathLike | None],
    extra_files: Sequence[PathLike],
) -> list[str]:
    """The ``torch-model-archiver --force`` command line: ``optional`` maps an option to
    its file, ``None`` when that file is not given."""
    command = [
        find_executable("torch-model-archiver"),
        "--model-name",
        model_name,
        "--version",
        version,
        "--handler",
        str(handler),
        "--export-path",
        str(export),
        "--force",
    ]
    for option, given in optional.items():
        if given is not None:
            command += [option, str(given)]
    if extra_files:
        command += ["--extra-files", ",".join(str(f) for f in extra_files)]
    return command


def _run_archiver(command: list[str], model_name: str, mar: Path, timeout: float) -> Path:
    """Run the archiver's ``command``; ``mar`` once it is written, else a
    :class:`ServerError` with the end of the archiver's output."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise ServerError(
            f"torch-model-archiver did not finish within {timeout:g} s for {model_name}"
        ) from None
    if done.returncode != 0 or not mar.is_file():
        detail = _tool_output(done.stderr or done.stdout or "")
        raise ServerError(
            f"torch-model-archiver failed for {model_name} (exit {done.returncode}): {detail}"
        )
    return mar


def model_config(
    base: PathLike | Mapping[str, Any] | None = None,
    changes: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A ``model-config.yml`` as a dict: ``base`` (a file or a mapping) with ``changes``.

    Mappings merge recursively and a ``None`` value deletes the key, so
    ``model_config("model-config.yml", {"health": {"on_init_failure": "hold"}})`` changes one
    setting and keeps the rest. Reading a file needs PyYAML (TorchServe's own dependency).

    Raises:
        ServerError: ``base`` cannot be read or is not a YAML mapping.
    """
    if base is None or isinstance(base, Mapping):
        loaded: Any = dict(base or {})
    else:
        import yaml

        try:
            loaded = yaml.safe_load(Path(base).read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise ServerError(f"cannot read model config {base}: {exc}") from None
        if not isinstance(loaded, dict):
            raise ServerError(f"model config {base} is not a YAML mapping")
    return _merge(loaded, changes or {})


def _merge(base: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in changes.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _tool_output(output: str, keep: int = 6) -> str:
    """The informative end of a tool's output on one line, traceback frames left out."""
    lines = [
        line.strip()
        for line in output.splitlines()
        if line.strip()
        and not line.startswith((" ", "\t"))
        and not line.startswith("Traceback (most recent call last)")
    ]
    return " | ".join(lines[-keep:]) or "no output"
