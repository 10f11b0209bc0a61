#!/bin/bash
# SPDX-License-Identifier: MIT
# Fetch and unpack a Debian kernel image package for the test VM; print the
# unpacked tree's path.  usage: tests/kvm/kernel.sh VERSION CACHE-DIR
# VERSION is a kernel series ("6.1": the newest linux-image-6.1.*-amd64 that
# the configured archive offers) or a package name (linux-image-6.1.0-57-amd64).
# Only `apt-get download` fetches: the .deb is kept in CACHE-DIR and reused;
# nothing else is downloaded.
set -eu
want=$1 cache=$2
mkdir -p "$cache"
cache=$(cd "$cache" && pwd)

case $want in
linux-image-*) pkg=$want ;;
*)
	# The signed flavour for plain amd64: neither cloud, rt, -dbg nor -unsigned.
	re="^linux-image-${want//./\\.}[.-][0-9.-]*-amd64\$"
	pkg=$(apt-cache search --names-only "$re" | cut -d' ' -f1 | sort -V | tail -1)
	if [ -z "$pkg" ]; then
		echo "kernel: no package matching $re in the archive (apt-get update, or give a package name)" >&2
		exit 1
	fi
	;;
esac

tree=$cache/$pkg
if [ ! -f "$tree/.unpacked" ]; then
	deb=$(ls "$cache/${pkg}"_*.deb 2>/dev/null | tail -1 || true)
	if [ -z "$deb" ]; then
		echo "kernel: apt-get download $pkg" >&2
		(cd "$cache" && apt-get download -q "$pkg" >&2) ||
			{ echo "kernel: apt-get download $pkg failed (apt-get update?)" >&2; exit 1; }
		deb=$(ls "$cache/${pkg}"_*.deb | tail -1)
	fi
	rm -rf "$tree"
	dpkg-deb -x "$deb" "$tree"
	# The package leaves modules.dep to its postinst: make it here.
	for m in "$tree"/lib/modules/*; do
		depmod -b "$tree" "${m##*/}" ||
			{ echo "kernel: depmod failed for $m (apt-get install kmod)" >&2; exit 1; }
	done
	touch "$tree/.unpacked"
fi
echo "$tree"
