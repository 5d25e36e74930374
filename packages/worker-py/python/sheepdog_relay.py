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
# SSH remote forward that leads to the client's server. One thread carries them all
# (selectors, non-blocking sockets): a thread per connection cost more than the rest of a
# worker's round trip. It reads nothing of what it carries:
# every request is signed by its worker and every answer proven by the server, so the relay
# holds no secret and can forge nothing.
#
# It probes the direct route, if asked, before it listens. Once it listens it prints one JSON
# line on stdout:
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
import selectors
import signal
import socket
import sys
import threading
import time

PIECE_BYTES = 64 * 1024
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


class Carried(object):
    """One worker connection and its connection to the tunnel, carried both ways by the loop."""

    def __init__(self, worker, tunnel):
        self.ends = (worker, tunnel)
        self.tunnel = tunnel
        # Bytes read from each end, waiting to be written to the other.
        self.waiting = {worker: b"", tunnel: b""}
        self.read_ended = {worker: False, tunnel: False}
        self.write_ended = {worker: False, tunnel: False}
        self.registered = set()
        self.connecting = True

    def other(self, sock):
        return self.ends[1] if sock is self.ends[0] else self.ends[0]


class Loop(object):
    """Carries every worker connection to the tunnel and back, in one thread (selectors)."""

    def __init__(self, listener, tunnel_port):
        self.selector = selectors.DefaultSelector()
        self.listener = listener
        self.tunnel_port = tunnel_port
        listener.setblocking(False)
        self.selector.register(listener, selectors.EVENT_READ, None)

    def run(self):
        while True:
            for key, events in self.selector.select():
                if key.data is None:
                    self.accept()
                else:
                    self.serve(key.data, key.fileobj, events)

    def accept(self):
        try:
            worker, _ = self.listener.accept()
        except OSError:
            return
        tunnel = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for sock in (worker, tunnel):
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            tunnel.connect(("127.0.0.1", self.tunnel_port))
        except BlockingIOError:
            pass
        except OSError:
            # The tunnel is down: the worker sees its connection closed and tries again.
            worker.close()
            tunnel.close()
            return
        self.update(Carried(worker, tunnel))

    def serve(self, carried, sock, events):
        try:
            if carried.connecting and sock is carried.tunnel:
                error = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if error:
                    raise OSError(error, os.strerror(error))
                carried.connecting = False
            if events & selectors.EVENT_READ:
                self.read(carried, sock)
            if events & selectors.EVENT_WRITE:
                self.write(carried, sock)
        except OSError:
            self.close(carried)
            return
        if all(carried.read_ended.values()) and not any(carried.waiting.values()):
            self.close(carried)
        else:
            self.update(carried)

    def read(self, carried, sock):
        try:
            piece = sock.recv(PIECE_BYTES)
        except BlockingIOError:
            return
        if piece:
            carried.waiting[sock] += piece
        else:
            carried.read_ended[sock] = True
        self.write(carried, carried.other(sock))

    def write(self, carried, sock):
        """Writes to `sock` what its other end sent; ends its sending side after the last."""
        if carried.connecting and sock is carried.tunnel:
            return
        source = carried.other(sock)
        data = carried.waiting[source]
        if data:
            try:
                sent = sock.send(data)
            except BlockingIOError:
                sent = 0
            carried.waiting[source] = data[sent:]
        if not carried.waiting[source] and carried.read_ended[source] and not carried.write_ended[sock]:
            carried.write_ended[sock] = True
            try:
                sock.shutdown(socket.SHUT_WR)
            except OSError:
                pass

    def update(self, carried):
        for sock in carried.ends:
            events = 0
            if not carried.read_ended[sock] and len(carried.waiting[sock]) < PIECE_BYTES:
                events |= selectors.EVENT_READ
            if carried.waiting[carried.other(sock)] or (
                carried.connecting and sock is carried.tunnel
            ):
                events |= selectors.EVENT_WRITE
            if events == 0:
                if sock in carried.registered:
                    self.selector.unregister(sock)
                    carried.registered.discard(sock)
            elif sock in carried.registered:
                self.selector.modify(sock, events, carried)
            else:
                self.selector.register(sock, events, carried)
                carried.registered.add(sock)

    def close(self, carried):
        for sock in carried.ends:
            if sock in carried.registered:
                self.selector.unregister(sock)
            sock.close()
        carried.registered.clear()


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
    # The probe comes first: once listening, a probe of a direct route on this relay's own
    # port (the client's server on a machine of the head node's name) would find the relay.
    direct = probe_direct(argv[3]) if len(argv) == 4 else None
    listener = listen(port)
    facts = {"host": socket.gethostname(), "port": listener.getsockname()[1], "direct": direct}
    sys.stdout.write(json.dumps(facts) + "\n")
    sys.stdout.flush()
    threading.Thread(target=watch_parent, args=(parent,), daemon=True).start()
    Loop(listener, tunnel_port).run()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
