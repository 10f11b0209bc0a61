#!/bin/bash
# SPDX-License-Identifier: MIT
# Run test suites inside a VM booted with another kernel: Debian's package for
# a kernel series (fetched with apt-get download into build/kernel, reused) or
# a vmlinuz of your own.  The VM sees the host's root read-only (virtio-9p,
# under a tmpfs overlay), so it tests the binaries built here.  Ends with
# "N passed, N failed" and a matching exit status.
#
# usage: tests/kvm/run.sh KERNEL BUILD-DIR
#   KERNEL     6.1 (a series Debian's archive offers), a package name
#              (linux-image-6.1.0-57-amd64), or a path to a vmlinuz (its
#              modules: MODDIR=/lib/modules/VERSION, default the one named
#              after the file's version next to it or on this host)
# environment:
#   TESTS, E2E    what tests/run.sh runs (default: TESTS="bpf e2e", all e2e)
#   KVM_TIMEOUT   seconds before the VM is killed (default 2400)
#   KVM_MEM       MiB of memory (2048), KVM_CPUS (2)
#   BATON_SLOW    passed to the tests: time bounds scale by it (default 1
#                 with KVM, 10 under TCG emulation)
#   VERBOSE=1     show the whole console, not just the tests' lines
#   DEPLOYS, RESTARTS  passed to the tests (10-deploy-under-load's number of
#                 deploys, 64-agent-restart's number of restarts)
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
kernel=${1:?usage: tests/kvm/run.sh KERNEL BUILD-DIR}
build=$(cd "${2:?usage: tests/kvm/run.sh KERNEL BUILD-DIR}" && pwd) ||
	{ echo "kvm: no build directory $2 (make first)" >&2; exit 1; }
cache=$repo/build/kernel
timeout=${KVM_TIMEOUT:-2400}

if [ "$(id -u)" != 0 ]; then
	echo "kvm: must run as root (the VM runs the BPF and e2e suites as root)" >&2
	exit 1
fi
for c in qemu-system-x86_64 cpio; do
	command -v $c >/dev/null || { echo "kvm: no $c (tools/deps.sh kernel)" >&2; exit 1; }
