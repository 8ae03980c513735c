# shellcheck shell=bash
# Common settings for the lbtop IPVS lab (sourced by tests/lab/* host scripts).
# Everything the lab creates lives under $LAB_DIR (default: <repo>/target/lab, git-ignored).

LAB_SRC=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)          # tests/lab
REPO_ROOT=$(cd "$LAB_SRC/../.." && pwd)
LAB_DIR=${LAB_DIR:-$REPO_ROOT/target/lab}
RUN_DIR=$LAB_DIR/run
KEY_DIR=$LAB_DIR/keys
SSH_CONFIG=$LAB_DIR/ssh_config
KNOWN_HOSTS=$LAB_DIR/known_hosts
CONSOLE_LOG=$RUN_DIR/console.log
PID_FILE=$RUN_DIR/qemu.pid
PORT_FILE=$RUN_DIR/port
MONITOR_SOCK=$RUN_DIR/monitor.sock
LOCK_FILE=$LAB_DIR/lock

# Packages the lab needs on the host (Debian names).
LAB_PACKAGES="qemu-system-x86 busybox-static cpio kmod ipvsadm openssh-server openssh-client iptables iproute2 xz-utils util-linux sudo keepalived"

# Modules loaded by the initramfs before switch_root (their dependencies are added from modules.dep).
INITRAMFS_MODULES="virtio_pci virtio_net 9pnet_virtio 9p overlay"


# The lab's addresses exist only inside the VM. On the host they are made "unreachable" (local
# routes, no packet is sent) so that a direct connection attempt, e.g. ssh to rs1 without the
# ProxyJump, fails at once instead of going out of this machine.
HOST_GUARD_ROUTES4="10.77.0.0/16 10.78.0.0/16"
HOST_GUARD_ROUTES6="fd77::/48 fd78::/48 fd79::/48"
host_guard_routes() {  # host_guard_routes add|del   (del keeps them while another lab VM runs)
    local r c
    if [ "$1" = del ]; then
        for c in /proc/[0-9]*/cmdline; do
            if grep -q "mount_tag=hostroot" "$c" 2>/dev/null && grep -q "lab.repo=" "$c" 2>/dev/null; then
                return 0
            fi
        done
    fi
    for r in $HOST_GUARD_ROUTES4; do
        if [ "$1" = add ]; then ip route replace unreachable "$r" 2>/dev/null || return 1
        else ip route del unreachable "$r" 2>/dev/null || true; fi
    done
    for r in $HOST_GUARD_ROUTES6; do
        if [ "$1" = add ]; then ip -6 route replace unreachable "$r" 2>/dev/null || return 1
        else ip -6 route del unreachable "$r" 2>/dev/null || true; fi
    done
}

die() { echo "lab: error: $*" >&2; exit 1; }
log() { echo "lab: $*" >&2; }

# The kernel version unpacked under $LAB_DIR/kernel (empty if none).
lab_kernel_version() {
    local d
    for d in "$LAB_DIR"/kernel/lib/modules/*/; do
        [ -f "$d/modules.order" ] && basename "$d" && return 0
    done
    return 1
}

qemu_running() {
    local pid
    [ -f "$PID_FILE" ] || return 1
    pid=$(cat "$PID_FILE" 2>/dev/null) || return 1
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
    # Make sure the pid is really our qemu (pid files can go stale).
    grep -q "qemu-system" "/proc/$pid/cmdline" 2>/dev/null
}

# lab_ssh HOST CMD... : run through the generated ssh config.
lab_ssh() {
    local host=$1; shift
    ssh -F "$SSH_CONFIG" "$host" "$@"
}
