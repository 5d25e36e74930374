# Sheepdog spool tool: what a client does, on the cluster's head node, with the files a
# detached request leaves there (<ssh dir>/<job name>.d/, its spool/ and its token file).
#
# Standard library only; runs on Python 3.8 and later, as the login user, with nothing
# installed. The client runs it over its SSH connection, one process per call:
#
#     python3 -c "<this file>" read <spool dir> <max bytes>
#     python3 -c "<this file>" remove <spool dir>        (the names on stdin, one a line)
#     python3 -c "<this file>" list <ssh dir>
#     python3 -c "<this file>" purge <ssh dir> <dir name>...
#
# read: the spool files (<task>-<nonce>.reports) in name order, as frames (each section a
#   4-byte big-endian length and its bytes): the file's name (UTF-8), then its bytes, for as
#   many files as fit in <max bytes> (at least one), then a last section, UTF-8 JSON
#   {"more": <files not sent>, "skipped": [<names that are not regular files>]}.
#   Files being written (.<task>-<nonce>.tmp) are never read. A missing directory has none.
# remove: removes each spool file named on stdin; prints {"removed": n, "refused": m}
#   (m: names that are not a spool file's). A file already gone is fine.
# list: prints {"staged": [...]}, one entry per staged directory sheepdog_<n>_<8 hex>.d
#   directly under <ssh dir>: {"dir", "manifest" (request.json parsed, or null),
#   "spooled" (spool files), "spooledBytes", "bytes" (of every file in it), "modified"
#   (the newest modification in it, ms since the epoch), "token" (its token file is there)}.
# purge: removes each staged directory named (and all in it) and its token file
#   (<ssh dir>/<job name>.token); prints {"removed": [...], "tokens": [...], "missing":
#   [...], "failed": [{"name", "reason"}]}.
#
# Every name is checked against the pattern of what it should be, and nothing is reached
# through a symbolic link inside the directories given: a link is neither read nor followed
# (purge removes what is in a staged directory, never what a link in it points to).
#
# Exit status: 0 done (purge: see "failed"), 2 bad arguments, 3 the directory given cannot be
# read or a file in it cannot be removed.

import json
import os
import re
import stat
import sys

SPOOL_NAME = re.compile(r"\A[1-9][0-9]{0,14}-[A-Za-z0-9_-]{22}\.reports\Z")
STAGED_NAME = re.compile(r"\Asheepdog_[0-9]+_[0-9a-f]{8}\.d\Z")
MANIFEST_NAME = "request.json"
MANIFEST_MAX_BYTES = 1 << 20
# Deeper than a staged directory ever is; what lies below is neither counted nor removed.
MAX_DEPTH = 32
ENTRY_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


class Failure(Exception):
    """What stops a command: its message and exit status."""

    def __init__(self, message, status):
        Exception.__init__(self, message)
        self.status = status


def log(message):
    try:
        sys.stderr.write("[sheepdog spool] %s\n" % message)
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


def why(error):
    return getattr(error, "strerror", None) or str(error)


def checked_path(path, what):
    if path == "" or "\0" in path:
        raise Failure("%s must be a path without NUL characters, not %r." % (what, path[:80]), 2)
    return path


