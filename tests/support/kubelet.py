"""A simulated kubelet: runs a pod of a Deployment manifest on this machine, probes and all.

No cluster here, so this does the kubelet's part for one pod, from the manifest users copy:

- each container runs its command (the manifest's ``command``, else its image's ENTRYPOINT)
  with its ``args``, ``env`` and ``workingDir``, as **PID 1 of a new PID namespace**
  (``unshare --pid --fork --mount-proc``), so that PID 1's signal handling is the real one;
- the pod's filesystem is a temp dir: an absolute path ``/p`` of the manifest is ``<root>/p``
  here (ConfigMap volumes are written there, ``emptyDir`` volumes are directories there), and
  ``/tmp`` is ``<root>/tmp`` (``TMPDIR``);
- the pod's network is loopback: every port the containers declare or listen on (the
  ``*_address``/``*_port`` entries of a mounted ``config.properties``) is a free local port,
  ``0.0.0.0`` is ``127.0.0.1``, and the same mapping rewrites URLs in ``env`` and commands;
- startup, readiness and liveness probes (``exec``, ``httpGet``, ``tcpSocket``) run on the
  kubelet's schedule with the manifest's own ``initialDelaySeconds``, ``periodSeconds``,
  ``timeoutSeconds``, ``failureThreshold`` and ``successThreshold`` (kubelet's prober worker:
  a probe at once and then every period; readiness and liveness wait for startup; readiness
  starts as not ready, liveness as live); a failed startup or liveness probe kills the
  container (SIGTERM to PID 1, SIGKILL after ``terminationGracePeriodSeconds``) and starts it
  again after the kubelet's back-off (10 s, doubling);
- deleting the pod takes it out of the Service's endpoints and stops every container the same
  way.

Every probe result and every change is an :class:`Event` of the pod's timeline.

Not simulated: image pulls, resource limits, the random start-up delay of a probe worker, a
``preStop`` hook, other pods. Adding a container (a sidecar with its own probes) is adding it
to the manifest and, when its image is not the TorchServe one, an :class:`Image` for it.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ts_health_handler.testing._runner import _free_ports as free_ports

PROBE_KINDS = ("startupProbe", "readinessProbe", "livenessProbe")
#: The kubelet's crash-loop back-off: 10 s, doubling, at most 300 s.
BACKOFF_S = 10.0
BACKOFF_MAX_S = 300.0
#: Output of a probe kept in the timeline.
OUTPUT_LIMIT = 160


@dataclass(frozen=True)
class Image:
    """What the simulation needs of an image: its ENTRYPOINT, CMD and files."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    #: Pod path -> local file or directory, copied into the pod's filesystem.
    files: Mapping[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class ProbeSpec:
    kind: str
    handler: Mapping[str, Any]
    initial_delay: float
    period: float
    timeout: float
    failure_threshold: int
    success_threshold: int

    @classmethod
    def from_manifest(cls, kind: str, spec: Mapping[str, Any]) -> ProbeSpec:
        handlers = [k for k in ("exec", "httpGet", "tcpSocket", "grpc") if k in spec]
        assert len(handlers) == 1, f"{kind}: exactly one handler expected, got {handlers}"
        assert handlers[0] != "grpc", f"{kind}: grpc probes are not simulated"
        # Kubernetes' defaults (core/v1 Probe).
        return cls(
            kind=kind,
            handler={handlers[0]: spec[handlers[0]]},
            initial_delay=float(spec.get("initialDelaySeconds", 0)),
            period=float(spec.get("periodSeconds", 10)),
            timeout=float(spec.get("timeoutSeconds", 1)),
            failure_threshold=int(spec.get("failureThreshold", 3)),
            success_threshold=int(spec.get("successThreshold", 1)),
        )

    @property
    def name(self) -> str:
        return self.kind.replace("Probe", "")


@dataclass(frozen=True)
class Event:
    at: float
    source: str
    text: str

    def line(self) -> str:
        return f"{self.at:7.1f} s  {self.source:<22} {self.text}"


class Sandbox:
    """The pod's filesystem (a temp dir) and network (loopback ports)."""

    def __init__(self, ports: list[int]) -> None:
        # Short: TorchServe's worker sockets live in TMPDIR, and socket paths are limited.
        self.root = Path(tempfile.mkdtemp(prefix="kl-", dir="/tmp"))
        (self.root / "tmp").mkdir()
        unique = sorted(set(ports))
        local = free_ports(len(unique))
        self.ports = {port: local[index] for index, port in enumerate(unique)}

    def path(self, pod_path: str) -> Path:
        assert pod_path.startswith("/"), pod_path
        return self.root / pod_path.lstrip("/")

    def port(self, pod_port: int) -> int:
        return self.ports[pod_port]

    def text(self, value: str) -> str:
        """A command argument or environment value as seen from this machine."""
        if value.startswith("/"):
            return str(self.path(value))

        def url(match: re.Match[str]) -> str:
            host = "127.0.0.1" if match[2] == "0.0.0.0" else match[2]
            port = self.ports.get(int(match[3]), int(match[3]))
            return f"{match[1]}{host}:{port}"

        # URLs, and HOST:PORT (e.g. --listen 0.0.0.0:8090) of a local address.
        value = re.sub(r"(https?://)([^/:\s]+):(\d+)", url, value)
        return re.sub(r"(^|[=\s])()(0\.0\.0\.0|127\.0\.0\.1|localhost):(\d+)\b", self._pair, value)

    def _pair(self, match: re.Match[str]) -> str:
        port = self.ports.get(int(match[4]), int(match[4]))
        return f"{match[1]}127.0.0.1:{port}"

    def properties(self, text: str) -> str:
        """A ``config.properties``: paths, addresses and ports mapped."""
        lines = []
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.strip().startswith("#"):
                key, value = key.strip(), value.strip()
                if key.endswith("_port") and value.isdigit():
                    value = str(self.ports.get(int(value), int(value)))
                elif key.endswith("_address") and value == "0.0.0.0":
                    value = "127.0.0.1"
                else:
                    value = self.text(value)
                line = f"{key}={value}"
            lines.append(line)
        return "\n".join(lines) + "\n"


def properties_ports(text: str) -> list[int]:
    ports = []
    for line in text.splitlines():
        key, _, value = line.partition("=")
        key, value = key.strip(), value.strip()
        if key.endswith("_port") and value.isdigit():
            ports.append(int(value))
        found = re.search(r"https?://[^/:\s]+:(\d+)", value)
        if key.endswith("_address") and found:
            ports.append(int(found[1]))
    return ports


class Container:
    """One container of the pod: its process (PID 1 of its own PID namespace) and probes."""

    def __init__(self, pod: Pod, spec: Mapping[str, Any], image: Image) -> None:
        self.pod = pod
        self.spec = spec
        self.name = str(spec["name"])
        self.image = image
        self.probes = [ProbeSpec.from_manifest(k, spec[k]) for k in PROBE_KINDS if k in spec]
        self.ports = {p.get("name"): int(p["containerPort"]) for p in spec.get("ports", [])}
        self.restarts = 0
        self.generation = 0
        self.started = False  # the startup probe succeeded (or there is none)
        self.ready = False
        self.process: subprocess.Popen[bytes] | None = None
        self.pid1: int | None = None
        self.exit_status: int | None = None
        self.stop_probes = threading.Event()
        self.lock = threading.RLock()
        self.workers: list[threading.Thread] = []

    # -- the process --------------------------------------------------------------------------

    def command(self) -> list[str]:
        sandbox = self.pod.sandbox
        if "command" in self.spec:
            line = [*self.spec["command"], *self.spec.get("args", [])]
        else:
            args = self.spec.get("args", list(self.image.cmd))
            line = [*self.image.entrypoint, *args]
        return [sandbox.text(part) for part in line]

    def environment(self) -> dict[str, str]:
        sandbox = self.pod.sandbox
        env = {
            "PATH": self.pod.path_env,
            "HOME": str(sandbox.path(self.spec.get("workingDir", "/root"))),
            "LANG": "C.UTF-8",
            "TMPDIR": str(sandbox.path("/tmp")),
            "TEMP": str(sandbox.path("/tmp")),
            "TMP": str(sandbox.path("/tmp")),
        }
        if os.environ.get("JAVA_HOME"):
            env["JAVA_HOME"] = os.environ["JAVA_HOME"]
        for item in self.spec.get("env", []):
            env[item["name"]] = sandbox.text(str(item["value"]))
        return env

    def workdir(self) -> Path:
        return self.pod.sandbox.path(self.spec.get("workingDir", "/"))

    def start(self) -> None:
        with self.lock:
            self.started = "startupProbe" not in self.spec
            self.ready = False
            self.exit_status = None
            self.stop_probes = threading.Event()
            log = self.pod.sandbox.root / f"{self.name}.log"
            command = ["unshare", "--pid", "--fork", "--mount-proc", *self.command()]
            with open(log, "ab") as out:
                self.process = subprocess.Popen(
                    command,
                    cwd=self.workdir(),
                    env=self.environment(),
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            self.pid1 = self._find_pid1(self.process.pid)
            # Counted once the process and its PID 1 are known: stop() may come at once.
            self.generation += 1
            self.started_at = time.monotonic()
            self.pod.record(
                self.name,
                f"container started (#{self.generation}): PID 1 is {Path(self.command()[0]).name}",
            )
            self.workers = [
                threading.Thread(target=self._probe_worker, args=(probe,), daemon=True)
                for probe in self.probes
            ]
            for worker in self.workers:
                worker.start()
            threading.Thread(target=self._watch_exit, args=(self.process,), daemon=True).start()

    @staticmethod
    def _find_pid1(unshare_pid: int) -> int:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children")
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                found = children.read_text().split()
                if found:
                    return int(found[0])
            time.sleep(0.01)
        raise RuntimeError("unshare started no child")

    def _watch_exit(self, process: subprocess.Popen[bytes]) -> None:
        status = process.wait()
        with self.lock:
            if process is self.process and self.exit_status is None:
                self.exit_status = status
                self.ready = False
                self.stop_probes.set()
                self.pod.record(self.name, f"container exited with status {status}")

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float, why: str) -> tuple[float, bool]:
        """SIGTERM to PID 1, SIGKILL after ``grace`` s: ``(seconds, graceful)``."""
        with self.lock:  # never the PID 1 of an earlier process: its pid may be reused
            self.stop_probes.set()
            process, pid1 = self.process, self.pid1
        if process is None or pid1 is None or process.poll() is not None:
            return 0.0, True
        self.pod.record(self.name, f"{why}: SIGTERM to PID 1 (grace period {grace:g} s)")
        began = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid1, signal.SIGTERM)
        try:
            process.wait(timeout=grace)
            graceful = True
        except subprocess.TimeoutExpired:
            graceful = False
            self.pod.record(self.name, f"grace period over after {grace:g} s: SIGKILL to PID 1")
            # PID 1 dying takes every process of its namespace with it.
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid1, signal.SIGKILL)
            process.wait(timeout=30)
        took = time.monotonic() - began
        self.exit_status = process.returncode
        self.pod.record(
            self.name,
            f"PID 1 exited {took:.1f} s after SIGTERM "
            f"({'gracefully' if graceful else 'killed'}, status {process.returncode})",
        )
        return took, graceful

    def kill_now(self) -> None:
        """Clean-up after a failed test: SIGKILL to PID 1 (its namespace goes with it)."""
        with self.lock:
            self.stop_probes.set()
            process, pid1 = self.process, self.pid1
        if process is not None and process.poll() is None and pid1 is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid1, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=30)

    # -- probes -------------------------------------------------------------------------------

    def _probe_worker(self, probe: ProbeSpec) -> None:
        stop = self.stop_probes
        generation = self.generation
        last: bool | None = None
        streak = 0
        while not stop.is_set():
            tick = time.monotonic()
            if self._probe_due(probe):
                ok, output = self.run_probe(probe)
                if stop.is_set() or generation != self.generation:
                    return
                streak = streak + 1 if ok == last else 1
                last = ok
                self.pod.record(
                    f"{self.name} {probe.name}",
                    f"{'ok  ' if ok else 'FAIL'} {output}"
                    + ("" if ok else f" (failure {streak}, threshold {probe.failure_threshold})"),
                )
                if self._act(probe, ok, streak):
                    return
            stop.wait(max(0.0, probe.period - (time.monotonic() - tick)))

    def _probe_due(self, probe: ProbeSpec) -> bool:
        if not self.running or self.pod.deleting:
            return False
        if probe.kind == "startupProbe" and self.started:
            return False
        if probe.kind != "startupProbe" and not self.started:
            return False
        return time.monotonic() - self.started_at >= probe.initial_delay

    def _act(self, probe: ProbeSpec, ok: bool, streak: int) -> bool:
        """Apply a result; ``True`` when this container is being restarted."""
        if probe.kind == "startupProbe":
            if ok and streak >= probe.success_threshold:
                self.started = True
                self.pod.record(self.name, "started (startup probe succeeded)")
            elif not ok and streak >= probe.failure_threshold:
                self.restart("startup probe failed")
                return True
        elif probe.kind == "readinessProbe":
            if ok and streak >= probe.success_threshold and not self.ready:
                self.ready = True
                self.pod.record(self.name, "Ready: added to the Service's endpoints")
            elif not ok and streak >= probe.failure_threshold and self.ready:
                self.ready = False
                self.pod.record(self.name, "not Ready: removed from the Service's endpoints")
        elif not ok and streak >= probe.failure_threshold:
            self.restart("liveness probe failed")
            return True
        return False

    def restart(self, why: str) -> None:
        self.ready = False
        self.stop(self.pod.grace, f"{why}, restarting")
        self.restarts += 1
        delay = min(BACKOFF_S * 2 ** (self.restarts - 1), BACKOFF_MAX_S)
        self.pod.record(self.name, f"restart #{self.restarts}: back-off {delay:g} s")
        if not self.pod.stopped.wait(delay) and not self.pod.deleting:
            self.start()

    def run_probe(self, probe: ProbeSpec) -> tuple[bool, str]:
        sandbox = self.pod.sandbox
        handler = probe.handler
        if "exec" in handler:
            command = [sandbox.text(part) for part in handler["exec"]["command"]]
            try:
                done = subprocess.run(
                    command,
                    cwd=self.workdir(),
                    env=self.environment(),
                    capture_output=True,
                    text=True,
                    timeout=probe.timeout,
                )
            except subprocess.TimeoutExpired:
                return False, f"exec timed out after {probe.timeout:g} s"
            text = " | ".join(
                part.strip() for part in (done.stdout, done.stderr) if part.strip()
            ).replace("\n", " | ")
            return done.returncode == 0, f"exit {done.returncode}: {clip(text)}"
        if "httpGet" in handler:
            get = handler["httpGet"]
            port = sandbox.port(self.port_number(get["port"]))
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=probe.timeout)
            try:
                headers = {h["name"]: h["value"] for h in get.get("httpHeaders", [])}
                connection.request("GET", get.get("path", "/"), headers=headers)
                answer = connection.getresponse()
                body = answer.read(OUTPUT_LIMIT).decode("utf-8", "replace")
            except OSError as exc:
                return False, f"GET {get.get('path', '/')}: {type(exc).__name__}: {exc}"
            finally:
                connection.close()
            # The kubelet: 200 <= status < 400 is success.
            return 200 <= answer.status < 400, (
                f"GET {get.get('path', '/')} {answer.status} {clip(' '.join(body.split()))}"
            )
        port = sandbox.port(self.port_number(handler["tcpSocket"]["port"]))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=probe.timeout):
                return True, f"tcp {handler['tcpSocket']['port']} connected"
        except OSError as exc:
            return False, f"tcp {handler['tcpSocket']['port']}: {exc}"

    def port_number(self, port: int | str) -> int:
        return self.ports[port] if isinstance(port, str) else int(port)


