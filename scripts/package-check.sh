#!/bin/sh
# package-check.sh checks what scripts/package.sh left in dist/ (or $DIST):
# it reads the .rpm, installs the .deb on this machine, checks it as an
# operator meets it, and removes it again (dpkg --purge, and the usagedrop
# user if this run made it), so the machine is as it was. Outside CI it
# refuses to run where usagedrop is already installed. Needs root (or
# sudo): CI runs as root.
#
#	sh scripts/package.sh && sh scripts/package-check.sh
set -eu
cd "$(dirname "$0")/.."

DIST="${DIST:-dist}"
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

fail() {
	echo "package-check: $*" >&2
	exit 1
}

# The tools the checks use, from Debian, when missing.
need=""
command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
command -v man >/dev/null 2>&1 || need="$need man-db"
command -v groff >/dev/null 2>&1 || need="$need groff-base"
command -v rpm >/dev/null 2>&1 || need="$need rpm"
if [ -n "$need" ]; then
	$sudo apt-get -o DPkg::Lock::Timeout=300 update -qq
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=300 install -y -qq $need
fi

set -- "$DIST"/usagedrop_*.deb
[ $# = 1 ] && [ -f "$1" ] || fail "want exactly one usagedrop_*.deb in $DIST, found: $*"
deb="$1"
set -- "$DIST"/usagedrop-*.rpm
[ $# = 1 ] && [ -f "$1" ] || fail "want exactly one usagedrop-*.rpm in $DIST, found: $*"
rpm="$1"

# What both packages must install; the .deb is installed below, the .rpm
# only read (this is a Debian machine).
paths="/usr/bin/usagedrop
/usr/lib/systemd/system/usagedrop.service
/usr/lib/sysusers.d/usagedrop.conf
/etc/usagedrop/config.yaml
/usr/share/doc/usagedrop/README.md
/usr/share/man/man1/usagedrop.1.gz"

echo "== rpm -qpl $rpm"
listed=$(rpm -qpl "$rpm")
for path in $paths; do
	echo "$listed" | grep -qx "$path" || fail "rpm -qpl does not list $path"
done
rpm -qpc "$rpm" | grep -qx /etc/usagedrop/config.yaml || fail "/etc/usagedrop/config.yaml is not %config in the .rpm"
rpm -qp --scripts "$rpm" | grep -q systemd-sysusers || fail "the .rpm's postinstall does not run systemd-sysusers"
echo "  the six paths, config.yaml as %config, the postinstall"

if dpkg-query -W usagedrop >/dev/null 2>&1; then
	# In CI only, it can be what a killed earlier run left behind.
	[ -n "${CI:-}" ] || fail "usagedrop is already installed here; not touching it"
	echo "package-check: removing the usagedrop an earlier run left installed"
	$sudo dpkg --purge usagedrop
fi
user_was_there=false
if getent passwd usagedrop >/dev/null; then user_was_there=true; fi

cleanup() {
	$sudo dpkg --purge usagedrop >/dev/null || echo "package-check: dpkg --purge usagedrop failed" >&2
	if ! $user_was_there && getent passwd usagedrop >/dev/null; then
		$sudo userdel usagedrop || true
		getent group usagedrop >/dev/null && $sudo groupdel usagedrop || true
	fi
}
trap cleanup EXIT

echo "== dpkg -i $deb"
$sudo dpkg -i "$deb"

echo "== usagedrop version"
out=$(/usr/bin/usagedrop version)
echo "$out"
version=$(echo "$out" | awk '{print $2}')
case "$version" in
"" | dev | "(devel)") fail "usagedrop version says \"$out\": the build was not stamped" ;;
esac
if git rev-parse --verify -q HEAD >/dev/null 2>&1; then
	rev=$(git rev-parse --short=12 HEAD)
	case "$out" in
	*"$rev"*) ;;
	*) fail "usagedrop version \"$out\" does not name the commit $rev" ;;
	esac
fi

echo "== dpkg -L usagedrop"
listed=$(dpkg -L usagedrop)
for path in $paths; do
	echo "$listed" | grep -qx "$path" || fail "dpkg -L usagedrop does not list $path"
	[ -e "$path" ] || fail "$path is listed but not installed"
	echo "  $path"
done
dpkg-query -W -f='${Conffiles}\n' usagedrop | grep -q ' /etc/usagedrop/config.yaml ' ||
	fail "/etc/usagedrop/config.yaml is not a conffile"

echo "== the usagedrop user and the config's owner"
getent passwd usagedrop >/dev/null || fail "the postinstall made no usagedrop user"
perm=$(stat -c '%a %U %G' /etc/usagedrop/config.yaml)
[ "$perm" = "640 root usagedrop" ] || fail "/etc/usagedrop/config.yaml is $perm, want 640 root usagedrop"
echo "  $perm"

echo "== the installed config"
# As installed it names what to fill in; with those variables set it loads
# and validates, read as the daemon reads it: as the usagedrop user.
out=$(/usr/bin/usagedrop check -config /etc/usagedrop/config.yaml examples/march-usage.csv 2>&1) &&
	fail "the installed config loads with nothing filled in"
case "$out" in
*ZUORA_CLIENT_ID*) echo "  as installed: $out" ;;
*) fail "the installed config fails without naming ZUORA_CLIENT_ID: $out" ;;
esac
sample=$(mktemp -d)
cp examples/march-usage.csv "$sample/"
chmod -R a+rX "$sample"
$sudo env ZUORA_CLIENT_ID=id ZUORA_CLIENT_SECRET=secret SFTP_PASSWORD=p S3_KEY=k S3_SECRET=s \
	runuser -u usagedrop -- /usr/bin/usagedrop check -config /etc/usagedrop/config.yaml \
	-source partner-s3 "$sample/march-usage.csv" || fail "the installed config does not load when filled in"
rm -r "$sample"

echo "== the unit"
unit=/usr/lib/systemd/system/usagedrop.service
grep -qx 'ExecStart=/usr/bin/usagedrop run -config /etc/usagedrop/config.yaml' "$unit" ||
	fail "the unit does not start /usr/bin/usagedrop with /etc/usagedrop/config.yaml"
doc=$(sed -n 's|^Documentation=.*file://\([^ ]*\).*|\1|p' "$unit")
[ -f "$doc" ] || fail "the unit's Documentation= points to $doc, which is not installed"
$sudo systemd-analyze verify "$unit"
echo "  systemd-analyze verify: ok"
if [ -d /run/systemd/system ]; then
	systemctl is-enabled --quiet usagedrop.service && fail "installing enabled the service"
fi

echo "== man usagedrop"
page=/usr/share/man/man1/usagedrop.1.gz
warnings=$(zcat "$page" | groff -man -Tutf8 -ww -z 2>&1)
[ -z "$warnings" ] || fail "groff warns about $page: $warnings"
rendered=$(MANPAGER=cat MANWIDTH=100 man -l "$page" 2>&1) || fail "man -l $page: $rendered"
for cmd in $(/usr/bin/usagedrop help | awk '/^ +usagedrop [a-z]/ {print $2}' | sort -u); do
	echo "$rendered" | grep -q "usagedrop $cmd" || fail "man page lacks the command $cmd"
	echo "  usagedrop $cmd"
done

echo "package-check: ok ($deb)"
