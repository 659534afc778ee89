"""``/``: a status page for people, rendered on the server.

Plain HTML with inline CSS: no external assets, no JavaScript; it reloads itself every few
seconds through a ``<meta http-equiv="refresh">``. Every text from TorchServe or a handler
is escaped.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Final

from .._lifecycle import ModelState
from .._text import one_line
from ..monitor import ModelHealth, Settings
from ..record import utc_iso
from ._history import Track
from ._options import ServeOptions
from ._readiness import liveness, server_ready
from ._snapshot import ModelSeen, Snapshot

__all__ = ["page_html"]

REFRESH_S: Final = 5
COLOURS: Final = {
    ModelState.READY: "#1a7f37",
    ModelState.INITIALIZING: "#0969da",
    ModelState.FAILING: "#cf222e",
    ModelState.UNHEALTHY: "#82071e",
    ModelState.STUCK: "#a40e26",
    ModelState.SATURATED: "#bc4c00",
    ModelState.UNSTABLE: "#953800",
    ModelState.DEGRADED: "#9a6700",
    ModelState.UNREACHABLE: "#57606a",
}

STYLE: Final = """
body{font:14px/1.45 system-ui,sans-serif;margin:1.5rem;color:#1f2328;background:#fff}
h1{font-size:1.3rem;margin:0 0 .3rem}
.summary{margin:.2rem 0 1rem;color:#57606a}
table{border-collapse:collapse;width:100%}
th,td{border-bottom:1px solid #d0d7de;padding:.45rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa;font-weight:600}
.state{display:inline-block;padding:.05rem .5rem;border-radius:1rem;color:#fff;font-weight:600}
.reason{max-width:42rem;word-break:break-word}
.kind{font:12px ui-monospace,monospace;color:#57606a;margin-right:.3rem}
.verdict{font-weight:600}
ol.timeline{margin:0;padding-left:1.1rem;font-size:12px;color:#57606a}
.ok{color:#1a7f37}.bad{color:#cf222e}
footer{margin-top:1rem;font-size:12px;color:#57606a}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _badge(state: ModelState | str) -> str:
    word = state.value if isinstance(state, ModelState) else state
    colour = COLOURS.get(ModelState(word), "#57606a") if word in _WORDS else "#57606a"
    return f'<span class="state" style="background:{colour}">{_e(word)}</span>'


_WORDS: Final = {s.value for s in ModelState}


def _timeline(health: ModelHealth, track: Track | None) -> str:
    items: list[str] = []
    record = None if health.observation is None else health.observation.record
    if record is not None:
        items.append(
            f"<li>{record.attempts} initialization attempt(s), {record.failures} failed, "
            f"{record.consecutive_failures} in a row</li>"
        )
        for error in record.recent_errors:
            items.append(
                f"<li>{_e(error.at)} attempt {error.attempt} failed: "
                f"{_e(error.type.rsplit('.', 1)[-1])}: {_e(one_line(error.message, 200))}</li>"
            )
        if record.last_finished_at and record.consecutive_failures == 0:
            items.append(f"<li>{_e(record.last_finished_at)} initialized</li>")
    if track is not None:
        for change in track.changes:
            items.append(f"<li>{_e(utc_iso(change.at))} seen {_e(change.state.value)}</li>")
    if not items:
        return ""
    return '<ol class="timeline">' + "".join(items) + "</ol>"


def _rows(seen: ModelSeen, snapshot: Snapshot) -> Iterable[str]:
    if seen.error is not None:
        yield (
            f"<tr><td>{_e(seen.name)}</td><td>-</td><td>{_badge('unknown')}</td>"
            f'<td>-</td><td>-</td><td class="reason">{_e(seen.error)}</td><td></td></tr>'
        )
        return
    for health in seen.healths:
        workers, queue = health.cells()
        version = health.version + (" (default)" if health.default else "")
        track = snapshot.tracks.get((health.model, health.version))
        yield (
            f"<tr><td>{_e(health.model)}</td><td>{_e(version)}</td>"
            f"<td>{_badge(health.state)}</td><td>{_e(workers)}</td><td>{_e(queue)}</td>"
            f'<td class="reason"><span class="kind">{_e(health.kind.value)}</span> '
            f"{_e(health.reason)}</td>"
            f"<td>{_timeline(health, track)}</td></tr>"
        )


def page_html(
    snapshot: Snapshot, settings: Settings, options: ServeOptions, now: float, wall: float
) -> bytes:
    """The status page of ``snapshot`` at monotonic ``now`` (epoch ``wall``)."""
    ready, reason, _ = server_ready(snapshot, options, settings.readiness, now)
    live = liveness(snapshot, options, now)
    ready_class, live_class = ("ok" if ready else "bad"), ("ok" if live.live else "bad")
    rows = "".join(row for seen in snapshot.listed() for row in _rows(seen, snapshot))
    if not rows:
        rows = '<tr><td colspan="7">no model observed</td></tr>'
    watching = ", ".join(options.models) if options.models else "every registered model"
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="refresh" content="{REFRESH_S}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>ts-health: {"ready" if ready else "not ready"}</title>
<style>{STYLE}</style></head>
<body>
<h1>TorchServe health</h1>
<p class="summary">
<span class="verdict {ready_class}">{"ready" if ready else "not ready"}</span>: {_e(reason)}.
<span class="verdict {live_class}">{"live" if live.live else "not live"}</span>:
{_e(live.reason)}.<br>
Server {_e(settings.inference_url)} (management {_e(settings.management_url)});
watching {_e(watching)}; observed every {options.interval:g} s, stale after
{options.stale_after:g} s.
</p>
<table>
<thead><tr><th>Model</th><th>Version</th><th>State</th><th>Workers</th><th>Queue</th>
<th>Reason</th><th>History</th></tr></thead>
<tbody>{rows}</tbody>
</table>
<footer>Rendered {_e(utc_iso(wall))}; reloads every {REFRESH_S} s.
JSON: <a href="status">/status</a>, metrics: <a href="metrics">/metrics</a>.</footer>
</body></html>
"""
    return body.encode("utf-8")
