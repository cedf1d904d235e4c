# Helpers shared by the bench scripts (sourced, not run).

log()  { printf '\n==> %s\n' "$*" >&2; }
info() { printf '    %s\n' "$*" >&2; }
warn() { printf '!!! %s\n' "$*" >&2; }
die()  { printf 'error: %s\n' "$*" >&2; exit 2; }

# prebuilt_pacsguard BENCH_DIR: prints the binary to measure, $PACSGUARD if set, else the
# release build, else the debug build; dies when there is none (these scripts never build).
prebuilt_pacsguard() {
    local binary=${PACSGUARD:-}
    if [[ -z $binary ]]; then
        binary=$1/../target/release/pacsguard
        [[ -x $binary ]] || binary=$1/../target/debug/pacsguard
    fi
    [[ -x $binary ]] || die "no binary at $binary (cargo build --release --locked -p pacsguard, or set PACSGUARD)"
    printf '%s\n' "$binary"
}

# install_packages PKG...: apt-get installs the Debian packages given (none: nothing to
# do), as root or through sudo; refused when BENCH_NO_INSTALL=1.
install_packages() {
    (($# == 0)) && return 0
    [[ ${BENCH_NO_INSTALL:-0} == 1 ]] && die "missing tools ($*) and BENCH_NO_INSTALL=1"
    local sudo=""
    if ((EUID != 0)); then
        command -v sudo >/dev/null || die "need root or sudo to install: $*"
        sudo=sudo
    fi
    log "installing: $*"
    $sudo apt-get update -qq
    # --no-install-recommends: aide would drag in a mail transport agent; clamav comes
    # without signatures either way (the scan benchmark loads only its own .ndb).
    $sudo env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "$@" >&2
}
