#!/bin/sh
# package.sh builds usagedrop's .deb and .rpm into dist/ (or $DIST):
#
#	sh scripts/package.sh            # version from git
#	VERSION=1.2.0 sh scripts/package.sh   # outside git, or to override it
#
# The binary is built with -trimpath and stamped by go from git (module
# version, commit, modified); `usagedrop version` reads it back and the
# package takes the same version. The man page is written from the built
# binary's own help (scripts/mangen), and nfpm runs as `go tool nfpm`,
# pinned in go.mod. SOURCE_DATE_EPOCH (default: the commit's time) dates
# the page and every file in the packages, so a commit builds the same
# packages twice.
set -eu
cd "$(dirname "$0")/.."

DIST="${DIST:-dist}"
mkdir -p "$DIST"

in_git=false
if git rev-parse --verify -q HEAD >/dev/null 2>&1; then in_git=true; fi
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	if $in_git; then
		SOURCE_DATE_EPOCH=$(git log -1 --format=%ct)
	else
		SOURCE_DATE_EPOCH=$(date +%s)
	fi
fi
export SOURCE_DATE_EPOCH

build() {
	# -buildvcs=auto: this machine's go env may turn stamping off. -s -w
	# leaves out the symbol table and DWARF (stack traces keep their
	# function names and lines): the binary is about a third smaller.
	CGO_ENABLED=0 go build -buildvcs=auto -trimpath -ldflags "-s -w ${1:-}" -o "$DIST/usagedrop" .
}

if [ -n "${VERSION:-}" ]; then
	build "-X main.version=$VERSION"
else
	build
	VERSION=$("$DIST/usagedrop" version | awk '{print $2}')
	if [ "$VERSION" = dev ]; then
		# go stamps nothing in a git worktree (its .git is a file) nor
		# outside git: take go's own pseudo-version form from git.
		if ! $in_git; then
			echo "package.sh: not a git checkout; set VERSION" >&2
			exit 1
		fi
		VERSION="v0.0.0-$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)-$(git rev-parse --short=12 HEAD)"
		if [ -n "$(git status --porcelain)" ]; then VERSION="$VERSION+dirty"; fi
		build "-X main.version=$VERSION"
	fi
fi
echo "usagedrop $VERSION"

go run ./scripts/mangen -bin "$DIST/usagedrop" \
	-date "$(date -u -d "@$SOURCE_DATE_EPOCH" +%Y-%m-%d)" | gzip -n -9 >"$DIST/usagedrop.1.gz"
cat packaging/config-header.yaml config.example.yaml >"$DIST/config.yaml"

export VERSION DIST
ARCH="$(go env GOARCH)"
export ARCH
for packager in deb rpm; do
	go tool nfpm package --config packaging/nfpm.yaml --packager "$packager" --target "$DIST/"
done
ls -l "$DIST"/*.deb "$DIST"/*.rpm
