#!/bin/sh
# SPDX-License-Identifier: MIT
# Install the Debian packages baton needs to build, test and demo, only the
# missing ones.  Runs apt-get update once, and only when something is missing.
# usage: tools/deps.sh [bench|fuzz|kernel]   (bench: also what make bench compares
# against; fuzz: also libFuzzer for clang 14, for make fuzz; kernel: also qemu and
# busybox-static, for make test-kernel's VM)
set -eu
pkgs="make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config
libinih-dev libjansson-dev libcurl4-openssl-dev libcmocka-dev wrk curl jq python3 tcpdump iproute2 procps util-linux
nginx lighttpd prometheus groff-base ansible-core gunicorn"
[ "${1:-}" = bench ] && pkgs="$pkgs nginx haproxy gnuplot-nox"
[ "${1:-}" = fuzz ] && pkgs="$pkgs libclang-rt-14-dev"
[ "${1:-}" = kernel ] && pkgs="$pkgs qemu-system-x86 busybox-static cpio kmod"
missing=
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing (run as root, or: sudo apt-get install$missing)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
