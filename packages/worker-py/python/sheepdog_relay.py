# Sheepdog relay: carries the workers' connections from the cluster's head node back to the
# client, for compute nodes that cannot open a connection to the client's machine.
#
# Standard library only; runs on Python 3.8 and later, as the login user, with nothing
# installed. The client starts it over its SSH connection to the head node:
#
#     python3 -c "<this file>" <listen port> <tunnel port> [<direct host:port>]
#     python3 -c "<this file>" probe <direct host:port>
#
# It listens on every interface of the head node, on <listen port> (0: any free port), and
# carries each connection, byte for byte, to <tunnel port> on the head node's loopback: the
# SSH remote forward that leads to the client's server. It reads nothing of what it carries:
# every request is signed by its worker and every answer proven by the server, so the relay
# holds no secret and can forge nothing.
#
# Once it listens it prints one JSON line on stdout:
#     {"host": <this machine's name>, "port": <the port>, "direct": <what a probe of the
#      direct route found: "ok", or why it failed; null when none was asked>}
#
# It ends when the client stops it, and by itself when the SSH session that started it ends
# (its parent process goes away), so it never outlives the client's connection: a relay
# that is gone is started again by the client, on the same port. A client whose connection
# went without sshd noticing (a laptop that slept) starts a new relay on the port while the
# old one still holds it: the new one stops the old (a relay of the same user on the same
# port, found in /proc) and takes its place.
#
# With "probe", it only probes the direct route, prints {"direct": ...} and exits (0).
#
# Exit status: 0 when its session ended, 2 for bad arguments, 3 when it cannot listen.

import errno
import json
import os
import signal
import socket
import sys
import threading
import time

PIECE_BYTES = 64 * 1024
CONNECT_SECONDS = 10.0
PROBE_SECONDS = 3.0
PARENT_CHECK_SECONDS = 1.0
RELAY_MARK = b"# Sheepdog relay"


def log(message):
    try:
        sys.stderr.write("[sheepdog relay] %s\n" % message)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # the session that read it is gone


def parse_port(text, name, lowest):
    if not text.isdigit() or not lowest <= int(text) <= 65535:
        log("%s must be a port number from %d to 65535, not %r." % (name, lowest, text[:20]))
        sys.exit(2)
    return int(text)


def probe_direct(authority):
    """Whether a Sheepdog server answers /health at `authority` (host:port), from here."""
    host, _, port = authority.rpartition(":")
    host = host.strip("[]")
    try:
        connection = socket.create_connection((host, int(port)), timeout=PROBE_SECONDS)
    except (OSError, ValueError) as error:
        return "cannot connect (%s)" % (getattr(error, "strerror", None) or error)
    try:
        connection.settimeout(PROBE_SECONDS)
        request = "GET /health HTTP/1.0\r\nHost: %s\r\nConnection: close\r\n\r\n" % authority
        connection.sendall(request.encode("ascii"))
        answer = b""
        while len(answer) < 4096:
            piece = connection.recv(4096)
            if not piece:
                break
            answer += piece
    except OSError as error:
        return "no answer (%s)" % (getattr(error, "strerror", None) or error)
    finally:
        connection.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    if not head.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200")) or b'"ok":true' not in body:
        return "something else answers there (%r)" % head.split(b"\r\n")[0][:60]
    return "ok"


def pump(source, sink):
    """Copies `source` to `sink` until `source` ends, then ends `sink`'s sending side."""
    try:
        while True:
            piece = source.recv(PIECE_BYTES)
            if not piece:
                break
            sink.sendall(piece)
    except OSError:
        pass
    for sock, how in ((sink, socket.SHUT_WR), (source, socket.SHUT_RD)):
        try:
            sock.shutdown(how)
        except OSError:
            pass


def carry(worker, tunnel_port):
    """Carries one worker connection to the tunnel and back; closes both at the end."""
    try:
        client = socket.create_connection(("127.0.0.1", tunnel_port), timeout=CONNECT_SECONDS)
    except OSError:
        # The tunnel is down (the client's connection is being re-established): the worker
        # sees its connection closed and tries again.
        worker.close()
        return
    client.settimeout(None)
    for sock in (worker, client):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    back = threading.Thread(target=pump, args=(client, worker), daemon=True)
    back.start()
    pump(worker, client)
    back.join()
    worker.close()
    client.close()


def watch_parent(parent):
    """Ends the relay when the SSH session that started it is gone."""
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(0)


def listening_inodes(port):
    """The inodes of the IPv4 sockets listening on `port` (Linux /proc/net/tcp)."""
    inodes = set()
    try:
        with open("/proc/net/tcp") as table:
            next(table)
            for line in table:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    except (OSError, ValueError, IndexError, StopIteration):
        pass
    return inodes


def older_relays(port):
    """This user's relays that listen on `port` (Linux /proc): those of a session that is gone
    from the client's side but not yet from sshd's (a laptop that slept, a network change)."""
    inodes = listening_inodes(port)
    found = []
    if not inodes:
        return found
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            if os.stat("/proc/" + name).st_uid != os.getuid():
                continue
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().split(b"\0")
            if b"-c" not in argv or not argv[argv.index(b"-c") + 1].startswith(RELAY_MARK):
                continue
            sockets = {os.readlink("/proc/%s/fd/%s" % (name, fd)) for fd in os.listdir("/proc/%s/fd" % name)}
        except (OSError, IndexError):
            continue
        if any("socket:[%s]" % inode in sockets for inode in inodes):
            found.append(int(name))
    return found


def bind(listener, port):
    """Binds `port`, taking it over from an older relay of this user that still holds it."""
    for attempt in range(20):
        try:
            listener.bind(("0.0.0.0", port))
            return
        except OSError as error:
            if port == 0 or error.errno != errno.EADDRINUSE or attempt == 19:
                log("Cannot listen on port %d: %s." % (port, error.strerror or error))
                sys.exit(3)
        for pid in older_relays(port):
            log("Stopping the relay this one replaces (pid %d)." % pid)
            try:
                os.kill(pid, signal.SIGTERM)
            except OSError:
                pass
        time.sleep(0.25)


def listen(port):
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    bind(listener, port)
    listener.listen(128)
    return listener


def main(argv):
    if len(argv) == 3 and argv[1] == "probe":
        sys.stdout.write(json.dumps({"direct": probe_direct(argv[2])}) + "\n")
        return 0
    if len(argv) not in (3, 4):
        log(
            "usage: sheepdog_relay.py <listen port> <tunnel port> [<direct host:port>]"
            " | probe <direct host:port>"
        )
        return 2
    port = parse_port(argv[1], "The listen port", 0)
    tunnel_port = parse_port(argv[2], "The tunnel port", 1)
    parent = os.getppid()
    listener = listen(port)
    direct = probe_direct(argv[3]) if len(argv) == 4 else None
    facts = {"host": socket.gethostname(), "port": listener.getsockname()[1], "direct": direct}
    sys.stdout.write(json.dumps(facts) + "\n")
    sys.stdout.flush()
    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    while True:
        try:
            worker, _ = listener.accept()
        except OSError:
            continue
        threading.Thread(target=carry, args=(worker, tunnel_port), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
