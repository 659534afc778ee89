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
set -uo pipefail

log() { echo "ts-entrypoint: $*" >&2; }

launcher=""
stopping=""
stopped=""
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
[ -z "$stopping" ] || stop_torchserve

# A trapped signal ends `wait` early: wait again until the launcher has really exited.
status=0
while kill -0 "$launcher" 2>/dev/null; do
  wait "$launcher"
  status=$?
done
if [ -n "$stopping" ]; then
  log "TorchServe stopped after $stopping"
  exit 0
fi
log "TorchServe exited on its own with status $status"
exit "$status"
