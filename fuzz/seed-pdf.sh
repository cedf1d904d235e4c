#!/usr/bin/env bash
# Fills fuzz/corpus/pdf with seeds for the pdf target: a small document with actions and
# an attachment, rewritten by qpdf (a real writer) in the forms the reader must handle:
# object and cross-reference streams, RC4 40/128-bit and AES-128/256 encryption with an
# empty user password, QDF. Idempotent; the corpus is not committed (fuzz/.gitignore).
set -euo pipefail

fuzz="$(cd "$(dirname "$0")" && pwd)"
corpus="$fuzz/corpus/pdf"
mkdir -p "$corpus"
command -v qpdf >/dev/null || { echo "seed-pdf.sh: qpdf missing (scripts/setup-test-deps.sh)" >&2; exit 1; }
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

python3 - "$work/base.pdf" <<'PY'
import sys
objs = [
    b"<< /Type /Catalog /Pages 2 0 R /OpenAction 4 0 R /Names << /JavaScript << /Names [(a) 5 0 R] >> >> /AcroForm << /Fields [] /XFA 6 0 R >> >>",
    b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
    b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] /AA << /O << /S /Launch /F (cmd.exe) >> >> /Annots [<< /Type /Annot /Subtype /Link /Rect [0 0 1 1] /A << /S /URI /URI (http://x.example) >> >>] >>",
    b"<< /S /GoToR /F (\\\\\\\\host\\\\share\\\\x.pdf) /D [0 /Fit] >>",
    b"<< /S /JavaScript /JS (app.alert\\(1\\)) >>",
]
xfa = b"<xdp><template><script>app.alert(2)</script></template></xdp>"
objs.append(b"<< /Length %d >>\nstream\n" % len(xfa) + xfa + b"\nendstream")
out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
offsets = []
for i, body in enumerate(objs, 1):
    offsets.append(len(out))
    out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
xref = len(out)
out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
for o in offsets:
    out += b"%010d 00000 n \n" % o
out += b"trailer\n<< /Size %d /Root 1 0 R /ID [<00112233445566778899aabbccddeeff> <00112233445566778899aabbccddeeff>] >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
open(sys.argv[1], "wb").write(out)
PY
printf '<?xml version="1.0"?><report/>' >"$work/report.xml"
qpdf "$work/base.pdf" --add-attachment "$work/report.xml" -- "$work/attached.pdf" || true
rm -f "$corpus"/seed-*
for variant in base attached; do
  in="$work/$variant.pdf"
  [[ -f $in ]] || continue
  cp "$in" "$corpus/seed-$variant"
  qpdf "$in" --object-streams=generate "$corpus/seed-$variant-objstm" || true
  qpdf "$in" --qdf "$corpus/seed-$variant-qdf" || true
  qpdf --allow-weak-crypto "$in" --encrypt "" owner 40 -- "$corpus/seed-$variant-rc4-40" || true
  qpdf --allow-weak-crypto "$in" --encrypt "" owner 128 --use-aes=n -- "$corpus/seed-$variant-rc4-128" || true
  qpdf "$in" --encrypt "" owner 128 --use-aes=y -- "$corpus/seed-$variant-aes-128" || true
  qpdf "$in" --encrypt "" owner 256 -- "$corpus/seed-$variant-aes-256" || true
done
