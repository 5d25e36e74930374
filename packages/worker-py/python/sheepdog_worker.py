# Sheepdog worker: runs one array task of a Sheepdog request and reports back.
#
# Standard library only; runs on Python 3.8 and later. A job program is this file followed
# by a call to main() with the launch settings (see workerProgram in @sheepdog/worker-py):
#
#     if __name__ == "__main__":
#         sys.exit(main(json.loads("{...}")))
#
# What it does, in wire protocol v2 (see wire.ts in @sheepdog/contracts):
#   1. reads its task number from SHEEPDOG_TASK_ID, SGE_TASK_ID, SLURM_ARRAY_TASK_ID or
#      PBS_ARRAY_INDEX (the first that is set), plus the launch's taskOffset (a retry job),
#      and the request's token from the launch's tokenFile (never from the program, which
#      schedulers copy where other users can read it); its key is the token's SHA-256;
#   2. GETs /v2/requests/<request>/tasks/<task>: frames [header, func, ns, args...], and
#      checks the server's proof of the answer before it uses any of it. A detached request's
#      worker first reads its task from the launch's stagedTasks, a pack of the job's tasks
#      (wire/staging.ts), once the MACs of the pack's common section and of the task's section
#      are the request's; a pack it cannot read, without the task, or with a MAC that is not
#      the request's is said on stderr, and the task is fetched from the server instead. A
#      proven 409 to the fetch, {"status": 409, "message": ..., "heldBy": K}, says that array
#      task K claimed the task (see 5): nothing of it runs here (said on stderr), and the
#      worker goes on to 5;
#   3. builds one globals dict from the namespace (values, then `py` functions executed into
#      it), executes the function's source into it, and calls the function on each argument
#      tuple, under setrlimit(RLIMIT_AS) when a memory limit is set (soft and hard, as the
#      original did, from then on to the worker's end); a function's optional `modules`
#      ({relative path: source}, a pyFile's neighbours) are importable first, served from
#      memory by a finder at the front of sys.meta_path (nothing is written on the node);
#      each call's report carries what the worker saw of it (TaskFacts in contracts): its start
#      and end, the node's name, the process's peak memory so far, the launch's attempt, and
#      the tail of what it printed to sys.stdout and sys.stderr (which still reach them), its
#      log; a report of a function that could not be set up carries the name and attempt;
#   4. prints each report on stdout as a SHEEPDOG-REPORT line, then POSTs the reports in
#      batches to /v2/requests/<request>/tasks/<task>/reports, retrying an unreachable
#      server with exponential backoff for retryWindowSeconds. A post over the server's body
#      limit (the launch's optional maxBodyBytes, else learned from a 413) is split; a single
#      report over it becomes its task's error, naming the limit (the report stays on stdout).
#      With a spoolDir, a post the server does not take within spoolAfterSeconds (which then
#      replaces retryWindowSeconds and firstContactSeconds) or refuses is written there as a
#      spool file instead (signed, written under a temporary name and renamed), and the task's
#      later posts go straight to the spool;
#   5. with the launch's claimTasks (default false), once its task ended with every report
#      delivered (none spooled), POSTs an empty body to /v2/requests/<request>/tasks/<task>/next
#      (<task> its own). The server answers a proven 200 with the frames of a task whose array
#      task has not started (as a GET of it, the header naming that task), which the worker runs
#      and reports as its own (to that task's reports route), then asks again; an empty 200
#      means none is left. A claim is one attempt, never retried: any other answer, or none,
#      ends the claiming (said on stderr), never the worker.
# Every request is signed (HMAC-SHA256 under the key, a new nonce and time each time); the
# token never travels. Each attempt has a deadline, an answer is read up to maxReplyBytes,
# and no redirect or proxy is followed. The server may be reached on several routes (url, then
# fallbackUrls: the client's own address, a relay on the head node): a route that cannot be
# reached makes the worker try the next at once, and it keeps the one that answered.
#
# Exit status: 0 when every report was delivered or spooled (even if the function raised), 1
# when reports could not be delivered (they are still on stdout; with a spoolDir, when they
# could not be spooled either, whatever the server's failure was), 2 for bad launch settings, an
# unreadable token file or no task number, 3 when the server refused the worker or answered
# with something unusable, 4 when something answered at the server's URL without proving that
# it holds the request's key (an impostor: nothing it sent was used), 5 when the server never
# answered on any of its routes within firstContactSeconds (the nodes cannot reach it there). A
# worker that claims tasks exits with the status of the first task it ran that did not end with
# 0 (it claims no more after it), else 0, also when it ran nothing (its own task was claimed).

import base64
import binascii
import builtins
import hashlib
import hmac
import http.client
import importlib.util
import itertools
import json
import linecache
import os
import pickle
import random
import re
import secrets
import signal
import socket
import struct
import sys
import threading
import time
import traceback
import types
import urllib.parse

WIRE_VERSION = 2
TASK_CONTENT_TYPE = "application/vnd.sheepdog.task+frames"
REPORTS_CONTENT_TYPE = "application/vnd.sheepdog.reports+frames"
STDOUT_REPORT_PREFIX = "SHEEPDOG-REPORT v1 "
NS_FUNCTION_MARKER = "__sheepdog_function__"
# The module user code runs in: registered in sys.modules, so that instances of classes that
# the function's source defines can be pickled as results.
USER_MODULE = "__sheepdog__"
TASK_ID_VARIABLES = (
    "SHEEPDOG_TASK_ID",
    "SGE_TASK_ID",
    "SLURM_ARRAY_TASK_ID",
    "PBS_ARRAY_INDEX",
)

EXIT_OK = 0
EXIT_UNDELIVERED = 1
EXIT_USAGE = 2
EXIT_REFUSED = 3
EXIT_IMPOSTOR = 4
EXIT_UNREACHABLE = 5

# Authentication (wire/auth.ts in @sheepdog/contracts).
WORKER_CONTEXT = "sheepdog-worker-v2"
SERVER_CONTEXT = "sheepdog-server-v2"
PROOF_HEADER = "Sheepdog-Proof"
BODY_HASH_HEADER = "Sheepdog-Content-SHA256"
# How often one call corrects its clock by the server's (a proven 401 with serverTime).
CLOCK_CORRECTIONS = 2

# Reports are posted in batches: when a batch reaches POST_BATCH_BYTES or POST_BATCH_REPORTS
# reports, when its oldest report is POST_BATCH_SECONDS old, or right away after a call slower
# than SLOW_CALL_SECONDS. The count keeps each post small for the server when a chunk holds
# many small results: at 10,000 reports a post, most posts' reports outlived two of the
# server's young-generation collections and were moved to its old generation (two million
# trivial calls through mapStream: 550 MB promoted, against 80 MB at 2,000).
POST_BATCH_BYTES = 8 * 1024 * 1024
POST_BATCH_REPORTS = 2000
POST_BATCH_SECONDS = 10.0
SLOW_CALL_SECONDS = 1.0
# What a report adds to its post's header, about (its index and timing in the columns), toward
# POST_BATCH_BYTES.
REPORT_HEADER_BYTES = 48
# Each report's line reaches the job's stdout file at most STDOUT_FLUSH_SECONDS after its call
# ends (right after a call that took that long), and before its batch is posted or spooled. A
# flush after every call took a quarter of a trivial call's time in the worker; a worker killed
# outright now loses from stdout only the lines of calls that ended in its last tenth of a
# second, which no route has received either.
STDOUT_FLUSH_SECONDS = 0.1
# An attempt (connecting, sending, reading the answer) ends after ATTEMPT_SECONDS plus
# SECONDS_PER_MIB for each MiB sent or announced by the answer's Content-Length.
ATTEMPT_SECONDS = 60.0
CONNECT_SECONDS = 10.0
FIRST_CONTACT_SECONDS = 60.0
# With a spool: how long a post (or the fetch of a task the pack could not give) keeps trying
# the server before its reports are spooled (the launch's spoolAfterSeconds).
SPOOL_AFTER_SECONDS = 15.0
SECONDS_PER_MIB = 1.0
MIB = 1024 * 1024
DEFAULT_MAX_REPLY_BYTES = 1024 * MIB
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
RETRY_STATUSES = (408, 429)
IMPOSTOR_REASON = "something that is not the request's server answered"
# What a report tells of its call (TaskFacts in @sheepdog/contracts): the longest host name
# (characters), and the most of a call's output its log keeps (UTF-8 bytes, cut mark included).
MAX_HOST_LENGTH = 255
MAX_LOG_BYTES = 64 * 1024
# The peak memory is read after a call once this long has passed since the last reading (a
# call at least this long is always read): reading it is a system call, too dear for a million
# trivial calls.
MEMORY_READ_SECONDS = 0.0001

_WORKER_GLOBALS = globals()


class WorkerError(Exception):
    """A failure that ends the worker with a message on stderr and an exit status."""

    def __init__(self, message, status):
        Exception.__init__(self, message)
        self.message = message
        self.status = status


class Refused(WorkerError):
    """The server answered with a status that retrying cannot fix; `reply` is that answer (a
    Reply), or None when what was refused is not its status (an answer too large, or unusable)."""

    def __init__(self, message, http_status, reply=None):
        WorkerError.__init__(self, message, EXIT_REFUSED)
        self.http_status = http_status
        self.reply = reply


class Undelivered(WorkerError):
    """The server stayed unreachable for the whole retry window."""

    def __init__(self, message):
        WorkerError.__init__(self, message, EXIT_UNDELIVERED)




class Unreachable(Undelivered):
    """No route to the server ever answered: the routes are wrong, not the server down."""

    def __init__(self, message):
        WorkerError.__init__(self, message, EXIT_UNREACHABLE)


class Impostor(WorkerError):
    """Something answered at the server's URL without proving it holds the request's key."""

    def __init__(self, message):
        WorkerError.__init__(self, message, EXIT_IMPOSTOR)


