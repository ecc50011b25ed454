#!/usr/bin/env bash
# nssd.sh: boot a real systemd as PID 1 of private pid+mount+uts+ipc+cgroup
# namespaces, on a throwaway overlay of /, for tests (see
# ../shared/NOTES-systemd.md, "A recipe that worked", and its WARNING).
#
#   nssd.sh check                      exit 0, or 1 with the reason on stdout
#   nssd.sh start STATE [--bind SRC:DST[:ro]]... [--owner PID]
#                                      boots; prints the host pid of the
#                                      namespace's PID 1 (systemd) once it is up
#   nssd.sh exec STATE CMD [ARG]...    runs CMD inside (nsenter)
#   nssd.sh stop STATE                 kills the namespace, removes its cgroup,
#                                      verifies nothing is left behind
#
# STATE is an empty directory owned by the caller. The unit directory is
# STATE/units, bound at /run/nssd-units inside and the only entry of
# SYSTEMD_UNIT_PATH: it gets stub targets and journald units here; put your
# own units in it (before start, or later followed by `systemctl
# daemon-reload`). --owner PID: a watchdog stops the namespace when PID exits
# (so a killed test run leaves nothing behind).
#
# Isolation: the root is an overlay (lower /, upper on a tmpfs that exists
# only inside the namespace); /dev is a private tmpfs with a few nodes and
# its own devpts; /run, /tmp, /var/tmp are private tmpfs; /sys is a fresh
# read-only sysfs with the namespace's own cgroup2 tree on /sys/fs/cgroup
# (a child cgroup of the host's cgroup2 hierarchy, entered before a cgroup
# namespace is created, so systemd sees only its own processes); /proc/sys
# and /proc/sysrq-trigger are read-only; hostname and IPC are private; mount
# propagation is private; no generator runs. The network namespace is
# shared: services bind on the host's network.
set -euo pipefail

SYSTEMD=${NSSD_SYSTEMD:-/lib/systemd/systemd}
prog=$(basename "$0")
die() { echo "$prog: $*" >&2; exit 1; }

cgroup2_root() {
  # The host's cgroup2 mount: /sys/fs/cgroup (unified) or /sys/fs/cgroup/unified (hybrid).
  awk '$3 == "cgroup2" { print $2; exit }' /proc/self/mounts
}

check() {
  [ "$(id -u)" = 0 ] || { echo "not root"; return 1; }
  local c
  for c in unshare nsenter mount umount pivot_root mknod setsid; do
    command -v "$c" >/dev/null || { echo "$c not installed"; return 1; }
  done
  [ -x "$SYSTEMD" ] || { echo "no systemd at $SYSTEMD"; return 1; }
  grep -qw overlay /proc/filesystems || { echo "the kernel has no overlay filesystem"; return 1; }
  [ -n "$(cgroup2_root)" ] || { echo "no cgroup2 hierarchy mounted"; return 1; }
  # A cheap probe that namespaces, a private tmpfs and an overlay of / work here.
  local probe
  probe=$(mktemp -d "${TMPDIR:-/tmp}/nssd-probe.XXXXXX")
  if ! unshare --mount --pid --fork --propagation private -- sh -c '
        mount -t tmpfs nssd-probe "$1" && mkdir "$1/u" "$1/w" "$1/r" &&
        mount -t overlay nssd-probe -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" "$1/r" &&
        [ -x "$1/r$2" ]' nssd-probe "$probe" "$SYSTEMD" >/dev/null 2>&1; then
    rmdir "$probe"
    echo "unshare --mount --pid or an overlay of / is not permitted here"
    return 1
  fi
  rmdir "$probe"
}