def clip(text: str, limit: int = OUTPUT_LIMIT) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


class Pod:
    """One pod of a Deployment from ``manifest`` (with its ConfigMaps), run here.

    Args:
        images: image name -> :class:`Image` (entrypoint, files).
        bin_dirs: where the image's executables are (``torchserve``, ``ts-health``): PATH.
        config_changes: ConfigMap name -> ``config.properties`` entries to change (a test
            shortens e.g. ``token_expiration_min``); each is named in the timeline.
    """

    def __init__(
        self,
        manifest: Path,
        *,
        images: Mapping[str, Image],
        bin_dirs: list[Path],
        config_changes: Mapping[str, Mapping[str, str]] | None = None,
        notes: list[str] | None = None,
    ) -> None:
        documents = [d for d in yaml.safe_load_all(manifest.read_text(encoding="utf-8")) if d]
        (deployment,) = [d for d in documents if d["kind"] == "Deployment"]
        self.config_maps = {
            d["metadata"]["name"]: dict(d.get("data", {}))
            for d in documents
            if d["kind"] == "ConfigMap"
        }
        self.notes = list(notes or [])
        for name, changes in (config_changes or {}).items():
            for key, value in changes.items():
                text = self.config_maps[name]["config.properties"]
                text, count = re.subn(rf"(?m)^{re.escape(key)}=.*$", f"{key}={value}", text)
                if not count:
                    text += f"{key}={value}\n"
                self.config_maps[name]["config.properties"] = text
                self.notes.append(f"test override: ConfigMap {name}: {key}={value}")
        self.template = deployment["spec"]["template"]["spec"]
        self.grace = float(self.template.get("terminationGracePeriodSeconds", 30))
        ports: list[int] = []
        for container in self.template["containers"]:
            ports += [int(p["containerPort"]) for p in container.get("ports", [])]
        for data in self.config_maps.values():
            for text in data.values():
                ports += properties_ports(text)
        self.sandbox = Sandbox(ports)
        self.path_env = os.pathsep.join([*map(str, bin_dirs), "/usr/local/bin", "/usr/bin", "/bin"])
        self.containers = [
            Container(self, spec, images[spec["image"]]) for spec in self.template["containers"]
        ]
        for container in self.containers:
            for pod_path, local in container.image.files.items():
                target = self.sandbox.path(pod_path)
                target.parent.mkdir(parents=True, exist_ok=True)
                if local.is_dir():
                    shutil.copytree(local, target, dirs_exist_ok=True)
                else:
                    shutil.copy2(local, target)
        self._mount_volumes()
        self.events: list[Event] = []
        self.events_lock = threading.Lock()
        self.begin = time.monotonic()
        self.deleting = False
        self.stopped = threading.Event()

    def _mount_volumes(self) -> None:
        volumes = {v["name"]: v for v in self.template.get("volumes", [])}
        for spec in self.template["containers"]:
            self.sandbox.path(spec.get("workingDir", "/")).mkdir(parents=True, exist_ok=True)
            for mount in spec.get("volumeMounts", []):
                volume = volumes[mount["name"]]
                where = self.sandbox.path(mount["mountPath"])
                where.mkdir(parents=True, exist_ok=True)
                if "configMap" in volume:
                    for key, text in self.config_maps[volume["configMap"]["name"]].items():
                        mapped = (
                            self.sandbox.properties(text) if key.endswith(".properties") else text
                        )
                        (where / key).write_text(mapped, encoding="utf-8")

    # -- the timeline ---------------------------------------------------------------------------

    def record(self, source: str, text: str) -> None:
        with self.events_lock:
            self.events.append(Event(time.monotonic() - self.begin, source, text))

    def timeline(self, title: str) -> str:
        with self.events_lock:
            lines = [f"== {title}", *(f"   ({note})" for note in self.notes)]
            lines += [event.line() for event in self.events]
        return "\n".join(lines)

    def seen(self, source: str, fragment: str) -> list[Event]:
        with self.events_lock:
            return [e for e in self.events if e.source == source and fragment in e.text]

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def ready(self) -> bool:
        return all(c.ready for c in self.containers)

    def start(self) -> None:
        self.record("pod", "scheduled; starting containers")
        for container in self.containers:
            container.start()

    def wait_for(self, condition: Callable[[], Any], *, timeout: float, what: str) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"timed out after {timeout:g} s waiting for {what}\n" + self.timeline("pod")
                )
            time.sleep(0.2)

    def delete(self) -> list[tuple[float, bool]]:
        """Delete the pod: out of the endpoints, then each container stopped."""
        self.deleting = True
        self.record("pod", "deleted: removed from the Service's endpoints")
        for container in self.containers:
            container.ready = False
        results = [c.stop(self.grace, "pod deleted") for c in self.containers]
        self.stopped.set()
        return results

    def close(self, *, keep: bool) -> None:
        self.deleting = True
        self.stopped.set()
        for container in self.containers:
            container.kill_now()
        if not keep:
            shutil.rmtree(self.sandbox.root, ignore_errors=True)


@contextlib.contextmanager
def running(pod: Pod) -> Iterator[Pod]:
    """Start ``pod``; on exit kill whatever is left (by PID 1) and remove its files, keeping
    them (their path is in the timeline) when the body failed."""
    ok = False
    try:
        pod.start()
        yield pod
        ok = True
    finally:
        pod.close(keep=not ok)
        if not ok:
            print(f"pod files kept in {pod.sandbox.root}")
