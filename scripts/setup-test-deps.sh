#!/usr/bin/env bash
# Installs what the test suite needs that a fresh Debian machine with Rust may lack.
# Idempotent: installs only what is missing, so CI and developers can run it every time.
set -euo pipefail

# command -> Debian package that provides it
declare -A needed=(
  [mkfifo]=coreutils
  [setpriv]=util-linux
  [mount]=mount
  [xmllint]=libxml2-utils
  [rsyslogd]=rsyslog
  [systemd-analyze]=systemd
  [faketime]=faketime
)

# packages that provide no command of their own
libraries=(rsyslog-gnutls)

missing=()
for cmd in "${!needed[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needed[$cmd]}")
done
for pkg in "${libraries[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done

if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then
    echo "setup-test-deps: missing ${missing[*]}; run as root or install them" >&2
    exit 2
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# rnc2rng (PyPI) turns the DICOM audit schema (PS3.15 A.5.1, RELAX NG compact) into the XML
# syntax xmllint reads. Installed into the checkout, not the system.
tools="$(cd "$(dirname "$0")/.." && pwd)/.testdata/pytools"
if [[ ! -d $tools/rnc2rng ]]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$tools" "rnc2rng==2.7.0"
fi

# Real DICOM files written by others: pydicom's and pynetdicom's sample files, from the
# wheels (downloaded, not installed; never committed). Unzipped under .testdata/wheels.
wheels="$(cd "$(dirname "$0")/.." && pwd)/.testdata/wheels"
# pip's wheel carries distlib's Windows launchers: real PE executables, written by others,
# for building CVE-2019-11687 polyglots in the tests.
for wheel in "pydicom==3.0.2" "pynetdicom==3.0.4" "pip==24.3.1"; do
  name=${wheel%%==*}
  if [[ ! -d $wheels/$name/$name ]]; then
    rm -rf "$wheels/$name.partial"
    mkdir -p "$wheels/$name.partial"
    python3 -m pip download --quiet --disable-pip-version-check --no-deps --only-binary=:all: \
      --dest "$wheels/$name.partial" "$wheel"
    python3 -m zipfile -e "$wheels/$name.partial"/*.whl "$wheels/$name.partial/unpacked"
    rm -rf "$wheels/$name"
    mv "$wheels/$name.partial/unpacked" "$wheels/$name"
    rm -rf "$wheels/$name.partial"
  fi
done
