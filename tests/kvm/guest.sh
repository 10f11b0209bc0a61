#!/bin/bash
# SPDX-License-Identifier: MIT
# PID 1 of the test VM after switch_root (tests/kvm/init): the host's root is
# the read-only lower layer of a tmpfs overlay, /kvm is the writable scratch
# share.  Mount what the tests need, run tests/run.sh with the suites /kvm/env
# names, leave its output in /kvm/tests.log and its status in /kvm/rc, and
# power off.  Every line also goes to the console.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export HOME=/root LANG=C.UTF-8 TERM=dumb
# shellcheck source=/dev/null
. /kvm/env

off() {
	sync
	echo o >/proc/sysrq-trigger
	sleep 30
}
die() { echo "kvm-guest: $*"; echo 1 >/kvm/rc; off; }
trap 'die "guest script ended early"' EXIT

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o newinstance,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs -o mode=1777 shm /dev/shm
ln -sfn /proc/self/fd /dev/fd
ln -sfn /proc/self/fd/0 /dev/stdin
ln -sfn /proc/self/fd/1 /dev/stdout
ln -sfn /proc/self/fd/2 /dev/stderr
# A fresh /tmp, unless the checkout lives there (a CI clone in /tmp): then
# the overlay's /tmp (the host's, read-only below a tmpfs upper) stays.
case $REPO/ in
/tmp/*) ;;
*) mount -t tmpfs -o mode=1777 tmp /tmp ;;
esac
mount -t tmpfs -o mode=0755 run /run
# cgroup v2 alone (unified), with every controller the kernel has enabled
# for children: the place to test cgroup v2 with controllers.
mount -t cgroup2 cgroup2 /sys/fs/cgroup || die "cannot mount cgroup2"
ctrls=$(sed 's/\([^ ]*\)/+\1/g' /sys/fs/cgroup/cgroup.controllers)
echo "$ctrls" >/sys/fs/cgroup/cgroup.subtree_control ||
	die "cannot enable cgroup controllers: $ctrls"
mount -t bpf bpf /sys/fs/bpf || die "cannot mount bpffs"
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
mount -t tracefs tracefs /sys/kernel/tracing 2>/dev/null
# The kernel's own modules for modprobe (and the kernel's module autoloading).
mkdir -p "/lib/modules/$KVER"
mount --bind "$MODDIR" "/lib/modules/$KVER" || die "cannot bind $MODDIR"
hostname baton-kvm
ip link set lo up

echo "kvm-guest: $(uname -r), $(nproc) CPUs, $(awk '/MemTotal/ {print $2 " kB"}' /proc/meminfo)," \
	"cgroup2 controllers: $(cat /sys/fs/cgroup/cgroup.subtree_control)"
cd "$REPO" || die "no $REPO"
start=$(date +%s)
# TESTS, E2E and the tests' own knobs come from /kvm/env, exported.
mkdir -p /kvm/logs
LOG_DIR=/kvm/logs tests/run.sh "$BUILD" 2>&1 | tee /kvm/tests.log
echo "${PIPESTATUS[0]}" >/kvm/rc
echo "kvm-guest: tests took $(($(date +%s) - start)) s"
trap - EXIT
off
