#!/bin/sh
# SPDX-License-Identifier: MIT
# Regenerate vmlinux/vmlinux.h from the running kernel's BTF.  The header is
# committed so that builds do not depend on the build host's kernel; run this
# only when the BPF programs need a kernel type that is not in it yet.
set -eu
btf=${1:-/sys/kernel/btf/vmlinux}
out=$(dirname "$0")/../vmlinux/vmlinux.h
[ -r "$btf" ] || { echo "gen-vmlinux: no kernel BTF at $btf (needs CONFIG_DEBUG_INFO_BTF=y)" >&2; exit 1; }
bpftool btf dump file "$btf" format c > "$out.tmp"
mv "$out.tmp" "$out"
echo "wrote $out from $btf ($(uname -r))"
