"""A sender whose association is gone when its answer comes: a raw DICOM Upper Layer peer
(no toolkit) that opens an association, sends one C-STORE of a Part 10 file's data set
(in the file's own transfer syntax), waits SECONDS for the bytes to be taken, then resets
the connection (SO_LINGER 0: an RST, as a modality that crashed or was switched off
leaves it) without reading anything. Usage: vanishing_sender.py PORT CALLING CALLED FILE
SECONDS. Prints "reset" once it did."""
import socket, struct, sys, time

port, calling, called, path, seconds = sys.argv[1:6]
port, seconds = int(port), float(seconds)
ILE = "1.2.840.10008.1.2"


def item(kind, value):
    return bytes([kind, 0]) + struct.pack(">H", len(value)) + value


def part10(path):
    """The data set, its SOP Class and Instance UIDs and transfer syntax from the meta group."""
    raw = open(path, "rb").read()
    assert raw[128:132] == b"DICM", "not a Part 10 file"
    at, meta = 132, {}
    while at < len(raw) and struct.unpack("<H", raw[at:at + 2])[0] == 2:
        element = struct.unpack("<H", raw[at + 2:at + 4])[0]
        vr = raw[at + 4:at + 6]
        if vr in (b"OB", b"OW", b"UN", b"SQ", b"UT"):
            n, head = struct.unpack("<I", raw[at + 8:at + 12])[0], 12
        else:
            n, head = struct.unpack("<H", raw[at + 6:at + 8])[0], 8
        meta[element] = raw[at + head:at + head + n].rstrip(b"\0 ").decode("latin-1")
        at += head + n
    return raw[at:], meta[0x0002], meta[0x0003], meta[0x0010]


data, sop_class, sop_instance, ts = part10(path)


def associate_rq():
    v = struct.pack(">HH", 1, 0) + called.encode().ljust(16) + calling.encode().ljust(16) + bytes(32)
    v += item(0x10, b"1.2.840.10008.3.1.1.1")
    v += item(0x20, bytes([1, 0, 0, 0]) + item(0x30, sop_class.encode()) + item(0x40, ts.encode()))
    v += item(0x20, bytes([3, 0, 0, 0]) + item(0x30, sop_class.encode()) + item(0x40, ILE.encode()))
    v += item(0x50, item(0x51, struct.pack(">I", 16384)) + item(0x52, b"1.2.3.4"))
    return bytes([1, 0]) + struct.pack(">I", len(v)) + v


def implicit(element, value):
    if len(value) % 2:
        value += b"\0"
    return struct.pack("<HHI", 0, element, len(value)) + value


def store_rq():
    body = implicit(0x0002, sop_class.encode()) + implicit(0x0100, struct.pack("<H", 0x0001))
    body += implicit(0x0110, struct.pack("<H", 1)) + implicit(0x0700, struct.pack("<H", 0))
    body += implicit(0x0800, struct.pack("<H", 0x0000)) + implicit(0x1000, sop_instance.encode())
    return implicit(0x0000, struct.pack("<I", len(body))) + body


def p_data(control, fragment):
    pdv = struct.pack(">I", len(fragment) + 2) + bytes([1, control]) + fragment
    return bytes([4, 0]) + struct.pack(">I", len(pdv)) + pdv


s = socket.socket()
s.connect(("127.0.0.1", port))
s.sendall(associate_rq())
head = s.recv(6)
if len(head) < 6 or head[0] != 2:
    sys.exit("not accepted: %r" % head)
n = struct.unpack(">I", head[2:6])[0]
while n > 0:
    n -= len(s.recv(n))
s.sendall(p_data(0x03, store_rq()))
for at in range(0, len(data), 16000):
    last = at + 16000 >= len(data)
    s.sendall(p_data(0x02 if last else 0x00, data[at:at + 16000]))
time.sleep(seconds)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("reset")
