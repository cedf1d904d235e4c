"""A sender that never reads its answers: a raw DICOM Upper Layer peer (no toolkit) that
opens an association for Verification, then sends C-ECHO requests as fast as the
connection takes them (a batch at a time) and reads nothing, its receive buffer kept small. Its answers fill
its window, then the gateway's, then the upstream's. Usage: deaf_sender.py PORT SECONDS.
Prints how many requests it got out, and how it ended: "closed" when the connection was
closed or reset under it, "blocked" when SECONDS passed with the connection still open
and no request taken (wedged). With a third argument "tls" it speaks TLS (the
gateway's certificate not checked) and, as over plain TCP, reads nothing once
associated: a TLS close (close_notify) towards it is never taken either."""
import socket, ssl, struct, sys, threading, time

ECHO, ILE = "1.2.840.10008.1.1", "1.2.840.10008.1.2"
port, seconds = int(sys.argv[1]), float(sys.argv[2])
tls = sys.argv[3:4] == ["tls"]


def item(kind, value):
    return bytes([kind, 0]) + struct.pack(">H", len(value)) + value


def associate_rq():
    v = struct.pack(">HH", 1, 0) + b"PACS".ljust(16) + b"CT1".ljust(16) + bytes(32)
    v += item(0x10, b"1.2.840.10008.3.1.1.1")
    v += item(0x20, bytes([1, 0, 0, 0]) + item(0x30, ECHO.encode()) + item(0x40, ILE.encode()))
    v += item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4"))
    return bytes([1, 0]) + struct.pack(">I", len(v)) + v


def implicit(element, value):
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", 0, element, len(value)) + value


def echo_rq(message_id):
    body = implicit(0x0002, ECHO.encode()) + implicit(0x0100, struct.pack("<H", 0x0030))
    body += implicit(0x0110, struct.pack("<H", message_id & 0xFFFF))
    body += implicit(0x0800, struct.pack("<H", 0x0101))
    command = implicit(0x0000, struct.pack("<I", len(body))) + body
    pdv = struct.pack(">I", len(command) + 2) + bytes([1, 0x03]) + command
    return bytes([4, 0]) + struct.pack(">I", len(pdv)) + pdv


s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", port))
if tls:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    s = context.wrap_socket(s)
s.sendall(associate_rq())
head = s.recv(6)
if len(head) < 6 or head[0] != 2:
    sys.exit("not accepted: %r" % head)
n = struct.unpack(">I", head[2:6])[0]
while n > 0:
    n -= len(s.recv(n))
# From here on nothing is read.
sent = [0]
ended = ["blocked"]


# Requests go out a batch at a time: the gateway stalls only once the answers fill its
# send buffer towards this peer (the kernel's, up to megabytes: tens of thousands of
# C-ECHO-RSPs), so the sender must not be the slow part on a loaded machine.
BATCH = 64


def send_forever():
    try:
        while True:
            first = sent[0] + 1
            s.sendall(b"".join(echo_rq(first + i) for i in range(BATCH)))
            sent[0] += BATCH
    except OSError:
        ended[0] = "closed"


threading.Thread(target=send_forever, daemon=True).start()
start = time.time()
while time.time() - start < seconds and ended[0] == "blocked":
    time.sleep(0.2)
print(sent[0], ended[0])
sys.stdout.flush()
