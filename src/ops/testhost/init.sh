#!/bin/sh
# PID 1 of a `fleet test` container (passed as `sh -c`, so any image with sshd works):
# root logs in with the run's throwaway key, the host keys are made at first start
# (two containers never share one), sshd runs until the container is removed.
set -u
log=/var/log/fleet-testhost.log
mkdir -p /root/.ssh && chmod 700 /root/.ssh
printf '%s\n' "${FLEET_AUTHORIZED_KEY:-}" > /root/.ssh/authorized_keys
chmod 600 /root/.ssh/authorized_keys
ssh-keygen -A >>"$log" 2>&1
mkdir -p /run/sshd
/usr/sbin/sshd -D -e 2>>"$log" &
trap 'exit 0' TERM INT
touch /run/fleet-testhost-booted
while :; do
  sleep 1000 &
  wait $!
done