def open_directory(path):
    """A descriptor of the directory at `path` (the caller's own path), or None if missing."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
    except FileNotFoundError:
        return None
    except OSError as error:
        raise Failure("Cannot open the directory %s: %s." % (path, why(error)), 3)


def open_entry(dir_fd, name, directory):
    """A descriptor of `name` in the directory, never through a link; None if not there or
    not of the kind asked (a regular file, or a directory)."""
    flags = ENTRY_FLAGS | (os.O_DIRECTORY if directory else 0)
    try:
        fd = os.open(name, flags, dir_fd=dir_fd)
    except OSError:
        return None
    mode = os.fstat(fd).st_mode
    if (stat.S_ISDIR(mode) if directory else stat.S_ISREG(mode)):
        return fd
    os.close(fd)
    return None


def entry_stat(dir_fd, name):
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except OSError:
        return None


def read_whole(fd):
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def spool_names(dir_fd):
    return sorted(name for name in os.listdir(dir_fd) if SPOOL_NAME.match(name))


def frame(out, section):
    out.write(len(section).to_bytes(4, "big"))
    out.write(section)


def command_read(args):
    if len(args) != 2 or not args[1].isdigit() or int(args[1]) < 1:
        raise Failure("usage: read <spool dir> <max bytes (a positive integer)>", 2)
    dir_fd = open_directory(checked_path(args[0], "The spool directory"))
    names = [] if dir_fd is None else spool_names(dir_fd)
    limit, sent, files, skipped, looked = int(args[1]), 0, 0, [], 0
    out = sys.stdout.buffer
    for name in names:
        fd = open_entry(dir_fd, name, directory=False)
        if fd is None:
            # Gone (another collector took it), or not a regular file: a link is never read.
            if entry_stat(dir_fd, name) is not None:
                skipped.append(name)
            looked += 1
            continue
        encoded = name.encode("ascii")
        size = 8 + len(encoded) + os.fstat(fd).st_size
        if files > 0 and sent + size > limit:
            os.close(fd)
            break
        frame(out, encoded)
        frame(out, read_whole(fd))
        sent, files, looked = sent + size, files + 1, looked + 1
    frame(out, json.dumps({"more": len(names) - looked, "skipped": skipped}).encode("ascii"))
    out.flush()
    return 0


def command_remove(args):
    if len(args) != 1:
        raise Failure("usage: remove <spool dir>, with the names on stdin, one a line", 2)
    dir_fd = open_directory(checked_path(args[0], "The spool directory"))
    removed, refused, failed = 0, 0, 0
    for line in sys.stdin.buffer.read().split(b"\n"):
        name = line.decode("ascii", "replace")
        if line == b"":
            continue
        if not SPOOL_NAME.match(name):
            refused += 1
            continue
        if dir_fd is None:
            continue
        try:
            os.unlink(name, dir_fd=dir_fd)
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as error:
            log("Cannot remove %s from %s: %s." % (name, args[0], why(error)))
            failed += 1
    sys.stdout.write(json.dumps({"removed": removed, "refused": refused}) + "\n")
    return 3 if failed else 0


def measure(dir_fd, name, depth):
    """(bytes of the regular files, newest mtime in ns) of a directory and all below it."""
    fd = open_entry(dir_fd, name, directory=True)
    if fd is None:
        return 0, 0
    try:
        total, newest = 0, os.fstat(fd).st_mtime_ns
        for entry in os.listdir(fd):
            found = entry_stat(fd, entry)
            if found is None:
                continue
            newest = max(newest, found.st_mtime_ns)
            if stat.S_ISREG(found.st_mode):
                total += found.st_size
            elif stat.S_ISDIR(found.st_mode) and depth < MAX_DEPTH:
                below, newest_below = measure(fd, entry, depth + 1)
                total, newest = total + below, max(newest, newest_below)
        return total, newest
    except OSError:
        return 0, 0
    finally:
        os.close(fd)


def spool_totals(dir_fd):
    """(spool files, their bytes) in the staged directory's spool/."""
    fd = open_entry(dir_fd, "spool", directory=True)
    if fd is None:
        return 0, 0
    try:
        sizes = [entry_stat(fd, name) for name in spool_names(fd)]
        sizes = [found.st_size for found in sizes if found and stat.S_ISREG(found.st_mode)]
        return len(sizes), sum(sizes)
    except OSError:
        return 0, 0
    finally:
        os.close(fd)


