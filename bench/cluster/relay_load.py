# The load of the relay benchmark (bench/cluster/relay.mjs), run on the head node as the login
# user: threads that each do worker round trips with the worker's own Connection (signed
# requests, proven answers, its retries), against the server's direct URL and against the relay's,
# alternately (direct, relay, direct, relay, ...).
#
#     python3 relay_load.py <settings.json>
#
# Settings (a JSON file; the token is in a file of its own, 0600, named by tokenFile):
#     {"direct": URL, "relay": URL, "request": id, "tokenFile": path, "tasks": N,
#      "threads": 32, "rounds": 3, "seconds": 5, "warmup": 1, "routes": ["direct", "relay"],
#      "tunnelPort": the relay's tunnel port (to find the relay's process and count its CPU)}
#
# A round trip is one fresh task: GET /v2/requests/<id>/tasks/<task> (checked and parsed as the
# worker parses it), then POST of that task's one result, as the worker's Reporter posts it. Each
# task is used once. A round counts the round trips that end within its `seconds`, after
# `warmup` seconds of the same load.
#
# Prints JSON lines: {"mark": "start"|"end", "route", "round"} at the edges of each measured
# window (for the client to sample its own CPU), then {"kind": "round", ...} per round, and last
# {"kind": "done", "roundTrips": every round trip that ended well, warm-ups included}.

import json
import os
import pickle
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import sheepdog_worker as worker  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")
RELAY_MARK = b"# Sheepdog relay"


class Tally(object):
    """What the threads of one round found: latencies of round trips ended in the window."""

    def __init__(self):
        self.lock = threading.Lock()
        self.latencies = []
        self.failures = 0
        self.first_failure = None
        self.good = 0

    def add(self, started, ended, window, error):
        with self.lock:
            if error is not None:
                self.failures += 1
                self.first_failure = self.first_failure or error
                return
            self.good += 1
            if window[0] <= ended <= window[1]:
                self.latencies.append(ended - started)


class Retries(object):
    """Counts the worker's "Cannot ... Retrying" messages: connection failures it retried."""

    def __init__(self):
        self.lock = threading.Lock()
        self.count = 0
        self.first = None

    def log(self, message):
        if message.startswith("Cannot "):
            with self.lock:
                self.count += 1
                self.first = self.first or message[:300]


def say(value):
    sys.stdout.write(json.dumps(value) + "\n")
    sys.stdout.flush()


