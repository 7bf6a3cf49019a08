#!/usr/bin/env bash
# REAL mail servers on loopback for braid's live tests and benchmarks:
#   * Dovecot 2.3 (Debian's dovecot-imapd) with a config of its own in DIR,
#     IMAP on 127.0.0.1:10143 (STARTTLS offered, plaintext LOGIN allowed) and
#     IMAPS on 127.0.0.1:10993, Maildir storage under DIR/mail/<user>/Maildir;
#   * scripts/smtp_server.py (aiosmtpd, in a venv under target/): SMTP on
#     127.0.0.1:10025 (no TLS, no AUTH) and submission on 127.0.0.1:10587
#     (STARTTLS required, AUTH PLAIN/LOGIN required), delivering every message
#     straight into the recipients' Maildirs, so it shows up over IMAP (and
#     wakes IDLE) at once.
# Nothing listens on any other address or port. /etc/dovecot is not used.
#
#   scripts/mail-servers.sh start [DIR]        install if missing, start both (idempotent)
#   scripts/mail-servers.sh stop [DIR]         stop both, wait until the ports are closed
#   scripts/mail-servers.sh stop-imap [DIR]    stop Dovecot only (an IMAP server going away mid-sync)
#   scripts/mail-servers.sh start-imap [DIR]   start Dovecot only (fast, once set up)
#   scripts/mail-servers.sh restart-imap [DIR]
#   scripts/mail-servers.sh reset-uidvalidity USER [FOLDER] [DIR]
#                                              new UIDVALIDITY for FOLDER (default INBOX),
#                                              messages kept
#   scripts/mail-servers.sh deliver USER FILE|DIRECTORY [DIR]
#                                              raw RFC 5322 file(s) into USER's INBOX (new/);
#                                              a directory: every file in it, in name order
#   scripts/mail-servers.sh status [DIR]       exit 0 if everything runs
#
# DIR defaults to $BRAID_MAIL_DIR, else <repo>/target/mail-servers. Ports come
# from BRAID_IMAP_PORT, BRAID_IMAPS_PORT, BRAID_SMTP_PORT, BRAID_SUBMISSION_PORT
# (defaults 10143, 10993, 10025, 10587). Run as root (Debian 12): it apt-get
# installs dovecot-imapd and openssl if missing (with a policy-rc.d so Debian's
# own Dovecot service is never started) and pip installs aiosmtpd into
# target/mail-venv (BRAID_MAIL_VENV).
#
# How the tests use it: `start` writes DIR/env, KEY=VALUE lines
#   BRAID_MAIL_DIR BRAID_IMAP_PORT BRAID_IMAPS_PORT BRAID_SMTP_PORT
#   BRAID_SUBMISSION_PORT BRAID_MAIL_CA (DIR/cert.pem) BRAID_MAIL_SERVERS=1
# (`set -a; . DIR/env; set +a` in a shell; live tests run only when
# BRAID_MAIL_SERVERS=1). Connect to host `localhost` and trust BRAID_MAIL_CA:
# it is a self-signed end-entity certificate (CA:FALSE, SAN DNS:localhost,
# IP:127.0.0.1) that rustls accepts as a trust anchor.
# Users (IMAP login = SMTP AUTH; `name` or `name@example.com`):
#   support / support-pass   the help desk's mailbox, support@example.com
#   ann     / ann-pass       a customer, ann@example.com
#   bob     / bob-pass       another customer, bob@example.com
#   bench   / bench-pass     the benchmarks' mailbox (scripts/bench-imap.sh)
# Folders: INBOX, Sent (\Sent), Drafts (\Drafts), Trash (\Trash), hierarchy "/".
# Logs: DIR/dovecot.log, DIR/smtp.log.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAP_PORT=${BRAID_IMAP_PORT:-10143}
IMAPS_PORT=${BRAID_IMAPS_PORT:-10993}
SMTP_PORT=${BRAID_SMTP_PORT:-10025}
SUBMISSION_PORT=${BRAID_SUBMISSION_PORT:-10587}
VENV=${BRAID_MAIL_VENV:-$ROOT/target/mail-venv}
PYTHON=${BRAID_PYTHON:-python3}
AIOSMTPD_VERSION=1.4.6
WAIT_SECS=20
USERS=(support:support-pass ann:ann-pass bob:bob-pass bench:bench-pass)
DOVECOT=/usr/sbin/dovecot

