#!/bin/bash
# SPDX-License-Identifier: MIT
# Build the test VM's initramfs: busybox-static, the kernel's own virtio,
# 9p and overlay modules (with what they depend on, in load order from
# modules.dep), and tests/kvm/init.  usage: tests/kvm/initramfs.sh MODDIR OUT
# MODDIR is an unpacked kernel's lib/modules/VERSION.
set -eu
moddir=$1 out=$2
here=$(cd "$(dirname "$0")" && pwd)
bb=/bin/busybox
[ -x "$bb" ] || { echo "initramfs: no $bb (apt-get install busybox-static)" >&2; exit 1; }
file -L "$bb" 2>/dev/null | grep -q 'dynamically linked' &&
	{ echo "initramfs: $bb is not static (apt-get install busybox-static)" >&2; exit 1; }

# What the VM needs: the PCI transport, 9p over virtio, and overlayfs.
roots="virtio_pci 9pnet_virtio 9p overlay"
declare -A done_
order=()
dep_of() { # path of a module and its dependencies, from modules.dep
	awk -v m="$1" -F: '{ n = $1; sub(/.*\//, "", n); sub(/\.ko.*$/, "", n); gsub(/-/, "_", n) }
		n == m { print $0; exit }' "$moddir/modules.dep"
}
add() {
	local name=${1//-/_} line path deps d i
	[ -n "${done_[$name]:-}" ] && return 0
	done_[$name]=1
	line=$(dep_of "$name")
	if [ -z "$line" ]; then
		# Not a module: built in, or absent.
		grep -q "/${1}\.ko" "$moddir/modules.builtin" 2>/dev/null ||
			grep -q "/${name}\.ko" "$moddir/modules.builtin" 2>/dev/null ||
			{ echo "initramfs: module $1 neither in modules.dep nor built in" >&2; exit 1; }
		return 0
	fi
	path=${line%%:*}
	read -ra deps <<<"${line#*:}"
	# modules.dep lists a module's dependencies so that the last loads first.
	for ((i = ${#deps[@]} - 1; i >= 0; i--)); do
		d=${deps[i]##*/}; d=${d%%.ko*}
		add "$d"
	done
	order+=("$path")
}
for m in $roots; do add "$m"; done

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp"/{bin,dev,proc,sys,mod,lower,upper,newroot}
cp "$bb" "$tmp/bin/busybox"
for a in sh mount umount insmod mkdir switch_root cat echo sleep poweroff sync; do
	ln -s busybox "$tmp/bin/$a"
done
: >"$tmp/mod/order"
for p in "${order[@]}"; do
	f=${p##*/}
	case $f in
	*.ko) cp "$moddir/$p" "$tmp/mod/$f" ;;
	*.ko.xz) xz -dc "$moddir/$p" >"$tmp/mod/${f%.xz}"; f=${f%.xz} ;;
	*.ko.zst) zstd -qdc "$moddir/$p" >"$tmp/mod/${f%.zst}"; f=${f%.zst} ;;
	*.ko.gz) gzip -dc "$moddir/$p" >"$tmp/mod/${f%.gz}"; f=${f%.gz} ;;
	*) echo "initramfs: unknown module format $f" >&2; exit 1 ;;
	esac
	echo "$f" >>"$tmp/mod/order"
done
cp "$here/init" "$tmp/init"
chmod 0755 "$tmp/init"
(cd "$tmp" && find . | cpio -o -H newc --quiet) | gzip -1 >"$out.tmp"
mv "$out.tmp" "$out"
echo "initramfs: $out ($(sed 's/\.ko$//' "$tmp/mod/order" | tr '\n' ' '))" >&2
