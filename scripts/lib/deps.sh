# Shared by scripts/run and scripts/test: install the system packages Bond needs.
# Usage: source scripts/lib/deps.sh; ensure_packages CMD:PACKAGE ...
# Each CMD is looked up on PATH; the missing ones' PACKAGEs are installed with apt-get.

ensure_packages() {
    local missing=() pair cmd pkg
    for pair in "$@"; do
        cmd=${pair%%:*}
        pkg=${pair#*:}
        command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
    done
    ((${#missing[@]} == 0)) && return 0
    echo "==> installing system packages: ${missing[*]}" >&2
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to apt-get install ${missing[*]}" >&2; return 1; }
        sudo=sudo
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# What building Bond needs: cmake for the bundled libopus, a C compiler, pkg-config.
ensure_build_packages() {
    ensure_packages cmake:cmake cc:build-essential pkg-config:pkg-config
}
