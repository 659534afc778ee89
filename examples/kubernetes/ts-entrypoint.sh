#!/bin/bash
# PID 1 of the TorchServe container (Dockerfile: ENTRYPOINT): runs TorchServe in the foreground
# and turns SIGTERM (pod deletion, a liveness restart) into a graceful `torchserve --stop`.
#
# Why not `torchserve --foreground` as the container's command: PID 1 gets no default signal
# actions, and TorchServe's Python launcher installs no handler, so SIGTERM is ignored; every
# stop then waits for terminationGracePeriodSeconds and ends in SIGKILL, and the Java frontend
# never runs its shutdown hook. Here bash is PID 1: it traps SIGTERM and SIGINT, asks TorchServe
# to stop (SIGTERM to the Java frontend named in TorchServe's pid file; its shutdown hook stops
# the workers and closes the ports), waits for it, and reaps whatever else exits.
#
# Arguments go to `torchserve --start --foreground`, e.g.
#   ts-entrypoint --ts-config /home/model-server/config/config.properties --ncs
#
# With TS_HEALTH_SERVE_LISTEN set (e.g. 0.0.0.0:8090) it also runs `ts-health serve` there, with
# the extra options in TS_HEALTH_SERVE_ARGS, for the kubelet's httpGet startup and readiness
# probes; it is stopped after TorchServe.
set -uo pipefail

log() { echo "ts-entrypoint: $*" >&2; }

launcher=""
health=""
stopping=""
stopped=""
stop_health() {
  if [ -n "$health" ] && kill -0 "$health" 2>/dev/null; then
    kill -TERM "$health" 2>/dev/null
    wait "$health" 2>/dev/null
  fi
}
stop_torchserve() {
  [ -z "$stopped" ] || return 0
  stopped=1
  log "got $stopping: stopping TorchServe"
  # --foreground: wait (up to 60 s) until the frontend has exited.
  torchserve --stop --foreground >&2
  # Still running (the signal came before TorchServe wrote its pid file): stop the launcher.
  if kill -0 "$launcher" 2>/dev/null; then
    kill -TERM "$launcher" 2>/dev/null
  fi
}
on_signal() {
  stopping=${stopping:-$1}
  # Before TorchServe runs, only remember it: the check after the start acts on it.
  [ -z "$launcher" ] || stop_torchserve
}
# Handlers first: PID 1 drops a signal it has no handler for.
trap 'on_signal SIGTERM' TERM
trap 'on_signal SIGINT' INT

torchserve --start --foreground "$@" &
launcher=$!
log "started TorchServe (launcher pid $launcher)"
if [ -n "${TS_HEALTH_SERVE_LISTEN:-}" ]; then
  # Word splitting of TS_HEALTH_SERVE_ARGS is intended: it holds options.
  # shellcheck disable=SC2086
  ts-health serve --listen "$TS_HEALTH_SERVE_LISTEN" ${TS_HEALTH_SERVE_ARGS:-} &
  health=$!
  log "started ts-health serve on $TS_HEALTH_SERVE_LISTEN (pid $health)"
fi
[ -z "$stopping" ] || stop_torchserve

# A trapped signal ends `wait` early: wait again until the launcher has really exited.
status=0
while kill -0 "$launcher" 2>/dev/null; do
  wait "$launcher"
  status=$?
done
stop_health
if [ -n "$stopping" ]; then
  log "TorchServe stopped after $stopping"
  exit 0
fi
log "TorchServe exited on its own with status $status"
exit "$status"
