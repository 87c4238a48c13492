#!/bin/sh
# postremove: forget the removed unit. The usagedrop user, /var/lib/usagedrop
# (the ledger) and the config stay: a reinstall picks up where it was.
set -e
if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
exit 0
