#!/bin/sh
# Provision one droplet VM of a Centaurus lab (called by the Vagrantfile with: MTU IP).
# Installs what ci/bootstrap installs (apt packages, venv, XDP objects, protobuf modules) from the
# project synced to /opt/centaurus, mounts bpffs, and sets the substrate interface's MTU (Geneve
# and VXLAN add 50 bytes to a 1500-byte inner packet).
# NOT VERIFIED on the development machine (no vagrant there).
set -eu
MTU=$1
IP=$2
IFACE=$(ip -o -4 addr show | awk -v ip="$IP" '{ split($4, a, "/"); if (a[1] == ip) print $2 }')
[ -n "$IFACE" ] || { echo "provision: no interface carries $IP" >&2; exit 1; }
ip link set dev "$IFACE" mtu "$MTU"
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
cd /opt/centaurus
BOOTSTRAP_QUIET=1 ./ci/bootstrap
echo "provision: $(hostname) ready, substrate $IFACE $IP mtu $MTU"
