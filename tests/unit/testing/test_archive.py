"""``archive_model`` against a stand-in ``torch-model-archiver``: the command line it runs,
the ``config`` it writes, the inputs it checks, and each way the archiver can fail."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from ts_health_handler.testing import ServerError, _archive, archive_model

#: Logs its arguments (and the config file's text) as JSON, then does what $FAKE_MODE says.
FAKE_ARCHIVER = """\
import json, os, pathlib, sys, time
args = sys.argv[1:]
seen = {"args": args}
if "--config-file" in args:
    seen["config"] = pathlib.Path(args[args.index("--config-file") + 1]).read_text()
pathlib.Path(os.environ["FAKE_LOG"]).write_text(json.dumps(seen))
mode = os.environ.get("FAKE_MODE", "ok")
if mode == "ok":
    export = args[args.index("--export-path") + 1]
    name = args[args.index("--model-name") + 1]
    pathlib.Path(export, name + ".mar").write_text("an archive")
elif mode == "fail":
    sys.stderr.write("Traceback (most recent call last):\\n  File x\\nValueError: no class\\n")
    sys.exit(3)
elif mode == "slow":
    time.sleep(30)
"""


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory (the current one) with a handler, an extra file and weights, and the
    stand-in archiver in place of the real one."""
    fake = tmp_path / "fake-archiver"
    fake.write_text(f"#!{sys.executable}\n{FAKE_ARCHIVER}", encoding="utf-8")
    fake.chmod(0o755)
    monkeypatch.setattr(_archive, "find_executable", lambda name: str(fake))
    monkeypatch.setenv("FAKE_LOG", str(tmp_path / "archiver.json"))
    monkeypatch.chdir(tmp_path)
    for name in ("handler.py", "extra.txt", "weights.pt"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    return tmp_path


def archiver_saw(files: Path) -> dict[str, Any]:
    seen: dict[str, Any] = json.loads((files / "archiver.json").read_text(encoding="utf-8"))
    return seen


def test_the_command_names_only_the_files_given(files: Path) -> None:
    mar = archive_model("handler.py", "m", "store/new", version="2.0", extra_files=["extra.txt"])
    assert mar == Path("store/new/m.mar")
    assert mar.read_text(encoding="utf-8") == "an archive"
    assert archiver_saw(files)["args"] == [
        *("--model-name", "m", "--version", "2.0", "--handler", "handler.py"),
        *("--export-path", "store/new", "--force", "--extra-files", "extra.txt"),
    ]


def test_each_optional_file_given_has_its_option_in_order(files: Path) -> None:
    (files / "model-config.yml").write_text("minWorkers: 1", encoding="utf-8")
    (files / "requirements.txt").write_text("", encoding="utf-8")
    archive_model(
        "handler.py",
        "m",
        "store",
        config_file="model-config.yml",
        serialized_file="weights.pt",
        requirements_file="requirements.txt",
        extra_files=["extra.txt", "weights.pt"],
    )
    assert archiver_saw(files)["args"][9:] == [
        *("--config-file", "model-config.yml", "--serialized-file", "weights.pt"),
        *("--requirements-file", "requirements.txt", "--extra-files", "extra.txt,weights.pt"),
    ]


def test_a_config_mapping_is_packed_as_a_model_config_yml_that_is_then_removed(
    files: Path,
) -> None:
    archive_model("handler.py", "m", "store", config={"minWorkers": 1, "health": {"x": None}})
    seen = archiver_saw(files)
    written = Path(seen["args"][seen["args"].index("--config-file") + 1])
    assert written.name == "model-config.yml"
    assert json.loads(seen["config"]) == {"minWorkers": 1, "health": {"x": None}}
    assert not written.parent.exists()


def test_config_and_config_file_together_are_refused(files: Path) -> None:
    with pytest.raises(ServerError) as refused:
        archive_model("handler.py", "m", "store", config={}, config_file="model-config.yml")
    assert str(refused.value) == "cannot archive m: pass config_file or config, not both"
    assert not (files / "archiver.json").exists()


@pytest.mark.parametrize(
    ("changes", "missing"),
    [
        ({"handler": "nope.py"}, "nope.py"),
        ({"extra_files": ["extra.txt", "./gone.txt"]}, "gone.txt"),
        ({"config_file": "model-config.yml", "serialized_file": "gone.pt"}, "model-config.yml"),
        ({"serialized_file": "weights.pt", "requirements_file": "req.txt"}, "req.txt"),
    ],
)
def test_the_first_missing_input_is_named_before_anything_runs(
    files: Path, changes: dict[str, Any], missing: str
) -> None:
    arguments: dict[str, Any] = {"handler": "handler.py", **changes}
    handler = arguments.pop("handler")
    with pytest.raises(ServerError) as refused:
        archive_model(handler, "m", "store", **arguments)
    assert str(refused.value) == f"cannot archive m: {missing} does not exist"
    assert not (files / "store").exists()
    assert not (files / "archiver.json").exists()


def test_a_failing_archiver_is_reported_with_the_end_of_its_output(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MODE", "fail")
    with pytest.raises(ServerError) as failed:
        archive_model("handler.py", "m", "store")
    assert str(failed.value) == "torch-model-archiver failed for m (exit 3): ValueError: no class"


def test_an_archiver_that_writes_no_archive_has_failed(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MODE", "silent")
    with pytest.raises(ServerError) as failed:
        archive_model("handler.py", "m", "store")
    assert str(failed.value) == "torch-model-archiver failed for m (exit 0): no output"


def test_an_archiver_past_its_timeout_is_reported(
    files: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_MODE", "slow")
    with pytest.raises(ServerError) as failed:
        archive_model("handler.py", "m", "store", timeout=0.5)
    assert str(failed.value) == "torch-model-archiver did not finish within 0.5 s for m"
    assert failed.value.__suppress_context__