done
[ -x "$build/baton" ] || { echo "kvm: no $build/baton (make first)" >&2; exit 1; }
for d in "$repo" "$build"; do
	case $d/ in /run/* | /proc/* | /sys/* | /dev/*)
		echo "kvm: $d is under a directory the VM mounts anew; use a checkout elsewhere" >&2
		exit 1 ;;
	esac
done

# The kernel and its modules.
if [ -f "$kernel" ]; then
	vmlinuz=$(cd "$(dirname "$kernel")" && pwd)/$(basename "$kernel")
	kver=$(basename "$vmlinuz"); kver=${kver#vmlinuz-}
	moddir=${MODDIR:-}
	if [ -z "$moddir" ]; then
		for d in "$(dirname "$vmlinuz")/../lib/modules/$kver" "/lib/modules/$kver"; do
			[ -f "$d/modules.dep" ] && { moddir=$(cd "$d" && pwd); break; }
		done
	fi
	[ -n "$moddir" ] && [ -f "$moddir/modules.dep" ] ||
		{ echo "kvm: no modules for $vmlinuz (set MODDIR=/lib/modules/VERSION)" >&2; exit 1; }
	kver=$(basename "$moddir")
else
	tree=$("$here/kernel.sh" "$kernel" "$cache") || exit 1
	vmlinuz=$(ls "$tree"/boot/vmlinuz-* | head -1)
	moddir=$(ls -d "$tree"/lib/modules/* | head -1)
	kver=$(basename "$moddir")
fi

# One initramfs per kernel, rebuilt when its inputs change.
initrd=$cache/initramfs-$kver.gz
mkdir -p "$cache"
if [ ! -f "$initrd" ] || [ "$here/init" -nt "$initrd" ] || [ "$here/initramfs.sh" -nt "$initrd" ] ||
	[ "$moddir/modules.dep" -nt "$initrd" ]; then
	"$here/initramfs.sh" "$moddir" "$initrd" || exit 1
fi

if [ -e /dev/kvm ] && [ -w /dev/kvm ]; then
	accel=(-accel kvm -cpu host)
	slow=${BATON_SLOW:-1}
else
	accel=(-accel tcg,thread=multi -cpu max)
	slow=${BATON_SLOW:-10}
fi

scratch=$(mktemp -d "$cache/run.XXXXXX")
qemu=
finish() {
	[ -n "$qemu" ] && kill -9 "$qemu" 2>/dev/null && wait "$qemu" 2>/dev/null
	[ -n "${tailer:-}" ] && kill "$tailer" 2>/dev/null && wait "$tailer" 2>/dev/null
	rm -rf "$scratch"
}
trap finish EXIT
trap 'exit 130' INT TERM
{
	printf 'export REPO=%q BUILD=%q KVER=%q MODDIR=%q\n' "$repo" "$build" "$kver" "$moddir"
	printf 'export TESTS=%q BATON_SLOW=%q\n' "${TESTS:-bpf e2e}" "$slow"
	[ -n "${E2E:-}" ] && printf 'export E2E=%q\n' "$E2E"
	# The tests' own knobs (loads; never what they assert).
	for v in VERBOSE DEPLOYS MODES RESTARTS; do
		[ -n "${!v:-}" ] && printf 'export %s=%q\n' "$v" "${!v}"
	done
} >"$scratch/env"

echo "kvm: $kver (${vmlinuz#"$repo"/}) under ${accel[1]%%,*}, BATON_SLOW=$slow, timeout ${timeout}s:" \
	"TESTS=\"${TESTS:-bpf e2e}\"${E2E:+ E2E=\"$E2E\"}"
start=$(date +%s)
console=$scratch/console.log
# Made here: the tail below must not start before qemu's shell opens it.
: >"$console"
# Not niced: at nice 10 on a busy host the guest got 2-4% of a CPU, too
# little for the tests' scaled bounds.  no_timer_check: the kernel's early
# check that the timer ticks (a busy wait for a few jiffies) fails when the
# emulator is starved ("IO-APIC + timer doesn't work!" panic, reproduced with
# qemu held to 3% of a CPU).
qemu-system-x86_64 "${accel[@]}" -smp "${KVM_CPUS:-2}" -m "${KVM_MEM:-2048}" \
	-nographic -no-reboot -nic none \
	-kernel "$vmlinuz" -initrd "$initrd" \
	-append "console=ttyS0 panic=-1 thash_entries=262144 no_timer_check loglevel=4" \
	-virtfs local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap \
	-virtfs "local,path=$scratch,mount_tag=scratch,security_model=none,multidevs=remap" \
	</dev/null >"$console" 2>&1 &
qemu=$!
# Show the tests' progress lines as they come (the whole console with VERBOSE).
if [ -n "${VERBOSE:-}" ]; then
	tail -n +1 -f --pid="$qemu" "$console" &
else
	tail -n +1 -f --pid="$qemu" "$console" | grep --line-buffered -E '^(kvm-|[a-z0-9-]+ +[0-9]+ passed|    )' &
fi
tailer=$!
timed_out=
while kill -0 "$qemu" 2>/dev/null; do
	if [ $(($(date +%s) - start)) -ge "$timeout" ]; then
		timed_out=1
		kill -9 "$qemu" 2>/dev/null
		break
	fi
	sleep 1
done
wait "$qemu" 2>/dev/null
qemu=
wait "$tailer" 2>/dev/null
tailer=
secs=$(($(date +%s) - start))

# The count: the run's own summary when it finished; otherwise what the
# finished suites counted, and one failure for the run that did not end.
log=$scratch/tests.log
rc=$(cat "$scratch/rc" 2>/dev/null)
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" 2>/dev/null | tail -1)
if [ -z "$rc" ] || [ -z "$summary" ]; then
	p=$(awk '/^[a-z0-9-]+ +[0-9]+ passed, [0-9]+ failed \([0-9]+ s\)$/ {s += $2} END {print s + 0}' "$log" 2>/dev/null || echo 0)
	f=$(awk '/^[a-z0-9-]+ +[0-9]+ passed, [0-9]+ failed \([0-9]+ s\)$/ {s += $4} END {print s + 0}' "$log" 2>/dev/null || echo 0)
	if [ -n "$timed_out" ]; then
		echo "kvm: the VM did not finish in ${timeout}s: killed"
	else
		echo "kvm: the VM ended without a result; last console lines:"
	fi
	tail -30 "$console" | sed 's/^/    /'
	summary="${p:-0} passed, $((${f:-0} + 1)) failed"
	rc=1
fi
# The whole logs of failed suites outlive the scratch directory.
if [ -n "$(ls "$scratch/logs" 2>/dev/null)" ]; then
	keep=$cache/logs-$(date +%Y%m%d-%H%M%S)
	mv "$scratch/logs" "$keep" && echo "kvm: logs of the failed suites in $keep"
fi
echo "kvm: $kver, ${secs}s"
echo "$summary"
[ "$rc" = 0 ]
