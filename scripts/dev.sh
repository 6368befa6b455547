#!/usr/bin/env bash
# Set up and run unipush-bridge from a checkout, on a fresh Debian machine or a dev box.
#
#   bash scripts/dev.sh run [ARGS...]   venv + package, then `unipush-bridge run ARGS...`
#   bash scripts/dev.sh test [PYTEST ARGS...]
#                                       venv + dev tools + the Debian packages of the
#                                       end-to-end stack (when root), then ruff, mypy, pytest
#   bash scripts/dev.sh bench           the benchmarks under tests/bench
#
# Idempotent: a second run reuses .venv and installs only what changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=.venv
# dunst and the e2e matrix's other servers, xfce's settings daemon (xfconf),
# screenshots (imagemagick) and popups found with xwininfo (x11-utils); issue 11
E2E_PACKAGES=(dbus dbus-x11 xvfb dunst libnotify-bin xdotool notification-daemon xfce4-notifyd
              xfconf lxqt-notificationd notify-osd imagemagick x11-utils
              redis-server  # the gateway's Redis store and cluster tests (issue 17)
              haskell-status-notifier-item-utils haskell-gtk-sni-tray-utils xclip  # the tray (issue 14)
              xfce4-panel  # the tray's second host (issue 14)
              chromium  # the browser SDK in a real browser (issue 15)
              faketime)  # a daemon whose wall clock is stepped while it runs

say() { printf '[dev.sh] %s\n' "$*" >&2; }

as_root_apt() {  # as_root_apt PKG...: install Debian packages when we can, else say what is missing
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing Debian packages: $*"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends "$@" >&2
    else
        say "missing Debian packages: $* (install them as root)"
        return 1
    fi
}

ensure_python() {
    if ! command -v "$PYTHON" >/dev/null 2>&1; then
        as_root_apt python3 python3-venv || exit 1
    fi
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' || {
        say "Python 3.11 or newer is needed; $PYTHON is $("$PYTHON" -V 2>&1)"; exit 1; }
    # Debian splits venv/ensurepip into python3-venv.
    if [ ! -x "$VENV/bin/python" ] && ! "$PYTHON" -c 'import ensurepip, venv' 2>/dev/null; then
        as_root_apt python3-venv || exit 1
    fi
}

ensure_venv() {  # ensure_venv EXTRA: create .venv and install the package (with [EXTRA])
    local extra=$1 spec=. stamp
    [ -n "$extra" ] && spec=".[$extra]"
    ensure_python
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    # The lock pins every dependency (and the build backend) with its hashes: pip refuses
    # a download whose hash differs. requirements/README.md says how to renew it.
    lock="requirements/${extra:-run}.txt"
    stamp="$VENV/.installed-$(cat pyproject.toml "$lock" | sha256sum | cut -c1-16)-${extra:-base}"
    if [ ! -e "$stamp" ]; then
        say "installing the locked dependencies ($lock) into $VENV"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
            --require-hashes -r "$lock"
        say "installing unipush-bridge ($spec) into $VENV"
        "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
            --no-deps --no-build-isolation -e "$spec"
        touch "$stamp"
    fi
}

ensure_e2e_packages() {
    local missing=() tool
    for tool in dbus-daemon:dbus dbus-launch:dbus-x11 Xvfb:xvfb dunst:dunst \
                notify-send:libnotify-bin xdotool:xdotool \
                /usr/lib/notification-daemon/notification-daemon:notification-daemon \
                xfconf-query:xfconf lxqt-notificationd:lxqt-notificationd \
                import:imagemagick xwininfo:x11-utils redis-server:redis-server \
                status-notifier-watcher:haskell-status-notifier-item-utils \
                gtk-sni-tray-standalone:haskell-gtk-sni-tray-utils xclip:xclip \
                xfce4-panel:xfce4-panel \
                node:nodejs chromium:chromium; do  # chromium: the browser SDK's tests (issue 15)
        command -v "${tool%%:*}" >/dev/null 2>&1 || missing+=("${tool##*:}")
    done
    compgen -G '/usr/lib/*/xfce4/notifyd/xfce4-notifyd' >/dev/null || missing+=(xfce4-notifyd)
    compgen -G '/usr/lib/*/notify-osd' >/dev/null || missing+=(notify-osd)
    compgen -G '/usr/lib/*/faketime/libfaketime.so.1' >/dev/null || missing+=(faketime)
    [ ${#missing[@]} -eq 0 ] && return 0
    as_root_apt "${missing[@]}" || say "end-to-end tests will be skipped (they say why)"
}

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
    run)
        ensure_venv ""
        exec "$VENV/bin/unipush-bridge" run "$@"
        ;;
    test)
        ensure_venv dev
        ensure_e2e_packages
        say "ruff check"; "$VENV/bin/ruff" check .
        say "ruff format --check"; "$VENV/bin/ruff" format --check .
        say "mypy"; "$VENV/bin/mypy"
        say "pytest"
        # pytest exits 5 when it collected no test: that fails this script too.
        # Two workers, each test file on one of them (its module fixtures stay shared);
        # pass -n 0 to run it in one process.
        exec "$VENV/bin/pytest" -q -p no:cacheprovider -n 2 --dist loadfile "$@"
        ;;
    bench)
        ensure_venv dev
        ensure_e2e_packages
        # mosquitto: the MQTT QoS 1 baseline of the latency benchmark (started by it)
        command -v mosquitto >/dev/null 2>&1 || as_root_apt mosquitto ||
            say "the MQTT baseline will be skipped"
        for bench in tests/bench/bench_*.py; do
            say "$bench"
            "$VENV/bin/python" "$bench" "$@"
        done
        ;;
    *)
        sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2
        exit 2
        ;;
esac
