#!/usr/bin/env bash
# Runs one Kafka JVM for the test kit and makes sure it never outlives the Node.js process that started it.
# Usage: run-kafka.sh <java> <args...>
#
# Node.js keeps this script's stdin open as a pipe. The pipe reaches end-of-file when that process exits,
# whatever the way (normal exit, crash, SIGKILL): the JVM is then killed at once, so no broker is orphaned.
# SIGTERM to this script stops the JVM gracefully (Kafka's controlled shutdown) and waits for it.
set -u
# Background jobs of a script read /dev/null unless told otherwise: keep the pipe on fd 3 for the watcher.
exec 3<&0
"$@" </dev/null 3<&- &
jvm=$!
( cat <&3 >/dev/null; kill -9 "$jvm" 2>/dev/null ) &
watcher=$!
trap 'kill -TERM "$jvm" 2>/dev/null' TERM INT
code=0
while kill -0 "$jvm" 2>/dev/null; do
  wait "$jvm"
  code=$?
done
kill "$watcher" 2>/dev/null
exit "$code"
