"""An archive that goes down in the middle of a data set: a raw DICOM Upper Layer
acceptor (no toolkit) that accepts any association (each presentation context with its
first transfer syntax, PDUs up to 1 MiB), reads P-DATA until the first fragment of a
data set arrives, then stops reading (its receive buffer kept small, so the sender's
bytes back up into the relay), waits SECONDS and resets the connection (SO_LINGER 0:
an RST, as an archive that crashed or lost power leaves it). Connections that close
before an association request (a probe that it listens) are ignored.
Usage: halting_archive.py PORT SECONDS. Prints "halting" when it stops reading and
"reset" once it did (flushed)."""
import socket, struct, sys, time

port, seconds = int(sys.argv[1]), float(sys.argv[2])


def read_exactly(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def item(kind, value):
    return bytes([kind, 0]) + struct.pack(">H", len(value)) + value


def associate_ac(rq):
    """Accepts every presentation context of the A-ASSOCIATE-RQ body `rq`."""
    head, at, contexts = rq[:68], 68, []
    while at + 4 <= len(rq):
        kind, n = rq[at], struct.unpack(">H", rq[at + 2:at + 4])[0]
        body = rq[at + 4:at + 4 + n]
        if kind == 0x20:
            sub, syntax = 4, None
            while sub + 4 <= len(body):
                sk, sn = body[sub], struct.unpack(">H", body[sub + 2:sub + 4])[0]
                if sk == 0x40 and syntax is None:
                    syntax = body[sub + 4:sub + 4 + sn]
                sub += 4 + sn
            contexts.append((body[0], syntax))
        at += 4 + n
    v = head[:4] + head[4:68]
    v += item(0x10, b"1.2.840.10008.3.1.1.1")
    for context_id, syntax in contexts:
        v += item(0x21, bytes([context_id, 0, 0, 0]) + item(0x40, syntax))
    v += item(0x50, item(0x51, struct.pack(">I", 1024 * 1024)) + item(0x52, b"1.2.3.4"))
    return bytes([2, 0]) + struct.pack(">I", len(v)) + v


def serve(conn):
    """Relays nothing: True once it halted and reset this association."""
    header = read_exactly(conn, 6)
    if header is None or header[0] != 1:
        return False
    rq = read_exactly(conn, struct.unpack(">I", header[2:6])[0])
    if rq is None:
        return False
    conn.sendall(associate_ac(rq))
    while True:
        header = read_exactly(conn, 6)
        if header is None:
            return False
        length = struct.unpack(">I", header[2:6])[0]
        if header[0] != 4:
            read_exactly(conn, length)
            continue
        pdv = read_exactly(conn, 6)
        if pdv is None:
            return False
        if pdv[5] & 1 == 0:
            # The first fragment of a data set: stop reading, then go down.
            print("halting", flush=True)
            time.sleep(seconds)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            conn.close()
            print("reset", flush=True)
            return True
        read_exactly(conn, length - 6)


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# Set before listening, so that each accepted connection's window stays small.
listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
listener.bind(("127.0.0.1", port))
listener.listen(8)
while True:
    conn, _ = listener.accept()
    try:
        serve(conn)
    except OSError:
        pass
    finally:
        conn.close()
