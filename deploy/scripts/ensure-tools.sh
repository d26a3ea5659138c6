#!/bin/sh
# Tools the tests need beside Python: promtool (Debian's `prometheus` package) checks the
# alert rules and every service's /metrics output. Installs it when missing (CI on a fresh
# machine); does nothing when it is there.
set -eu
if command -v promtool >/dev/null 2>&1; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-tools: promtool is missing and apt-get is not available; install Prometheus's promtool" >&2
    exit 1
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
echo "ensure-tools: installing promtool (Debian package prometheus)" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null
command -v promtool >/dev/null
