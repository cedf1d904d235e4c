#!/usr/bin/env bash
# Seeds for the `pdu` target: the PDUs real DCMTK peers exchange (A-ASSOCIATE-RQ/AC/RJ,
# P-DATA of C-ECHO and C-STORE, A-RELEASE), captured by a small relay between echoscu /
# storescu and storescp, one file per PDU in corpus/pdu. Idempotent (files are named by
# their content's digest).
set -euo pipefail
fuzz="$(cd "$(dirname "$0")" && pwd)"
repo="$(dirname "$fuzz")"
sample="$repo/.testdata/wheels/pydicom/pydicom/data/test_files/CT_small.dcm"
[[ -f $sample ]] || bash "$repo/scripts/setup-test-deps.sh"
mkdir -p "$fuzz/corpus/pdu"
work="$(mktemp -d)"
trap 'kill $scp $relay 2>/dev/null || true; rm -rf "$work"' EXIT
storescp -aet ARCHIVE -od "$work" 21904 >/dev/null 2>&1 & scp=$!
python3 - "$fuzz/corpus/pdu" <<'PY' & relay=$!
import hashlib, os, socket, sys, threading
out = sys.argv[1]
def pump(a, b):
    buf = b""
    while True:
        data = a.recv(65536)
        if not data:
            b.close(); return
        b.sendall(data)
        buf += data
        while len(buf) >= 6:
            n = 6 + int.from_bytes(buf[2:6], "big")
            if len(buf) < n: break
            pdu, buf = buf[:n], buf[n:]
            name = hashlib.sha256(pdu).hexdigest()[:16]
            with open(os.path.join(out, name), "wb") as f: f.write(pdu[:65536])
srv = socket.socket(); srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", 21905)); srv.listen()
while True:
    c, _ = srv.accept()
    u = socket.create_connection(("127.0.0.1", 21904))
    threading.Thread(target=pump, args=(c, u), daemon=True).start()
    threading.Thread(target=pump, args=(u, c), daemon=True).start()
PY
sleep 1
echoscu -aet CT1 -aec ARCHIVE 127.0.0.1 21905 || true
echoscu -aet CT1 -aec WRONG 127.0.0.1 21905 || true
storescu -aet CT1 -aec ARCHIVE 127.0.0.1 21905 "$sample" || true
sleep 1
echo "corpus/pdu: $(ls "$fuzz/corpus/pdu" | wc -l) seeds"