def cpu_seconds(pid):
    """User + system CPU seconds of a process (Linux /proc), or None when it cannot be read."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICKS
    except (OSError, IndexError, ValueError):
        return None


def find_relay(tunnel_port):
    """The pid of this user's relay that carries connections to `tunnel_port`, or None."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            if os.stat("/proc/" + name).st_uid != os.getuid():
                continue
            with open("/proc/%s/cmdline" % name, "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        if b"-c" in argv and argv.index(b"-c") + 3 < len(argv):
            at = argv.index(b"-c")
            if argv[at + 1].startswith(RELAY_MARK) and argv[at + 3] == str(tunnel_port).encode():
                return int(name)
    return None


def machine_busy():
    """(busy, total) jiffies of all CPUs (/proc/stat)."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def sample(pids):
    """CPU seconds so far of this process, the relay and the SSH session; the machine's jiffies."""
    own = os.times()
    return {
        "load": own.user + own.system,
        "relay": cpu_seconds(pids["relay"]) if pids["relay"] else None,
        "sshd": cpu_seconds(pids["sshd"]) if pids["sshd"] else None,
        "machine": machine_busy(),
    }


def spent(before, after):
    """CPU seconds used between two samples, and the machine's busy cores."""
    used = {}
    for name in ("load", "relay", "sshd"):
        if before[name] is not None and after[name] is not None:
            used[name] = after[name] - before[name]
    busy = after["machine"][0] - before["machine"][0]
    total = after["machine"][1] - before["machine"][1]
    used["machineBusyCores"] = os.cpu_count() * busy / total if total else None
    return used


class Load(object):
    """The round trips of every round, on one request whose tasks are handed out once each."""

    def __init__(self, settings):
        self.settings = settings
        self.request = settings["request"]
        self.key = worker.read_key(settings["tokenFile"])
        self.next_task = iter(range(1, settings["tasks"] + 1))
        self.task_lock = threading.Lock()
        self.ran_out = False
        self.good = 0

    def take_task(self):
        with self.task_lock:
            task = next(self.next_task, None)
        if task is None:
            self.ran_out = True
        return task

    def connection(self, url):
        launch = {
            "url": url,
            "tokenFile": self.settings["tokenFile"],
            "request": self.request,
            "retryWindowSeconds": 60,
            "firstContactSeconds": 30,
        }
        return worker.Connection(worker.Settings(launch), self.key)

    def round_trip(self, connection, task):
        path = "/v2/requests/%d/tasks/%d" % (self.request, task)
        body = connection.call("GET", path, "fetch task %d" % task)
        indices, _, _, _ = worker.parse_task(body, self.request, task)
        reports = [(index, "result", pickle.dumps(index, protocol=4), None, None) for index in indices]
        answer = connection.call(
            "POST",
            path + "/reports",
            "report to the server",
            body=worker.encode_reports(reports),
            content_type=worker.REPORTS_CONTENT_TYPE,
        )
        if json.loads(answer.decode("utf-8")).get("stored") != len(reports):
            raise RuntimeError("task %d: the server did not store its report" % task)

    def thread(self, url, stop_at, window, tally):
        while time.monotonic() < stop_at:
            task = self.take_task()
            if task is None:
                return
            started = time.monotonic()
            error = None
            # As a worker runs its task: a connection of its own, for its fetch and its report.
            connection = self.connection(url)
            try:
                self.round_trip(connection, task)
            except Exception as failure:  # counted, and the first one shown
                error = "%s: %s" % (type(failure).__name__, failure)
            finally:
                connection.close()
            tally.add(started, time.monotonic(), window, error)

    def round(self, route, number, pids):
        """One round on `route`: warm-up, then the measured window; prints its JSON line."""
        s = self.settings
        tally = Tally()
        retried_before = RETRIES.count
        begin = time.monotonic()
        window = (begin + s["warmup"], begin + s["warmup"] + s["seconds"])
        url = s[route]
        threads = [
            threading.Thread(target=self.thread, args=(url, window[1], window, tally), daemon=True)
            for _ in range(s["threads"])
        ]
        for t in threads:
            t.start()
        time.sleep(max(0.0, window[0] - time.monotonic()))
        say({"mark": "start", "route": route, "round": number})
        before = sample(pids)
        time.sleep(max(0.0, window[1] - time.monotonic()))
        after = sample(pids)
        say({"mark": "end", "route": route, "round": number})
        for t in threads:
            t.join()
        self.good += tally.good
        result = summary(route, number, tally, s, spent(before, after))
        result["retries"] = RETRIES.count - retried_before
        say(result)


def percentile(sorted_values, share):
    if not sorted_values:
        return None
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def summary(route, number, tally, settings, cpu):
    latencies = sorted(tally.latencies)
    count = len(latencies)
    return {
        "kind": "round",
        "route": route,
        "round": number,
        "threads": settings["threads"],
        "seconds": settings["seconds"],
        "warmup": settings["warmup"],
        "roundTrips": count,
        "perSecond": count / settings["seconds"],
        "p50Ms": None if not count else 1000 * percentile(latencies, 0.5),
        "p99Ms": None if not count else 1000 * percentile(latencies, 0.99),
        "failures": tally.failures,
        "firstFailure": tally.first_failure,
        "cpuSeconds": cpu,
    }


RETRIES = Retries()


def main(path):
    with open(path) as f:
        settings = json.load(f)
    worker.log = RETRIES.log
    load = Load(settings)
    sshd = os.getppid()
    try:
        with open("/proc/%d/comm" % sshd) as f:
            if not f.read().startswith("sshd"):
                sshd = None
    except OSError:
        sshd = None
    pids = {"relay": find_relay(settings["tunnelPort"]), "sshd": sshd}
    for number in range(1, settings["rounds"] + 1):
        for route in settings["routes"]:
            load.round(route, number, pids)
    say(
        {
            "kind": "done",
            "roundTrips": load.good,
            "ranOut": load.ran_out,
            "retries": RETRIES.count,
            "firstRetry": RETRIES.first,
            "relayPid": pids["relay"],
        }
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