def log(message):
    """Writes one line for people to stderr (the job's error file)."""
    try:
        sys.stderr.write("[sheepdog] [worker] " + message + "\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass


# --- frames -------------------------------------------------------------------------------


# A frame's 4-byte big-endian section length.
_SECTION_LENGTH = struct.Struct(">I")


def encode_frames(sections):
    """Joins byte strings as frames: a 4-byte big-endian length before each."""
    sections = [section if type(section) is bytes else bytes(section) for section in sections]
    lengths = map(_SECTION_LENGTH.pack, map(len, sections))
    return b"".join(itertools.chain.from_iterable(zip(lengths, sections)))


# Sections up to this size are copied out of a bytes body: a bytes slice costs a third of a
# memoryview's, and a task's arguments are mostly small. Larger ones stay views, not copies.
_SMALL_SECTION = 1024
# Sections of one small length in a row before the rest of the run is cut at once.
_RUN_AFTER = 8
# The most sections one look at a run takes in (a look copies 4 bytes of each).
_RUN_WINDOW = 8192


def decode_frames(body):
    """Splits a frame body into its sections (bytes when small and the body is bytes, else
    memoryviews); ValueError when malformed. A task's arguments are mostly small sections of
    one length in long runs: past a few in a row, the rest of a run is cut at once (see
    _cut_run)."""
    view = memoryview(body)
    data = body if type(body) is bytes else view
    sections = []
    offset = 0
    end = len(view)
    last = same = -1
    while offset < end:
        if end - offset < 4:
            raise ValueError("the body ends inside a section length")
        (length,) = _SECTION_LENGTH.unpack_from(view, offset)
        if length != last:
            last, same = length, 0
        elif same >= _RUN_AFTER and length <= _SMALL_SECTION:
            cut = _cut_run(view, data, offset, end, length, sections)
            if cut != offset:
                offset, same = cut, 0
                continue
        same += 1
        offset += 4
        if length > end - offset:
            raise ValueError("a section is longer than the bytes that follow it")
        source = data if length <= _SMALL_SECTION else view
        sections.append(source[offset : offset + length])
        offset += length
    return sections


def _cut_run(view, data, offset, end, length, sections):
    """Appends the sections of `length` bytes that follow one another from `offset` (each whole
    in the body) to `sections`, cut from `data`; returns where the first section after them
    starts. Each of the four bytes of their lengths is read as one strided copy, and the run
    ends where any of them first differs from `length`'s."""
    step = length + 4
    pattern = _SECTION_LENGTH.pack(length)
    while True:
        stop = min(end, offset + _RUN_WINDOW * step)
        count = len(range(offset, stop, step))
        for at in range(4):
            column = view[offset + at : stop : step].tobytes()
            count = min(count, len(column) - len(column.lstrip(pattern[at : at + 1])))
        count = min(count, (end - offset) // step)
        first = offset + 4
        sections.extend([data[o : o + length] for o in range(first, first + count * step, step)])
        offset += count * step
        if count < _RUN_WINDOW:
            return offset


def encode_reports(reports, shared=None):
    """A report post body: [ReportHeader, payload...] for (index, kind, payload, timing, log)
    reports, the header's entries as columns (ReportColumns in wire.ts). `timing` is the
    call's (startedAt, endedAt, peakMemoryBytes or None), or None; `log` the tail of what it
    printed, or None; `shared` the facts every report has (host and attempt: see CallFacts).
    A column is one list for json.dumps: a million reports' facts as an object each would
    spend seconds in it, and the server as long reading them."""
    indices, kinds, payloads, timings, logs = zip(*reports) if reports else ((),) * 5
    columns = {"index": indices, "kind": shared_or_all(kinds)}
    if timings.count(None) < len(timings):
        if None in timings:
            timings = [(None, None, None) if timing is None else timing for timing in timings]
        started, ended, peaks = zip(*timings)
        columns["startedAt"] = started
        columns["endedAt"] = ended
        if peaks.count(None) < len(peaks):
            columns["peakMemoryBytes"] = shared_or_all(peaks)
    if logs.count(None) + logs.count("") < len(logs):
        columns["log"] = [log or None for log in logs]
    columns.update(shared or {})
    header = json.dumps({"version": WIRE_VERSION, "columns": columns}, separators=(",", ":"))
    return encode_frames((header.encode("utf-8"),) + payloads)


def shared_or_all(values):
    """A column of `values`: the one value when all are the same, else the list."""
    if values and values.count(values[0]) == len(values):
        return values[0]
    return values


def parse_task(body, request, task):
    """Checks a task reply and returns ([index...], func, ns, [args...])."""
    try:
        return task_of_sections(decode_frames(body), request, task)[1]
    except ValueError as error:
        raise Refused(
            "The server's reply for task %d is not a wire v%d task (%s). Is the server at this"
            " URL a Sheepdog server of the same version?" % (task, WIRE_VERSION, error),
            200,
        )


def task_of_sections(sections, request, task=None):
    """(task number, ([index...], func, ns, [args...])) of a task's sections [header, func, ns,
    args...]: of request `request`'s task `task`, or with None of any of its tasks (a claimed
    task, numbered by its header); ValueError saying what is wrong when they are not."""
    if len(sections) < 3:
        raise ValueError("fewer than three sections")
    header = json.loads(bytes(sections[0]).decode("utf-8"))
    if not isinstance(header, dict) or header.get("version") != WIRE_VERSION:
        raise ValueError("not a wire version %d header" % WIRE_VERSION)
    first = header.get("first")
    count = header.get("count")
    if header.get("request") != request or (task is not None and header.get("task") != task):
        raise ValueError("the header is for another task")
    if task is None:
        task = header.get("task")
        if not _is_task_number(task):
            raise ValueError("the header's task is not a task number")
    if not _is_count(first) or not _is_count(count) or count != len(sections) - 3:
        raise ValueError("the header does not match the argument sections")
    # A retry task lists its arguments' indices; a chunk covers first .. first + count - 1.
    indices = header.get("indices")
    if indices is None:
        indices = list(range(first, first + count))
    elif (
        not isinstance(indices, list)
        or len(indices) != count
        or not all(_is_count(index) for index in indices)
    ):
        raise ValueError("the header's indices do not match the argument sections")
    return task, (indices, sections[1], sections[2], sections[3:])


def _is_count(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _is_task_number(value):
    return _is_count(value) and value >= 1


# --- settings -----------------------------------------------------------------------------


class Settings(object):
    """The validated launch settings (WorkerLaunch in wire.ts)."""

    def __init__(self, launch):
        if not isinstance(launch, dict):
            raise WorkerError("The launch settings are not a JSON object.", EXIT_USAGE)
        self.url = _url(launch.get("url"), "url")
        fallbacks = launch.get("fallbackUrls", [])
        if not isinstance(fallbacks, list):
            raise WorkerError("The launch setting fallbackUrls must be a list of URLs.", EXIT_USAGE)
        self.urls = [self.url] + [_url(url, "fallbackUrls") for url in fallbacks]
        self.first_contact = _seconds(
            launch.get("firstContactSeconds", FIRST_CONTACT_SECONDS), "firstContactSeconds"
        )
        token_file = launch.get("tokenFile")
        if not isinstance(token_file, str) or not token_file or "\x00" in token_file:
            raise WorkerError(
                "The launch setting tokenFile must name the request's token file.", EXIT_USAGE
            )
        self.token_file = token_file
        self.request = _positive_int(launch.get("request"), "request")
        protocol = _positive_int(launch.get("pickleProtocol", 4), "pickleProtocol")
        if protocol < 2 or protocol > pickle.HIGHEST_PROTOCOL:
            raise WorkerError(
                "This Python (%s) pickles with protocols 2 to %d, not %d. Ask for"
                " pickleProtocol %d or lower, or run a newer Python (shell)."
                % (
                    sys.version.split()[0],
                    pickle.HIGHEST_PROTOCOL,
                    protocol,
                    pickle.HIGHEST_PROTOCOL,
                ),
                EXIT_USAGE,
            )
        self.pickle_protocol = protocol
        self.retry_window = _seconds(launch.get("retryWindowSeconds", 600), "retryWindowSeconds")
        self.max_body = max_body_bytes(launch)
        limit = launch.get("memoryLimitBytes")
        self.memory_limit = None if limit is None else _positive_int(limit, "memoryLimitBytes")
        offset = launch.get("taskOffset", 0)
        if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
            raise WorkerError("The launch setting taskOffset must be an integer >= 0.", EXIT_USAGE)
        self.task_offset = offset
        # Which run of the request's tasks this job is: 1, then 2 for its first retry, ...
        self.attempt = _positive_int(launch.get("attempt", 1), "attempt")
        cap = launch.get("maxReplyBytes")
        self.max_reply = (
            DEFAULT_MAX_REPLY_BYTES if cap is None else _positive_int(cap, "maxReplyBytes")
        )
        claim = launch.get("claimTasks", False)
        if not isinstance(claim, bool):
            raise WorkerError("The launch setting claimTasks must be true or false.", EXIT_USAGE)
        # Whether to run, once its own task is done, tasks whose array task has not started.
        self.claim_tasks = claim
        self.staged_tasks = _optional_path(launch.get("stagedTasks"), "stagedTasks")
        self.spool_dir = _optional_path(launch.get("spoolDir"), "spoolDir")
        self.spool_after = _seconds(
            launch.get("spoolAfterSeconds", SPOOL_AFTER_SECONDS), "spoolAfterSeconds"
        )
        if self.spool_dir is not None:
            # A worker that can spool waits no longer for the server than this, on every route.
            self.retry_window = self.spool_after
            self.first_contact = self.spool_after


def _url(value, name):
    """An http(s) URL without its trailing slash, or a usage error naming the setting."""
    valid = isinstance(value, str) and value.startswith(("http://", "https://"))
    if valid:
        try:
            parts = urllib.parse.urlsplit(value)
            valid = bool(parts.hostname) and (parts.port is None or parts.port > 0)
        except ValueError:
            valid = False
    if not valid:
        raise WorkerError("The launch setting %s must be an http(s) URL." % name, EXIT_USAGE)
    return value.rstrip("/")


def _optional_path(value, name):
    """A path (relative to the home directory unless absolute), None when not set, or a usage
    error naming the setting."""
    if value is None:
        return None
    if not isinstance(value, str) or not value or "\x00" in value:
        raise WorkerError("The launch setting %s must be a path." % name, EXIT_USAGE)
    return value


def _seconds(value, name):
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise WorkerError("The launch setting %s must be a number >= 0." % name, EXIT_USAGE)
    return float(value)


def _positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise WorkerError("The launch setting %s must be a positive integer." % name, EXIT_USAGE)
    return value


def task_number(environ=None):
    """The array task number (1-based) and the variable it came from."""
    environ = os.environ if environ is None else environ
    for name in TASK_ID_VARIABLES:
        value = environ.get(name, "").strip()
        # GridEngine sets SGE_TASK_ID=undefined outside array jobs.
        if value == "" or value == "undefined":
            continue
        if value.isdigit() and value.isascii() and int(value) >= 1:
            return int(value), name
        raise WorkerError(
            "%s=%r is not a task number (a positive integer)." % (name, value[:40]), EXIT_USAGE
        )
    raise WorkerError(
        "No task number: none of %s is set. Run this program as an array job, or set"
        " SHEEPDOG_TASK_ID=1 to run task 1 by hand." % ", ".join(TASK_ID_VARIABLES),
        EXIT_USAGE,
    )


# --- the request's key, signatures and proofs ----------------------------------------------


def home_path(path, home=None):
    """A launch setting's path: relative to the home directory unless absolute."""
    if os.path.isabs(path):
        return path
    return os.path.join(os.path.expanduser("~") if home is None else home, path)


def token_path(token_file, home=None):
    """The token file's path: relative to the home directory unless absolute."""
    return home_path(token_file, home)


def read_key(token_file, home=None):
    """The request's key: the SHA-256 of the token in the token file (hashToken in contracts)."""
    path = token_path(token_file, home)
    try:
        with open(path, "rb") as handle:
            data = handle.read(4096)
    except OSError as error:
        raise WorkerError(
            "Cannot read the request's token file %s (%s). It is written before the job is"
            " submitted and removed when its map ends; a task that starts after that has no"
            " server to report to." % (path, error.strerror or error),
            EXIT_USAGE,
        )
    token = data.strip()
    if not token:
        raise WorkerError("The request's token file %s is empty." % path, EXIT_USAGE)
    return hashlib.sha256(token).digest()


def b64url(data):
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def worker_mac(key, method, host, path, nonce, time_ms, body_hash):
    """A request's MAC (workerMac in contracts): HMAC-SHA256 of the fields joined by LF."""
    text = "\n".join((WORKER_CONTEXT, method, host, path, nonce, str(time_ms), body_hash))
    return b64url(hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest())


def server_proof(key, method, path, nonce, status, body):
    """An answer's proof (serverProof in contracts): the fields joined by LF, LF, the body."""
    text = "%s\n%s\n%s\n%s\n%d\n" % (SERVER_CONTEXT, method, path, nonce, status)
    mac = hmac.new(key, text.encode("utf-8"), hashlib.sha256)
    mac.update(body)
    return b64url(mac.digest())


# --- staged tasks and the spool (wire/staging.ts in @sheepdog/contracts) ---------------------

STAGED_CONTEXT = "sheepdog-staged-v2"
SPOOL_CONTEXT = "sheepdog-spool-v2"
# A pack's header holds about 70 bytes per task: one larger than this is not a pack.
PACK_HEADER_MAX_BYTES = 64 * 1024 * 1024


class Unstaged(Exception):
    """Why a pack cannot give this task (the worker then fetches it from the server)."""


def staged_mac(key, request, label, section):
    """A pack section's MAC (stagedMac in contracts): the context, request and label joined by
    LF, LF, the section's bytes."""
    text = "%s\n%d\n%s\n" % (STAGED_CONTEXT, request, label)
    mac = hmac.new(key, text.encode("utf-8"), hashlib.sha256)
    mac.update(section)
    return b64url(mac.digest())


def spool_mac(key, request, task, nonce, body):
    """A spool file's MAC (spoolMac in contracts): the context, request, task and nonce joined
    by LF, LF, the report body."""
    text = "%s\n%d\n%d\n%s\n" % (SPOOL_CONTEXT, request, task, nonce)
    mac = hmac.new(key, text.encode("utf-8"), hashlib.sha256)
    mac.update(body)
    return b64url(mac.digest())


def read_staged_task(path, key, request, task):
    """([index...], func, ns, [args...]) of the request's task `task` from the pack at `path`
    (frames [PackHeader, section...]), once the MACs of its common section and of the task's
    section are the request's; Unstaged saying why not otherwise. Only the header and those two
    sections are read."""
    try:
        with open(path, "rb") as pack:
            header, start, size = _pack_header(pack, request)
            common = _pack_section(pack, header, 0, "common", key, request, start, size)
            index = task - header["taskOffset"]
            if index < 1 or index >= len(header["sections"]):
                raise Unstaged("it has no task %d" % task)
            label = "task %d" % task
            own = _pack_section(pack, header, index, label, key, request, start, size)
    except OSError as error:
        raise Unstaged(_describe(error))
    try:
        func_ns = decode_frames(common)
        if len(func_ns) != 2:
            raise ValueError("its common section is not [function, namespace]")
        sections = decode_frames(own)
        if not sections:
            raise ValueError("its task section is empty")
        return task_of_sections([sections[0]] + func_ns + sections[1:], request, task)[1]
    except ValueError as error:
        raise Unstaged("its task %d is not a wire v%d task (%s)" % (task, WIRE_VERSION, error))


def _pack_header(pack, request):
    """A pack's header, checked to be request `request`'s, where its sections' offsets count
    from, and the pack's size."""
    size = os.fstat(pack.fileno()).st_size
    head = pack.read(4)
    if len(head) < 4:
        raise Unstaged("it is too short for a header")
    (length,) = struct.unpack(">I", head)
    if length > min(PACK_HEADER_MAX_BYTES, size - 4):
        raise Unstaged("its header would be %d bytes, in a pack of %d" % (length, size))
    try:
        header = json.loads(pack.read(length).decode("utf-8"))
    except ValueError:
        raise Unstaged("its header is not JSON")
    if (
        not isinstance(header, dict)
        or header.get("version") != WIRE_VERSION
        or header.get("request") != request
    ):
        raise Unstaged("it is not a wire v%d pack of request %d" % (WIRE_VERSION, request))
    if not _is_count(header.get("taskOffset")) or not isinstance(header.get("sections"), list):
        raise Unstaged("its header has no taskOffset and sections")
    return header, 4 + length, size


def _pack_section(pack, header, index, label, key, request, start, size):
    """The bytes of section `index` of a pack, once its MAC under `label` is the request's."""
    entry = header["sections"][index]
    if not (
        isinstance(entry, list)
        and len(entry) == 3
        and _is_count(entry[0])
        and _is_count(entry[1])
        and isinstance(entry[2], str)
    ):
        raise Unstaged("the place of its %s is not [offset, length, mac]" % label)
    offset, length, mac = entry
    if start + offset + length > size:
        raise Unstaged("its %s lies past its end" % label)
    pack.seek(start + offset)
    data = pack.read(length)
    if len(data) != length:
        raise Unstaged("its %s is cut short" % label)
    expected = staged_mac(key, request, label, data)
    if not hmac.compare_digest(expected.encode("ascii"), mac.encode("utf-8", "replace")):
        raise Unstaged("its %s is not signed with request %d's key" % (label, request))
    return data


class Spool(object):
    """Writes the posts of one task that the server did not take into `directory` (made, mode
    0700, when it is missing; its parent must exist), one spool file per post: frames
    [SpoolHeader, body], written under the name .<task>-<nonce>.tmp (mode 0600), flushed to
    disk, then renamed to <task>-<nonce>.reports, so that a reader never sees part of one."""

    def __init__(self, directory, key, request, task):
        self.directory = directory
        self.key = key
        self.request = request
        self.task = task
        self.files = 0
        self.reports = 0

    def write(self, body, count):
        """Spools one post's body, of `count` reports; returns the file's path. OSError when it
        cannot (nothing is left behind then)."""
        nonce = b64url(secrets.token_bytes(16))
        header = {
            "version": WIRE_VERSION,
            "request": self.request,
            "task": self.task,
            "nonce": nonce,
            "mac": spool_mac(self.key, self.request, self.task, nonce, body),
        }
        head = json.dumps(header, separators=(",", ":")).encode("utf-8")
        try:
            os.mkdir(self.directory, 0o700)
        except FileExistsError:
            pass
        temporary = os.path.join(self.directory, ".%d-%s.tmp" % (self.task, nonce))
        final = os.path.join(self.directory, "%d-%s.reports" % (self.task, nonce))
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        flags |= getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        handle = os.fdopen(os.open(temporary, flags, 0o600), "wb")
        try:
            with handle:
                handle.write(struct.pack(">I", len(head)) + head + struct.pack(">I", len(body)))
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            os.rename(temporary, final)
        except BaseException:
            try:
                os.unlink(temporary)
            except OSError:
                pass
            raise
        self._sync_directory()
        self.files += 1
        self.reports += count
        return final

    def _sync_directory(self):
        """Makes the rename durable, where the platform allows it."""
        try:
            fd = os.open(self.directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except OSError:
            return
        try:
            os.fsync(fd)
        except OSError:
            pass
        finally:
            os.close(fd)


# --- HTTP with retries --------------------------------------------------------------------


def backoff_delay(attempt, retry_after=None):
    """Seconds to wait before retry number `attempt` (0-based): exponential, with jitter."""
    ceiling = min(BACKOFF_MAX_SECONDS, BACKOFF_FIRST_SECONDS * (2 ** min(attempt, 16)))
    delay = ceiling / 2 + random.uniform(0, ceiling / 2)
    if retry_after is not None:
        delay = max(delay, min(retry_after, BACKOFF_MAX_SECONDS))
    return delay


def _retry_after(value):
    """Seconds of a Retry-After header (None when absent or not a number)."""
    try:
        return float(value) if value is not None else None
    except (TypeError, ValueError):
        return None


def _server_message(body):
    """The message of a WireErrorBody, made safe to print."""
    try:
        message = json.loads(body[:4096].decode("utf-8")).get("message")
    except (ValueError, AttributeError):
        return ""
    if not isinstance(message, str):
        return ""
    return "".join(c if c.isprintable() else "?" for c in message[:300])


def _describe(error):
    text = str(error)
    return type(error).__name__ + (": " + text if text else "")


class AttemptTimedOut(OSError):
    """An attempt that passed its deadline (retried like a connection failure)."""


class Reply(object):
    """An answer read whole: its status, body, Retry-After, and whether its proof is right."""

    def __init__(self, status, body, proven, retry_after=None):
        self.status = status
        self.body = body
        self.proven = proven
        self.retry_after = retry_after


class Deadline(object):
    """An attempt's deadline: when it passes, the attempt's socket is shut down, so that no
    read or write waits on (a server that trickles bytes keeps no attempt alive).

    In the main thread it is a SIGALRM timer, not a thread: under a task's hard memory limit
    a new thread may not fit (glibc reserves about 200 MiB of address space to start one). The
    previous SIGALRM handler and timer are restored afterwards. Elsewhere it is a Timer."""

    def __init__(self, seconds, clock=time.monotonic):
        self.clock = clock
        self.seconds = seconds
        self.end = clock() + seconds
        self.expired = False
        self.connection = None
        self.timer = None
        self.alarm = None

    def remaining(self):
        return max(0.001, self.end - self.clock())

    def watch(self, connection):
        """Shuts `connection` down at the deadline."""
        self.connection = connection
        self._arm()

    def extend(self, seconds):
        self.seconds += seconds
        self.end += seconds
        if self.connection is not None:
            self._arm()

    def cancel(self):
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.alarm is not None:
            handler, (delay, interval), armed_at = self.alarm
            self.alarm = None
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, handler)
            if delay > 0:
                left = max(0.001, delay - (time.monotonic() - armed_at))
                signal.setitimer(signal.ITIMER_REAL, left, interval)

    def _arm(self):
        self.cancel()
        use_alarm = hasattr(signal, "setitimer") and (
            threading.current_thread() is threading.main_thread()
        )
        if use_alarm:
            handler = signal.getsignal(signal.SIGALRM)
            handler = signal.SIG_DFL if handler is None else handler
            signal.signal(signal.SIGALRM, self._on_alarm)
            previous = signal.setitimer(signal.ITIMER_REAL, self.remaining())
            self.alarm = (handler, previous, time.monotonic())
            return
        self.timer = threading.Timer(self.remaining(), self._expire)
        self.timer.daemon = True
        self.timer.start()

    def _on_alarm(self, signum, frame):
        self._expire()

    def _expire(self):
        self.expired = True
        sock = getattr(self.connection, "sock", None)
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Route(object):
    """One URL of the server: where to connect, and the Host a request there is signed with."""

    def __init__(self, url):
        parts = urllib.parse.urlsplit(url)
        self.url = url
        self.https = parts.scheme == "https"
        self.hostname = parts.hostname
        self.port = parts.port
        # The Host header, as signed: the URL's authority.
        self.authority = parts.netloc.rpartition("@")[2]
        self.prefix = parts.path.rstrip("/")


class Sent(object):
    """A signed request on its way: what its answer's proof is checked against."""

    def __init__(self, route, connection, method, target, body):
        self.route = route
        self.connection = connection
        self.method = method
        self.target = target
        self.body = body
        self.nonce = b64url(secrets.token_bytes(16))


class Connection(object):
    """Talks to the server: signs each request, checks each answer's proof, and retries
    connection failures, 5xx, 408 and 429. A route that cannot be reached, or where something
    else answers, makes it try the next route at once; it keeps the route that answered, and
    one connection open on it for the task's requests."""

    def __init__(self, settings, key, sleep=time.sleep, clock=time.monotonic, wall=time.time):
        self.settings = settings
        self.key = key
        self.sleep = sleep
        self.clock = clock
        self.wall = wall
        self.routes = [Route(url) for url in settings.urls]
        self.current = 0
        # Whether the server has ever answered (on any route): until then, a failure to reach
        # it is given up after firstContactSeconds, not the whole retry window.
        self.reached = False
        # Milliseconds to add to this node's clock to sign with the server's time.
        self.offset_ms = 0
        # The connection kept open for the next request (HTTP/1.1 keep-alive), and its route.
        self.kept = None
        self.kept_route = None

    @property
    def route(self):
        return self.routes[self.current]

    def call(self, method, path, what, body=None, content_type=None):
        """The body of a proven 200; Refused for a 4xx, Impostor for an answer without proof
        on every route, Unreachable when the server never answered within firstContactSeconds,
        Undelivered after the retry window."""
        started = None
        attempt = 0
        corrections = 0
        failed = {}
        while True:
            retry_after = None
            try:
                reply = self._once(self.route, method, path, body, content_type)
            except (OSError, http.client.HTTPException) as error:
                reason = _describe(error)
                if self._try_another(failed, reason):
                    continue
                if self.settings.spool_dir is not None:
                    # Nothing answers on any route: the client is away. The reports go to the
                    # spool now, rather than holding the node while nobody listens.
                    raise Undelivered(
                        "Cannot %s: nothing answers at %s." % (what, self._reasons(failed))
                    )
            else:
                if reply.proven:
                    self.reached = True
                if reply.proven and reply.status == 200:
                    return reply.body
                if (
                    reply.proven
                    and reply.status == 401
                    and corrections < CLOCK_CORRECTIONS
                    and self._correct_clock(reply.body)
                ):
                    corrections += 1
                    continue
                if self._is_impostor(reply) and self._try_another(failed, IMPOSTOR_REASON):
                    continue
                self._refuse_unless_transient(reply, what, failed)
                reason = "HTTP %d %s" % (reply.status, _server_message(reply.body))
                retry_after = reply.retry_after
            failed[self.current] = reason.strip()
            now = self.clock()
            if started is None:
                started = now
                log(
                    "Cannot %s at %s. Retrying for up to %d s."
                    % (what, self._reasons(failed), self.settings.retry_window)
                )
            waited = now - started
            self._give_up_after(waited, what, failed)
            delay = backoff_delay(attempt, retry_after)
            self.sleep(min(delay, self._window() - waited))
            attempt += 1
            failed = {}
            if attempt % 8 == 0:
                log("Still trying to %s (%s)." % (what, reason.strip()))

    def call_once(self, method, path, body=None, content_type=None):
        """One attempt on the route in use (on the connection kept open, if any), never retried
        nor sent elsewhere: its Reply, whatever its status and proof. OSError or HTTPException
        (AttemptTimedOut among them) when no whole answer came, Refused when the answer is over
        maxReplyBytes."""
        return self._once(self.route, method, path, body, content_type)

    def _try_another(self, failed, reason):
        """Notes that the route in use failed; moves to a route not yet tried in this round and
        says whether there was one."""
        failed[self.current] = reason.strip()
        for step in range(1, len(self.routes)):
            candidate = (self.current + step) % len(self.routes)
            if candidate not in failed:
                self.current = candidate
                return True
        return False

    def _window(self):
        if self.reached:
            return self.settings.retry_window
        return min(self.settings.retry_window, self.settings.first_contact)

    def _give_up_after(self, waited, what, failed):
        if waited < self._window():
            return
        if not self.reached:
            raise Unreachable(
                "Gave up trying to %s after %d s: the server never answered, at %s. If the"
                " cluster's nodes cannot reach the client, set connect: \"relay\" (or \"auto\","
                " the default) so that they reach it through the head node."
                % (what, waited, self._reasons(failed))
            )
        raise Undelivered(
            "Gave up trying to %s after %d s (at %s)." % (what, waited, self._reasons(failed))
        )

    def _reasons(self, failed):
        return "; ".join(
            "%s (%s)" % (self.routes[index].url, reason) for index, reason in sorted(failed.items())
        )

    @staticmethod
    def _is_impostor(reply):
        status = reply.status
        return not reply.proven and status != 401 and status < 500 and status not in RETRY_STATUSES

    def _refuse_unless_transient(self, reply, what, failed):
        """Returns for a status worth retrying (5xx, 408, 429, proven or not); raises Refused
        for a proven answer or a 401, Impostor for any other answer without proof (on every
        route: an unproven answer on one of several makes the next one tried first)."""
        status = reply.status
        if status >= 500 or status in RETRY_STATUSES:
            return
        if reply.proven or status == 401:
            raise Refused(
                "The server refused to %s: HTTP %d %s"
                % (what, status, _server_message(reply.body)),
                status,
                reply,
            )
        if any(reason != IMPOSTOR_REASON for reason in failed.values()):
            return
        raise Impostor(
            "Something answered at %s (HTTP %d) without proving that it holds this request's"
            " key: it is not the request's server (another program may have taken its port)."
            " Nothing it sent was used." % (self.route.url, status)
        )

    def _correct_clock(self, body):
        """Takes the server's clock from a proven 401 that refused this node's time."""
        try:
            server_time = json.loads(body.decode("utf-8")).get("serverTime")
        except (ValueError, AttributeError):
            return False
        if isinstance(server_time, bool) or not isinstance(server_time, int):
            return False
        self.offset_ms = server_time - int(self.wall() * 1000)
        log(
            "This node's clock is %.1f s off the server's; signing with the server's time."
            % (-self.offset_ms / 1000.0)
        )
        return True

    def _once(self, route, method, path, body, content_type):
        """One attempt, on the connection kept open to `route` when there is one. A kept
        connection that the server closed while it was idle is replaced by a new one at once
        (a report sent twice counts once: the first wins)."""
        kept = self.kept if self.kept is not None and self.kept_route is route else None
        if kept is None:
            self.close()
        else:
            try:
                return self._exchange(route, kept, method, path, body, content_type)
            except AttemptTimedOut:
                raise
            except (OSError, http.client.HTTPException):
                pass
        return self._exchange(route, None, method, path, body, content_type)

    def _exchange(self, route, connection, method, path, body, content_type):
        """A signed request on `connection` (a new one when None), its answer read within the
        deadline and the cap; the connection is kept for the next request unless either side
        says it closes."""
        sent = Sent(route, connection, method, route.prefix + path, body)
        deadline = self._deadline_for(sent)
        self.kept = None
        try:
            self._send(sent, content_type, deadline)
            return self._answer(sent, deadline)
        except (OSError, http.client.HTTPException):
            if deadline.expired:
                raise AttemptTimedOut("no whole answer within %.0f s" % deadline.seconds)
            raise
        finally:
            deadline.cancel()
            if sent.connection is not None and self.kept is not sent.connection:
                sent.connection.close()

    def send_ahead(self, method, path, body, content_type):
        """Sends a request on the connection kept open, leaving its answer to `answer_to`: the
        caller goes on meanwhile. None when no connection is kept open or the sending failed
        (the caller then makes the call the usual way)."""
        route = self.route
        if self.kept is None or self.kept_route is not route:
            return None
        sent = Sent(route, self.kept, method, route.prefix + path, body)
        self.kept = None
        deadline = self._deadline_for(sent)
        try:
            self._send(sent, content_type, deadline)
        except (OSError, http.client.HTTPException):
            sent.connection.close()
            return None
        finally:
            deadline.cancel()
        return sent

    def answer_to(self, sent):
        """The answer to a request sent ahead, read within an attempt's deadline; None when it
        cannot be read whole, or is too large to read (the caller makes the call again the
        usual way, which says why)."""
        deadline = Deadline(ATTEMPT_SECONDS, self.clock)
        try:
            self._watch(sent.connection, deadline)
            reply = self._answer(sent, deadline)
            return None if deadline.expired else reply
        except (OSError, http.client.HTTPException, WorkerError):
            return None
        finally:
            deadline.cancel()
            if self.kept is not sent.connection:
                sent.connection.close()

    def _deadline_for(self, sent):
        """An attempt's deadline for `sent`: ATTEMPT_SECONDS, and SECONDS_PER_MIB for each MiB
        it carries."""
        size = 0 if sent.body is None else len(sent.body)
        return Deadline(ATTEMPT_SECONDS + SECONDS_PER_MIB * size / MIB, self.clock)

    @staticmethod
    def _watch(connection, deadline):
        """Holds an open connection's reads and writes to `deadline`."""
        connection.sock.settimeout(deadline.remaining())
        deadline.watch(connection)

    def _send(self, sent, content_type, deadline):
        """Signs and sends `sent` (connecting first when it has no connection)."""
        route = sent.route
        time_ms = int(self.wall() * 1000) + self.offset_ms
        body = sent.body
        body_hash = "" if body is None else b64url(hashlib.sha256(body).digest())
        mac = worker_mac(
            self.key, sent.method, route.authority, sent.target, sent.nonce, time_ms, body_hash
        )
        headers = {
            "Host": route.authority,
            "Authorization": "Sheepdog %s.%d.%s" % (sent.nonce, time_ms, mac),
            "Accept-Encoding": "identity",
        }
        if body is not None:
            headers[BODY_HASH_HEADER] = body_hash
            if content_type is not None:
                headers["Content-Type"] = content_type
        if sent.connection is None:
            sent.connection = self._connect(route, deadline)
        else:
            self._watch(sent.connection, deadline)
        sent.connection.request(sent.method, sent.target, body=body, headers=headers)

    def _answer(self, sent, deadline):
        """The answer to `sent`, read within the deadline and the cap, its proof checked; the
        connection is kept for the next request unless either side says it closes."""
        response = sent.connection.getresponse()
        data = self._read(response, deadline)
        if deadline.expired:
            # A socket shut down in the middle of the headers can read as their end.
            raise AttemptTimedOut("no whole answer within %.0f s" % deadline.seconds)
        expected = server_proof(
            self.key, sent.method, sent.target, sent.nonce, response.status, data
        )
        proof = response.getheader(PROOF_HEADER)
        proven = proof is not None and hmac.compare_digest(
            proof.encode("latin-1", "replace"), expected.encode("ascii")
        )
        if not response.will_close:
            self.kept, self.kept_route = sent.connection, sent.route
        return Reply(response.status, data, proven, _retry_after(response.getheader("Retry-After")))

    def close(self):
        """Closes the connection kept open, if any."""
        if self.kept is not None:
            self.kept.close()
        self.kept = None
        self.kept_route = None

    def _connect(self, route, deadline):
        """A connection to the server on `route` (no proxy: a cluster's http_proxy is not for
        us), opened within CONNECT_SECONDS: a firewall that drops packets costs no more."""
        kind = http.client.HTTPSConnection if route.https else http.client.HTTPConnection
        timeout = min(CONNECT_SECONDS, deadline.remaining())
        connection = kind(route.hostname, route.port, timeout=timeout)
        try:
            connection.connect()
        except BaseException:
            connection.close()
            raise
        self._watch(connection, deadline)
        return connection

    def _read(self, response, deadline):
        """An answer's body, refused unread when it would pass maxReplyBytes."""
        cap = self.settings.max_reply
        length = response.length
        if length is not None:
            if length > cap:
                raise Refused(self._too_large(length), response.status)
            deadline.extend(SECONDS_PER_MIB * length / MIB)
            return response.read()
        # No length announced (chunked, or until the connection closes): read in pieces, so
        # that nothing larger than what arrived is ever allocated.
        parts = []
        total = 0
        while True:
            part = response.read(64 * 1024)
            if not part:
                return b"".join(parts)
            total += len(part)
            if total > cap:
                raise Refused(self._too_large(None), response.status)
            parts.append(part)

    def _too_large(self, length):
        size = "more than %d bytes" % self.settings.max_reply if length is None else "%d bytes" % length
        return (
            "The answer at %s is %s, more than this task can need (maxReplyBytes %d); it was"
            " not read." % (self.route.url, size, self.settings.max_reply)
        )


# --- running the function -----------------------------------------------------------------


class MemoryLimit(object):
    """A context that holds the task to `limit` bytes of address space (RLIMIT_AS).

    As the original Sheepdog did, both the soft and the hard limit are set, so user code cannot
    raise its own limit. A process cannot raise its hard limit again, so the limit holds from
    the first time user code runs to the worker's end (its reports, and the tasks it claims,
    included); a lower hard limit already in place (GridEngine's h_vmem) is kept.
    """

    def __init__(self, limit):
        self.limit = limit
        self.tried = False
        self.resource = None
        if limit is not None:
            try:
                import resource

                self.resource = resource
            except ImportError:
                log("This platform has no resource module; the memory limit is not applied.")

    def __enter__(self):
        if self.resource is None or self.tried:
            return self
        self.tried = True
        resource = self.resource
        hard = resource.getrlimit(resource.RLIMIT_AS)[1]
        limit = self.limit if hard == resource.RLIM_INFINITY else min(self.limit, hard)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (ValueError, OSError) as error:
            log("Cannot limit memory to %d bytes: %s" % (self.limit, error))
        return self

    def __exit__(self, *exc_info):
        return False


def _exec_source(source, filename, namespace):
    # Registering the source lets tracebacks show the lines of user code.
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    exec(compile(source, filename, "exec"), namespace)


class ShippedModules(object):
    """Makes the local modules that ship with a pyFile function importable, as Python would
    find them in the file's directory: a finder first on sys.meta_path that serves their source
    from memory (nothing is written on the node). Modules are keyed by their path relative to
    that directory ("helpers.py", "lib/__init__.py", "lib/util.py")."""

    PATH = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*/)*[A-Za-z_][A-Za-z0-9_]*\.py$")

    def __init__(self):
        # module name -> (path, source, is_package)
        self.modules = {}

    def add(self, files):
        if files is None:
            return
        if not isinstance(files, dict):
            raise TypeError("A function's modules must be {path: source}.")
        for path, text in files.items():
            if not isinstance(path, str) or not self.PATH.match(path) or not isinstance(text, str):
                raise TypeError(
                    "A shipped module must be a relative path of a .py file and its source."
                )
            parts = path[: -len(".py")].split("/")
            package = parts[-1] == "__init__"
            if package:
                parts.pop()
            for depth in range(1, len(parts)):
                # A folder without __init__.py: a namespace package, with nothing to run.
                self.modules.setdefault(".".join(parts[:depth]), (None, "", True))
            if not parts:
                raise TypeError("A shipped module must be inside a package: %r." % path)
            self.modules[".".join(parts)] = (path, text, package)
        if self not in sys.meta_path:
            sys.meta_path.insert(0, self)

    def find_spec(self, fullname, path=None, target=None):
        entry = self.modules.get(fullname)
        if entry is None:
            return None
        origin = None if entry[0] is None else "<sheepdog %s>" % entry[0]
        return importlib.util.spec_from_loader(fullname, self, origin=origin, is_package=entry[2])

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        path, text, _ = self.modules[module.__name__]
        if path is not None:
            module.__file__ = "<sheepdog %s>" % path
            _exec_source(text, module.__file__, module.__dict__)


SHIPPED_MODULES = ShippedModules()


def _function_spec(value):
    """(name, source) when `value` encodes a `py` function (NamespaceFunction), else None; its
    local modules, if any, become importable."""
    if isinstance(value, dict) and len(value) == 1 and NS_FUNCTION_MARKER in value:
        spec = value[NS_FUNCTION_MARKER]
        if (
            isinstance(spec, dict)
            and isinstance(spec.get("name"), str)
            and isinstance(spec.get("source"), str)
        ):
            SHIPPED_MODULES.add(spec.get("modules"))
            return spec["name"], spec["source"]
        raise TypeError("A namespace function must be {name: str, source: str}.")
    return None


def build_namespace(ns_bytes):
    """The globals the function runs in: the namespace's values, then its functions."""
    module = types.ModuleType(USER_MODULE)
    sys.modules[USER_MODULE] = module
    namespace = module.__dict__
    namespace["__builtins__"] = builtins
    if len(ns_bytes) == 0:
        return namespace
    values = pickle.loads(ns_bytes)
    if not isinstance(values, dict):
        raise TypeError("The namespace is a %s, not a dict." % type(values).__name__)
    functions = []
    for key, value in values.items():
        if not isinstance(key, str):
            raise TypeError("Namespace names must be strings, not %s." % type(key).__name__)
        spec = _function_spec(value)
        if spec is None:
            namespace[key] = value
        else:
            functions.append((key, spec))
    for key, (name, source) in functions:
        _exec_source(source, "<sheepdog namespace %s>" % key, namespace)
        if name not in namespace:
            raise NameError("The source of namespace function %r defines no %r." % (key, name))
        namespace[key] = namespace[name]
    return namespace


def load_function(func_bytes, namespace):
    """Executes the function's source (FunctionSource JSON) in `namespace`, once its local
    modules (`modules`, a pyFile's neighbours) are importable; returns it."""
    spec = json.loads(bytes(func_bytes).decode("utf-8"))
    if (
        not isinstance(spec, dict)
        or not isinstance(spec.get("name"), str)
        or not isinstance(spec.get("source"), str)
    ):
        raise TypeError("The function is not {name: str, source: str} JSON.")
    SHIPPED_MODULES.add(spec.get("modules"))
    name = spec["name"]
    _exec_source(spec["source"], "<sheepdog function %s>" % name, namespace)
    function = namespace.get(name)
    if not callable(function):
        raise NameError("The function's source defines no function %r." % name)
    return function


def format_error(error, preface=""):
    """The traceback of `error`, without the worker's own frames, as UTF-8 bytes."""
    tb = error.__traceback__
    while tb is not None and tb.tb_frame.f_globals is _WORKER_GLOBALS:
        tb = tb.tb_next
    text = preface + "".join(traceback.format_exception(type(error), error, tb))
    return text.encode("utf-8", "backslashreplace")


def run_one(function, args_bytes, protocol):
    """Calls the function on one pickled argument tuple: ("result", pickle) or ("error", text)."""
    stage = "call"
    try:
        args = pickle.loads(args_bytes)
        if not isinstance(args, (tuple, list)):
            raise TypeError(
                "The arguments of a task must be a tuple, not %s." % type(args).__name__
            )
        result = function(*args)
        stage = "pickle"
        payload = pickle.dumps(result, protocol=protocol)
        del result
    except KeyboardInterrupt:
        raise
    except BaseException as error:
        preface = ""
        if stage == "pickle":
            preface = "The result could not be pickled (protocol %d):\n" % protocol
        return "error", format_error(error, preface)
    return "result", payload


# --- what a report tells of its call ------------------------------------------------------


def log_cut_mark(cut):
    """The first line of a log whose beginning was cut (logCutMark in contracts)."""
    return "[sheepdog: %d bytes cut]\n" % cut


def tail_of_log(data, cut=0, limit=MAX_LOG_BYTES):
    """The log of a call that printed `data` (UTF-8 bytes, any undecodable byte shown as
    U+FFFD) after `cut` bytes that were already dropped: the whole text when it fits in `limit`
    UTF-8 bytes and nothing was cut, else its tail (from a character's start) after the line of
    log_cut_mark, `limit` bytes at most in all; as tailOfLog in contracts cuts it."""
    text = data.decode("utf-8", "replace")
    if cut == 0 and len(text) * 4 <= limit:
        return text
    encoded = text.encode("utf-8")
    if cut == 0 and len(encoded) <= limit:
        return text
    room = limit - len(log_cut_mark(cut + len(encoded)))
    start = max(0, len(encoded) - room)
    while start < len(encoded) and (encoded[start] & 0xC0) == 0x80:
        start += 1
    return log_cut_mark(cut + start) + encoded[start:].decode("utf-8")


class OutputCapture(object):
    """Keeps the tail of what calls print to sys.stdout and sys.stderr, which still reach the
    streams they replace.

    start() puts a tee in place of each stream and stop() puts the streams back (the worker
    calls it in a `finally`, so a function that raises or that replaced sys.stdout itself
    leaves nothing behind); take() gives the call's log. The tees outlive the calls: a logging
    handler made during the setup or a call keeps writing through them, captured only while a
    call runs. At most twice `limit` bytes are kept however much a call prints."""

    def __init__(self, limit=MAX_LOG_BYTES):
        self.limit = limit
        self.chunks = []
        self.size = 0
        self.cut = 0
        self.active = False
        # True while a tee writes through: what the stream writes on (a TextIOWrapper over
        # sys.stdout.buffer) is not kept twice.
        self.busy = False
        self.stdout = sys.stdout
        self.stderr = sys.stderr
        # Called before what a call prints goes to stdout (the Reporter's write_lines): the
        # report lines of the calls before it go first, so each call's output follows them.
        self.before_stdout = None
        self.tee_stdout = TeeStream(self.stdout, self)
        self.tee_stderr = TeeStream(self.stderr, self)

    def install(self):
        """Puts the tees in place without capturing: during the function's setup, so that a
        logging handler it makes writes through a tee."""
        sys.stdout = self.tee_stdout
        sys.stderr = self.tee_stderr

    def adopt(self):
        """Puts the streams back after the setup; a stream that the setup put in place of a tee
        is kept, as what that tee writes through to."""
        if sys.stdout is not self.tee_stdout:
            self.stdout = self.tee_stdout._stream = sys.stdout
        if sys.stderr is not self.tee_stderr:
            self.stderr = self.tee_stderr._stream = sys.stderr
        self.stop()

    def start(self):
        self.active = True
        sys.stdout = self.tee_stdout
        sys.stderr = self.tee_stderr

    def stop(self):
        sys.stdout = self.stdout
        sys.stderr = self.stderr
        self.active = False

    def keep(self, chunk):
        """Adds output of the call; keeps only the last `limit` bytes once it holds twice that."""
        if not chunk:
            return
        self.chunks.append(chunk)
        self.size += len(chunk)
        if self.size > 2 * self.limit:
            data = b"".join(self.chunks)
            drop = len(data) - self.limit
            # Not inside a character (a UTF-8 one has at most 3 continuation bytes).
            for _ in range(3):
                if (data[drop] & 0xC0) != 0x80:
                    break
                drop += 1
            self.chunks = [data[drop:]]
            self.size = len(data) - drop
            self.cut += drop

    def take(self):
        """The log of the call that ended (None when it printed nothing), forgotten here."""
        if not self.chunks:
            return None
        data = b"".join(self.chunks)
        cut = self.cut
        self.chunks = []
        self.size = 0
        self.cut = 0
        if not data:
            return None
        return tail_of_log(data, cut, self.limit)


class _Tee(object):
    """What both tees share: the stream written through to, and everything else the stream's
    (encoding, fileno, isatty, ...)."""

    def __init__(self, stream, capture):
        self._stream = stream
        self._capture = capture

    def writelines(self, lines):
        for line in lines:
            self.write(line)

    def flush(self):
        if self._stream is not None:
            self._stream.flush()

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self._stream, name)


class TeeStream(_Tee):
    """sys.stdout or sys.stderr while the worker runs the function: writes through to the
    stream it stands for (none when that is None), and gives the capture what a call prints."""

    _binary = None

    def write(self, text):
        capture = self._capture
        if capture.active and not capture.busy and isinstance(text, str):
            capture.keep(text.encode("utf-8", "backslashreplace"))
        return _write_through(capture, self._stream, text)

    @property
    def buffer(self):
        """The stream's binary buffer, teed as well."""
        binary = self._stream.buffer
        if self._binary is None or self._binary._stream is not binary:
            self._binary = BinaryTee(binary, self._capture)
        return self._binary


class BinaryTee(_Tee):
    """sys.stdout.buffer (or sys.stderr's) while the worker runs the function: bytes written
    to it are kept as they are (decoded when the call ends, undecodable bytes as U+FFFD)."""

    def write(self, data):
        capture = self._capture
        if capture.active and not capture.busy and isinstance(data, (bytes, bytearray, memoryview)):
            capture.keep(bytes(data))
        return _write_through(capture, self._stream, data)


def _write_through(capture, stream, data):
    """Writes `data` to `stream` (a tee's), capturing nothing of what that does; on stdout (or
    its buffer), after the report lines waiting to be written."""
    if stream is None:
        return len(data)
    busy = capture.busy
    capture.busy = True
    try:
        if capture.before_stdout is not None and not busy:
            if stream is capture.stdout:
                capture.before_stdout(flush=False)
            elif stream is getattr(capture.stdout, "buffer", None):
                capture.before_stdout(flush=True)
        return stream.write(data)
    finally:
        capture.busy = busy


class PeakMemory(object):
    """The peak resident memory of this process so far, in bytes (ru_maxrss of getrusage), as
    a call ends. It is read after a call once MEMORY_READ_SECONDS have passed since the last
    reading; a call that ends sooner reports the last reading (memory grows by page faults, and
    few fit in that time; the next reading sees them). None without the resource module.

    The high-water mark is never reset (/proc/self/clear_refs could): the scheduler's accounting
    of the job's peak memory, and the function's own getrusage, would see the reset."""

    def __init__(self, now=None):
        self.peak = None
        self.read_at = float("inf")
        try:
            import resource
        except ImportError:
            return
        self.getrusage = resource.getrusage
        self.who = resource.RUSAGE_SELF
        # ru_maxrss is in KiB on Linux and the BSDs, in bytes on macOS.
        self.unit = 1 if sys.platform == "darwin" else 1024
        self.read(time.monotonic() if now is None else now)

    def read(self, now):
        """Reads the peak (at monotonic time `now`) and returns it."""
        self.read_at = now
        try:
            self.peak = self.getrusage(self.who).ru_maxrss * self.unit
        except (OSError, ValueError):
            pass
        return self.peak

    def after_call(self, now):
        """The peak to report for a call that ended at monotonic time `now`."""
        if now - self.read_at >= MEMORY_READ_SECONDS:
            return self.read(now)
        return self.peak


def node_host():
    """This node's name as a report's host: printable characters only, at most MAX_HOST_LENGTH
    UTF-16 code units (as the server counts them); None when there is none."""
    try:
        name = socket.gethostname()
    except OSError:
        return None
    name = "".join(c for c in name if c.isprintable())[:MAX_HOST_LENGTH]
    while len(name.encode("utf-16-le")) > 2 * MAX_HOST_LENGTH:
        name = name[:-1]
    return name or None


class CallFacts(object):
    """What each report of a task tells of its call (TaskFacts in @sheepdog/contracts):
    `shared`, the facts of every call of the task (host and attempt, the launch's: all a setup
    error can tell); the timing of each call (see of_call); and its log, the tail of what the
    call printed (see OutputCapture). A fact this node cannot give is left out."""

    def __init__(self, attempt):
        host = node_host()
        self.shared = {"attempt": attempt}
        if host is not None:
            self.shared["host"] = host
        self.memory = PeakMemory()
        self.output = OutputCapture()

    def of_call(self, wall, seconds, now):
        """The timing and the log of a call that began at `wall` (time.time()) and took
        `seconds`, ending at monotonic time `now`. The timing is (startedAt, endedAt,
        peakMemoryBytes): whole milliseconds since the epoch by this node's clock, the end the
        start plus the call's monotonic duration (so never before it), and the peak (see
        PeakMemory) or None. The log is what the call printed (see OutputCapture.take), None
        when it printed nothing."""
        started = wall * 1000.0
        output = self.output
        timing = (int(started), int(started + seconds * 1000.0), self.memory.after_call(now))
        return timing, output.take() if output.chunks else None


# --- reporting ----------------------------------------------------------------------------


def report_lines(request, reports):
    """The stdout lines of `reports` ((index, kind, payload, ...) each), each ending in a newline,
    joined (STDOUT_REPORT_PREFIX in wire.ts)."""
    head = "%s%d " % (STDOUT_REPORT_PREFIX, request)
    b64 = binascii.b2a_base64
    return "".join(
        [
            "%s%d %s %s\n" % (head, report[0], report[1], b64(report[2], newline=False).decode())
            for report in reports
        ]
    )


class Reporter(object):
    """Prints each report to stdout (written and flushed within STDOUT_FLUSH_SECONDS, and before
    its batch is posted), and posts them to the server in batches. The lines are made and
    written at each flush of stdout, for the reports added since, not in the stream, so that an
    unbuffered stdout (PYTHONUNBUFFERED, python -u) costs a system call per flush rather than
    per report.

    A post larger than the server accepts (its maxBodyBytes: known from the launch, or learned
    from a 413) is split in two; a single report that is too large on its own is replaced, for
    the server, by an error saying so (the report itself stays on stdout); one with a log is
    first sent without its log (the output is in the job's files too).

    With a `spool`, a post the server did not take (any WorkerError) is spooled instead and
    counts as delivered; once one has been, the task's later posts are spooled at once, whole.

    With `post_ahead`, a batch posted while calls go on is sent on the connection kept open and
    its answer read at the next post: the calls do not wait for the server to store their
    reports. An answer that is not a proven 200, or cannot be read, makes the batch posted
    again the usual way (a report that comes twice counts once)."""

    def __init__(
        self,
        connection,
        request,
        task,
        stdout,
        clock=time.monotonic,
        max_body=None,
        spool=None,
        post_ahead=False,
        shared=None,
    ):
        self.connection = connection
        self.request = request
        self.task = task
        self.stdout = stdout
        self.clock = clock
        self.max_body = max_body
        self.spool = spool
        self.post_ahead = post_ahead
        # The facts every report has (see CallFacts.shared).
        self.shared = shared
        # How many reports of the batch have their lines written to stdout.
        self.printed = 0
        # Lines to write after those, of reports no longer in the batch.
        self.lines = []
        # The batch sent ahead, whose answer is still to read: (reports, Sent).
        self.in_flight = None
        self.pending = []
        self.pending_bytes = 0
        self.pending_since = None
        self.printed_at = clock()
        self.failure = None
        self.undelivered = 0

    def add(self, index, kind, payload, seconds=0.0, timing=None, log=None):
        """Adds a report to the batch, with the call's `timing` and `log` (see CallFacts), None
        for none; its line goes to stdout at the next flush of it."""
        self.pending.append((index, kind, payload, timing, log))
        self.pending_bytes += len(payload) + REPORT_HEADER_BYTES + (len(log) if log else 0)
        now = self.clock()
        if self.pending_since is None:
            self.pending_since = now
        if (
            self.pending_bytes >= POST_BATCH_BYTES
            or len(self.pending) >= POST_BATCH_REPORTS
            or seconds >= SLOW_CALL_SECONDS
            or now - self.pending_since >= POST_BATCH_SECONDS
        ):
            self.flush(more=self.post_ahead)
        elif seconds >= STDOUT_FLUSH_SECONDS or now - self.printed_at >= STDOUT_FLUSH_SECONDS:
            self._flush_stdout()

    def flush(self, more=False):
        """Flushes stdout, then posts the batch (or spools it, or counts it undelivered), after
        the batch sent ahead is settled. With `more` (calls go on), the batch is sent ahead
        when it can be."""
        self._flush_stdout()
        reports = self.pending
        self.pending = []
        self.printed = 0
        self.pending_bytes = 0
        self.pending_since = None
        self._settle()
        if not reports:
            return
        if self.failure is not None:
            self.undelivered += len(reports)
            return
        self._delivering(len(reports), lambda: self._post(reports, ahead=more))

    def _settle(self):
        """Reads the answer to the batch sent ahead; posts it again the usual way unless the
        server took it."""
        if self.in_flight is None:
            return
        reports, sent = self.in_flight
        self.in_flight = None
        reply = self.connection.answer_to(sent)
        if reply is not None and reply.proven and reply.status == 200:
            return
        self._delivering(len(reports), lambda: self._deliver(reports, sent.body))

    def _delivering(self, count, post):
        """Runs `post`, which delivers `count` reports; when it fails, the task's later reports
        are counted undelivered."""
        try:
            post()
        except WorkerError as error:
            self.failure = error
            self.undelivered += count
            log(error.message)
            log(
                "Reports that were not delivered are in this job's standard output, on lines"
                " starting %r; `sheepdog recover` reads them from there."
                % STDOUT_REPORT_PREFIX.strip()
            )

    def write_lines(self, flush=False):
        """Writes the lines of the reports added since the last time to stdout (and flushes it,
        with `flush`)."""
        text = report_lines(self.request, self.pending[self.printed :]) + "".join(self.lines)
        self.printed = len(self.pending)
        self.lines = []
        try:
            if text:
                self.stdout.write(text)
            if flush:
                self.stdout.flush()
        except (OSError, ValueError) as error:
            log("Cannot print a report to stdout: %s" % error)

    def _flush_stdout(self):
        self.printed_at = self.clock()
        self.write_lines(flush=True)

    def _post(self, reports, ahead=False):
        body = encode_reports(reports, self.shared)
        if self.spool is not None and self.spool.files > 0:
            self._to_spool(body, len(reports))
            return
        if self.max_body is not None and len(body) > self.max_body:
            del body
            self._too_large(reports, self.max_body)
            return
        if ahead:
            sent = self.connection.send_ahead(
                "POST", self._reports_path(), body, REPORTS_CONTENT_TYPE
            )
            if sent is not None:
                self.in_flight = (reports, sent)
                return
        self._deliver(reports, body)

    def _reports_path(self):
        return "/v2/requests/%d/tasks/%d/reports" % (self.request, self.task)

    def _deliver(self, reports, body):
        """Posts `body` (the encoded `reports`) and waits for the server to take it."""
        try:
            self.connection.call(
                "POST",
                self._reports_path(),
                "report to the server",
                body=body,
                content_type=REPORTS_CONTENT_TYPE,
            )
        except Refused as error:
            if error.http_status != 413:
                self._spool_instead(body, len(reports), error)
                return
            del body
            self._too_large(reports, body_limit_in(error.message), error)
        except WorkerError as error:
            self._spool_instead(body, len(reports), error)

    def _spool_instead(self, body, count, error):
        """Spools a post that the server did not take (`error`); raises `error` when there is
        no spool."""
        if self.spool is None:
            raise error
        self._to_spool(body, count, error.message + " ")
        log(error.message)
        log(
            "Spooled %d reports of task %d in %s; its later reports go there too."
            % (count, self.task, self.spool.directory)
        )

    def _to_spool(self, body, count, why=""):
        """Spools a post; Undelivered (its reports stay on stdout) when the spool cannot take it."""
        try:
            self.spool.write(body, count)
        except OSError as error:
            raise Undelivered(
                "%sCannot spool %d reports of task %d in %s either (%s)."
                % (why, count, self.task, self.spool.directory, _describe(error))
            )

    def _too_large(self, reports, limit, refusal=None):
        """Posts `reports`, too large for one post, in two halves; a single report too large
        on its own becomes an error naming the limit and how to raise it."""
        if len(reports) > 1:
            middle = len(reports) // 2
            self._post(reports[:middle])
            self._post(reports[middle:])
            return
        index, kind, payload, timing, output = reports[0]
        if output:
            # Its log may be what does not fit: the report goes without it.
            self._post([(index, kind, payload, timing, None)])
            return
        if kind == "error" and len(payload) <= OVERSIZED_NOTE_BYTES:
            # The note that would replace it is no smaller: the server takes almost nothing.
            refusal = refusal or Refused(
                "The server accepts posts of at most %d bytes (maxBodyBytes), too few for one"
                " error report. Raise the server's maxBodyBytes." % limit,
                413,
            )
            self._spool_instead(encode_reports(reports, self.shared), 1, refusal)
            return
        message = oversized_report(kind, len(payload), limit)
        self.lines.append(report_lines(self.request, [(index, "error", message)]))
        self._flush_stdout()
        self._post([(index, "error", message, timing, None)])


# The longest error text that is not replaced by a note when the server finds it too large.
OVERSIZED_NOTE_BYTES = 4096


def max_body_bytes(launch):
    """The launch setting maxBodyBytes: the largest post body the server accepts (None when the
    launch does not say). A report too large for it becomes its task's error at once, unsent."""
    limit = launch.get("maxBodyBytes")
    return None if limit is None else _positive_int(limit, "maxBodyBytes")


def body_limit_in(message):
    """The body limit that a server's 413 message names ("limit of N bytes"), or None."""
    found = re.search(r"limit of ([0-9]{1,16}) bytes", message)
    return None if found is None else int(found.group(1))


def oversized_report(kind, size, limit):
    """The error text that replaces a report of `size` bytes over the server's body limit."""
    accepted = "HTTP 413" if limit is None else "its maxBodyBytes, %d bytes" % limit
    return (
        "The %s of this task is %d bytes, more than the server accepts in one post (%s)."
        " Return something smaller (write large outputs to a file and return its path), or"
        " raise the server's maxBodyBytes; the full report is in the job's standard output.\n"
        % ("result" if kind == "result" else "error text", size, accepted)
    ).encode("utf-8")


def run_calls(function, indices, args, protocol, limit, reporter, facts):
    """Calls the function on each argument tuple, within the memory limit, its output captured
    (and restored, whatever the call did), and reports each call with its facts."""
    output = facts.output
    wall_clock = time.time
    clock = time.monotonic
    with limit:
        for index, args_bytes in zip(indices, args):
            wall = wall_clock()
            started = clock()
            output.start()
            try:
                kind, payload = run_one(function, args_bytes, protocol)
            finally:
                output.stop()
            ended = clock()
            seconds = ended - started
            timing, log = facts.of_call(wall, seconds, ended)
            reporter.add(index, kind, payload, seconds, timing, log)


# --- main ---------------------------------------------------------------------------------


def run_task(settings, key, task, stdout, connection=None):
    """Runs and reports array task `task` (from its pack, or fetched), then, with claimTasks,
    each task the server lets it claim; returns the exit status: the first task's that was not
    EXIT_OK, else EXIT_OK."""
    connection = connection or Connection(settings, key)
    runner = TaskRunner(settings, key, stdout, connection)
    try:
        work = own_task(settings, key, task, connection)
        status = EXIT_OK if work is None else runner.run(task, work)
        # A task whose reports were spooled found the server away: a claim would only wait.
        while status == EXIT_OK and settings.claim_tasks and not runner.spooled:
            claimed = claim_task(settings, task, connection)
            if claimed is None:
                break
            status = runner.run(*claimed)
        return status
    finally:
        connection.close()


def own_task(settings, key, task, connection):
    """The array task's own ([index...], func, ns, [args...]) (see task_to_run); None, said on
    stderr, when the server answers that another array task claimed it (a proven 409)."""
    try:
        return task_to_run(settings, key, task, connection)
    except Refused as refusal:
        reply = refusal.reply
        if reply is None or not reply.proven or reply.status != 409:
            raise
        holder = held_by(reply.body)
        log(
            "Task %d is being run by %s, which claimed it; nothing of it runs here."
            % (task, "another task" if holder is None else "task %d" % holder)
        )
        return None


def held_by(body):
    """The array task named by a 409's body ({"status", "message", "heldBy"}: TaskHeldBody in wire.ts), or
    None when it names none."""
    try:
        holder = json.loads(body.decode("utf-8")).get("heldBy")
    except (ValueError, AttributeError):
        return None
    return holder if _is_task_number(holder) else None


def task_to_run(settings, key, task, connection):
    """The task's ([index...], func, ns, [args...]): from the launch's pack when it holds the
    task under the request's MACs, else (saying why) fetched from the server."""
    if settings.staged_tasks is not None:
        path = home_path(settings.staged_tasks)
        try:
            return read_staged_task(path, key, settings.request, task)
        except Unstaged as why:
            log(
                "Cannot take task %d from the staged tasks %s: %s. Fetching it from the server."
                % (task, path, why)
            )
    body = connection.call(
        "GET",
        "/v2/requests/%d/tasks/%d" % (settings.request, task),
        "fetch task %d of request %d" % (task, settings.request),
    )
    return parse_task(body, settings.request, task)


def claim_task(settings, task, connection):
    """(task number, ([index...], func, ns, [args...])) of a task that the server gives array
    task `task` to run (POST .../tasks/<task>/next, one attempt on the connection in use); None
    when it has none left, or when the claim fails, which is said on stderr: the claiming ends,
    never the worker."""
    path = "/v2/requests/%d/tasks/%d/next" % (settings.request, task)
    try:
        # b"", not None: a post is authenticated only with its body's hash, even an empty one.
        reply = connection.call_once("POST", path, b"")
    except (OSError, http.client.HTTPException, WorkerError) as error:
        log("Claiming no more tasks: the server did not answer a claim (%s)." % _describe(error))
        return None
    if not reply.proven or reply.status != 200:
        message = _server_message(reply.body)
        log(
            "Claiming no more tasks: the server answered a claim with HTTP %d%s%s."
            % (
                reply.status,
                "" if reply.proven else " without its proof",
                " (%s)" % message if message else "",
            )
        )
        return None
    if not reply.body:
        return None
    try:
        return task_of_sections(decode_frames(reply.body), settings.request)
    except ValueError as error:
        log(
            "Claiming no more tasks: the server's answer to a claim is not a wire v%d task of"
            " request %d (%s)." % (WIRE_VERSION, settings.request, error)
        )
        return None


class TaskRunner(object):
    """Runs tasks of the request one after another in this process, on one connection: the
    array task's own, then those it claims. Each task has its own Reporter (and spool); the
    calls of all are told alike (one CallFacts) and held to one memory limit."""

    def __init__(self, settings, key, stdout, connection):
        self.settings = settings
        self.key = key
        self.stdout = stdout
        self.connection = connection
        self.facts = CallFacts(settings.attempt)
        self.limit = MemoryLimit(settings.memory_limit)
        # Whether a task's reports went to the spool (the server did not take them).
        self.spooled = False

    def run(self, task, work):
        """Runs task `task`'s ([index...], func, ns, [args...]) and reports each call to the
        task's report route (or spool); returns the task's exit status."""
        indices, func, ns, args = work
        spool = None
        if self.settings.spool_dir is not None:
            spool = Spool(home_path(self.settings.spool_dir), self.key, self.settings.request, task)
        reporter = Reporter(
            self.connection,
            self.settings.request,
            task,
            self.stdout,
            max_body=self.settings.max_body,
            spool=spool,
            post_ahead=True,
            shared=self.facts.shared,
        )
        self.facts.output.before_stdout = reporter.write_lines
        function, setup_error = self._set_up(func, ns)
        if setup_error is None:
            protocol = self.settings.pickle_protocol
            run_calls(function, indices, args, protocol, self.limit, reporter, self.facts)
        else:
            # No call ran: the reports tell only where, and which attempt.
            for index in indices:
                reporter.add(index, "error", setup_error)
        reporter.flush()
        return self._outcome(task, len(args), reporter, spool)

    def _set_up(self, func, ns):
        """(the function, None), or (None, the error text its calls report) when it cannot be
        set up."""
        self.facts.output.install()
        try:
            with self.limit:
                namespace = build_namespace(ns)
                return load_function(func, namespace), None
        except KeyboardInterrupt:
            raise
        except BaseException as error:
            return None, format_error(error, "The function could not be set up:\n")
        finally:
            self.facts.output.adopt()

    def _outcome(self, task, count, reporter, spool):
        """The exit status of a task of `count` calls, once its reports that were spooled or not
        delivered are said on stderr."""
        if spool is not None and spool.files > 0:
            self.spooled = True
            log(
                "%d of %d reports of task %d are in %d spool files in %s, for the client to"
                " collect." % (spool.reports, count, task, spool.files, spool.directory)
            )
        if reporter.failure is not None:
            log(
                "%d of %d reports of task %d were not delivered."
                % (reporter.undelivered, count, task)
            )
            return reporter.failure.status
        return EXIT_OK


def main(launch, environ=None):
    """Runs the array task this process is; returns the exit status (see the top)."""
    stdout = sys.stdout
    try:
        settings = Settings(launch)
        task, _ = task_number(environ)
        key = read_key(settings.token_file)
        # A retry job's tasks are numbered from 1; they are the request's tasks after the offset.
        return run_task(settings, key, task + settings.task_offset, stdout)
    except WorkerError as error:
        log(error.message)
        return error.status
    except Exception:
        # A failure of the worker itself (out of memory while reporting, say): the reports
        # printed so far are on stdout.
        log("The worker failed:\n" + traceback.format_exc())
        return EXIT_UNDELIVERED
