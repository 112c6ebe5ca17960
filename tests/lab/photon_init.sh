#!/bin/bash
# PID 1 of one lab "Photon" host, started by photon_hosts.py inside the host's
# network namespace through `unshare --mount --pid --uts --fork`.
#
# It builds the host's root (an overlay: the machine's / below, a tmpfs above,
# so writes stay in this host), boots the few services a Photon host runs
# through the systemctl shim from their real unit files, then stays PID 1:
# bash reaps every orphan that is re-parented to it, and SIGTERM shuts the
# host down.
#
# Usage: photon_init.sh NAME ADDRESS/PREFIX HOSTDIR COMMONDIR FULL(0|1) HIDE(dir:dir...)
set -u

name=$1 cidr=$2 hostdir=$3 commondir=$4 full=$5 hide=$6
root=$hostdir/root
state=$hostdir/state
status=$hostdir/status
export PATH=/usr/sbin:/usr/bin:/sbin:/bin

say() { echo "[$name $(date +%T.%N | cut -c1-12)] $*"; }

report() {
    # Written then renamed: the lab polls this file from another process.
    echo "$1" >"$status.tmp" && mv "$status.tmp" "$status"
}

fail() {
    say "FAILED: $*"
    # What the shim logged for each unit (its "journal") says why a service did not start.
    tail -n 15 "$root"/var/log/journal/*.log 2>/dev/null
    report "failed: $*"
    exit 1
}

in_host() {
    # What an SSH session on the host would see: the host's root, a clean environment.
    chroot "$root" /usr/bin/env -i PATH="$PATH" HOME=/root LANG=C.UTF-8 "$@"
}

shutdown() {
    say "shutting down"
    # Every process of this PID namespace except PID 1; the kernel kills the rest when we exit.
    kill -TERM -1 2>/dev/null
    local deadline=$((SECONDS + 3))
    # This is the namespace's own /proc (mounted below), not the machine's.
    while others_alive && [ $SECONDS -lt $deadline ]; do
        sleep 0.05
    done
    say "down"
    exit 0
}

others_alive() {
    local p
    for p in "$root"/proc/[0-9]*; do
        [ "${p##*/}" = 1 ] || return 0
    done
    return 1
}

trap shutdown TERM INT

