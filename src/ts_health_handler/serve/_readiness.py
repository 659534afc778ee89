"""Readiness and liveness as served: pure functions of a snapshot and the time.

Policy (``docs/serve.md``): a model version is ready when the readiness policy admits its
state (``ready``; also ``degraded`` with ``--allow-degraded``, ``saturated`` with
``--allow-saturated``: the same :class:`~..monitor._policy.ReadinessPolicy` as
``ts-health ready``) and its observation is younger than ``--stale-after``. The server is
ready when every watched model version is; with no model registered, or none observed yet,
it is not.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..monitor import ReadinessPolicy
from ._options import ServeOptions
from ._snapshot import ModelSeen, Snapshot

__all__ = ["Live", "Readiness", "liveness", "model_ready", "server_ready", "stale_text"]

#: Words of our own for a model without a state (the others are the probe's states).
NOT_REGISTERED = "not_registered"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Readiness:
    """Readiness of one model version (``version`` ``None``: the model as a whole)."""

    model: str
    version: str | None
    state: str
    reason: str
    ready: bool
    default: bool = True

    def json(self, *, reasons: bool) -> dict[str, object]:
        data: dict[str, object] = {
            "model": self.model,
            "version": self.version,
            "state": self.state,
        }
        if reasons:
            data["reason"] = self.reason
        return data


@dataclass(frozen=True)
class Live:
    """Liveness: the process found, and TorchServe's ``/ping`` said Healthy lately."""

    live: bool
    reason: str


def stale_text(age: float) -> str:
    return f"observation stale ({age:.0f} s)"


def _age(at: float | None, now: float) -> float | None:
    return None if at is None else max(0.0, now - at)


def _of_versions(
    seen: ModelSeen, options: ServeOptions, policy: ReadinessPolicy, now: float
) -> list[Readiness]:
    if seen.error is not None:
        state = UNKNOWN if seen.registered else NOT_REGISTERED
        return [Readiness(seen.name, None, state, seen.error, False)]
    age = now - seen.at
    stale = age > options.stale_after
    return [
        Readiness(
            h.model,
            h.version,
            h.state.value,
            stale_text(age) if stale else h.reason,
            policy.admits(h.state) and not stale,
            h.default,
        )
        for h in seen.healths
    ]


def watched(
    snapshot: Snapshot, options: ServeOptions, policy: ReadinessPolicy, now: float
) -> list[Readiness]:
    """The readiness of each watched model version (listed, or named with ``--model``)."""
    found: list[Readiness] = []
    for name in snapshot.names or ():
        seen = snapshot.models.get(name)
        if seen is None:
            found.append(Readiness(name, None, UNKNOWN, "not observed yet", False))
        else:
            found.extend(_of_versions(seen, options, policy, now))
    return found


def server_ready(
    snapshot: Snapshot, options: ServeOptions, policy: ReadinessPolicy, now: float
) -> tuple[bool, str, list[Readiness]]:
    """``(ready, reason, unready versions)`` of the server as a whole."""
    if snapshot.names is None:
        why = snapshot.names_error or f"no observation yet ({now - snapshot.started:.0f} s)"
        return False, f"cannot list the models: {why}", []
    if not options.models:
        age = _age(snapshot.names_at, now)
        if age is not None and age > options.stale_after:
            detail = f": {snapshot.names_error}" if snapshot.names_error else ""
            return False, stale_text(age) + f" (model list){detail}", []
        if not snapshot.names:
            return False, "no models registered", []
    found = watched(snapshot, options, policy, now)
    unready = [v for v in found if not v.ready]
    if unready:
        versions = "version" if len(found) == 1 else "versions"
        count = f"{len(unready)} of {len(found)} model {versions} not ready"
        return False, count, unready
    ready = len(found)
    return True, f"{ready} model version{'' if ready == 1 else 's'} ready", []


def model_ready(
    snapshot: Snapshot,
    options: ServeOptions,
    policy: ReadinessPolicy,
    now: float,
    name: str,
    version: str | None,
) -> Readiness | None:
    """The readiness of ``name`` (its default version) or of one ``version``; ``None`` when the
    model (or version) is not registered, as far as a fresh observation tells."""
    seen = snapshot.models.get(name)
    names = snapshot.names
    if seen is None:
        if names is not None and name not in names:
            fresh = options.models or (
                snapshot.names_at is not None and now - snapshot.names_at <= options.stale_after
            )
            if fresh:
                return None
        return Readiness(name, version, UNKNOWN, "not observed yet", False)
    if seen.error is not None and not seen.registered:
        return None
    found = _of_versions(seen, options, policy, now)
    if seen.error is not None:
        return found[0]
    for each in found:
        if (version is None and each.default) or each.version == version:
            return each
    return None


def liveness(snapshot: Snapshot, options: ServeOptions, now: float) -> Live:
    """Alive when the latest ``/ping`` said Healthy and is younger than ``--stale-after``."""
    ping, age = snapshot.ping, _age(snapshot.ping_at, now)
    if ping is None or age is None:
        return Live(False, f"no /ping answer yet ({now - snapshot.started:.0f} s)")
    if age > options.stale_after:
        return Live(False, stale_text(age) + " (/ping)")
    if ping.error is not None:
        return Live(False, f"/ping failed: {ping.error}")
    if not ping.healthy:
        return Live(False, f"/ping answered {ping.status}")
    return Live(True, f"/ping answered {ping.status}")