# Stub units: only what test.target pulls in ever runs.
write_units() {
  local u=$1 t
  mkdir -p "$u"
  for t in sysinit basic sockets network network-online network-pre nss-lookup remote-fs local-fs local-fs-pre \
    paths timers slices swap multi-user graphical shutdown emergency rescue; do
    [ -e "$u/$t.target" ] || printf '[Unit]\nDescription=nssd stub %s\n' "$t" >"$u/$t.target"
  done
  [ -e "$u/test.target" ] || cat >"$u/test.target" <<'EOF'
[Unit]
Description=nssd test target
Wants=systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket
After=systemd-journald.service
EOF
  [ -e "$u/systemd-journald.socket" ] || cat >"$u/systemd-journald.socket" <<'EOF'
[Unit]
Description=Journal Socket
DefaultDependencies=no
Before=sockets.target
[Socket]
ListenDatagram=/run/systemd/journal/socket
ListenStream=/run/systemd/journal/stdout
PassCredentials=yes
PassSecurity=yes
ReceiveBuffer=8M
Service=systemd-journald.service
SocketMode=0666
Timestamping=us
EOF
  [ -e "$u/systemd-journald-dev-log.socket" ] || cat >"$u/systemd-journald-dev-log.socket" <<'EOF'
[Unit]
Description=Journal Socket (/dev/log, the namespace's private /dev)
DefaultDependencies=no
Before=sockets.target
[Socket]
ListenDatagram=/run/systemd/journal/dev-log
PassCredentials=yes
PassSecurity=yes
Service=systemd-journald.service
SocketMode=0666
Symlinks=/dev/log
EOF
  [ -e "$u/systemd-journald.service" ] || cat >"$u/systemd-journald.service" <<'EOF'
[Unit]
Description=Journal Service
DefaultDependencies=no
Requires=systemd-journald.socket
After=systemd-journald.socket systemd-journald-dev-log.socket
[Service]
Type=notify
ExecStart=/lib/systemd/systemd-journald
Sockets=systemd-journald.socket systemd-journald-dev-log.socket
RuntimeDirectory=systemd/journal
RuntimeDirectoryPreserve=yes
StandardOutput=null
Restart=always
RestartSec=0
FileDescriptorStoreMax=4224
EOF
}

# Runs as PID 1 of the new pid namespace, in new mount/uts/ipc namespaces
# (private propagation): enter our cgroup, then a cgroup namespace rooted there.
read -r -d '' STAGE1 <<'EOF' || true
set -euo pipefail
echo 0 >"$NSSD_CGROUP/cgroup.procs"
exec unshare --cgroup -- bash -euc "$NSSD_STAGE2"
EOF

# Still PID 1 (exec): build the root and exec systemd.
read -r -d '' STAGE2 <<'EOF' || true
set -euo pipefail
W=$NSSD_SCRATCH
mount -t tmpfs -o mode=0700 nssd-scratch "$W"
mkdir "$W/up" "$W/work" "$W/root"
mount -t overlay nssd-root -o "lowerdir=/,upperdir=$W/up,workdir=$W/work" "$W/root"
R=$W/root
mount -t proc -o nosuid,nodev,noexec proc "$R/proc"
for p in sys sysrq-trigger; do
  [ -e "$R/proc/$p" ] || continue
  mount --bind "$R/proc/$p" "$R/proc/$p"
  mount -o remount,bind,ro,nosuid,nodev,noexec "$R/proc/$p"
done
mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$R/sys"
mount -t cgroup2 -o nosuid,nodev,noexec cgroup2 "$R/sys/fs/cgroup"
mount -t tmpfs -o mode=0755,nosuid,size=8m nssd-dev "$R/dev"
while read -r n maj min; do mknod -m 0666 "$R/dev/$n" c "$maj" "$min"; done <<'NODES'
null 1 3
zero 1 5
full 1 7
random 1 8
urandom 1 9
tty 5 0
NODES
mkdir "$R/dev/pts" "$R/dev/shm" "$R/dev/mqueue"
mount -t devpts -o newinstance,ptmxmode=0666,mode=0620 devpts "$R/dev/pts"
ln -s pts/ptmx "$R/dev/ptmx"
mount -t tmpfs -o mode=1777,nosuid,nodev nssd-shm "$R/dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue "$R/dev/mqueue"
ln -s /proc/self/fd "$R/dev/fd"
for i in 0:stdin 1:stdout 2:stderr; do ln -s "/proc/self/fd/${i%%:*}" "$R/dev/${i#*:}"; done
mount -t tmpfs -o mode=0755,nosuid,nodev nssd-run "$R/run"
mount -t tmpfs -o mode=1777,nosuid,nodev nssd-tmp "$R/tmp"
mount -t tmpfs -o mode=1777,nosuid,nodev nssd-vartmp "$R/var/tmp"
mkdir -p "$R/run/nssd-units" "$R/run/nssd-no-generators"
mount --bind "$NSSD_UNITS" "$R/run/nssd-units"
while IFS= read -r b; do
  [ -n "$b" ] || continue
  src=${b%%:*}; rest=${b#*:}; dst=${rest%%:*}; mode=${rest#"$dst"}
  if [ -d "$src" ]; then mkdir -p "$R$dst"; else mkdir -p "$(dirname "$R$dst")"; touch "$R$dst"; fi
  mount --bind "$src" "$R$dst"
  [ "$mode" != ":ro" ] || mount -o remount,bind,ro "$R$dst"
done <<<"$NSSD_BINDS"
hostname nssd
cd "$R"
mkdir -p nssd-oldroot
pivot_root . nssd-oldroot
cd /
umount -l /nssd-oldroot
rmdir /nssd-oldroot
exec env -i container=nssd \
  SYSTEMD_UNIT_PATH=/run/nssd-units \
  SYSTEMD_GENERATOR_PATH=/run/nssd-no-generators \
  SYSTEMD_ENVIRONMENT_GENERATOR_PATH=/run/nssd-no-generators \
  PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
  "$NSSD_SYSTEMD" --system --unit=test.target --show-status=no --log-target=journal --log-level=info
EOF

# pid's start time (field 22 of /proc/PID/stat), to never signal a reused pid.
starttime() { awk '{ sub(/^.*\) /, ""); print $20 }' "/proc/$1/stat" 2>/dev/null || true; }

state_pid() { # STATE NAME -> pid if that process is still the one we recorded
  local f=$1/$2.pid p t
  [ -s "$f" ] || return 1
  read -r p t <"$f"
  [ -n "$p" ] && [ "$(starttime "$p")" = "$t" ] && echo "$p"
}

# Running (a zombie waiting for the host's init to reap it counts as gone).
alive() { [ -n "$1" ] && [ -e "/proc/$1" ] && [ "$(awk '{ sub(/^.*\) /, ""); print $1 }' "/proc/$1/stat" 2>/dev/null)" != Z ]; }

record_pid() { echo "$2 $(starttime "$2")" >"$1/$3.pid"; }

stop() {
  local st=$1 pid cg rc=0 i
  pid=$(state_pid "$st" init || true)
  [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
  local launcher watchdog
  launcher=$(state_pid "$st" launcher || true)
  watchdog=$(state_pid "$st" watchdog || true)
  # The launcher (unshare) exits once its child, PID 1, is gone; everything in
  # the pid namespace dies with PID 1.
  for i in $(seq 100); do
    if ! alive "$pid" && ! alive "$launcher"; then break; fi
    sleep 0.05
  done
  ! alive "$launcher" || kill -KILL "$launcher" 2>/dev/null || true
  if [ -n "$watchdog" ] && [ "$watchdog" != "${NSSD_SELF_WATCHDOG:-}" ]; then kill -KILL "$watchdog" 2>/dev/null || true; fi
  if [ -s "$st/cgroup" ]; then
    cg=$(cat "$st/cgroup")
    case $cg in */nssd.*) ;; *) die "refusing to touch cgroup $cg" ;; esac
    if [ -d "$cg" ]; then
      for i in $(seq 100); do
        [ -n "$(find "$cg" -name cgroup.procs -exec cat {} + 2>/dev/null)" ] || break
        sleep 0.05
      done
      # Children first (systemd's init.scope, system.slice/...).
      find "$cg" -mindepth 1 -depth -type d -exec rmdir {} + 2>/dev/null || true
      rmdir "$cg" 2>/dev/null || true
      if [ -d "$cg" ]; then echo "$prog: cgroup $cg is still there" >&2; rc=1; fi
    fi
    rm -f "$st/cgroup"
  fi
  if alive "$pid" && [ "$(starttime "$pid")" = "$(awk '{print $2}' "$st/init.pid")" ]; then
    echo "$prog: namespace PID 1 ($pid) is still alive" >&2; rc=1
  fi
  # The scratch tmpfs (and the overlay on it) only ever existed in the
  # namespace: nothing may be mounted at or under STATE on the host.
  if awk -v d="$(readlink -f "$st")" '$5 == d || index($5, d "/") == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    echo "$prog: something is mounted under $st on the host" >&2; rc=1
  else
    rmdir "$st/scratch" 2>/dev/null || true
  fi
  rm -f "$st/init.pid" "$st/launcher.pid" "$st/watchdog.pid"
  return $rc
}

start() {
  local st binds='' owner=''
  st=$(readlink -f "$1"); shift
  [ -d "$st" ] || die "$st is not a directory"
  while [ $# -gt 0 ]; do
    case $1 in
      --bind) [[ $2 == /*:/* ]] || die "--bind SRC:DST[:ro] with absolute paths, not $2"; binds+="$2"$'\n'; shift 2 ;;
      --owner) owner=$2; shift 2 ;;
      *) die "unknown option $1" ;;
    esac
  done
  local why
  why=$(check) || die "cannot boot: $why"
  [ ! -e "$st/init.pid" ] || die "$st is in use (init.pid exists): stop it first"
  mkdir -p "$st/scratch"
  [ -z "$(ls -A "$st/scratch")" ] || die "$st/scratch is not empty"
  write_units "$st/units"
  local cg
  cg=$(cgroup2_root)/nssd.$(basename "$st").$$
  mkdir "$cg"
  echo "$cg" >"$st/cgroup"
  trap 'stop "$st" >/dev/null 2>&1 || true' EXIT
  trap 'exit 130' INT TERM HUP

  NSSD_CGROUP=$cg NSSD_SCRATCH=$st/scratch NSSD_UNITS=$st/units NSSD_BINDS=$binds NSSD_SYSTEMD=$SYSTEMD \
    NSSD_STAGE2=$STAGE2 setsid unshare --pid --fork --mount --uts --ipc --propagation private --kill-child=SIGKILL -- \
    bash -euc "$STAGE1" </dev/null >>"$st/boot.log" 2>&1 &
  local launcher=$! pid='' i
  record_pid "$st" "$launcher" launcher
  for i in $(seq 200); do
    pid=$(pgrep -P "$launcher" || true)
    [ -z "$pid" ] || break
    kill -0 "$launcher" 2>/dev/null || break
    sleep 0.02
  done
  [ -n "$pid" ] || die "the namespace did not start: $(tail -n 5 "$st/boot.log")"
  record_pid "$st" "$pid" init
  # Booted: systemd answers and test.target is reached.
  for i in $(seq 300); do
    [ "$(readlink "/proc/$pid/exe" 2>/dev/null)" = "$(readlink -f "$SYSTEMD")" ] &&
      nsenter -t "$pid" -m -u -i -p -r -w systemctl is-active --quiet test.target 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || die "the namespace's systemd exited: $(tail -n 5 "$st/boot.log")"
    sleep 0.05
  done
  nsenter -t "$pid" -m -u -i -p -r -w systemctl is-active --quiet test.target ||
    die "test.target not reached within 15 s: $(tail -n 5 "$st/boot.log")"
  if [ -n "$owner" ]; then
    setsid bash -c '
      while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
      if kill -0 "$2" 2>/dev/null; then NSSD_SELF_WATCHDOG=$$ "$3" stop "$4"; fi' nssd-watchdog "$owner" "$pid" "$(readlink -f "$0")" "$st" \
      </dev/null >>"$st/boot.log" 2>&1 &
    record_pid "$st" "$!" watchdog
  fi
  trap - EXIT INT TERM HUP
  echo "$pid"
}

cmd=${1:-}
[ $# -eq 0 ] || shift
case $cmd in
  check) check ;;
  start) [ $# -ge 1 ] || die "usage: $prog start STATE [--bind SRC:DST[:ro]]... [--owner PID]"; start "$@" ;;
  exec)
    [ $# -ge 2 ] || die "usage: $prog exec STATE CMD [ARG]..."
    st=$1; shift
    pid=$(state_pid "$st" init) || die "no namespace running for $st"
    exec nsenter -t "$pid" -m -u -i -p -r -w -- env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
      HOME=/root LANG=C.UTF-8 SYSTEMD_COLORS=0 SYSTEMD_PAGER= "$@"
    ;;
  stop) [ $# -eq 1 ] || die "usage: $prog stop STATE"; stop "$(readlink -f "$1")" ;;
  *) die "usage: $prog check | start STATE ... | exec STATE CMD... | stop STATE" ;;
esac