reboot() {
    # The lab's stand-in for a reboot (hosts share the machine's kernel, so none restarts):
    # the host's `systemctl reboot` (the launcher in photon_files/systemctl) signals this PID 1
    # with USR1, which does what a reboot does to a host's userland: stop the services (dockerd
    # first, as systemd would, so containers stop cleanly), end every other process (the SSH
    # sessions too), empty the tmpfs /run and /tmp, and start the services again.
    say "rebooting"
    report rebooting
    [ "$full" = 1 ] && in_host systemctl stop docker >/dev/null 2>&1
    kill -TERM -1 2>/dev/null
    local deadline=$((SECONDS + 5))
    while others_alive && [ $SECONDS -lt $deadline ]; do
        sleep 0.05
    done
    kill -KILL -1 2>/dev/null
    deadline=$((SECONDS + 5))
    while others_alive && [ $SECONDS -lt $deadline ]; do
        sleep 0.05
    done
    rm -rf "$root"/run/* "$root"/tmp/* 2>/dev/null
    mkdir -m 0755 "$root/run/sshd"
    # A test's host that does not come back: it stays down (no sshd, no engine) while this
    # file exists beside its root, out of the host's reach.
    while [ -e "$hostdir/stay-down" ]; do
        sleep 0.2
    done
    services || fail "services after the reboot"
    # The main loop below waits on this; the reboot ended the previous one.
    sleep infinity &
    report ready
    say "ready (rebooted)"
}
trap reboot USR1

network() {
    ip link set lo up &&
        ip addr add "$cidr" dev eth0 &&
        ip link set eth0 up
}

mount_tmpfs() { # mode path [size]
    mkdir -p "$2" && mount -t tmpfs -o "mode=$1,size=${3:-256m}" tmpfs "$2"
}

filesystems() {
    mount_tmpfs 0755 "$state" 1g || return 1
    mkdir "$state/upper" "$state/work" || return 1
    mount -t overlay overlay -o "lowerdir=/,upperdir=$state/upper,workdir=$state/work" "$root" || return 1
    mount -t proc proc "$root/proc" || return 1
    mount -t sysfs sysfs "$root/sys" || return 1
    devices || return 1
    mount_tmpfs 0755 "$root/run" &&
        mount_tmpfs 1777 "$root/tmp" &&
        mount_tmpfs 0700 "$root/root" 16m || return 1
    # The project tree and the lab's files (the portal's private key among them) stay on the machine.
    local dir dirs
    IFS=: read -ra dirs <<<"$hide"
    for dir in "${dirs[@]}"; do
        mount_tmpfs 0755 "$root$dir" 16m || return 1
    done
    if [ "$full" = 1 ]; then
        # dockerd's overlay2 driver cannot stack on the overlay root, but works on a tmpfs.
        mount_tmpfs 0710 "$root/var/lib/docker" 2g &&
            mount_tmpfs 0711 "$root/var/lib/containerd" 256m &&
            mount --rbind /sys/fs/cgroup "$root/sys/fs/cgroup" || return 1
    fi
}

devices() {
    # A /dev of its own: the machine's devtmpfs would share its ptys and disks.
    local d=$root/dev
    mount_tmpfs 0755 "$d" 16m || return 1
    mknod -m 666 "$d/null" c 1 3 && mknod -m 666 "$d/zero" c 1 5 && mknod -m 666 "$d/full" c 1 7 &&
        mknod -m 666 "$d/random" c 1 8 && mknod -m 666 "$d/urandom" c 1 9 && mknod -m 666 "$d/tty" c 5 0 ||
        return 1
    mkdir -p "$d/pts" "$d/shm" && mount -t devpts -o newinstance,ptmxmode=0666,mode=620 devpts "$d/pts" &&
        ln -s pts/ptmx "$d/ptmx" && mount -t tmpfs -o mode=1777 tmpfs "$d/shm" &&
        ln -s /proc/self/fd "$d/fd" && ln -s /proc/self/fd/0 "$d/stdin" &&
        ln -s /proc/self/fd/1 "$d/stdout" && ln -s /proc/self/fd/2 "$d/stderr"
}

host_files() {
    # The machine's own identity must not leak into the host through the lower layer.
    rm -f "$root"/etc/ssh/ssh_host_* "$root/etc/os-release" "$root/etc/docker/daemon.json" &&
        rm -rf "$root/etc/ssh/sshd_config.d" &&
        rm -f "$root"/etc/systemd/system/{sshd,ssh,docker,containerd,iptables}.service &&
        rm -rf "$root"/etc/systemd/system/{sshd,docker,iptables}.service.d || return 1
    cp -a --remove-destination "$commondir/." "$root/" &&
        cp -a --remove-destination "$hostdir/files/." "$root/" || return 1
    # Debian's ssh.service makes it (RuntimeDirectory=sshd); Photon's unit does not.
    mkdir -m 0755 "$root/run/sshd" && hostname "$name"
}

services() {
    local units="iptables sshd"
    [ "$full" = 1 ] && units="$units docker"
    # shellcheck disable=SC2086
    in_host systemctl start $units || return 1
    if [ "$full" = 1 ]; then
        local deadline=$((SECONDS + 20))
        until in_host docker version >/dev/null 2>&1; do
            [ $SECONDS -lt $deadline ] || return 1
            sleep 0.1
        done
    fi
}

say "booting"
network || fail "network"
filesystems || fail "filesystems"
host_files || fail "host files"
services || fail "services"
report ready
say "ready"

# Stay PID 1: `wait` returns when a signal runs its trap; bash reaps adopted orphans on SIGCHLD.
sleep infinity &
while :; do
    wait
done
