"""A slow link: relays each TCP connection from 127.0.0.1:PORT to 127.0.0.1:TARGET, the
client's bytes at about RATE bytes per second (in steps of 16 KiB), the server's as they
come. Usage: slow_link.py PORT TARGET RATE."""
import socket
import sys
import threading
import time

port, target, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])


def pump(src, dst, limit):
    try:
        while True:
            data = src.recv(16384)
            if not data:
                break
            dst.sendall(data)
            if limit:
                time.sleep(len(data) / limit)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", port))
listener.listen(8)
while True:
    client, _ = listener.accept()
    try:
        server = socket.create_connection(("127.0.0.1", target))
    except OSError:
        client.close()
        continue
    threading.Thread(target=pump, args=(client, server, rate), daemon=True).start()
    threading.Thread(target=pump, args=(server, client, 0), daemon=True).start()