def read_manifest(dir_fd):
    fd = open_entry(dir_fd, MANIFEST_NAME, directory=False)
    if fd is None:
        return None
    try:
        if os.fstat(fd).st_size > MANIFEST_MAX_BYTES:
            os.close(fd)
            return None
        manifest = json.loads(read_whole(fd).decode("utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


def describe_staged(ssh_fd, name):
    fd = open_entry(ssh_fd, name, directory=True)
    if fd is None:
        return None
    try:
        manifest = read_manifest(fd)
        spooled, spooled_bytes = spool_totals(fd)
    finally:
        os.close(fd)
    total, newest = measure(ssh_fd, name, 0)
    token = entry_stat(ssh_fd, name[: -len(".d")] + ".token")
    return {
        "dir": name,
        "manifest": manifest,
        "spooled": spooled,
        "spooledBytes": spooled_bytes,
        "bytes": total,
        "modified": newest // 1000000,
        "token": token is not None and stat.S_ISREG(token.st_mode),
    }


def command_list(args):
    if len(args) != 1:
        raise Failure("usage: list <ssh dir>", 2)
    ssh_fd = open_directory(checked_path(args[0], "The job directory"))
    staged = []
    if ssh_fd is not None:
        for name in sorted(os.listdir(ssh_fd)):
            described = describe_staged(ssh_fd, name) if STAGED_NAME.match(name) else None
            if described is not None:
                staged.append(described)
    sys.stdout.write(json.dumps({"staged": staged}) + "\n")
    return 0


def remove_tree(dir_fd, name, depth):
    """Removes the directory `name` and all in it; a link in it is removed, never followed."""
    fd = open_entry(dir_fd, name, directory=True)
    if fd is None:
        raise OSError(0, "it is no longer a directory")
    try:
        for entry in os.listdir(fd):
            found = entry_stat(fd, entry)
            if found is not None and stat.S_ISDIR(found.st_mode):
                if depth >= MAX_DEPTH:
                    raise OSError(0, "it is nested more than %d deep" % MAX_DEPTH)
                remove_tree(fd, entry, depth + 1)
            elif found is not None:
                os.unlink(entry, dir_fd=fd)
    finally:
        os.close(fd)
    os.rmdir(name, dir_fd=dir_fd)


def purge_one(ssh_fd, name, result):
    found = entry_stat(ssh_fd, name)
    if found is not None and not stat.S_ISDIR(found.st_mode):
        result["failed"].append({"name": name, "reason": "it is not a directory"})
        return
    if found is None:
        result["missing"].append(name)
    else:
        try:
            remove_tree(ssh_fd, name, 0)
            result["removed"].append(name)
        except OSError as error:
            result["failed"].append({"name": name, "reason": why(error)})
            return
    token = name[: -len(".d")] + ".token"
    try:
        os.unlink(token, dir_fd=ssh_fd)
        result["tokens"].append(token)
    except FileNotFoundError:
        pass
    except OSError as error:
        result["failed"].append({"name": token, "reason": why(error)})


def command_purge(args):
    if len(args) < 1:
        raise Failure("usage: purge <ssh dir> <dir name>...", 2)
    ssh_fd = open_directory(checked_path(args[0], "The job directory"))
    result = {"removed": [], "tokens": [], "missing": [], "failed": []}
    for name in args[1:]:
        if not STAGED_NAME.match(name):
            reason = "it is not the name of a staged directory (sheepdog_<n>_<8 hex>.d)"
            result["failed"].append({"name": name, "reason": reason})
        elif ssh_fd is None:
            result["missing"].append(name)
        else:
            purge_one(ssh_fd, name, result)
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


COMMANDS = {
    "read": command_read,
    "remove": command_remove,
    "list": command_list,
    "purge": command_purge,
}


def main(argv):
    if sys.version_info < (3, 8):
        log("Python 3.8 or later is needed; this is %d.%d." % sys.version_info[:2])
        return 2
    command = COMMANDS.get(argv[1] if len(argv) > 1 else "")
    if command is None:
        log("usage: sheepdog_spool.py read|remove|list|purge <directory> ...")
        return 2
    try:
        return command(argv[2:])
    except Failure as failure:
        log(str(failure))
        return failure.status


if __name__ == "__main__":
    try:
        status = main(sys.argv)
        sys.stdout.flush()
    except BrokenPipeError:
        # The client that read the output is gone; nothing is left to say to it.
        os._exit(1)
    sys.exit(status)
