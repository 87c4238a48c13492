#!/bin/sh
# preremove: stop the daemon before its binary goes. On an upgrade (deb:
# "upgrade", rpm: $1 = 1) it keeps running until the postinstall restarts it.
set -e
case "${1:-}" in
upgrade | 1) exit 0 ;;
esac
if [ -d /run/systemd/system ]; then
	systemctl disable --now usagedrop.service >/dev/null 2>&1 || true
fi
exit 0
