"""A TLS sender that stops reading, then aborts, and an archive that floods it: both ends
of one association through the gateway, raw DICOM Upper Layer (no toolkit).

Usage: deaf_tls_aborter.py SECONDS. It listens as the archive on a free loopback port and
prints "upstream PORT"; then it reads the gateway's port from stdin. The sender connects
over TLS (the gateway's certificate not checked), completes the handshake, sends an
A-ASSOCIATE-RQ for Verification (CT1 -> PACS) and reads the A-ASSOCIATE-AC; from then on
it reads nothing (its receive buffer kept small). The archive accepts the gateway's
association and sends P-DATA (C-ECHO-RSPs) towards the sender as fast as the gateway takes
them, draining whatever the gateway sends it. Once no byte of the archive's has been
taken for WEDGED seconds (the gateway holds data for the sender it cannot write), the
sender sends an A-ABORT, which the gateway passes on to the archive: the association ends
with no A-ABORT of the gateway's own to write, and the gateway's TLS close towards the
sender (close_notify after what it still holds) is never taken. It prints "aborted", then
stays connected up to SECONDS, sending a byte now and then, and prints "closed" when the
gateway closed the connection under it, or "open" when SECONDS passed first."""
import socket, ssl, struct, sys, threading, time

ECHO, ILE = "1.2.840.10008.1.1", "1.2.840.10008.1.2"
WEDGED = 5.0
seconds = float(sys.argv[1])


def item(kind, value):
    return bytes([kind, 0]) + struct.pack(">H", len(value)) + value


def pdu(kind, value):
    return bytes([kind, 0]) + struct.pack(">I", len(value)) + value


def user_info():
    return item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4"))


def associate_rq():
    v = struct.pack(">HH", 1, 0) + b"PACS".ljust(16) + b"CT1".ljust(16) + bytes(32)
    v += item(0x10, b"1.2.840.10008.3.1.1.1")
    v += item(0x20, bytes([1, 0, 0, 0]) + item(0x30, ECHO.encode()) + item(0x40, ILE.encode()))
    return pdu(1, v + user_info())


def items(body):
    while len(body) >= 4:
        kind, n = body[0], struct.unpack(">H", body[2:4])[0]
        yield kind, body[4 : 4 + n]
        body = body[4 + n :]


def associate_ac(rq):
    """Accepts every presentation context of the gateway's request, each with its first
    transfer syntax."""
    v = struct.pack(">HH", 1, 0) + rq[10:42] + bytes(32)
    v += item(0x10, b"1.2.840.10008.3.1.1.1")
    contexts = []
    for kind, value in items(rq[74:]):
        if kind != 0x20:
            continue
        syntax = next(s for k, s in items(value[4:]) if k == 0x40)
        contexts.append(value[0])
        v += item(0x21, bytes([value[0], 0, 0, 0]) + item(0x40, syntax))
    return pdu(2, v + user_info()), contexts[0]


def implicit(element, value):
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", 0, element, len(value)) + value


def echo_rsps(context, first):
    """A P-DATA-TF PDU of C-ECHO-RSPs, one whole message per PDV, under 16 KiB."""
    pdvs = b""
    n = first
    while len(pdvs) < 15000:
        body = implicit(0x0002, ECHO.encode()) + implicit(0x0100, struct.pack("<H", 0x8030))
        body += implicit(0x0120, struct.pack("<H", n & 0xFFFF))
        body += implicit(0x0800, struct.pack("<H", 0x0101))
        body += implicit(0x0900, struct.pack("<H", 0))
        command = implicit(0x0000, struct.pack("<I", len(body))) + body
        pdvs += struct.pack(">I", len(command) + 2) + bytes([context, 0x03]) + command
        n += 1
    return pdu(4, pdvs), n


def read_pdu(s):
    head = b""
    while len(head) < 6:
        got = s.recv(6 - len(head))
        if not got:
            raise EOFError("closed")
        head += got
    n = struct.unpack(">I", head[2:6])[0]
    body = b""
    while len(body) < n:
        got = s.recv(n - len(body))
        if not got:
            raise EOFError("closed")
        body += got
    return head + body


listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)
print("upstream", listener.getsockname()[1], flush=True)
gateway_port = int(sys.stdin.readline())
wedged = threading.Event()


def archive():
    a, _ = listener.accept()
    rq = read_pdu(a)
    ac, context = associate_ac(rq)
    a.sendall(ac)

    def drain():
        try:
            while a.recv(65536):
                pass
        except OSError:
            pass

    threading.Thread(target=drain, daemon=True).start()
    # Wedged only once no byte at all was taken for WEDGED seconds: a gateway merely slow
    # (a debug build on a loaded machine) still takes some now and then.
    a.settimeout(1.0)
    n, flood, last = 1, b"", time.monotonic()
    try:
        while True:
            if not flood:
                flood, n = echo_rsps(context, n)
            try:
                flood = flood[a.send(flood) :]
                last = time.monotonic()
            except socket.timeout:
                if time.monotonic() - last >= WEDGED:
                    wedged.set()
                    return
    except OSError:
        pass


threading.Thread(target=archive, daemon=True).start()

s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", gateway_port))
context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
context.check_hostname = False
context.verify_mode = ssl.CERT_NONE
s = context.wrap_socket(s)
s.sendall(associate_rq())
ac = read_pdu(s)
if ac[0] != 2:
    sys.exit("not accepted: %r" % ac[:16])
# From here on nothing is read.
if not wedged.wait(seconds):
    print("never wedged", flush=True)
    sys.exit(1)
s.sendall(pdu(7, bytes([0, 0, 0, 0])))
print("aborted", flush=True)
ended = "open"
until = time.monotonic() + seconds
s.settimeout(1.0)
while time.monotonic() < until:
    try:
        s.send(b"\0")
    except socket.timeout:
        pass
    except OSError:
        ended = "closed"
        break
    time.sleep(0.2)
print(ended, flush=True)
