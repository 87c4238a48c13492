#!/bin/sh
# postinstall: create the usagedrop user and make systemd see the unit. It
# never enables or starts the service: the config must be filled in first
# (systemctl enable --now usagedrop). An upgrade restarts a running service
# so the new binary is the one running.
set -e

if command -v systemd-sysusers >/dev/null 2>&1; then
	systemd-sysusers usagedrop.conf
elif ! getent passwd usagedrop >/dev/null; then
	# No systemd (a container): the same user as usagedrop.conf declares.
	useradd --system --home-dir /var/lib/usagedrop --no-create-home \
		--shell /usr/sbin/nologin --comment "usagedrop daemon" --user-group usagedrop
fi

# The config may hold secrets: root writes it, the daemon's group reads it.
chgrp usagedrop /etc/usagedrop/config.yaml
chmod 0640 /etc/usagedrop/config.yaml

# Only when systemd runs this machine: in a chroot or a container build
# systemctl would fail, and the unit is read at the next boot anyway.
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
	if systemctl is-active --quiet usagedrop.service; then
		systemctl try-restart usagedrop.service || true
	fi
fi
exit 0