die() { echo "mail-servers: $*" >&2; exit 1; }
note() { echo "mail-servers: $*" >&2; }

set_dir() {
  DIR=${1:-${BRAID_MAIL_DIR:-$ROOT/target/mail-servers}}
  mkdir -p "$DIR"
  DIR=$(cd "$DIR" && pwd)
  CONF=$DIR/dovecot.conf
  # Dovecot's unix sockets live in base_dir; a socket path must stay under
  # 108 bytes, so a deep DIR gets a short base_dir under /run instead.
  RUN=$DIR/run
  if (( ${#RUN} > 70 )); then
    RUN=/run/braid-mail-$(printf %s "$DIR" | md5sum | cut -c1-12)
  fi
}

# --- installing ------------------------------------------------------------

APT_UPDATED=0
apt_install() {
  [[ $(id -u) == 0 ]] || die "need root to apt-get install $*"
  if (( ! APT_UPDATED )); then
    apt-get update -qq
    APT_UPDATED=1
  fi
  # Installing dovecot-core would start Debian's own Dovecot (all addresses,
  # ports 143/993); a policy-rc.d that says 101 forbids that.
  local policy=/usr/sbin/policy-rc.d made=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\n# temporary, from braid scripts/mail-servers.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    made=1
  fi
  local rc=0
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" \
    >/tmp/braid-mail-apt.log 2>&1 || rc=$?
  (( made )) && rm -f "$policy"
  if (( rc )); then
    tail -20 /tmp/braid-mail-apt.log >&2
    die "apt-get install $* failed"
  fi
  # Belt and braces: should a system Dovecot run anyway, stop it.
  if [[ -s /run/dovecot/master.pid ]] && kill -0 "$(cat /run/dovecot/master.pid)" 2>/dev/null; then
    note "stopping the system Dovecot that the package started"
    kill "$(cat /run/dovecot/master.pid)" || true
  fi
}

ensure_installed() {
  local pkgs=()
  [[ -x $DOVECOT ]] || pkgs+=(dovecot-imapd)
  command -v openssl >/dev/null || pkgs+=(openssl)
  if (( ${#pkgs[@]} )); then
    note "installing ${pkgs[*]}"
    apt_install "${pkgs[@]}"
  fi
  if ! "$VENV/bin/python" -c 'import aiosmtpd' 2>/dev/null; then
    note "creating $VENV with aiosmtpd $AIOSMTPD_VERSION"
    rm -rf "$VENV"
    if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
      # Debian's python3 needs python3-venv for ensurepip.
      [[ -x /usr/bin/python3 ]] || apt_install python3
      /usr/bin/python3 -c 'import ensurepip' 2>/dev/null || apt_install python3-venv
      rm -rf "$VENV"
      /usr/bin/python3 -m venv "$VENV"
    fi
    "$VENV/bin/python" -m pip install -q --disable-pip-version-check "aiosmtpd==$AIOSMTPD_VERSION" \
      || die "pip install aiosmtpd failed"
  fi
}

# --- files in DIR ------------------------------------------------------------

make_cert() {
  [[ -s $DIR/cert.pem && -s $DIR/key.pem ]] && return 0
  cat >"$DIR/openssl.cnf" <<'EOF'
[req]
distinguished_name = dn
x509_extensions = leaf
prompt = no
[dn]
CN = localhost
O = braid test mail servers
[leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1
subjectKeyIdentifier = hash
EOF
  openssl req -x509 -config "$DIR/openssl.cnf" -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -nodes -days 3650 -keyout "$DIR/key.pem.tmp" -out "$DIR/cert.pem.tmp" 2>/dev/null \
    || die "openssl could not make the certificate"
  chmod 600 "$DIR/key.pem.tmp"
  chmod 644 "$DIR/cert.pem.tmp"
  mv "$DIR/key.pem.tmp" "$DIR/key.pem"
  mv "$DIR/cert.pem.tmp" "$DIR/cert.pem"
}

write_users() {
  local u tmp=$DIR/users.tmp
  : >"$tmp"
  for u in "${USERS[@]}"; do
    printf '%s:{PLAIN}%s\n' "${u%%:*}" "${u#*:}" >>"$tmp"
  done
  chmod 644 "$tmp"
  mv "$tmp" "$DIR/users"
}

make_maildirs() {
  local u name d
  mkdir -p "$DIR/mail"
  chmod 755 "$DIR" "$DIR/mail"
  for u in "${USERS[@]}"; do
    name=${u%%:*}
    for d in "$DIR/mail/$name" "$DIR/mail/$name/Maildir" \
             "$DIR/mail/$name/Maildir/"{cur,new,tmp}; do
      if [[ ! -d $d ]]; then
        mkdir -m 700 "$d"
        chown nobody:nogroup "$d"
      fi
    done
  done
  # The mail processes run as nobody: every directory above DIR/mail must be
  # searchable by it.
  setpriv --reuid=nobody --regid=nogroup --clear-groups test -x "$DIR/mail" \
    || die "user nobody cannot reach $DIR/mail (a parent directory is not o+x); use another DIR"
}

write_dovecot_conf() {
  local dh=""
  [[ -s /usr/share/dovecot/dh.pem ]] && dh="ssl_dh = </usr/share/dovecot/dh.pem"
  mkdir -p "$DIR/state"
  cat >"$CONF.tmp" <<EOF
# Generated by scripts/mail-servers.sh: a test-only Dovecot on loopback.
# Start: $DOVECOT -c $CONF   Stop: doveadm -c $CONF stop
instance_name = braid-mail-test
base_dir = $RUN
state_dir = $DIR/state
log_path = $DIR/dovecot.log
info_log_path = $DIR/dovecot.log
auth_verbose = yes

protocols = imap
listen = 127.0.0.1
ssl = yes
ssl_cert = <$DIR/cert.pem
ssl_key = <$DIR/key.pem
$dh

disable_plaintext_auth = no
auth_mechanisms = plain login
# Tests try wrong passwords on purpose: no 2 s failure delay (a NO still
# takes ~0.5 s) and no growing per-IP penalty (2..15 s) on later logins.
auth_failure_delay = 0
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}

passdb {
  driver = passwd-file
  args = scheme=PLAIN username_format=%n $DIR/users
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DIR/mail/%n
}
mail_location = maildir:~/Maildir

namespace inbox {
  inbox = yes
  separator = /
  mailbox Sent {
    special_use = \\Sent
    auto = subscribe
  }
  mailbox Drafts {
    special_use = \\Drafts
    auto = subscribe
  }
  mailbox Trash {
    special_use = \\Trash
    auto = subscribe
  }
}

service imap-login {
  inet_listener imap {
    address = 127.0.0.1
    port = $IMAP_PORT
  }
  inet_listener imaps {
    address = 127.0.0.1
    port = $IMAPS_PORT
    ssl = yes
  }
}
protocol imap {
  mail_max_userip_connections = 100
}
EOF
  if [[ -f $CONF ]] && cmp -s "$CONF.tmp" "$CONF"; then
    rm -f "$CONF.tmp"
    return 1
  fi
  mv "$CONF.tmp" "$CONF"
  return 0
}

write_env() {
  cat >"$DIR/env.tmp" <<EOF
# Written by scripts/mail-servers.sh start; KEY=VALUE lines (set -a; . this; set +a).
BRAID_MAIL_DIR=$DIR
BRAID_IMAP_PORT=$IMAP_PORT
BRAID_IMAPS_PORT=$IMAPS_PORT
BRAID_SMTP_PORT=$SMTP_PORT
BRAID_SUBMISSION_PORT=$SUBMISSION_PORT
BRAID_MAIL_CA=$DIR/cert.pem
BRAID_MAIL_SERVERS=1
EOF
  mv "$DIR/env.tmp" "$DIR/env"
}

# --- processes and ports ---------------------------------------------------

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# wait_ports open|closed PORT...
wait_ports() {
  local want=$1 p deadline=$((SECONDS + WAIT_SECS))
  shift
  for p in "$@"; do
    while :; do
      if [[ $want == open ]]; then port_open "$p" && break; else port_open "$p" || break; fi
      (( SECONDS < deadline )) || return 1
      sleep 0.05
    done
  done
}

# alive PID: running and not a zombie. (PID 1 on some test machines reaps
# orphans only every few seconds; kill -0 succeeds on a zombie.)
alive() {
  local stat
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

dovecot_pid() {
  local pid
  [[ -s $RUN/master.pid ]] || return 1
  pid=$(cat "$RUN/master.pid")
  alive "$pid" && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == dovecot ]] || return 1
  echo "$pid"
}

smtp_pid() {
  local pid
  [[ -s $DIR/smtp.pid ]] || return 1
  pid=$(cat "$DIR/smtp.pid")
  alive "$pid" && grep -qs smtp_server.py "/proc/$pid/cmdline" || return 1
  echo "$pid"
}

# stop_pid PID: SIGTERM, wait (SIGKILL after WAIT_SECS).
stop_pid() {
  local deadline=$((SECONDS + WAIT_SECS))
  kill -TERM "$1" 2>/dev/null || return 0
  while alive "$1"; do
    (( SECONDS < deadline )) || { kill -KILL "$1" 2>/dev/null || true; return 0; }
    sleep 0.05
  done
}

# check_free PORT...: the ports are free, or free up within 5 s (children of a
# killed Dovecot master hold its listening sockets until they notice).
check_free() {
  local p
  WAIT_SECS=5 wait_ports closed "$@" && return 0
  for p in "$@"; do
    port_open "$p" && die "port $p on 127.0.0.1 is taken by another program: $(ss -Htlnp "sport = :$p" 2>/dev/null | head -1)"
  done
  return 0
}

start_imap() {
  local changed=0 pid
  write_dovecot_conf && changed=1
  if pid=$(dovecot_pid); then
    if (( changed )); then
      note "dovecot.conf changed: reloading Dovecot"
      kill -HUP "$pid"
    fi
  else
    check_free "$IMAP_PORT" "$IMAPS_PORT"
    mkdir -p "$RUN"
    # A master that was killed may linger as a zombie, and Dovecot's own
    # "already running" check (kill -0 on master.pid) would then refuse.
    rm -f "$RUN/master.pid"
    "$DOVECOT" -c "$CONF" </dev/null >"$DIR/dovecot.start.log" 2>&1 || {
      cat "$DIR/dovecot.start.log" >&2
      tail -20 "$DIR/dovecot.log" >&2 2>/dev/null || true
      die "dovecot did not start"
    }
  fi
  wait_ports open "$IMAP_PORT" "$IMAPS_PORT" || {
    tail -20 "$DIR/dovecot.log" >&2 2>/dev/null || true
    die "IMAP ports $IMAP_PORT/$IMAPS_PORT not open after ${WAIT_SECS}s (log above: $DIR/dovecot.log)"
  }
}

stop_imap() {
  local pid
  if pid=$(dovecot_pid); then
    stop_pid "$pid"
  fi
  wait_ports closed "$IMAP_PORT" "$IMAPS_PORT" || die "IMAP ports still open after stop"
}

start_smtp() {
  smtp_pid >/dev/null && return 0
  check_free "$SMTP_PORT" "$SUBMISSION_PORT"
  setsid "$VENV/bin/python" "$ROOT/scripts/smtp_server.py" serve --dir "$DIR" \
    --smtp-port "$SMTP_PORT" --submission-port "$SUBMISSION_PORT" \
    </dev/null >>"$DIR/smtp.log" 2>&1 &
  echo $! >"$DIR/smtp.pid"
  wait_ports open "$SMTP_PORT" "$SUBMISSION_PORT" || {
    tail -20 "$DIR/smtp.log" >&2 || true
    die "SMTP ports $SMTP_PORT/$SUBMISSION_PORT not open after ${WAIT_SECS}s (log: $DIR/smtp.log)"
  }
}

stop_smtp() {
  local pid
  if pid=$(smtp_pid); then
    stop_pid "$pid"
  fi
  rm -f "$DIR/smtp.pid"
  wait_ports closed "$SMTP_PORT" "$SUBMISSION_PORT" || die "SMTP ports still open after stop"
}

doveadm_() { doveadm -c "$CONF" "$@"; }

# --- commands ----------------------------------------------------------------

cmd_start() {
  set_dir "${1:-}"
  ensure_installed
  make_cert
  write_users
  make_maildirs
  start_imap
  start_smtp
  write_env
  echo "mail servers up: Dovecot IMAP 127.0.0.1:$IMAP_PORT (STARTTLS) + IMAPS :$IMAPS_PORT," \
    "SMTP :$SMTP_PORT + submission :$SUBMISSION_PORT (STARTTLS+AUTH); users support ann bob;" \
    "env: $DIR/env"
}

cmd_stop() {
  set_dir "${1:-}"
  stop_smtp
  stop_imap
  echo "mail servers stopped ($DIR)"
}

cmd_start_imap() {
  set_dir "${1:-}"
  [[ -x $DOVECOT && -s $DIR/cert.pem && -s $DIR/users ]] || die "not set up yet: run '$0 start' first"
  start_imap
  echo "Dovecot up: IMAP 127.0.0.1:$IMAP_PORT, IMAPS :$IMAPS_PORT"
}

cmd_stop_imap() {
  set_dir "${1:-}"
  stop_imap
  echo "Dovecot stopped"
}

cmd_status() {
  set_dir "${1:-}"
  local rc=0 pid
  if pid=$(dovecot_pid); then
    echo "dovecot: running (pid $pid), IMAP 127.0.0.1:$IMAP_PORT, IMAPS 127.0.0.1:$IMAPS_PORT"
  else
    echo "dovecot: stopped"; rc=1
  fi
  if pid=$(smtp_pid); then
    echo "smtp: running (pid $pid), SMTP 127.0.0.1:$SMTP_PORT, submission 127.0.0.1:$SUBMISSION_PORT"
  else
    echo "smtp: stopped"; rc=1
  fi
  echo "dir: $DIR"
  return "$rc"
}

cmd_deliver() {
  (( $# >= 2 )) || die "usage: $0 deliver USER FILE|DIRECTORY [DIR]"
  local user=$1 src=$2
  set_dir "${3:-}"
  [[ -s $DIR/users ]] || die "not set up yet: run '$0 start' first"
  local py=$VENV/bin/python
  [[ -x $py ]] || py=$PYTHON
  "$py" "$ROOT/scripts/smtp_server.py" deliver --dir "$DIR" "$user" "$src"
}

cmd_reset_uidvalidity() {
  (( $# >= 1 )) || die "usage: $0 reset-uidvalidity USER [FOLDER] [DIR]"
  local user=$1 folder=INBOX dir=""
  if (( $# >= 3 )); then
    folder=$2 dir=$3
  elif (( $# == 2 )); then
    if [[ -f $2/dovecot.conf ]]; then dir=$2; else folder=$2; fi
  fi
  set_dir "$dir"
  # doveadm needs Dovecot's auth socket for the userdb lookup.
  dovecot_pid >/dev/null || die "Dovecot is not running: '$0 start-imap' first"
  local old new
  old=$(doveadm_ -f flow mailbox status -u "$user" uidvalidity "$folder") \
    || die "cannot read UIDVALIDITY of $user's $folder"
  old=${old##*=}
  new=$(date +%s)
  (( new > old )) || new=$((old + 1))
  doveadm_ mailbox update -u "$user" --uid-validity "$new" "$folder"
  local now
  now=$(doveadm_ -f flow mailbox status -u "$user" uidvalidity "$folder")
  [[ ${now##*=} == "$new" ]] || die "UIDVALIDITY of $user's $folder is still ${now##*=}"
  echo "UIDVALIDITY of $user's $folder: $old -> $new"
}

usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d' | sed 's/^# \{0,1\}//'; }

cmd=${1:-}
shift || true
case $cmd in
  start) cmd_start "$@" ;;
  stop) cmd_stop "$@" ;;
  start-imap) cmd_start_imap "$@" ;;
  stop-imap) cmd_stop_imap "$@" ;;
  restart-imap) cmd_stop_imap "$@"; cmd_start_imap "$@" ;;
  status) cmd_status "$@" ;;
  deliver) cmd_deliver "$@" ;;
  reset-uidvalidity) cmd_reset_uidvalidity "$@" ;;
  -h|--help|help) usage ;;
  *) usage >&2; exit 2 ;;
esac
