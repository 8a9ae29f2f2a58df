#!/bin/sh
# Bring up PC/SC with the vsmartcard "vpcd" virtual reader so the card-bridge tests can
# talk to the JPKI card simulator through the real stack (pyscard -> pcscd -> vpcd).
#
# Idempotent; run as root on Debian bookworm (CI containers have no systemd, so pcscd is
# started by hand). `make test` calls it. Prints what it did; exits non-zero with one clear
# line on failure.
set -eu

say() { printf 'pcsc-up: %s\n' "$*"; }
die() { printf 'pcsc-up: ERROR: %s\n' "$*" >&2; exit 1; }

PCSCD=/usr/sbin/pcscd
VPCD_LIB=/usr/lib/pcsc/drivers/serial/libifdvpcd.so
LOG=${PCSCD_LOG:-/tmp/pcscd.log}
WAIT_SECONDS=${PCSC_UP_WAIT:-10}

# Parallel test workers may call this at the same time: one pcscd, one apt-get.
if command -v flock >/dev/null 2>&1; then
    exec 9>"${TMPDIR:-/tmp}/mynagate-pcsc-up.lock"
    # Bounded: a stuck holder must fail this script, never hang CI.
    flock -w 120 9 || die "another pcsc-up.sh held the lock for 120 s"
fi

# 1. Packages --------------------------------------------------------------------------
missing=""
[ -x "$PCSCD" ] || missing="$missing pcscd"
[ -e "$VPCD_LIB" ] || missing="$missing vsmartcard-vpcd"
[ -e /usr/include/PCSC/winscard.h ] || missing="$missing libpcsclite-dev"
if [ -n "$missing" ]; then
    [ "$(id -u)" = 0 ] || die "missing packages:$missing (run this script as root to install them)"
    command -v apt-get >/dev/null 2>&1 || die "missing packages:$missing and no apt-get here"
    say "installing:$missing"
    # update only when we actually install: keeps the common (already set up) path offline
    apt-get update -qq >/dev/null || die "apt-get update failed"
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing >/dev/null \
        || die "apt-get install$missing failed"
else
    say "packages present (pcscd, vsmartcard-vpcd, libpcsclite-dev)"
fi
[ -e /etc/reader.conf.d/vpcd ] || die "/etc/reader.conf.d/vpcd missing: reinstall vsmartcard-vpcd"

# 2. pcscd -----------------------------------------------------------------------------
pcscd_running() {
    if [ -r /run/pcscd/pcscd.pid ] && kill -0 "$(tr -d '\0' </run/pcscd/pcscd.pid)" 2>/dev/null; then
        return 0
    fi
    pgrep -x pcscd >/dev/null 2>&1
}

if pcscd_running; then
    say "pcscd already running"
else
    [ "$(id -u)" = 0 ] || die "pcscd is not running and only root can start it"
    # A pcscd killed hard leaves its socket and pid file behind; the new one refuses to start.
    rm -f /run/pcscd/pcscd.comm /run/pcscd/pcscd.pid
    mkdir -p /run/pcscd
    # No systemd in containers: run it in the foreground, detached, logging to a file so a
    # failing CI job can show why. --auto-exit is deliberately NOT used (tests come and go).
    # 9>&-: pcscd must not inherit the lock's descriptor, or it would hold the lock for
    # its whole life and every later run of this script would wait for it forever.
    nohup setsid "$PCSCD" --foreground --info >"$LOG" 2>&1 </dev/null 9>&- &
    say "started pcscd (pid $!, log $LOG)"
fi

# 3. The vpcd reader must be listed -----------------------------------------------------
# Listed through libpcsclite with ctypes so this works before any virtualenv exists.
PY=${PYTHON:-$(command -v python3 || true)}
list_readers() {
    if [ -z "$PY" ]; then
        # No Python on this image yet: fall back to pcscd's own log (only when we started it).
        grep -q 'Attempting startup of Virtual PCD' "$LOG" 2>/dev/null \
            && grep -o 'Virtual PCD [0-9][0-9] [0-9][0-9]' "$LOG" | sort -u
        return
    fi
    "$PY" - <<'EOF'
import ctypes, ctypes.util, sys
lib = ctypes.CDLL(ctypes.util.find_library("pcsclite") or "libpcsclite.so.1")
ctx = ctypes.c_long()  # SCARDCONTEXT is a long on Linux pcsc-lite
if lib.SCardEstablishContext(2, None, None, ctypes.byref(ctx)) != 0:
    sys.exit(2)
size = ctypes.c_ulong(0)
rv = lib.SCardListReaders(ctx, None, None, ctypes.byref(size))
if rv != 0:
    sys.exit(3)
buf = ctypes.create_string_buffer(size.value)
lib.SCardListReaders(ctx, None, buf, ctypes.byref(size))
lib.SCardReleaseContext(ctx)
for name in buf.raw[: size.value].split(b"\0"):
    if name:
        print(name.decode())
EOF
}

i=0
readers=""
while [ "$i" -lt "$((WAIT_SECONDS * 2))" ]; do
    readers=$(list_readers 2>/dev/null || true)
    case "$readers" in *"Virtual PCD"*) break ;; esac
    i=$((i + 1))
    sleep 0.5
done
case "$readers" in
    *"Virtual PCD"*) ;;
    *) die "pcscd is up but no 'Virtual PCD' reader after ${WAIT_SECONDS}s (see $LOG)" ;;
esac
say "readers:"
printf '%s\n' "$readers" | sed 's/^/  - /'
say "ok: the JPKI simulator should connect to vpcd on 127.0.0.1:35963"
