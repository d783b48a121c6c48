# Used by scripts/test: the interop tests, in shards run side by side.
#
# Each interop test runs Bond on its shipped ports (HTTP 8080, SIP 5060, WebRTC
# 31000), so two tests cannot share a network namespace. Most of a test's time
# is spent waiting on real-time calls, so scripts/test runs SHARDS pytest
# processes at once: shard 0 in the host's namespace (where Postgres and NATS
# listen), each other shard in a namespace of its own with a loopback and a
# veth pair (both ends inside) holding the default route, so a test finds a
# non-loopback address, as on a host. The shards take tests from one list as
# they go (tests/interop/conftest.py, `shard`).

# interop_namespace NAME: a fresh network namespace NAME, as above. Its
# resolv.conf names a server on its own loopback, so a name lookup fails at once,
# as the host's does here (with the host's server, unreachable from inside, each
# lookup waited seconds: aiortc looks up its default STUN server on every offer).
interop_namespace() {
    drop_interop_namespace "$1"
    mkdir -p "/etc/netns/$1"
    echo "nameserver 127.0.0.1" >"/etc/netns/$1/resolv.conf"
    ip netns add "$1"
    ip -n "$1" link set lo up
    ip -n "$1" link add bond0 type veth peer name bond1
    ip -n "$1" addr add 10.213.0.2/24 dev bond0
    ip -n "$1" link set bond0 up
    ip -n "$1" link set bond1 up
    ip -n "$1" route add default dev bond0
}

# drop_interop_namespace NAME: NAME and its resolv.conf gone, if they were there.
drop_interop_namespace() {
    ip netns del "$1" 2>/dev/null || true
    rm -rf "/etc/netns/$1"
}

# run_interop SHARDS PYTEST_ARGS...: the interop tests in SHARDS shards (one
# when not root: namespaces need it), each shard's output prefixed with its number.
run_interop() {
    local shards=$1 claims pids=() status=0 i
    shift
    if [ "$(id -u)" -ne 0 ] || ! command -v ip >/dev/null 2>&1; then
        shards=1
    fi
    if ((shards == 1)); then
        target/interop-venv/bin/python -m pytest "$@" tests/interop
        return
    fi
    claims=$(mktemp -d)
    for ((i = 0; i < shards; i++)); do
        local run=()
        if ((i > 0)); then
            interop_namespace "bond-interop-$i"
            run=(ip netns exec "bond-interop-$i")
        fi
        (set -o pipefail
         BOND_INTEROP_SHARD="$i:$claims" "${run[@]}" target/interop-venv/bin/python -m pytest "$@" tests/interop 2>&1 \
             | sed -u "s/^/[shard $i] /") &
        pids+=($!)
    done
    for i in "${pids[@]}"; do
        wait "$i" || status=1
    done
    for ((i = 1; i < shards; i++)); do
        drop_interop_namespace "bond-interop-$i"
    done
    # Every test collected must have been claimed by a shard: none left out.
    local collected ran
    collected=$(cat "$claims/collected" 2>/dev/null || echo "?")
    ran=$(find "$claims" -type f -name 'test-*' | wc -l)
    rm -rf "$claims"
    if [ "$ran" != "$collected" ]; then
        echo "the shards ran $ran of the $collected interop tests" >&2
        status=1
    fi
    return "$status"
}
