#!/bin/sh
# ci-deps.sh installs the real servers the source tests run against:
# OpenSSH's sshd (Debian openssh-server) and the versitygw S3 gateway,
# built once into a cache outside the repository; and Debian's Chromium,
# which the status page's browser test drives headless; and Debian's
# PostgreSQL, which the PostgreSQL ledger's tests start in a temporary data
# directory (testutil.Postgres). It is idempotent:
# a second run finds them all and does nothing.
set -eu

cache="${XDG_CACHE_HOME:-$HOME/.cache}/usagedrop-test/bin"
versitygw_version="v1.8.0"

# Debian packages, installed in one apt-get run for whatever is missing.
missing=""
if ! command -v sshd >/dev/null 2>&1 && [ ! -x /usr/sbin/sshd ]; then
	missing="$missing openssh-server openssh-client"
fi
if ! command -v chromium >/dev/null 2>&1; then
	missing="$missing chromium"
fi
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
	# The tests start servers of their own; the cluster the package may
	# start is not used.
	missing="$missing postgresql"
fi
if [ -n "$missing" ]; then
	sudo=""
	if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
	$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
	# shellcheck disable=SC2086 # a list of package names
	DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq $missing
fi

if [ ! -x "$cache/versitygw" ]; then
	mkdir -p "$cache"
	# Build outside the module so its go.mod is neither read nor changed.
	(cd "$cache" && GOFLAGS=-mod=mod GOBIN="$cache" go install \
		"github.com/versity/versitygw/cmd/versitygw@$versitygw_version")
fi

echo "sshd: $(command -v sshd || echo /usr/sbin/sshd)"
echo "versitygw: $cache/versitygw"
echo "chromium: $(command -v chromium)"
echo "postgresql: $(ls -d /usr/lib/postgresql/*/bin | tail -n 1)"
