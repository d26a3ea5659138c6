#!/bin/sh
# Tools the tests need beside Python, installed when missing (CI on a fresh machine); does
# nothing when they are there:
# - promtool (Debian's `prometheus` package) checks the alert rules and every /metrics output;
# - Node.js and npm, then the npm packages pinned by the project's lock files, into
#   git-ignored node_modules/ folders: the AsyncAPI project's CLI (deploy/tools/asyncapi)
#   validates asyncapi.yaml, and the partner example consumer (examples/partner-consumer) runs.
set -eu
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
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
apt_install npm nodejs npm
npm_ci "$ROOT/deploy/tools/asyncapi"
# The AsyncAPI CLI sends usage metrics unless its config file says no: it says no.
printf '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"muster"}\n' \
    > "$ROOT/deploy/tools/asyncapi/node_modules/.analytics.json"
npm_ci "$ROOT/examples/partner-consumer"
