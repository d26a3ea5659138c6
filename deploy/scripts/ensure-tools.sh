#!/bin/sh
# Tools the tests need beside Python, installed when missing (CI on a fresh machine); does
# nothing when they are there:
# - promtool (Debian's `prometheus` package) checks the alert rules and every /metrics output,
#   and evaluates the alert rules against a chaos run's recorded metrics;
# - toxiproxy-server (a Go module, built with `go install` into the jar cache) puts network
#   faults between the services and the broker or the database in `muster chaos`;
# - Node.js and npm, then the npm packages pinned by the project's lock files, into
#   git-ignored node_modules/ folders: the AsyncAPI project's CLI (deploy/tools/asyncapi)
#   validates asyncapi.yaml, and the partner example consumer (examples/partner-consumer) runs.
set -eu
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
TOXIPROXY_VERSION=v2.12.0   # keep in step with services/chaos/cluster.py
CACHE="${MUSTER_CACHE_DIR:-$ROOT/.muster/cache}"
TOXIPROXY="$CACHE/toxiproxy-$TOXIPROXY_VERSION/server"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi

apt_install() {  # <command> <debian packages...>
    command -v "$1" >/dev/null 2>&1 && return 0
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "ensure-tools: $1 is missing and apt-get is not available; install it ($*)" >&2
        exit 1
    fi
    cmd="$1"
    shift
    echo "ensure-tools: installing $cmd (Debian packages $*)" >&2
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@" >/dev/null
    command -v "$cmd" >/dev/null
}

npm_ci() {  # <folder with package.json and package-lock.json>: install exactly the lock, once per lock
    stamp="$1/node_modules/.muster-lock"
    if [ -f "$stamp" ] && cmp -s "$1/package-lock.json" "$stamp"; then
        return 0
    fi
    echo "ensure-tools: npm ci in ${1#"$ROOT"/}" >&2
    (cd "$1" && npm ci --no-audit --no-fund --loglevel=error >/dev/null)
    cp "$1/package-lock.json" "$stamp"
}

apt_install promtool prometheus

if [ ! -x "$TOXIPROXY" ]; then
    if ! command -v go >/dev/null 2>&1 && [ -x /usr/local/go/bin/go ]; then
        PATH="$PATH:/usr/local/go/bin"
    fi
    apt_install go golang-go
    echo "ensure-tools: building toxiproxy-server $TOXIPROXY_VERSION (go install) into $CACHE" >&2
    mkdir -p "$(dirname "$TOXIPROXY")"
    GOBIN="$(dirname "$TOXIPROXY")" go install "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION"
    test -x "$TOXIPROXY"
fi

apt_install npm nodejs npm
npm_ci "$ROOT/deploy/tools/asyncapi"
# The AsyncAPI CLI sends usage metrics unless its config file says no: it says no.
printf '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"muster"}\n' \
    > "$ROOT/deploy/tools/asyncapi/node_modules/.analytics.json"
npm_ci "$ROOT/examples/partner-consumer"
