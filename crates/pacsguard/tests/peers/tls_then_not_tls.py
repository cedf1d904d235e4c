"""A TLS peer that, once its session is up, sends what is not TLS: a TLS client (Python's
ssl on memory buffers, so that every byte it puts on the wire is counted) completes its
handshake through the gateway, sends one line of application data, waits a second,
then writes 4096 bytes of 0x01 on the raw connection, and reads until the gateway
closes. Usage: tls_then_not_tls.py PORT CAFILE. Prints the TLS bytes it sent before
the bytes that are not TLS."""
import socket, ssl, sys, time

port, ca = int(sys.argv[1]), sys.argv[2]
ctx = ssl.create_default_context(cafile=ca)
incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(incoming, outgoing, server_hostname="localhost")
s = socket.create_connection(("127.0.0.1", port))
sent = 0


def flush():
    global sent
    data = outgoing.read()
    if data:
        s.sendall(data)
        sent += len(data)


while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        flush()
        data = s.recv(65536)
        if not data:
            sys.exit("closed during the handshake")
        incoming.write(data)
flush()
tls.write(b"hello archive\n")
flush()
time.sleep(1.0)
s.sendall(b"\x01" * 4096)
s.settimeout(10)
try:
    while s.recv(65536):
        pass
except OSError:
    pass
print(sent)
