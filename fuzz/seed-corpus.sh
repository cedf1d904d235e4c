#!/usr/bin/env bash
# Fills fuzz/corpus/inspect with seeds: the real DICOM files of the pydicom and pynetdicom
# wheels (unpacked by scripts/setup-test-deps.sh, never committed), plus a few small files
# built here that carry what the inspection looks for (an executable in an element, an
# active PDF, an appended ZIP), so that the fuzzer starts inside those code paths instead
# of having to discover a valid PE header by chance. Idempotent; the corpus is not
# committed (fuzz/.gitignore).
set -euo pipefail

fuzz="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$fuzz/.." && pwd)"
wheels="$root/.testdata/wheels"
corpus="$fuzz/corpus/inspect"

if [[ ! -d $wheels/pydicom/pydicom/data/test_files ]]; then
  bash "$root/scripts/setup-test-deps.sh"
fi
mkdir -p "$corpus"

# Real files, DICOM or not (the wheels ship DICOMDIRs and JSON too). Named by content so
# that re-running adds nothing and libFuzzer's own finds sit next to them.
while IFS= read -r -d '' file; do
  cp "$file" "$corpus/seed-$(sha1sum "$file" | cut -c1-16)"
done < <(find "$wheels/pydicom/pydicom/data/test_files" \
  "$wheels/pynetdicom/pynetdicom/tests/dicom_files" -type f -size -1024k -print0)

python3 - "$corpus" <<'PY'
import io, struct, sys, zipfile, zlib, hashlib, os

corpus = sys.argv[1]

def elem(group, element, vr, value):
    if len(value) % 2:
        value += b"\0"
    head = struct.pack("<HH", group, element) + vr
    if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
        return head + b"\0\0" + struct.pack("<I", len(value)) + value
    return head + struct.pack("<H", len(value)) + value

def part10(data_set, ts=b"1.2.840.10008.1.2.1", preamble=b"\0" * 128):
    meta = elem(2, 0x0001, b"OB", b"\0\1")
    meta += elem(2, 0x0002, b"UI", b"1.2.840.10008.5.1.4.1.1.104.1")
    meta += elem(2, 0x0003, b"UI", b"1.2.3.4")
    meta += elem(2, 0x0010, b"UI", ts)
    meta = elem(2, 0x0000, b"UL", struct.pack("<I", len(meta))) + meta
    return preamble + b"DICM" + meta + data_set

def pe():
    dos = bytearray(0x80)
    dos[0:2] = b"MZ"
    dos[0x3C:0x40] = struct.pack("<I", 0x80)
    coff = struct.pack("<HHIIIHH", 0x8664, 1, 0, 0, 0, 0xF0, 0x22)
    optional = struct.pack("<H", 0x20B) + b"\0" * 0xEE
    section = b".text\0\0\0" + struct.pack("<IIIIIIHHI", 0x10, 0x1000, 0x10, 0x200, 0, 0, 0, 0, 0x60000020)
    body = bytes(dos) + b"PE\0\0" + coff + optional + section
    return body + b"\0" * (0x210 - len(body))

def elf():
    ident = b"\x7fELF" + bytes([2, 1, 1, 0]) + b"\0" * 8
    # e_type EXEC, e_machine x86-64, e_version, e_entry, e_phoff, e_shoff, e_flags,
    # e_ehsize, e_phentsize, e_phnum, e_shentsize, e_shnum, e_shstrndx
    header = ident + struct.pack("<HHIQQQIHHHHHH", 2, 0x3E, 1, 0x400078, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    # one PT_LOAD program header covering the file
    program = struct.pack("<IIQQQQQQ", 1, 5, 0, 0x400000, 0x400000, 0x80, 0x80, 0x1000)
    return header + program + b"\xc3" * 8

def macho():
    # 64-bit x86-64 executable with one LC_SEGMENT_64 (__PAGEZERO)
    segment = struct.pack("<II16sQQQQiiII", 0x19, 72, b"__PAGEZERO", 0, 0x100000000, 0, 0, 0, 0, 0, 0)
    header = struct.pack("<IiiIIIII", 0xFEEDFACF, 0x01000007, 3, 2, 1, len(segment), 0, 0)
    return header + segment

def zip_bytes():
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("META-INF/MANIFEST.MF", "Main-Class: X\n")
    return out.getvalue()

uid = elem(8, 0x0016, b"UI", b"1.2.840.10008.5.1.4.1.1.7") + elem(8, 0x0018, b"UI", b"1.2.3.4")
hidden_pdf = zlib.compress(b"<< /S /JavaScript /JS (app.alert(1)) >>")
pdf = b"%PDF-1.5\n1 0 obj << /Filter /FlateDecode >>\nstream\r\n" + hidden_pdf + b"\nendstream\n"
pixels = elem(0x7FE0, 0x0010, b"OB", b"")[:8] + b"\xff\xff\xff\xff"  # undefined length
pixels += b"\xfe\xff\x00\xe0" + struct.pack("<I", 0)
pixels += b"\xfe\xff\x00\xe0" + struct.pack("<I", 0x210) + pe()
pixels += b"\xfe\xff\xdd\xe0\0\0\0\0"
seeds = {
    "pe-in-private-element": part10(uid + elem(0x0009, 0x1010, b"OB", pe())),
    "pe-in-preamble": part10(uid, preamble=pe()[:128]),
    "active-pdf-document": part10(uid + elem(0x0042, 0x0011, b"OB", pdf)),
    "zip-appended": part10(uid) + zip_bytes(),
    "elf-and-macho-in-private-elements": part10(
        uid + elem(0x0009, 0x1010, b"OB", elf()) + elem(0x0009, 0x1011, b"UN", macho())),
    "pe-in-pixel-fragment": part10(uid + pixels, ts=b"1.2.840.10008.1.2.4.50"),
    "deflated": part10(zlib.compress(uid + elem(0x0009, 0x1010, b"OB", pe()))[2:-4],
                       ts=b"1.2.840.10008.1.2.1.99"),
    "bare-data-set": uid,
}
for name, data in seeds.items():
    with open(os.path.join(corpus, "seed-" + name), "wb") as f:
        f.write(data)
PY
echo "seed-corpus: $(find "$corpus" -type f | wc -l) files in $corpus"
