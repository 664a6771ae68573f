#!/usr/bin/env python3
"""A TCP proxy that can cut the link it carries, for `make demo-witness`.

    faultproxy.py LISTEN_PORT TARGET_HOST:PORT

Prints its port once listening. SIGUSR1 blackholes the link (connections
stay open, nothing gets through, as in a network partition); SIGUSR2
heals it (old connections are reset, new ones pass).
"""
import signal
import socket
import sys
import threading

mode = {"cut": False}
live = []
lock = threading.Lock()


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            if not mode["cut"]:
                dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def on_cut(*_):
    mode["cut"] = True


def on_heal(*_):
    with lock:
        for s in live:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        live.clear()
    mode["cut"] = False


def main():
    port, target = int(sys.argv[1]), sys.argv[2]
    host, tport = target.rsplit(":", 1)
    signal.signal(signal.SIGUSR1, on_cut)
    signal.signal(signal.SIGUSR2, on_heal)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    while True:
        try:
            client, _ = listener.accept()
        except InterruptedError:
            continue
        try:
            server = socket.create_connection((host, int(tport)), timeout=2)
            server.settimeout(None)
        except OSError:
            client.close()
            continue
        with lock:
            live.extend([client, server])
        threading.Thread(target=pump, args=(client, server), daemon=True).start()
        threading.Thread(target=pump, args=(server, client), daemon=True).start()


if __name__ == "__main__":
    main()
