"""``ts-health serve`` seen by the tools people use: a real Prometheus evaluating the shipped
alert rules, and a real headless Chromium rendering the status page.

Both are Debian packages (``prometheus``, ``chromium``) that ``scripts/setup.sh`` installs.
Missing, the tests fail in CI (``CI=true``) and are skipped elsewhere, saying why.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.processes import process_group
from tests.support.serve_support import eventually, get, options, settings_for
from ts_health_handler.serve import HealthApp
from ts_health_handler.testing import TorchServe
from ts_health_handler.testing._runner import _free_ports as free_ports

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
RULES = ROOT / "examples" / "prometheus" / "ts-health-rules.yml"
REASON = "model-config.yml has no handler.answer"
FAILING, READY = "obs_failing", "obs_ready"


def need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        message = f"{tool} not found: scripts/setup.sh installs it (apt-get install {tool})"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@pytest.fixture(scope="module")
def watched_app(
    shared_server: TorchServe,
    shared_store: Path,
    shared_state_dir: Path,
    build_mar: Callable[..., Path],
    registered: Callable[..., str],
) -> Iterator[HealthApp]:
    """``ts-health serve`` watching a ready and a failing model of the shared server."""
    registered("empty_model", name=READY)
    build_mar("failing_model", shared_store, name=FAILING, changes={"maxRetryTimeoutInSec": 600})
    shared_server.register(f"{FAILING}.mar", synchronous=False)
    try:
        settings = settings_for(
            shared_server.inference_url,
            shared_server.management_url,
            state_dir=shared_state_dir,
        )
        opts = options(models=(READY, FAILING), interval=0.5, stale_after=5.0)
        with HealthApp(settings, opts) as app:
            eventually(
                lambda: get(app.url, f"/v2/models/{FAILING}/ready").json()["state"] == "failing",
                120,
                "the failing model failing",
            )
            yield app
    finally:
        # Other tests list every model of the shared server: leave no failing one behind.
        shared_server.unregister(FAILING, check=False)


def test_shipped_rules_pass_promtool() -> None:
    promtool = need("promtool")
    done = subprocess.run(
        [promtool, "check", "rules", str(RULES)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_shipped_rules_pass_their_promtool_unit_tests() -> None:
    promtool = need("promtool")
    done = subprocess.run(
        [promtool, "test", "rules", str(RULES.with_name("ts-health-rules.test.yml"))],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_prometheus_scrapes_and_the_failing_model_alerts_with_its_kind(
    watched_app: HealthApp, tmp_path: Path
) -> None:
    prometheus = need("prometheus")
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))
    for group in rules["groups"]:
        group["interval"] = "1s"
        for rule in group["rules"]:
            rule["for"] = "0s"  # the shipped waits are for production
    (tmp_path / "rules.yml").write_text(yaml.safe_dump(rules), encoding="utf-8")
    target = watched_app.url.split("//", 1)[1]
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(tmp_path / "rules.yml")],
        "scrape_configs": [{"job_name": "ts-health", "static_configs": [{"targets": [target]}]}],
    }
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config), encoding="utf-8")
    [port] = free_ports(1)
    command = [
        prometheus,
        f"--config.file={tmp_path / 'prometheus.yml'}",
        f"--storage.tsdb.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
    ]
    log = tmp_path / "prometheus.log"
    with process_group(command, log):

        def api(path: str) -> Any:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                    return json.loads(r.read())["data"]
            except OSError:
                return None

        def firing() -> dict[str, Any] | None:
            data = api("/api/v1/alerts")
            for alert in (data or {}).get("alerts", []):
                labels = alert["labels"]
                # Its only replica fails: the model is down (the per-replica alert is held).
                if (
                    labels.get("alertname") == "TorchServeModelDown"
                    and labels.get("model") == FAILING
                    and alert["state"] == "firing"
                ):
                    return dict(alert)
            return None

        alert = eventually(firing, 90, f"TorchServeModelDown for {FAILING} ({log})")
        # The kind, not the reason's text: /status has that.
        assert "failing (init_failed) on 1" in alert["annotations"]["description"], alert
        assert FAILING in alert["annotations"]["summary"]
        targets = api("/api/v1/targets")
        assert targets["activeTargets"][0]["health"] == "up"
        ready = api(f'/api/v1/query?query=ts_health_model_ready{{model="{READY}"}}')
        assert ready["result"][0]["value"][1] == "1"


def test_chromium_renders_the_status_page(watched_app: HealthApp, tmp_path: Path) -> None:
    chromium = need("chromium")
    flags = [
        "--headless",
        "--no-sandbox",  # tests run as root in containers
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1400,900",
    ]
    url = watched_app.url + "/"
    screenshot = tmp_path / "status.png"
    with process_group(
        [chromium, *flags, f"--screenshot={screenshot}", url], tmp_path / "shot.log"
    ) as p:
        p.wait(timeout=90)
    dom_log = tmp_path / "dom.html"
    with process_group([chromium, *flags, "--dump-dom", url], dom_log) as p:
        p.wait(timeout=90)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert screenshot.stat().st_size > 10_000, "an empty page?"
    dom = dom_log.read_text(encoding="utf-8", errors="replace")
    text = " ".join(re.sub(r"<[^>]+>", " ", dom).split())
    assert f"{FAILING} 1.0 (default) failing 0/1" in text, text[:2000]
    assert REASON in text
    assert f"{READY} 1.0 (default) ready 1/1" in text
    assert "not ready" in text  # the summary line: one of the two models fails
