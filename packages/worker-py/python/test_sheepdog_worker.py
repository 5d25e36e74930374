"""Unit tests of sheepdog_worker.py; run with `python3 -m unittest` in this folder."""

import base64
import builtins
import contextlib
import hashlib
import hmac
import io
import json
import os
import pickle
import random
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import types
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import sheepdog_worker as w  # noqa: E402

# What the worker would write to stderr, kept for assertions instead.
LOGGED = []
w.log = LOGGED.append


TOKEN = b"secret-token"
KEY = hashlib.sha256(TOKEN).digest()


def launch(**overrides):
    settings = {
        "url": "http://127.0.0.1:9/",
        "tokenFile": "t.token",
        "request": 3,
        "pickleProtocol": 4,
        "retryWindowSeconds": 5,
    }
    settings.update(overrides)
    return settings


def function_json(name, source):
    return json.dumps({"name": name, "source": source}).encode("utf-8")


def ns_function(name, source):
    return {w.NS_FUNCTION_MARKER: {"name": name, "source": source}}



def entries_of(header):
    """The entries of a report post's header (bytes of its columns), one dict per report with
    the fields it has, as a server reads them (decodeReports in wire/frames.ts)."""
    columns = json.loads(bytes(header))["columns"]

    def value(column, at):
        return column[at] if isinstance(column, list) else column

    entries = []
    for at in range(len(columns["index"])):
        entry = {}
        for name, column in columns.items():
            if value(column, at) is not None:
                entry[name] = value(column, at)
        entries.append(entry)
    return entries

class FramesTest(unittest.TestCase):
    def test_round_trip(self):
        body = w.encode_frames([b"abc", b"", b"\x00"])
        self.assertEqual(body, b"\x00\x00\x00\x03abc\x00\x00\x00\x00\x00\x00\x00\x01\x00")
        self.assertEqual([bytes(s) for s in w.decode_frames(body)], [b"abc", b"", b"\x00"])
        self.assertEqual(w.decode_frames(b""), [])

    def test_malformed(self):
        for body in (b"\x00\x00", b"\x00\x00\x00\x05ab", b"\x00\x00\x00\x01a\x00"):
            with self.assertRaises(ValueError):
                w.decode_frames(body)

    def test_runs_of_one_length(self):
        # A chunk's arguments: runs of one length (cut at once past a few), a large section
        # (a view, not a copy), and lengths that change every section.
        sections = [b"head", b"", b"\x00"]
        sections += [struct.pack(">I", i) * 4 for i in range(20000)]
        sections += [bytes([i % 256]) * (i % 7) for i in range(100)]
        sections += [b"x" * 5000, b"y" * 17]
        sections += [b"%05d" % i for i in range(9000)]
        body = w.encode_frames(sections)
        for given in (body, memoryview(body), bytearray(body)):
            decoded = w.decode_frames(given)
            self.assertEqual([bytes(s) for s in decoded], sections)
        self.assertIsInstance(w.decode_frames(body)[-1], bytes)
        self.assertIsInstance(w.decode_frames(body)[-9002], memoryview)

    def test_runs_cut_short(self):
        sections = [b"abcd"] * 50
        body = w.encode_frames(sections)
        # Inside a length, inside a section's bytes, and a section past the end.
        for cut in (len(body) - 6, len(body) - 2, 8 * 20 + 5):
            with self.assertRaises(ValueError):
                w.decode_frames(body[:cut])
        with self.assertRaises(ValueError):
            w.decode_frames(body + b"\x00\x00\x00\x09abc")

    def test_matches_a_plain_reading(self):
        def plain(body):
            view, out, offset = memoryview(body), [], 0
            while offset < len(view):
                if len(view) - offset < 4:
                    raise ValueError("length")
                (length,) = struct.unpack_from(">I", view, offset)
                offset += 4
                if length > len(view) - offset:
                    raise ValueError("section")
                out.append(bytes(view[offset : offset + length]))
                offset += length
            return out

        rng = random.Random(18)
        for _ in range(500):
            sections = []
            for _ in range(rng.randrange(0, 40)):
                size = rng.choice([0, 1, 3, 16, 255, 256, 1024, 1025])
                for _ in range(rng.randrange(1, 30)):
                    sections.append(rng.getrandbits(8 * size).to_bytes(size, "big") if size else b"")
            body = w.encode_frames(sections)
            if body and rng.random() < 0.4:
                body = body[: rng.randrange(len(body))]
            try:
                expected = plain(body)
            except ValueError:
                expected = ValueError
            try:
                got = [bytes(s) for s in w.decode_frames(body)]
            except ValueError:
                got = ValueError
            self.assertEqual(got, expected)

    def test_reports_layout(self):
        body = w.encode_reports(
            [
                (4, "result", b"\x80\x04K\x01.", (1000, 1002, 7 << 20), None),
                (5, "error", b"boom", None, "hi\n"),
                (6, "result", b"\x80\x04K\x02.", (1003, 1003, None), ""),
            ],
            {"attempt": 2, "host": "n1"},
        )
        sections = w.decode_frames(body)
        header = json.loads(bytes(sections[0]))
        self.assertEqual(
            header,
            {
                "version": 2,
                "columns": {
                    "index": [4, 5, 6],
                    "kind": ["result", "error", "result"],
                    "startedAt": [1000, None, 1003],
                    "endedAt": [1002, None, 1003],
                    "peakMemoryBytes": [7 << 20, None, None],
                    "log": [None, "hi\n", None],
                    "attempt": 2,
                    "host": "n1",
                },
            },
        )
        self.assertEqual(
            [bytes(s) for s in sections[1:]], [b"\x80\x04K\x01.", b"boom", b"\x80\x04K\x02."]
        )

    def test_reports_share_a_column_s_value_when_all_have_it_and_leave_out_what_none_has(self):
        body = w.encode_reports(
            [(1, "result", b"a", (10, 11, 5), None), (2, "result", b"b", (12, 14, 5), None)]
        )
        self.assertEqual(
            json.loads(bytes(w.decode_frames(body)[0])),
            {
                "version": 2,
                "columns": {
                    "index": [1, 2],
                    "kind": "result",
                    "startedAt": [10, 12],
                    "endedAt": [11, 14],
                    "peakMemoryBytes": 5,
                },
            },
        )
        empty = w.encode_reports([])
        self.assertEqual(
            json.loads(bytes(w.decode_frames(empty)[0])),
            {"version": 2, "columns": {"index": [], "kind": []}},
        )

    def test_parse_task(self):
        header = {"version": 2, "request": 3, "task": 2, "first": 4, "count": 2}
        body = w.encode_frames([json.dumps(header).encode(), b"func", b"", b"a1", b"a2"])
        indices, func, ns, args = w.parse_task(body, 3, 2)
        self.assertEqual(indices, [4, 5])
        self.assertEqual(bytes(func), b"func")
        self.assertEqual(bytes(ns), b"")
        self.assertEqual([bytes(a) for a in args], [b"a1", b"a2"])

    def test_parse_retry_task(self):
        header = {"version": 2, "request": 3, "task": 9, "first": 1, "count": 2, "indices": [1, 7]}
        body = w.encode_frames([json.dumps(header).encode(), b"func", b"", b"a1", b"a7"])
        indices, _, _, args = w.parse_task(body, 3, 9)
        self.assertEqual(indices, [1, 7])
        self.assertEqual([bytes(a) for a in args], [b"a1", b"a7"])

    def test_a_claimed_task_is_numbered_by_its_header(self):
        header = {"version": 2, "request": 3, "task": 7, "first": 4, "count": 1}
        sections = [json.dumps(header).encode(), b"func", b"", b"a4"]
        task, (indices, func, _, args) = w.task_of_sections(sections, 3)
        self.assertEqual((task, indices, bytes(func)), (7, [4], b"func"))
        self.assertEqual([bytes(a) for a in args], [b"a4"])
        self.assertEqual(w.task_of_sections(sections, 3, 7)[0], 7)
        for bad in ({"request": 4}, {"task": 0}, {"task": 1.5}, {"task": False}, {"task": "7"}):
            sections[0] = json.dumps(dict(header, **bad)).encode()
            with self.assertRaises(ValueError):
                w.task_of_sections(sections, 3)

    def test_parse_task_refuses_mismatches(self):
        good = {"version": 2, "request": 3, "task": 2, "first": 4, "count": 1}
        bodies = [
            b"\x00\x00\x00\x09{",
            w.encode_frames([b"{}", b"", b""]),
            w.encode_frames([json.dumps(dict(good, version=1)).encode(), b"", b"", b""]),
            w.encode_frames([json.dumps(dict(good, task=3)).encode(), b"", b"", b""]),
            w.encode_frames([json.dumps(dict(good, count=2)).encode(), b"", b"", b""]),
            w.encode_frames([json.dumps(dict(good, first=True)).encode(), b"", b"", b""]),
            w.encode_frames([b"\xff", b"", b"", b""]),
            w.encode_frames([json.dumps(dict(good, indices=[4, 5])).encode(), b"", b"", b""]),
            w.encode_frames([json.dumps(dict(good, indices=[-1])).encode(), b"", b"", b""]),
            w.encode_frames([json.dumps(dict(good, indices=4)).encode(), b"", b"", b""]),
        ]
        for body in bodies:
            with self.assertRaises(w.Refused) as caught:
                w.parse_task(body, 3, 2)
            self.assertEqual(caught.exception.status, w.EXIT_REFUSED)


class SettingsTest(unittest.TestCase):
    def test_valid(self):
        settings = w.Settings(launch(memoryLimitBytes=2**31))
        self.assertEqual(settings.url, "http://127.0.0.1:9")
        self.assertEqual(settings.request, 3)
        self.assertEqual(settings.pickle_protocol, 4)
        self.assertEqual(settings.retry_window, 5.0)
        self.assertEqual(settings.memory_limit, 2**31)
        self.assertEqual(settings.token_file, "t.token")
        self.assertEqual(settings.max_reply, w.DEFAULT_MAX_REPLY_BYTES)
        self.assertEqual(w.Settings(launch(maxReplyBytes=5000)).max_reply, 5000)
        defaults = w.Settings({"url": "https://x", "tokenFile": "t", "request": 1})
        self.assertEqual(defaults.retry_window, 600.0)
        self.assertEqual(defaults.pickle_protocol, 4)
        self.assertIsNone(defaults.memory_limit)
        self.assertEqual(defaults.task_offset, 0)
        self.assertEqual(w.Settings(launch(taskOffset=12)).task_offset, 12)
        self.assertEqual(defaults.attempt, 1)
        self.assertEqual(w.Settings(launch(attempt=3)).attempt, 3)

    def test_invalid(self):
        for bad in (
            {"url": "ftp://x"},
            {"url": None},
            {"url": "http://"},
            {"url": "http://x:99999"},
            {"tokenFile": ""},
            {"tokenFile": None},
            {"tokenFile": "a\x00b"},
            {"maxReplyBytes": 0},
            {"maxReplyBytes": True},
            {"request": 0},
            {"request": True},
            {"request": "3"},
            {"pickleProtocol": 1},
            {"pickleProtocol": pickle.HIGHEST_PROTOCOL + 1},
            {"retryWindowSeconds": -1},
            {"retryWindowSeconds": "10"},
            {"memoryLimitBytes": 0},
            {"taskOffset": -1},
            {"taskOffset": True},
            {"taskOffset": 1.5},
            {"attempt": 0},
            {"attempt": True},
            {"attempt": 1.5},
            {"attempt": "2"},
        ):
            with self.assertRaises(w.WorkerError) as caught:
                w.Settings(launch(**bad))
            self.assertEqual(caught.exception.status, w.EXIT_USAGE)
        with self.assertRaises(w.WorkerError):
            w.Settings([])

    def test_claim_tasks_is_true_or_false(self):
        self.assertFalse(w.Settings(launch()).claim_tasks)
        self.assertTrue(w.Settings(launch(claimTasks=True)).claim_tasks)
        self.assertFalse(w.Settings(launch(claimTasks=False)).claim_tasks)
        for bad in ("true", 1, 0, None, [], {}):
            with self.assertRaises(w.WorkerError) as caught:
                w.Settings(launch(claimTasks=bad))
            self.assertEqual(caught.exception.status, w.EXIT_USAGE)
            self.assertEqual(
                caught.exception.message, "The launch setting claimTasks must be true or false."
            )

    def test_protocol_message_names_the_highest(self):
        with self.assertRaises(w.WorkerError) as caught:
            w.Settings(launch(pickleProtocol=pickle.HIGHEST_PROTOCOL + 1))
        self.assertIn("protocols 2 to %d" % pickle.HIGHEST_PROTOCOL, caught.exception.message)


class TaskNumberTest(unittest.TestCase):
    def test_sources_in_order(self):
        self.assertEqual(w.task_number({"SGE_TASK_ID": "7"}), (7, "SGE_TASK_ID"))
        self.assertEqual(w.task_number({"SLURM_ARRAY_TASK_ID": "8"}), (8, "SLURM_ARRAY_TASK_ID"))
        self.assertEqual(w.task_number({"PBS_ARRAY_INDEX": "9"}), (9, "PBS_ARRAY_INDEX"))
        self.assertEqual(
            w.task_number({"SHEEPDOG_TASK_ID": "2", "SGE_TASK_ID": "5"}), (2, "SHEEPDOG_TASK_ID")
        )
        # GridEngine outside an array job.
        self.assertEqual(
            w.task_number({"SGE_TASK_ID": "undefined", "PBS_ARRAY_INDEX": "4"}),
            (4, "PBS_ARRAY_INDEX"),
        )

    def test_missing_or_bad(self):
        with self.assertRaises(w.WorkerError) as caught:
            w.task_number({"SGE_TASK_ID": "undefined"})
        self.assertIn("SHEEPDOG_TASK_ID=1", caught.exception.message)
        for value in ("0", "-1", "1.5", "abc", "\u0663"):
            with self.assertRaises(w.WorkerError):
                w.task_number({"SGE_TASK_ID": value})


class NamespaceTest(unittest.TestCase):
    def test_original_namespaces_example(self):
        ns = pickle.dumps(
            {"constant": 12, "g": ns_function("g", "def g(x):\n    return x * 2\n")}, 4
        )
        namespace = w.build_namespace(ns)
        f = w.load_function(
            function_json("f", "def f(a, b):\n    return a + g(b) + constant\n"), namespace
        )
        self.assertEqual([f(*a) for a in [(1, 2), (2, 3), (3, 4)]], [17, 20, 23])

    def test_original_imports_example(self):
        namespace = w.build_namespace(
            pickle.dumps({"g": ns_function("g", "def g(x):\n    return m.fsum(x)\n")}, 4)
        )
        f = w.load_function(
            function_json("f", "def f(x):\n    import math as m\n    global m\n    return g(x)\n"),
            namespace,
        )
        self.assertEqual(f([0.5, 0.25]), 0.75)

    def test_function_bound_under_its_namespace_key(self):
        namespace = w.build_namespace(
            pickle.dumps({"helper": ns_function("h", "K = 5\ndef h():\n    return K\n")}, 4)
        )
        self.assertEqual(namespace["helper"](), 5)
        self.assertEqual(namespace["K"], 5)

    def test_empty_and_bad_namespaces(self):
        self.assertIn("__builtins__", w.build_namespace(b""))
        with self.assertRaises(TypeError):
            w.build_namespace(pickle.dumps([1, 2]))
        with self.assertRaises(TypeError):
            w.build_namespace(pickle.dumps({1: 2}))
        with self.assertRaises(TypeError):
            w.build_namespace(pickle.dumps({"g": {w.NS_FUNCTION_MARKER: {"name": "g"}}}))
        with self.assertRaises(NameError):
            w.build_namespace(pickle.dumps({"g": ns_function("g", "def other(): pass\n")}))

    def test_a_plain_dict_value_stays_a_value(self):
        value = {"a": 1, w.NS_FUNCTION_MARKER + "x": 2}
        self.assertEqual(w.build_namespace(pickle.dumps({"d": value}))["d"], value)

    def test_load_function_errors(self):
        with self.assertRaises(NameError):
            w.load_function(function_json("f", "def g(): pass\n"), w.build_namespace(b""))
        with self.assertRaises(TypeError):
            w.load_function(b'{"name": 1}', w.build_namespace(b""))
        with self.assertRaises(SyntaxError):
            w.load_function(function_json("f", "def f(:\n"), w.build_namespace(b""))


class ShippedModulesTest(unittest.TestCase):
    def test_a_function_imports_the_modules_that_ship_beside_it(self):
        spec = {
            "name": "fit",
            "source": "import sm_helpers\nfrom sm_lib.util import twice\nimport sm_ns.deep as d\n"
            "def fit(x):\n    return sm_helpers.half(twice(x)) + d.ONE\n",
            "modules": {
                "sm_helpers.py": "def half(x):\n    return x / 2\n\ndef broken():\n    return 1 / 0\n",
                "sm_lib/__init__.py": "",
                "sm_lib/util.py": "from . import base\ndef twice(x):\n    return base.k * x\n",
                "sm_lib/base.py": "k = 2\n",
                "sm_ns/deep.py": "ONE = 1\n",
            },
        }
        fit = w.load_function(json.dumps(spec).encode("utf-8"), w.build_namespace(b""))
        self.assertEqual(fit(10), 11.0)
        helpers = sys.modules["sm_helpers"]
        self.assertEqual(helpers.__file__, "<sheepdog sm_helpers.py>")
        # A traceback shows the lines of a shipped module.
        try:
            helpers.broken()
        except ZeroDivisionError as error:
            text = w.format_error(error).decode("utf-8")
        self.assertIn('File "<sheepdog sm_helpers.py>", line 5, in broken', text)
        self.assertIn("return 1 / 0", text)

    def test_a_namespace_function_brings_its_modules_too(self):
        g = ns_function("g", "import sm_ns_only\ndef g():\n    return sm_ns_only.K\n")
        g[w.NS_FUNCTION_MARKER]["modules"] = {"sm_ns_only.py": "K = 7\n"}
        self.assertEqual(w.build_namespace(pickle.dumps({"g": g}, 4))["g"](), 7)

    def test_refuses_module_paths_that_are_not_relative_py_files(self):
        for bad in (
            {"../evil.py": ""},
            {"/abs.py": ""},
            {"a/b.txt": ""},
            {"__init__.py": ""},
            {"ok.py": 1},
            ["x.py"],
        ):
            spec = {"name": "f", "source": "def f(): pass\n", "modules": bad}
            with self.assertRaises(TypeError):
                w.load_function(json.dumps(spec).encode("utf-8"), w.build_namespace(b""))


class RunOneTest(unittest.TestCase):
    def setUp(self):
        self.limit = w.MemoryLimit(None)

    def run_source(self, source, args, protocol=4):
        f = w.load_function(function_json("f", source), w.build_namespace(b""))
        return w.run_one(f, pickle.dumps(args, protocol), protocol)

    def test_result(self):
        kind, payload = self.run_source("def f(a, b):\n    return a + b\n", (1, 2), protocol=2)
        self.assertEqual(kind, "result")
        self.assertEqual(payload[:2], b"\x80\x02")
        self.assertEqual(pickle.loads(payload), 3)

    def test_error_traceback_shows_user_code_not_the_worker(self):
        kind, payload = self.run_source(
            "def f(x):\n    return helper(x)\n\ndef helper(x):\n    raise ValueError('bad %d' % x)\n",
            (4,),
        )
        self.assertEqual(kind, "error")
        text = payload.decode("utf-8")
        self.assertTrue(text.startswith("Traceback (most recent call last):"), text)
        self.assertIn("ValueError: bad 4", text)
        self.assertIn("raise ValueError('bad %d' % x)", text)
        self.assertIn('File "<sheepdog function f>", line 5, in helper', text)
        self.assertNotIn("run_one", text)

    def test_unpicklable_result(self):
        kind, payload = self.run_source("import threading\ndef f():\n    return threading.Lock()\n", ())
        self.assertEqual(kind, "error")
        self.assertIn("could not be pickled (protocol 4)", payload.decode())

    def test_instances_of_user_classes_pickle(self):
        kind, payload = self.run_source(
            "class Point(object):\n    def __init__(self, x):\n        self.x = x\n"
            "def f(x):\n    return Point(x)\n",
            (3,),
        )
        self.assertEqual(kind, "result", payload)
        self.assertIn(b"__sheepdog__", payload)

    def test_system_exit_and_bad_arguments_are_errors(self):
        kind, payload = self.run_source("import sys\ndef f():\n    sys.exit(3)\n", ())
        self.assertEqual(kind, "error")
        self.assertIn("SystemExit: 3", payload.decode())
        kind, payload = self.run_source("def f(x):\n    return x\n", 5)
        self.assertEqual(kind, "error")
        self.assertIn("must be a tuple, not int", payload.decode())

    def test_error_text_is_valid_utf8(self):
        kind, payload = self.run_source("def f():\n    raise ValueError('\\udcff ü')\n", ())
        self.assertEqual(kind, "error")
        payload.decode("utf-8")


# A hard limit, once lowered, can never be raised again by this process: memory limits are
# tested in a child Python of their own.
MEMORY_LIMIT_CHILD = """
import json, pickle, resource, sys
sys.path.insert(0, sys.argv[1])
import sheepdog_worker as w

GiB = 1024 ** 3
seen = {"before": resource.getrlimit(resource.RLIMIT_AS)}
limit = w.MemoryLimit(GiB)
with limit:
    seen["inside"] = resource.getrlimit(resource.RLIMIT_AS)
seen["after"] = resource.getrlimit(resource.RLIMIT_AS)
f = w.load_function(
    json.dumps({"name": "f", "source": sys.argv[2]}).encode(), w.build_namespace(b"")
)
seen["calls"] = []
for n in (4 * GiB, 0):
    with limit:
        kind, payload = w.run_one(f, pickle.dumps((n,)), 4)
    shown = repr(pickle.loads(payload)) if kind == "result" else payload.decode("utf-8")
    seen["calls"].append([kind, shown])
seen["end"] = resource.getrlimit(resource.RLIMIT_AS)
print(json.dumps(seen))
"""


@unittest.skipIf(sys.platform == "win32", "no RLIMIT_AS")
class MemoryLimitTest(unittest.TestCase):
    def run_child(self, source):
        here = os.path.dirname(os.path.abspath(__file__))
        child = subprocess.run(
            [sys.executable, "-c", MEMORY_LIMIT_CHILD, here, source],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            timeout=60,
        )
        self.assertEqual(child.returncode, 0, child.stderr.decode())
        seen = json.loads(child.stdout.decode())
        hard = seen["before"][1]
        if hard != -1 and hard < 1024 ** 3:
            self.skipTest("this process already has a hard limit below the one tested")
        return seen

    def test_sets_soft_and_hard_limits_as_the_original_did(self):
        seen = self.run_child(
            "import resource\n"
            "def f(n):\n"
            "    unlimited = resource.RLIM_INFINITY\n"
            "    try:\n"
            "        resource.setrlimit(resource.RLIMIT_AS, (unlimited, unlimited))\n"
            "    except ValueError:\n"
            "        pass\n"
            "    return resource.getrlimit(resource.RLIMIT_AS)\n"
        )
        gib = 1024 ** 3
        self.assertEqual(seen["inside"], [gib, gib])
        # User code cannot raise it (the hard limit holds), and it stays for the whole task.
        self.assertEqual(seen["after"], [gib, gib])
        self.assertEqual(seen["calls"][0], ["result", "(%d, %d)" % (gib, gib)])
        self.assertEqual(seen["end"], [gib, gib])

    def test_a_function_that_allocates_more_gets_a_memory_error(self):
        seen = self.run_child("def f(n):\n    return len(bytearray(n))\n")
        kind, text = seen["calls"][0]
        self.assertEqual(kind, "error")
        self.assertIn("MemoryError", text)
        self.assertEqual(seen["calls"][1], ["result", "0"])
        self.assertEqual(seen["end"], [1024 ** 3, 1024 ** 3])


@unittest.skipIf(not hasattr(signal, "setitimer"), "no setitimer")
class DeadlineTest(unittest.TestCase):
    def test_shuts_the_socket_down_at_the_deadline_without_a_thread(self):
        ours, theirs = socket.socketpair()
        try:
            threads = set(threading.enumerate())
            deadline = w.Deadline(0.2)
            deadline.watch(types.SimpleNamespace(sock=ours))
            # A thread may not fit under the task's hard memory limit.
            self.assertEqual(set(threading.enumerate()) - threads, set())
            self.assertEqual(ours.recv(1), b"")
            self.assertTrue(deadline.expired)
            deadline.cancel()
        finally:
            ours.close()
            theirs.close()

    def test_puts_back_the_alarm_it_found(self):
        fired = []
        before = signal.signal(signal.SIGALRM, lambda signum, frame: fired.append(signum))
        try:
            signal.setitimer(signal.ITIMER_REAL, 30)
            deadline = w.Deadline(5)
            deadline.watch(types.SimpleNamespace(sock=None))
            deadline.extend(1)
            deadline.cancel()
            self.assertFalse(deadline.expired)
            self.assertEqual(signal.getsignal(signal.SIGALRM).__name__, "<lambda>")
            self.assertTrue(29 < signal.getitimer(signal.ITIMER_REAL)[0] <= 30)
            self.assertEqual(fired, [])
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, before)


class ReportLineTest(unittest.TestCase):
    def test_format(self):
        text = w.report_lines(12, [(3, "result", b"\x80\x04K\x01.", None, None), (4, "error", b"")])
        self.assertEqual(
            text,
            "SHEEPDOG-REPORT v1 12 3 result " + base64.b64encode(b"\x80\x04K\x01.").decode() + "\n"
            "SHEEPDOG-REPORT v1 12 4 error \n",
        )
        self.assertEqual(w.report_lines(1, []), "")


class FakeClock(object):
    def __init__(self):
        self.now = 100.0
        self.sleeps = []

    def clock(self):
        return self.now

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds


def reply(status, message="", proven=True, retry_after=None, body=None):
    if body is None:
        body = json.dumps({"status": status, "message": message}).encode()
    return w.Reply(status, body, proven, retry_after)


class ConnectionTest(unittest.TestCase):
    def connection(self, outcomes, window=5, **more):
        fake = FakeClock()
        settings = w.Settings(launch(retryWindowSeconds=window, **more))
        connection = w.Connection(settings, KEY, fake.sleep, fake.clock, lambda: 1000.0)
        calls = []

        def once(route, method, path, body, content_type):
            self.routes_used.append(route.url)
            calls.append((method, path, connection.offset_ms))
            outcome = outcomes.pop(0)
            if isinstance(outcome, BaseException):
                raise outcome
            return outcome

        connection._once = once
        return connection, calls, fake

    def test_retries_connection_errors_and_5xx_then_succeeds(self):
        outcomes = [
            ConnectionRefusedError(111, "Connection refused"),
            reply(503, "store busy", retry_after=2.0),
            reply(408),
            reply(429),
            ConnectionResetError(104, "reset"),
            w.AttemptTimedOut("no whole answer within 60 s"),
            reply(502, proven=False),
            reply(200, body=b"done"),
        ]
        connection, calls, fake = self.connection(outcomes, window=100)
        self.assertEqual(connection.call("GET", "/health", "check"), b"done")
        self.assertEqual(len(calls), 8)
        self.assertEqual(calls[0], ("GET", "/health", 0))
        self.assertGreaterEqual(fake.sleeps[1], 2.0)

    def test_never_retries_other_4xx(self):
        for code in (400, 401, 403, 404, 413, 415, 410):
            connection, calls, _ = self.connection([reply(code, "nope\x1b[31m")])
            with self.assertRaises(w.Refused) as caught:
                connection.call("GET", "/x", "fetch")
            self.assertEqual(caught.exception.http_status, code)
            self.assertEqual(caught.exception.status, w.EXIT_REFUSED)
            self.assertIn("HTTP %d nope?[31m" % code, caught.exception.message)
            self.assertEqual(len(calls), 1)

    def test_an_unproven_401_is_a_refusal(self):
        connection, calls, _ = self.connection([reply(401, "who?", proven=False)])
        with self.assertRaises(w.Refused) as caught:
            connection.call("GET", "/x", "fetch task 1")
        self.assertEqual(caught.exception.message, "The server refused to fetch task 1: HTTP 401 who?")

    def test_any_other_answer_without_proof_is_an_impostor_and_never_retried(self):
        for status in (200, 201, 204, 301, 302, 307, 400, 404, 413):
            connection, calls, _ = self.connection([reply(status, "trust me", proven=False)])
            with self.assertRaises(w.Impostor) as caught:
                connection.call("GET", "/x", "fetch")
            self.assertEqual(caught.exception.status, w.EXIT_IMPOSTOR)
            self.assertEqual(
                caught.exception.message,
                "Something answered at http://127.0.0.1:9 (HTTP %d) without proving that it holds"
                " this request's key: it is not the request's server (another program may have"
                " taken its port). Nothing it sent was used." % status,
            )
            self.assertNotIn("trust me", caught.exception.message)
            self.assertEqual(len(calls), 1)

    def test_corrects_its_clock_by_a_proven_401_and_signs_again_at_once(self):
        del LOGGED[:]
        skew = reply(401, "time", body=json.dumps({"status": 401, "serverTime": 1_003_600_000}).encode())
        connection, calls, fake = self.connection([skew, reply(200, body=b"ok")])
        self.assertEqual(connection.call("GET", "/x", "fetch"), b"ok")
        # The wall clock says 1000 s; the server 1003600 s: sign 3600 s later from now on.
        self.assertEqual([c[2] for c in calls], [0, 1_002_600_000])
        self.assertEqual(fake.sleeps, [])
        self.assertIn("-1002600.0 s off the server's", LOGGED[-1])
        # An unproven one, or one without a clock, is a refusal; so is a third in one call.
        for outcomes in (
            [reply(401, "time", proven=False, body=b'{"serverTime": 5}')],
            [reply(401, "no clock")],
            [skew, skew, skew],
        ):
            connection, calls, _ = self.connection(list(outcomes))
            with self.assertRaises(w.Refused):
                connection.call("GET", "/x", "fetch")

    def test_gives_up_after_the_window(self):
        del LOGGED[:]
        refused = ConnectionRefusedError(111, "Connection refused")
        connection, calls, fake = self.connection([refused] * 1000, window=60)
        connection.reached = True
        with self.assertRaises(w.Undelivered) as caught:
            connection.call("GET", "/x", "fetch task 1")
        self.assertEqual(caught.exception.status, w.EXIT_UNDELIVERED)
        self.assertIn("Gave up trying to fetch task 1 after 60 s (at http://127.0.0.1:9", caught.exception.message)
        self.assertIn("Connection refused", caught.exception.message)
        self.assertAlmostEqual(fake.now - 100.0, 60.0)
        # Exponential: the gaps grow, to at most BACKOFF_MAX_SECONDS.
        self.assertLess(fake.sleeps[0], 0.51)
        self.assertGreater(max(fake.sleeps), 8)
        self.assertLessEqual(max(fake.sleeps), w.BACKOFF_MAX_SECONDS)
        self.assertLess(len(calls), 20)
        self.assertEqual(
            LOGGED[0],
            "Cannot fetch task 1 at http://127.0.0.1:9 (ConnectionRefusedError: [Errno 111]"
            " Connection refused). Retrying for up to 60 s.",
        )

    def setUp(self):
        self.routes_used = []

    def test_moves_to_the_next_route_at_once_and_keeps_the_one_that_answered(self):
        refused = ConnectionRefusedError(111, "Connection refused")
        outcomes = [refused, reply(200, body=b"one"), reply(200, body=b"two")]
        connection, _, fake = self.connection(
            outcomes, fallbackUrls=["http://head:7000"], window=100
        )
        self.assertEqual(connection.call("GET", "/x", "fetch"), b"one")
        self.assertEqual(connection.call("GET", "/x", "fetch"), b"two")
        self.assertEqual(
            self.routes_used, ["http://127.0.0.1:9", "http://head:7000", "http://head:7000"]
        )
        self.assertEqual(fake.sleeps, [])

    def test_tries_every_route_in_a_round_before_it_waits(self):
        refused = ConnectionRefusedError(111, "Connection refused")
        outcomes = [refused, refused, reply(200, body=b"ok")]
        connection, _, fake = self.connection(
            outcomes, fallbackUrls=["http://head:7000"], window=100
        )
        self.assertEqual(connection.call("GET", "/x", "fetch"), b"ok")
        self.assertEqual(len(fake.sleeps), 1)
        self.assertEqual(len(self.routes_used), 3)

    def test_a_server_never_reached_is_given_up_after_first_contact_seconds(self):
        refused = ConnectionRefusedError(111, "Connection refused")
        connection, _, fake = self.connection(
            [refused] * 1000, fallbackUrls=["http://head:7000"], window=600
        )
        with self.assertRaises(w.Unreachable) as raised:
            connection.call("GET", "/x", "fetch task 1")
        self.assertGreaterEqual(fake.now - 100.0, 60.0)
        self.assertLess(fake.now - 100.0, 90.0)
        message = raised.exception.message
        self.assertEqual(raised.exception.status, w.EXIT_UNREACHABLE)
        self.assertIn("http://127.0.0.1:9 (ConnectionRefusedError", message)
        self.assertIn("http://head:7000 (ConnectionRefusedError", message)
        self.assertIn('connect: "relay"', message)

    def test_a_server_reached_once_is_retried_for_the_whole_window(self):
        refused = ConnectionRefusedError(111, "Connection refused")
        connection, _, fake = self.connection(
            [reply(200, body=b"ok")] + [refused] * 1000, window=300, firstContactSeconds=10
        )
        self.assertEqual(connection.call("GET", "/x", "fetch"), b"ok")
        with self.assertRaises(w.Undelivered) as raised:
            connection.call("POST", "/y", "report")
        self.assertNotIsInstance(raised.exception, w.Unreachable)
        self.assertGreaterEqual(fake.now - 100.0, 300.0)

    def test_an_impostor_on_one_route_sends_the_worker_to_the_next(self):
        outcomes = [reply(200, proven=False, body=b"evil"), reply(200, body=b"good")]
        connection, _, _ = self.connection(outcomes, fallbackUrls=["http://head:7000"])
        self.assertEqual(connection.call("GET", "/x", "fetch"), b"good")
        evil = [reply(200, proven=False, body=b"evil")] * 2
        connection, _, _ = self.connection(evil, fallbackUrls=["http://head:7000"])
        with self.assertRaises(w.Impostor):
            connection.call("GET", "/x", "fetch")

    def test_zero_window_tries_once(self):
        refused = ConnectionRefusedError(111, "Connection refused")
        connection, calls, _ = self.connection([refused], window=0)
        with self.assertRaises(w.Undelivered):
            connection.call("GET", "/x", "fetch")
        self.assertEqual(len(calls), 1)

    def test_backoff_bounds(self):
        for attempt in range(30):
            ceiling = min(w.BACKOFF_MAX_SECONDS, w.BACKOFF_FIRST_SECONDS * 2**attempt)
            delay = w.backoff_delay(attempt)
            self.assertGreaterEqual(delay, ceiling / 2)
            self.assertLessEqual(delay, ceiling)
        self.assertGreaterEqual(w.backoff_delay(0, retry_after=7), 7)


class FakeConnection(object):
    def __init__(self, events, fail_with=None):
        self.events = events
        self.fail_with = fail_with
        self.posts = []

    def call(self, method, path, what, body=None, content_type=None):
        sections = w.decode_frames(body)
        reports = entries_of(sections[0])
        self.events.append(("post", [r["index"] for r in reports]))
        if self.fail_with is not None:
            error = self.fail_with(reports, sections)
            if error is not None:
                raise error
        self.posts.append((path, content_type, reports, [bytes(s) for s in sections[1:]]))
        return b'{"stored": 1, "duplicates": 0}'


class RecordingStdout(object):
    def __init__(self, events):
        self.events = events
        self.text = ""
        # What a file would hold: the text up to the last flush, and how many events came
        # before each flush.
        self.flushed = ""
        self.flushes = []
        self.writes = 0

    def write(self, text):
        self.text += text
        self.writes += 1
        for line in text.splitlines(True):
            self.events.append(
                ("print", line.split(" ")[3] if line.startswith("SHEEPDOG") else line)
            )

    def flush(self):
        self.flushed = self.text
        self.flushes.append(len(self.events))


class ReporterTest(unittest.TestCase):
    def reporter(self, fail_with=None, max_body=None):
        events = []
        clock = FakeClock()
        connection = FakeConnection(events, fail_with)
        stdout = RecordingStdout(events)
        reporter = w.Reporter(connection, 3, 2, stdout, clock.clock, max_body=max_body)
        return reporter, connection, events, clock, stdout

    def test_prints_before_posting_and_batches_fast_calls(self):
        reporter, connection, events, _, stdout = self.reporter()
        reporter.add(4, "result", b"\x80\x04K\x01.", 0.01)
        reporter.add(5, "error", b"Traceback", 0.01)
        reporter.flush()
        self.assertEqual(events, [("print", "4"), ("print", "5"), ("post", [4, 5])])
        path, content_type, reports, payloads = connection.posts[0]
        self.assertEqual(path, "/v2/requests/3/tasks/2/reports")
        self.assertEqual(content_type, w.REPORTS_CONTENT_TYPE)
        self.assertEqual(reports, [{"index": 4, "kind": "result"}, {"index": 5, "kind": "error"}])
        self.assertEqual(payloads, [b"\x80\x04K\x01.", b"Traceback"])
        self.assertEqual(stdout.text.count("\n"), 2)

    def test_flushes_stdout_a_tenth_of_a_second_after_a_call_and_before_each_post(self):
        reporter, _, events, clock, stdout = self.reporter()
        flushes = len(stdout.flushes)
        for index in range(3):
            clock.now += 0.01
            reporter.add(index, "result", b"x", 0.01)
        # Three fast calls in 0.03 s: their lines wait in the reporter.
        self.assertEqual(stdout.text, "")
        self.assertEqual(len(stdout.flushes), flushes)
        self.assertEqual(stdout.flushed.count("\n"), 0)
        clock.now += w.STDOUT_FLUSH_SECONDS
        reporter.add(3, "result", b"x", 0.0)
        self.assertEqual(stdout.flushed, stdout.text)
        self.assertEqual(stdout.flushed.count("\n"), 4)
        # A call as slow as that is flushed as soon as it is printed.
        reporter.add(4, "result", b"x", w.STDOUT_FLUSH_SECONDS)
        self.assertEqual(stdout.flushed.count("\n"), 5)
        clock.now += 0.01
        reporter.add(5, "result", b"x", 0.01)
        self.assertEqual(stdout.flushed.count("\n"), 5)
        # Every line is in the file before the post that carries it.
        reporter.flush()
        post = events.index(("post", [0, 1, 2, 3, 4, 5]))
        self.assertIn(post, stdout.flushes)
        self.assertEqual(stdout.flushed.count("\n"), 6)

    def test_posts_after_a_slow_call_or_a_while(self):
        reporter, _, events, clock, _ = self.reporter()
        reporter.add(4, "result", b"x", 2.0)
        self.assertEqual(events[-1], ("post", [4]))
        reporter.add(5, "result", b"x", 0.0)
        clock.now += w.POST_BATCH_SECONDS
        reporter.add(6, "result", b"x", 0.0)
        self.assertEqual(events[-1], ("post", [5, 6]))

    def test_writes_its_lines_to_stdout_once_a_flush_not_once_a_report(self):
        # An unbuffered stdout (PYTHONUNBUFFERED) makes each write a system call.
        reporter, _, _, clock, stdout = self.reporter()
        for index in range(50):
            reporter.add(index, "result", b"x", 0.0)
        self.assertEqual(stdout.writes, 0)
        clock.now += 2 * w.STDOUT_FLUSH_SECONDS
        reporter.add(50, "result", b"x", 0.0)
        self.assertEqual(stdout.writes, 1)
        self.assertEqual(stdout.flushed.count("\n"), 51)

    def test_posts_when_a_batch_is_large(self):
        reporter, _, events, _, _ = self.reporter()
        reporter.add(4, "result", b"x" * (w.POST_BATCH_BYTES // 2), 0.0)
        self.assertEqual(events, [])
        reporter.add(5, "result", b"x" * (w.POST_BATCH_BYTES // 2), 0.0)
        self.assertEqual(events[-1], ("post", [4, 5]))

    def test_posts_when_a_batch_holds_many_reports(self):
        reporter, connection, events, _, _ = self.reporter()
        for index in range(w.POST_BATCH_REPORTS + 5):
            reporter.add(index, "result", b"x", 0.0)
        posts = [e for e in events if e[0] == "post"]
        self.assertEqual(len(posts), 1)
        self.assertEqual(posts[0][1], list(range(w.POST_BATCH_REPORTS)))
        reporter.flush()
        self.assertEqual(
            [r["index"] for _, _, reports, _ in connection.posts for r in reports],
            list(range(w.POST_BATCH_REPORTS + 5)),
        )

    def test_splits_a_post_the_server_finds_too_large(self):
        def too_large(reports, sections):
            if sum(len(s) for s in sections[1:]) > 400:
                return w.Refused("too large", 413)
            return None

        reporter, connection, events, _, _ = self.reporter(too_large)
        for index in range(4):
            reporter.add(index, "result", b"y" * 150, 0.0)
        reporter.add(4, "result", b"z" * 1000, 0.0)
        reporter.flush()
        self.assertIsNone(reporter.failure)
        stored = [(r["index"], r["kind"]) for _, _, reports, _ in connection.posts for r in reports]
        self.assertEqual(stored, [(0, "result"), (1, "result"), (2, "result"), (3, "result"), (4, "error")])
        self.assertIn(b"1000 bytes", connection.posts[-1][3][0])
        for _, _, _, payloads in connection.posts:
            self.assertLessEqual(sum(len(p) for p in payloads), 400)

    def test_names_the_limit_of_a_413_in_the_error_that_replaces_a_result(self):
        def too_large(reports, sections):
            if len(sections[1]) > 400:
                return w.Refused(
                    "The server refused to report to the server: HTTP 413 The request body is"
                    " larger than the server's limit of 1024 bytes (maxBodyBytes). Send fewer"
                    " reports per post.",
                    413,
                )
            return None

        reporter, connection, _, _, stdout = self.reporter(too_large)
        reporter.add(7, "result", b"r" * 2000, 5.0)
        self.assertIsNone(reporter.failure)
        [(_, _, reports, payloads)] = connection.posts
        self.assertEqual(reports, [{"index": 7, "kind": "error"}])
        self.assertEqual(payloads[0], w.oversized_report("result", 2000, 1024))
        self.assertIn(b"(its maxBodyBytes, 1024 bytes)", payloads[0])
        self.assertIn(b"raise the server's maxBodyBytes", payloads[0])
        # The result itself, then the error that stands for it, are on stdout.
        self.assertEqual(stdout.text.count("SHEEPDOG-REPORT v1 3 7 "), 2)

    def test_a_known_limit_splits_and_replaces_without_sending_too_much(self):
        reporter, connection, events, _, stdout = self.reporter(max_body=1200)
        for index in range(4):
            reporter.add(index, "result", b"y" * 300, 0.0)
        reporter.add(4, "result", b"z" * 5000, 0.0)
        reporter.flush()
        self.assertIsNone(reporter.failure)
        stored = [(r["index"], r["kind"]) for _, _, reports, _ in connection.posts for r in reports]
        self.assertEqual(stored, [(0, "result"), (1, "result"), (2, "result"), (3, "result"), (4, "error")])
        for _, _, reports, payloads in connection.posts:
            self.assertLessEqual(len(w.encode_reports([(0, "result", p, None, None) for p in payloads])), 1200)
        self.assertEqual(connection.posts[-1][3][0], w.oversized_report("result", 5000, 1200))
        self.assertIn(b"(its maxBodyBytes, 1200 bytes)", connection.posts[-1][3][0])
        self.assertEqual(stdout.text.count("SHEEPDOG-REPORT v1 3 4 "), 2)

    def test_an_oversized_error_text_is_replaced_and_a_tiny_limit_stops_the_worker(self):
        reporter, connection, _, _, _ = self.reporter(max_body=6000)
        reporter.add(1, "error", b"Traceback " * 1000, 5.0)
        self.assertIsNone(reporter.failure)
        self.assertIn(b"The error text of this task is 10000 bytes", connection.posts[0][3][0])
        reporter, connection, _, _, _ = self.reporter(max_body=40)
        reporter.add(1, "error", b"Traceback", 5.0)
        self.assertIsInstance(reporter.failure, w.Refused)
        self.assertIn("at most 40 bytes (maxBodyBytes)", reporter.failure.message)
        self.assertEqual(connection.posts, [])

    def test_reads_the_body_limit_of_the_launch_and_of_a_413(self):
        self.assertIsNone(w.max_body_bytes(launch()))
        self.assertEqual(w.max_body_bytes(launch(maxBodyBytes=5000)), 5000)
        for bad in (0, -1, True, "5000", 1.5):
            with self.assertRaises(w.WorkerError) as caught:
                w.max_body_bytes(launch(maxBodyBytes=bad))
            self.assertEqual(caught.exception.status, w.EXIT_USAGE)
        self.assertEqual(w.body_limit_in("larger than the server's limit of 77 bytes"), 77)
        self.assertIsNone(w.body_limit_in("The request body is too large."))
        self.assertIn(b"(HTTP 413)", w.oversized_report("result", 9, None))

    def test_after_a_failure_keeps_printing_and_counts_the_undelivered(self):
        reporter, connection, events, _, stdout = self.reporter(
            lambda reports, sections: w.Undelivered("gone")
        )
        reporter.add(4, "result", b"a", 5.0)
        reporter.add(5, "result", b"b", 5.0)
        reporter.flush()
        self.assertIsInstance(reporter.failure, w.Undelivered)
        self.assertEqual(reporter.undelivered, 2)
        self.assertEqual([e for e in events if e[0] == "post"], [("post", [4])])
        self.assertEqual(stdout.text.count("SHEEPDOG-REPORT v1 3 "), 2)
        self.assertIn("gone", LOGGED)
        self.assertIn("sheepdog recover", LOGGED[-1])


class AheadConnection(FakeConnection):
    """A FakeConnection that sends posts ahead: each is an event when sent ("send") and when its
    answer is read ("answer"); the answers are `answers` in turn (a proven 200 once they run
    out; None stands for one that cannot be read). With `ahead` False, nothing is sent ahead."""

    def __init__(self, events, answers=(), fail_with=None, ahead=True):
        FakeConnection.__init__(self, events, fail_with)
        self.answers = list(answers)
        self.ahead = ahead

    @staticmethod
    def indices(body):
        return [r["index"] for r in entries_of(w.decode_frames(body)[0])]

    def send_ahead(self, method, path, body, content_type):
        if not self.ahead:
            return None
        self.events.append(("send", self.indices(body)))
        return w.Sent(None, None, method, path, body)

    def answer_to(self, sent):
        self.events.append(("answer", self.indices(sent.body)))
        return self.answers.pop(0) if self.answers else w.Reply(200, b"{}", True)


class PostAheadTest(unittest.TestCase):
    def reporter(self, answers=(), fail_with=None, ahead=True):
        events = []
        connection = AheadConnection(events, answers, fail_with, ahead)
        stdout = RecordingStdout(events)
        reporter = w.Reporter(connection, 3, 2, stdout, FakeClock().clock, post_ahead=True)
        return reporter, connection, events

    def test_sends_a_batch_ahead_and_reads_its_answer_at_the_next_post(self):
        reporter, connection, events = self.reporter()
        batch = w.POST_BATCH_REPORTS
        for index in range(batch + 2):
            reporter.add(index, "result", b"x", 0.0)
        first = list(range(batch))
        # The calls after the batch run before its answer is read.
        self.assertEqual(events[-1], ("send", first))
        self.assertNotIn("answer", [event[0] for event in events])
        reporter.flush()
        self.assertEqual(
            events[-4:],
            [
                ("print", str(batch)),
                ("print", str(batch + 1)),
                ("answer", first),
                ("post", [batch, batch + 1]),
            ],
        )
        self.assertIsNone(reporter.in_flight)
        self.assertIsNone(reporter.failure)

    def test_a_slow_call_is_sent_at_once_and_its_answer_read_before_the_next_post(self):
        reporter, _, events = self.reporter()
        reporter.add(4, "result", b"x", 2.0)
        self.assertEqual(events[-1], ("send", [4]))
        reporter.add(5, "result", b"x", 2.0)
        self.assertEqual(events[-3:], [("print", "5"), ("answer", [4]), ("send", [5])])
        reporter.flush()
        self.assertEqual(events[-1], ("answer", [5]))

    def test_a_batch_the_server_did_not_take_is_posted_again(self):
        for answer in (None, w.Reply(503, b"busy", True), w.Reply(200, b"{}", False)):
            reporter, connection, events = self.reporter([answer])
            reporter.add(4, "result", b"x", 2.0)
            reporter.flush()
            self.assertEqual(events[-3:], [("send", [4]), ("answer", [4]), ("post", [4])])
            self.assertEqual([r["index"] for r in connection.posts[0][2]], [4])
            self.assertIsNone(reporter.failure)

    def test_posts_at_once_when_it_cannot_send_ahead(self):
        reporter, connection, events = self.reporter(ahead=False)
        reporter.add(4, "result", b"x", 2.0)
        self.assertEqual(events[-1], ("post", [4]))
        self.assertEqual(len(connection.posts), 1)

    def test_a_batch_sent_ahead_that_cannot_be_delivered_counts_with_the_rest(self):
        reporter, connection, events = self.reporter(
            [None], lambda reports, sections: w.Undelivered("gone")
        )
        reporter.add(4, "result", b"a", 2.0)
        reporter.add(5, "result", b"b", 2.0)
        reporter.add(6, "result", b"c", 2.0)
        reporter.flush()
        self.assertIsInstance(reporter.failure, w.Undelivered)
        self.assertEqual(reporter.undelivered, 3)
        self.assertEqual(
            [e for e in events if e[0] != "print"], [("send", [4]), ("answer", [4]), ("post", [4])]
        )
        self.assertIn("sheepdog recover", LOGGED[-1])


class TemporaryDirectoryTest(unittest.TestCase):
    """A test with a private temporary directory holding the request's token file."""

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="sheepdog-worker-test-")
        self.token_file = os.path.join(self.dir, "sheepdog_3_ab.token")
        with open(self.token_file, "wb") as handle:
            handle.write(TOKEN + b"\n")

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)


class MainTest(TemporaryDirectoryTest):
    def test_bad_launch_and_missing_task_number(self):
        del LOGGED[:]
        self.assertEqual(w.main({"url": "x"}, {}), w.EXIT_USAGE)
        self.assertEqual(w.main(launch(), {}), w.EXIT_USAGE)
        self.assertIn("No task number", LOGGED[-1])

    def test_an_unexpected_failure_is_reported_not_raised(self):
        original = w.run_task

        def broken(*args):
            raise RuntimeError("bug")

        w.run_task = broken
        try:
            del LOGGED[:]
            code = w.main(launch(tokenFile=self.token_file), {"SHEEPDOG_TASK_ID": "1"})
            self.assertEqual(code, w.EXIT_UNDELIVERED)
        finally:
            w.run_task = original
        self.assertTrue(LOGGED[-1].startswith("The worker failed:\nTraceback"))
        self.assertIn("RuntimeError: bug", LOGGED[-1])

    def test_an_unreadable_token_file_is_a_usage_error(self):
        del LOGGED[:]
        missing = os.path.join(self.dir, "gone.token")
        self.assertEqual(w.main(launch(tokenFile=missing), {"SHEEPDOG_TASK_ID": "1"}), w.EXIT_USAGE)
        self.assertIn("Cannot read the request's token file %s" % missing, LOGGED[-1])


class KeyTest(TemporaryDirectoryTest):
    def test_the_key_is_the_sha256_of_the_token_read_from_home_or_an_absolute_path(self):
        self.assertEqual(w.read_key(self.token_file), KEY)
        self.assertEqual(w.read_key("sheepdog_3_ab.token", home=self.dir), KEY)
        self.assertEqual(w.token_path("a/b.token", home="/h"), "/h/a/b.token")
        self.assertEqual(w.token_path("/abs/b.token", home="/h"), "/abs/b.token")

    def test_an_empty_token_file_is_refused(self):
        empty = os.path.join(self.dir, "empty.token")
        open(empty, "wb").close()
        with self.assertRaises(w.WorkerError) as caught:
            w.read_key(empty)
        self.assertEqual(caught.exception.status, w.EXIT_USAGE)

    def test_signatures_and_proofs_follow_the_documented_layout(self):
        text = b"sheepdog-worker-v2\nGET\nh:1\n/p\nNONCE\n123\n"
        expected = base64.urlsafe_b64encode(hmac.new(KEY, text, hashlib.sha256).digest()).rstrip(b"=")
        self.assertEqual(w.worker_mac(KEY, "GET", "h:1", "/p", "NONCE", 123, ""), expected.decode())
        text = b"sheepdog-server-v2\nGET\n/p\nNONCE\n200\nbody"
        expected = base64.urlsafe_b64encode(hmac.new(KEY, text, hashlib.sha256).digest()).rstrip(b"=")
        self.assertEqual(w.server_proof(KEY, "GET", "/p", "NONCE", 200, b"body"), expected.decode())


def read_request(conn, data):
    """The next request on `conn` after the bytes `data` already read: (head, body, the bytes
    after it), or None when the connection ends first."""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, data = data.partition(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
    size = int(length.group(1)) if length else 0
    while len(data) < size:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    return head.decode("latin-1"), data[:size], data[size:]


class Hostile(object):
    """A small HTTP server on 127.0.0.1 that answers each request with `respond(conn, head,
    body)`, and records what it was sent."""

    def __init__(self, respond):
        self.respond = respond
        self.requests = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        thread = threading.Thread(target=self._serve)
        thread.daemon = True
        thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            thread = threading.Thread(target=self._handle, args=(conn,))
            thread.daemon = True
            thread.start()

    def _handle(self, conn):
        conn.settimeout(10)
        try:
            request = read_request(conn, b"")
            if request is None:
                return
            head, body, _ = request
            self.requests.append((head, body))
            self.respond(conn, head, body)
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        """Stops listening: a connection made after it is refused."""
        try:
            # Wakes the thread in accept(), which a close alone leaves listening on Linux.
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


def header_of(head, name):
    match = re.search(r"(?im)^%s: *(.*?)\r?$" % re.escape(name), head)
    return match.group(1) if match else None


def proven_answer(head, status, body):
    """What the request's real server would answer: `body`, proven under KEY."""
    method, target = head.split(" ")[:2]
    nonce = header_of(head, "Authorization").split(" ")[1].split(".")[0]
    proof = w.server_proof(KEY, method, target, nonce, status, body)
    return (
        "HTTP/1.1 %d X\r\nContent-Length: %d\r\nSheepdog-Proof: %s\r\n\r\n"
        % (status, len(body), proof)
    ).encode() + body


class KeptServer(Hostile):
    """A Hostile server that keeps each connection open for the next request: `respond(head,
    body)` gives the bytes to send, or (bytes, "close") to close after them. It also counts the
    connections."""

    def __init__(self, respond):
        self.connections = 0
        Hostile.__init__(self, respond)

    def _handle(self, conn):
        self.connections += 1
        conn.settimeout(10)
        data = b""
        try:
            while True:
                request = read_request(conn, data)
                if request is None:
                    return
                head, body, data = request
                self.requests.append((head, body))
                answer = self.respond(head, body)
                if isinstance(answer, tuple):
                    conn.sendall(answer[0])
                    return
                conn.sendall(answer)
        except OSError:
            pass
        finally:
            conn.close()


class SendAheadTest(unittest.TestCase):
    def kept(self, respond, **settings):
        server = KeptServer(respond)
        self.addCleanup(server.close)
        connection = w.Connection(w.Settings(launch(url=server.url, **settings)), KEY)
        self.addCleanup(connection.close)
        return server, connection

    def test_sends_on_the_kept_connection_and_reads_the_answer_later(self):
        server, connection = self.kept(lambda head, body: proven_answer(head, 200, b"took " + body))
        # No connection is kept open before the first call: nothing is sent ahead.
        self.assertIsNone(connection.send_ahead("POST", "/r", b"a", "text/plain"))
        self.assertEqual(server.requests, [])
        self.assertEqual(connection.call("POST", "/r", "post", body=b"b"), b"took b")
        sent = connection.send_ahead("POST", "/r", b"c", "text/plain")
        self.assertIsNotNone(sent)
        for _ in range(200):
            if len(server.requests) == 2:
                break
            time.sleep(0.01)
        # The server has the request before its answer is read.
        self.assertEqual(server.requests[1][1], b"c")
        self.assertEqual(header_of(server.requests[1][0], "Content-Type"), "text/plain")
        reply = connection.answer_to(sent)
        self.assertEqual((reply.status, reply.body, reply.proven), (200, b"took c", True))
        # The same connection serves what follows.
        sent = connection.send_ahead("POST", "/r", b"d", None)
        self.assertEqual(connection.answer_to(sent).body, b"took d")
        self.assertEqual(server.connections, 1)

    def test_an_answer_without_the_proof_is_not_taken(self):
        def respond(head, body):
            if body == b"forged":
                return b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nSheepdog-Proof: x\r\n\r\nok"
            return proven_answer(head, 200, b"ok")

        _, connection = self.kept(respond)
        connection.call("POST", "/r", "post", body=b"b")
        reply = connection.answer_to(connection.send_ahead("POST", "/r", b"forged", None))
        self.assertEqual((reply.status, reply.proven), (200, False))

    def test_an_answer_too_large_or_cut_short_is_none(self):
        def respond(head, body):
            if body == b"large":
                return proven_answer(head, 200, b"x" * 6000)
            if body == b"cut":
                return b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort", "close"
            return proven_answer(head, 200, b"ok")

        for body in (b"large", b"cut"):
            _, connection = self.kept(respond, maxReplyBytes=5000)
            connection.call("POST", "/r", "post", body=b"b")
            sent = connection.send_ahead("POST", "/r", body, None)
            self.assertIsNone(connection.answer_to(sent))
            self.assertIsNone(connection.kept)


class Evil(object):
    """Unpickling it creates the file `path`: what an impostor would slip into a task."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (builtins.open, (self.path, "w"))


class ServingTest(TemporaryDirectoryTest):
    """A test with servers of its own on 127.0.0.1, and the worker's main() to run."""

    def setUp(self):
        TemporaryDirectoryTest.setUp(self)
        self.saved = (w.ATTEMPT_SECONDS, w.BACKOFF_FIRST_SECONDS)
        self.servers = []

    def tearDown(self):
        w.ATTEMPT_SECONDS, w.BACKOFF_FIRST_SECONDS = self.saved
        for server in self.servers:
            server.close()
        TemporaryDirectoryTest.tearDown(self)

    def serve(self, respond):
        server = Hostile(respond)
        self.servers.append(server)
        return server

    def marker(self, name):
        return os.path.join(self.dir, name)

    def run_main(self, url, **overrides):
        fields = {"url": url, "tokenFile": self.token_file, "retryWindowSeconds": 0}
        fields.update(overrides)
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            return w.main(launch(**fields), {"SHEEPDOG_TASK_ID": "1"})


class HostileServerTest(ServingTest):
    def evil_task(self):
        """A task whose function, namespace and arguments each create a marker file."""
        source = "open(%r, 'w').close()\ndef f(*a):\n    open(%r, 'w').close()\n" % (
            self.marker("exec"),
            self.marker("call"),
        )
        header = {"version": 2, "request": 3, "task": 1, "first": 0, "count": 1}
        return w.encode_frames(
            [
                json.dumps(header).encode(),
                json.dumps({"name": "f", "source": source}).encode(),
                pickle.dumps({"x": Evil(self.marker("ns"))}),
                pickle.dumps((Evil(self.marker("args")),)),
            ]
        )

    def assert_nothing_ran(self):
        self.assertEqual(
            [m for m in ("exec", "call", "ns", "args") if os.path.exists(self.marker(m))], []
        )

    def test_an_impostor_task_is_never_unpickled_or_executed(self):
        task = self.evil_task()

        def no_proof(conn, head, body):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(task) + task)

        def wrong_proof(conn, head, body):
            proof = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=")
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nSheepdog-Proof: %s\r\n\r\n"
                % (len(task), proof)
                + task
            )

        def echoed_mac(conn, head, body):
            # The worker's own MAC handed back as a proof: it proves nothing.
            mac = header_of(head, "Authorization").split(".")[-1].encode()
            conn.sendall(
                b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\nSheepdog-Proof: %s\r\n\r\n"
                % (len(task), mac)
                + task
            )

        for respond in (no_proof, wrong_proof, echoed_mac):
            del LOGGED[:]
            server = self.serve(respond)
            self.assertEqual(self.run_main(server.url), w.EXIT_IMPOSTOR)
            self.assertIn("without proving that it holds this request's key", LOGGED[-1])
            self.assert_nothing_ran()
            # What the impostor got: a signature, never the token nor the key.
            (head, _), = server.requests
            self.assertRegex(
                header_of(head, "Authorization"),
                r"^Sheepdog [A-Za-z0-9_-]{22}\.[0-9]+\.[A-Za-z0-9_-]{43}$",
            )
            for secret in (TOKEN, KEY, KEY.hex().encode(), base64.b64encode(KEY), w.b64url(KEY).encode()):
                self.assertNotIn(secret, head.encode("latin-1"))

    def test_no_redirect_is_followed(self):
        elsewhere = self.serve(lambda conn, head, body: conn.sendall(b"HTTP/1.1 200 OK\r\n\r\n"))
        for status in (301, 302, 307, 308):
            server = self.serve(
                lambda conn, head, body, status=status: conn.sendall(
                    b"HTTP/1.1 %d Moved\r\nLocation: %s/v2/requests/3/tasks/1\r\n"
                    b"Content-Length: 0\r\n\r\n" % (status, elsewhere.url.encode())
                )
            )
            self.assertEqual(self.run_main(server.url), w.EXIT_IMPOSTOR)
        self.assertEqual(elsewhere.requests, [])

    def test_an_attempt_ends_at_its_deadline_however_slowly_bytes_trickle(self):
        w.ATTEMPT_SECONDS = 1.0

        def trickle_head(conn, head, body):
            conn.sendall(b"HTTP/1.1 200 OK\r\n")
            for _ in range(100):
                conn.sendall(b"X-Slow: 1\r\n")
                time.sleep(0.1)

        def trickle_body(conn, head, body):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
            for _ in range(100):
                conn.sendall(b"x")
                time.sleep(0.1)

        for respond in (trickle_head, trickle_body):
            del LOGGED[:]
            server = self.serve(respond)
            started = time.monotonic()
            self.assertEqual(self.run_main(server.url), w.EXIT_UNREACHABLE)
            self.assertLess(time.monotonic() - started, 4.0)
            self.assertIn("AttemptTimedOut: no whole answer within 1 s", LOGGED[-1])

    def test_a_reply_over_the_cap_is_refused_unread(self):
        sent = []

        def huge_declared(conn, head, body):
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000000\r\n\r\n")
            time.sleep(3)

        def endless(conn, head, body):
            conn.sendall(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n")
            try:
                for _ in range(10000):
                    conn.sendall(b"x" * 4096)
                    sent.append(4096)
            except OSError:
                pass

        for respond in (huge_declared, endless):
            del LOGGED[:]
            server = self.serve(respond)
            started = time.monotonic()
            self.assertEqual(self.run_main(server.url, maxReplyBytes=10000), w.EXIT_REFUSED)
            self.assertLess(time.monotonic() - started, 2.0)
            self.assertIn("more than this task can need (maxReplyBytes 10000)", LOGGED[-1])
        # The endless body was cut off long before its 40 MB.
        self.assertLess(sum(sent), 10 * 1024 * 1024)

    def test_the_real_server_is_believed_after_a_clock_correction_and_a_busy_answer(self):
        answers = []
        task = w.encode_frames(
            [
                json.dumps({"version": 2, "request": 3, "task": 1, "first": 0, "count": 1}).encode(),
                json.dumps({"name": "f", "source": "def f(x):\n    return x + 1\n"}).encode(),
                b"",
                pickle.dumps((41,)),
            ]
        )
        server_time = int(time.time() * 1000) + 3_600_000

        def genuine(conn, head, body):
            answers.append(head.split(" ")[0])
            if len(answers) == 1:
                skew = json.dumps({"status": 401, "message": "time", "serverTime": server_time})
                conn.sendall(proven_answer(head, 401, skew.encode()))
            elif len(answers) == 2:
                # Too busy, before it knew the worker: no proof, retried.
                conn.sendall(b"HTTP/1.1 503 Busy\r\nRetry-After: 0\r\nContent-Length: 0\r\n\r\n")
            elif head.startswith("GET"):
                conn.sendall(proven_answer(head, 200, task))
            else:
                conn.sendall(proven_answer(head, 200, b'{"stored": 1, "duplicates": 0}'))

        server = self.serve(genuine)
        code = self.run_main(server.url, retryWindowSeconds=30)
        self.assertEqual(code, w.EXIT_OK)
        self.assertEqual(answers, ["GET", "GET", "GET", "POST"])
        # Signed with the server's time after the correction.
        times = [int(header_of(h, "Authorization").split(".")[1]) for h, _ in server.requests]
        self.assertLess(abs(times[0] - (server_time - 3_600_000)), 60_000)
        self.assertLess(abs(times[2] - server_time), 60_000)
        (report,) = entries_of(w.decode_frames(server.requests[3][1])[0])
        self.assertEqual((report["index"], report["kind"]), (0, "result"))


def mac_of(context_lines, data, key=KEY):
    """base64url HMAC-SHA256 under `key` of the lines joined by LF, LF, `data`: as wire/auth.ts
    computes stagedMac and spoolMac (written out here, not taken from the worker)."""
    text = ("\n".join(context_lines) + "\n").encode("utf-8")
    digest = hmac.new(key, text + bytes(data), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def frames(sections):
    return b"".join(struct.pack(">I", len(s)) + bytes(s) for s in sections)


def task_section(task, first, args, request=3, **header):
    fields = {"version": 2, "request": request, "task": task, "first": first, "count": len(args)}
    fields.update(header)
    return frames([json.dumps(fields).encode()] + [pickle.dumps(a, 4) for a in args])


def make_pack(common, sections, task_offset=0, request=3, key=KEY, header_patch=None):
    """A pack as encodePack (wire/staging.ts) lays it out: `sections` is [(label, bytes)...]
    after the common section; each entry's offset counts from the end of the header frame."""
    labelled = [("common", common)] + list(sections)
    entries = []
    offset = 0
    for label, section in labelled:
        offset += 4
        entries.append([offset, len(section), mac_of(["sheepdog-staged-v2", str(request), label], section, key)])
        offset += len(section)
    header = {"version": 2, "request": request, "taskOffset": task_offset, "sections": entries}
    if header_patch is not None:
        header_patch(header)
    return frames([json.dumps(header).encode()] + [s for _, s in labelled])


def common_section(source, name="f"):
    return frames([function_json(name, source), b""])


class PackTest(TemporaryDirectoryTest):
    def write(self, data, name="tasks-0.pack"):
        path = os.path.join(self.dir, name)
        with open(path, "wb") as handle:
            handle.write(data)
        return path

    def two_tasks(self, task_offset=0, **options):
        common = common_section("def f(x):\n    return x * 2\n")
        one = task_section(task_offset + 1, 0, [(1,), (2,)])
        two = task_section(task_offset + 2, 2, [(3,)])
        labels = ["task %d" % (task_offset + 1), "task %d" % (task_offset + 2)]
        return make_pack(common, list(zip(labels, [one, two])), task_offset, **options)

    def refusal(self, data, task=1, request=3, key=KEY):
        with self.assertRaises(w.Unstaged) as caught:
            w.read_staged_task(self.write(data), key, request, task)
        return str(caught.exception)

    def test_gives_its_task_the_function_and_the_namespace(self):
        path = self.write(self.two_tasks())
        indices, func, ns, args = w.read_staged_task(path, KEY, 3, 2)
        self.assertEqual(indices, [2])
        self.assertEqual(json.loads(bytes(func))["name"], "f")
        self.assertEqual(bytes(ns), b"")
        self.assertEqual([pickle.loads(a) for a in args], [(3,)])
        indices, _, _, args = w.read_staged_task(path, KEY, 3, 1)
        self.assertEqual((indices, len(args)), ([0, 1], 2))

    def test_a_retry_job_finds_its_tasks_after_the_offset(self):
        common = common_section("def f(x):\n    return x\n")
        retry = task_section(5, 1, [(1,), (7,)], indices=[1, 7])
        path = self.write(make_pack(common, [("task 5", retry)], task_offset=4))
        indices, _, _, args = w.read_staged_task(path, KEY, 3, 5)
        self.assertEqual(indices, [1, 7])
        self.assertEqual([pickle.loads(a) for a in args], [(1,), (7,)])

    def test_refuses_a_section_changed_by_one_byte(self):
        changed = bytearray(self.two_tasks())
        changed[-2] ^= 1
        self.assertIn("task 2 is not signed with request 3's key", self.refusal(bytes(changed), 2))
        # Task 1's section is untouched and still reads.
        self.assertEqual(w.read_staged_task(self.write(bytes(changed)), KEY, 3, 1)[0], [0, 1])
        common = bytearray(self.two_tasks())
        start = 4 + struct.unpack(">I", bytes(common[:4]))[0]
        common[start + 10] ^= 1
        self.assertIn("common is not signed", self.refusal(bytes(common), 1))

    def test_refuses_a_section_in_another_task_s_place(self):
        def swap(header):
            # Task 2's place points at task 1's bytes, with task 1's MAC.
            header["sections"][2] = header["sections"][1]

        self.assertIn("task 2 is not signed", self.refusal(self.two_tasks(header_patch=swap), 2))
        # A task section signed as the common part cannot stand in for it either.
        def common_is_task(header):
            header["sections"][0] = header["sections"][1]

        self.assertIn("common is not signed", self.refusal(self.two_tasks(header_patch=common_is_task), 1))

    def test_refuses_a_signed_section_whose_header_is_another_task_s(self):
        common = common_section("def f(x):\n    return x\n")
        # Signed as task 2 by the request's key, but its header says task 1.
        wrong = task_section(1, 0, [(1,)])
        path = self.write(make_pack(common, [("task 1", wrong), ("task 2", wrong)]))
        with self.assertRaises(w.Unstaged) as caught:
            w.read_staged_task(path, KEY, 3, 2)
        self.assertIn("not a wire v2 task (the header is for another task)", str(caught.exception))

    def test_refuses_another_key_another_request_and_a_missing_task(self):
        self.assertIn("not signed", self.refusal(self.two_tasks(key=b"k" * 32)))
        self.assertIn("not a wire v2 pack of request 4", self.refusal(self.two_tasks(), 1, request=4))
        self.assertEqual(self.refusal(self.two_tasks(), 3), "it has no task 3")
        self.assertEqual(self.refusal(self.two_tasks(task_offset=2), 2), "it has no task 2")
        self.assertEqual(self.refusal(self.two_tasks(task_offset=2), 5), "it has no task 5")

    def test_refuses_a_malformed_or_absurd_pack_without_reading_it(self):
        good = self.two_tasks()
        self.assertEqual(self.refusal(b"\x00\x00"), "it is too short for a header")
        self.assertIn("its header would be 4294967295 bytes", self.refusal(b"\xff\xff\xff\xff" + good))
        self.assertEqual(
            self.refusal(struct.pack(">I", 1000) + b"{}"), "its header would be 1000 bytes, in a pack of 6"
        )
        self.assertEqual(self.refusal(frames([b"{nope"]) + good), "its header is not JSON")
        self.assertIn("not a wire v2 pack", self.refusal(frames([b"[]"])))
        self.assertIn("no taskOffset", self.refusal(frames([b'{"version":2,"request":3}'])))
        cut = good[:-5]
        self.assertIn("task 2 lies past its end", self.refusal(cut, 2))

        def bad_entry(header):
            header["sections"][1] = [4, -1, "x"]

        self.assertIn("is not [offset, length, mac]", self.refusal(self.two_tasks(header_patch=bad_entry)))
        self.assertIn("FileNotFoundError", self.refusal_of_path(os.path.join(self.dir, "none")))

    def refusal_of_path(self, path):
        with self.assertRaises(w.Unstaged) as caught:
            w.read_staged_task(path, KEY, 3, 1)
        return str(caught.exception)


STORED = b'{"stored": 1, "duplicates": 0}'


class RecordingServer(object):
    """The request's genuine server (answers proven under KEY): gives `task` to a GET, the next
    of `claims` to each claim (POST .../next; an empty answer once they run out), `stored` to
    each post of reports, which it keeps. Each answer is the body of a proven 200, or a function
    of the request's head that gives the bytes to send (b"": the connection closes unanswered)."""

    def __init__(self, test, task=None, claims=(), stored=STORED):
        self.posts = []
        self.gets = 0
        claims = list(claims)

        def answer(conn, head, given):
            conn.sendall(given(head) if callable(given) else proven_answer(head, 200, given))

        def respond(conn, head, body):
            target = head.split(" ")[1]
            if head.startswith("GET"):
                self.gets += 1
                answer(conn, head, task)
            elif target.endswith("/next"):
                answer(conn, head, claims.pop(0) if claims else b"")
            else:
                self.posts.append((target, body))
                answer(conn, head, stored)

        self.server = test.serve(respond)
        self.url = self.server.url

    def requested(self):
        """The (method, path) of each request, in order."""
        return [tuple(head.split(" ")[:2]) for head, _ in self.server.requests]

    def reports(self, task=None):
        """The (index, kind, value) of each report posted (of task `task`'s only, with one)."""
        found = []
        for target, body in self.posts:
            if task is not None and target != "/v2/requests/3/tasks/%d/reports" % task:
                continue
            sections = w.decode_frames(body)
            for r, payload in zip(entries_of(sections[0]), sections[1:]):
                value = pickle.loads(bytes(payload)) if r["kind"] == "result" else None
                found.append((r["index"], r["kind"], value))
        return found


def closed_port_url():
    """A URL where nothing listens: a port bound and let go."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "http://127.0.0.1:%d" % port


def server_task(source, args, task=1, first=0, request=3):
    """What the server answers a task fetch with: [header, func, ns, args...]."""
    header = {"version": 2, "request": request, "task": task, "first": first, "count": len(args)}
    return frames(
        [json.dumps(header).encode(), function_json("f", source), b""]
        + [pickle.dumps(a, 4) for a in args]
    )


class StagedTaskRunTest(ServingTest):
    """A worker with stagedTasks runs its task from the pack, and fetches it from the server
    (saying why) when the pack cannot give it."""

    def pack(self, source, task_patch=None, name="tasks-0.pack"):
        section = task_section(1, 0, [(20,)])
        data = make_pack(common_section(source), [("task 1", section)])
        if task_patch is not None:
            data = task_patch(bytearray(data))
        path = os.path.join(self.dir, name)
        with open(path, "wb") as handle:
            handle.write(bytes(data))
        return path

    def test_runs_the_packed_task_without_fetching_it(self):
        server = RecordingServer(self, server_task("def f(x):\n    return 'server'\n", [(1,)]))
        path = self.pack("def f(x):\n    return ('pack', x)\n")
        del LOGGED[:]
        self.assertEqual(self.run_main(server.url, stagedTasks=path, retryWindowSeconds=5), w.EXIT_OK)
        self.assertEqual(server.gets, 0)
        self.assertEqual(server.reports(), [(0, "result", ("pack", 20))])
        self.assertEqual(LOGGED, [])

    def test_a_pack_relative_to_home(self):
        server = RecordingServer(self, b"")
        self.pack("def f(x):\n    return x + 1\n")
        saved = os.environ.get("HOME")
        os.environ["HOME"] = self.dir
        try:
            code = self.run_main(server.url, stagedTasks="tasks-0.pack", retryWindowSeconds=5)
        finally:
            if saved is None:
                del os.environ["HOME"]
            else:
                os.environ["HOME"] = saved
        self.assertEqual(code, w.EXIT_OK)
        self.assertEqual((server.gets, server.reports()), (0, [(0, "result", 21)]))

    def test_fetches_from_the_server_when_the_pack_cannot_give_the_task(self):
        marker = self.marker("pack-ran")
        source = "def f(x):\n    open(%r, 'w').close()\n    return 'pack'\n" % marker

        def tamper(data):
            data[-3] ^= 1
            return data

        def other_task(data):
            # A retry job's pack: its first task is the request's task 2.
            section = task_section(2, 0, [(1,)])
            return make_pack(common_section(source), [("task 2", section)], task_offset=1)

        cases = [
            (self.pack(source, tamper), "task 1 is not signed with request 3's key"),
            (self.pack(source, other_task, "tasks-1.pack"), "it has no task 1"),
            (os.path.join(self.dir, "missing.pack"), "FileNotFoundError"),
        ]
        for path, reason in cases:
            server = RecordingServer(self, server_task("def f(x):\n    return 'server'\n", [(1,)]))
            del LOGGED[:]
            code = self.run_main(server.url, stagedTasks=path, retryWindowSeconds=5)
            self.assertEqual(code, w.EXIT_OK)
            self.assertEqual((server.gets, server.reports()), (1, [(0, "result", "server")]))
            self.assertEqual(len(LOGGED), 1)
            self.assertIn("Cannot take task 1 from the staged tasks %s: " % path, LOGGED[0])
            self.assertIn(reason, LOGGED[0])
            self.assertTrue(LOGGED[0].endswith(". Fetching it from the server."))
            self.assertFalse(os.path.exists(marker))

    def test_an_unusable_pack_and_no_server_runs_nothing(self):
        marker = self.marker("pack-ran")
        source = "def f(x):\n    open(%r, 'w').close()\n" % marker
        path = self.pack(source, lambda data: data[:-1] + bytes([data[-1] ^ 1]))
        del LOGGED[:]
        code = self.run_main(closed_port_url(), stagedTasks=path, firstContactSeconds=0)
        self.assertEqual(code, w.EXIT_UNREACHABLE)
        self.assertFalse(os.path.exists(marker))
        self.assertIn("Gave up trying to fetch task 1", LOGGED[-1])


def held_by(task):
    """A proven 409 to a task fetch: array task `task` claimed it (TaskHeldBody in wire.ts)."""
    body = json.dumps(
        {"status": 409, "message": "Task 1 is being run by task %d." % task, "heldBy": task}
    ).encode()
    return lambda head: proven_answer(head, 409, body)


def answering(status, body=b'{"status": 500, "message": "store busy"}', proven=True):
    """A function that answers a request with `status` and `body`, proven or not."""
    if proven:
        return lambda head: proven_answer(head, status, body)
    return lambda head: b"HTTP/1.1 %d X\r\nContent-Length: %d\r\n\r\n" % (status, len(body)) + body


class ClaimTest(ServingTest):
    """With claimTasks, a worker runs, after its own task, each task that the server gives it
    to claim (POST .../tasks/<its own>/next), until the answer is empty; a claim that fails is
    not retried and ends the claiming, never the worker."""

    SOURCE = "def f(x):\n    return x * 10\n"
    CLAIM = ("POST", "/v2/requests/3/tasks/1/next")

    def run_worker(self, server, **overrides):
        """Runs array task 1 against `server` on a connection whose sleeps are counted in
        self.clock, never taken; returns the exit status."""
        fields = {"url": server.url, "tokenFile": self.token_file}
        fields.update(overrides)
        settings = w.Settings(launch(**fields))
        self.clock = FakeClock()
        connection = w.Connection(settings, KEY, self.clock.sleep, self.clock.clock)
        del LOGGED[:]
        with contextlib.redirect_stdout(io.StringIO()) as printed:
            code = w.run_task(settings, KEY, 1, sys.stdout, connection)
        self.printed = printed.getvalue()
        return code

    def marking(self, name):
        """The function's source, leaving the marker `name` when it is set up."""
        return "open(%r, 'w').close()\n%s" % (self.marker(name), self.SOURCE)

    def then_stop(self, head):
        """Takes a post, and stops listening: the next connection to the server is refused."""
        self.servers[-1].close()
        return proven_answer(head, 200, STORED)

    def test_runs_each_task_it_claims_until_none_is_left(self):
        claims = [
            server_task(self.SOURCE, [(5,)], task=3, first=4),
            server_task(self.SOURCE, [(6,), (7,)], task=4, first=5),
        ]
        server = RecordingServer(self, server_task(self.SOURCE, [(1,), (2,)]), claims)
        self.assertEqual(self.run_worker(server, claimTasks=True, attempt=2), w.EXIT_OK)
        tasks = "/v2/requests/3/tasks/"
        self.assertEqual(
            server.requested(),
            [
                ("GET", tasks + "1"),
                ("POST", tasks + "1/reports"),
                self.CLAIM,
                ("POST", tasks + "3/reports"),
                self.CLAIM,
                ("POST", tasks + "4/reports"),
                self.CLAIM,
            ],
        )
        self.assertEqual(server.reports(1), [(0, "result", 10), (1, "result", 20)])
        self.assertEqual(server.reports(3), [(4, "result", 50)])
        self.assertEqual(server.reports(4), [(5, "result", 60), (6, "result", 70)])
        for index in (0, 1, 4, 5, 6):
            self.assertIn("SHEEPDOG-REPORT v1 3 %d result " % index, self.printed)
        # A claimed task's reports tell the same facts as the worker's own task's.
        for _, body in server.posts:
            for entry in entries_of(w.decode_frames(body)[0]):
                self.assertEqual((entry["attempt"], entry["host"]), (2, socket.gethostname()))
        # A claim is signed as a post of an empty body.
        head, body = server.server.requests[2]
        empty = base64.urlsafe_b64encode(hashlib.sha256(b"").digest()).rstrip(b"=").decode()
        self.assertEqual((body, header_of(head, "Content-Length")), (b"", "0"))
        self.assertEqual(header_of(head, "Sheepdog-Content-SHA256"), empty)
        nonce, at, mac = header_of(head, "Authorization").split(" ")[1].split(".")
        host = header_of(head, "Host")
        self.assertEqual(mac, w.worker_mac(KEY, "POST", host, self.CLAIM[1], nonce, int(at), empty))
        self.assertEqual((LOGGED, self.clock.sleeps), ([], []))

    def test_a_task_claimed_by_another_runs_nothing_of_it_and_claims(self):
        claimed = server_task(self.SOURCE, [(5,)], task=3, first=4)
        server = RecordingServer(self, held_by(2), [claimed])
        self.assertEqual(self.run_worker(server, claimTasks=True), w.EXIT_OK)
        self.assertEqual(
            LOGGED, ["Task 1 is being run by task 2, which claimed it; nothing of it runs here."]
        )
        self.assertEqual(server.reports(), [(4, "result", 50)])
        self.assertEqual(server.reports(3), [(4, "result", 50)])
        self.assertEqual(server.requested().count(self.CLAIM), 2)
        # With nothing to claim either, the worker ran nothing, and that is a success.
        server = RecordingServer(self, held_by(2))
        self.assertEqual(self.run_worker(server, claimTasks=True), w.EXIT_OK)
        self.assertEqual(server.requested(), [("GET", "/v2/requests/3/tasks/1"), self.CLAIM])
        self.assertEqual((len(LOGGED), server.posts), (1, []))
        # A worker that does not claim has nothing left to do.
        server = RecordingServer(self, held_by(2), [claimed])
        self.assertEqual(self.run_worker(server), w.EXIT_OK)
        self.assertEqual(server.requested(), [("GET", "/v2/requests/3/tasks/1")])
        self.assertEqual(server.posts, [])

    def test_only_a_proven_409_says_the_task_is_claimed(self):
        unproven = answering(409, b'{"status": 409, "message": "held", "heldBy": 2}', proven=False)
        claims = [server_task(self.marking("claimed"), [(5,)], task=3)]
        server = RecordingServer(self, unproven, claims)
        with self.assertRaises(w.Impostor):
            self.run_worker(server, claimTasks=True)
        self.assertEqual(server.requested(), [("GET", "/v2/requests/3/tasks/1")])
        self.assertFalse(os.path.exists(self.marker("claimed")))

    def test_without_claim_tasks_no_claim_is_made(self):
        for setting in ({}, {"claimTasks": False}):
            claims = [server_task(self.marking("claimed"), [(5,)], task=3)]
            server = RecordingServer(self, server_task(self.SOURCE, [(1,)]), claims)
            self.assertEqual(self.run_worker(server, **setting), w.EXIT_OK)
            self.assertNotIn(self.CLAIM, server.requested())
            self.assertEqual(server.reports(), [(0, "result", 10)])
        self.assertFalse(os.path.exists(self.marker("claimed")))

    def test_a_claim_that_fails_is_tried_once_and_ends_the_claiming(self):
        w.ATTEMPT_SECONDS = 0.5

        def too_slow(head):
            time.sleep(1.5)
            return b""

        skew = json.dumps({"status": 401, "message": "time", "serverTime": 5}).encode()
        forged = server_task(self.marking("claimed"), [(5,)], task=3)
        failures = [
            (answering(500), "HTTP 500 (store busy)"),
            (answering(503, b""), "HTTP 503."),
            (answering(404, b'{"message": "no such route"}'), "HTTP 404 (no such route)"),
            (answering(401, skew), "HTTP 401 (time)"),
            (answering(200, forged, proven=False), "HTTP 200 without its proof."),
            (answering(500, proven=False), "HTTP 500 without its proof"),
            (lambda head: b"", "RemoteDisconnected"),
            (too_slow, "AttemptTimedOut"),
        ]
        for failure, reason in failures:
            server = RecordingServer(self, server_task(self.SOURCE, [(1,)]), [failure, b""])
            self.assertEqual(self.run_worker(server, claimTasks=True), w.EXIT_OK)
            self.assertEqual(server.requested().count(self.CLAIM), 1, reason)
            self.assertEqual(server.reports(), [(0, "result", 10)])
            self.assertEqual(self.clock.sleeps, [])
            self.assertEqual(len(LOGGED), 1, LOGGED)
            self.assertTrue(LOGGED[0].startswith("Claiming no more tasks: "), LOGGED[0])
            self.assertIn(reason, LOGGED[0])
        self.assertFalse(os.path.exists(self.marker("claimed")))

    def test_claims_on_the_connection_kept_open(self):
        claims = [server_task(self.SOURCE, [(5,)], task=3, first=4)]

        def respond(head, body):
            if head.startswith("GET"):
                return proven_answer(head, 200, server_task(self.SOURCE, [(1,)]))
            if head.split(" ")[1].endswith("/next"):
                return proven_answer(head, 200, claims.pop(0) if claims else b"")
            return proven_answer(head, 200, STORED)

        server = KeptServer(respond)
        self.servers.append(server)
        self.assertEqual(self.run_worker(server, claimTasks=True), w.EXIT_OK)
        self.assertEqual((len(server.requests), server.connections), (5, 1))

    def test_a_claim_that_no_server_answers_ends_the_claiming(self):
        server = RecordingServer(self, server_task(self.SOURCE, [(1,)]), stored=self.then_stop)
        self.assertEqual(self.run_worker(server, claimTasks=True), w.EXIT_OK)
        self.assertEqual(server.reports(), [(0, "result", 10)])
        self.assertNotIn(self.CLAIM, server.requested())
        self.assertEqual(self.clock.sleeps, [])
        self.assertEqual(len(LOGGED), 1, LOGGED)
        self.assertIn("Claiming no more tasks: the server did not answer a claim", LOGGED[0])
        self.assertIn("ConnectionRefusedError", LOGGED[0])

    def test_a_claimed_answer_that_is_not_a_task_of_the_request_runs_nothing(self):
        source = self.marking("claimed")
        good = {"version": 2, "request": 3, "task": 3, "first": 0, "count": 1}
        sections = [function_json("f", source), b"", pickle.dumps((5,), 4)]

        def claimed(**header):
            return frames([json.dumps(dict(good, **header)).encode()] + sections)

        answers = [
            (server_task(source, [(5,)], task=3, request=4), "the header is for another task"),
            (claimed(task=0), "the header's task is not a task number"),
            (claimed(task=-2), "the header's task is not a task number"),
            (claimed(task="3"), "the header's task is not a task number"),
            (claimed(task=True), "the header's task is not a task number"),
            (claimed(task=None), "the header's task is not a task number"),
            (claimed(count=2), "the header does not match the argument sections"),
            (claimed(version=1), "not a wire version 2 header"),
            (b"\x00\x00\x00\x09{", "a section is longer"),
            (frames([b"{nope"] + sections), "Expecting property name"),
        ]
        for answer, reason in answers:
            server = RecordingServer(self, server_task(self.SOURCE, [(1,)]), [answer, b""])
            self.assertEqual(self.run_worker(server, claimTasks=True), w.EXIT_OK)
            self.assertEqual(server.requested().count(self.CLAIM), 1, reason)
            self.assertEqual(server.reports(), [(0, "result", 10)])
            self.assertEqual(len(LOGGED), 1, LOGGED)
            self.assertTrue(
                LOGGED[0].startswith(
                    "Claiming no more tasks: the server's answer to a claim is not a wire v2 task"
                    " of request 3 ("
                ),
                LOGGED[0],
            )
            self.assertIn(reason, LOGGED[0])
        self.assertFalse(os.path.exists(self.marker("claimed")))

    def refusing(self, task, refusal):
        """A server whose array task 1 is given tasks 3 and 4 to claim, and that answers the
        posts of task `task`'s reports with `refusal`."""

        def stored(head):
            if head.split(" ")[1] == "/v2/requests/3/tasks/%d/reports" % task:
                return refusal(head)
            return proven_answer(head, 200, STORED)

        claims = [
            server_task(self.SOURCE, [(5,)], task=3, first=4),
            server_task(self.marking("claimed"), [(6,)], task=4),
        ]
        return RecordingServer(self, server_task(self.SOURCE, [(1,)]), claims, stored)

    def test_no_claim_after_a_task_whose_reports_were_spooled(self):
        spool_dir = os.path.join(self.dir, "spool")
        # Task 1's reports spooled: no claim. Task 3's (claimed): no claim after it.
        for task, claims in ((1, 0), (3, 1)):
            server = self.refusing(task, answering(503))
            code = self.run_worker(server, claimTasks=True, spoolDir=spool_dir, spoolAfterSeconds=0)
            self.assertEqual(code, w.EXIT_OK)
            self.assertEqual(server.requested().count(self.CLAIM), claims)
            self.assertIn("reports of task %d are in 1 spool files" % task, LOGGED[-1])
            self.assertEqual(self.clock.sleeps, [])
        self.assertFalse(os.path.exists(self.marker("claimed")))

    def test_no_claim_after_a_task_that_failed_whose_status_is_the_worker_s(self):
        for task, claims in ((1, 0), (3, 1)):
            server = self.refusing(task, answering(400, b'{"message": "bad reports"}'))
            self.assertEqual(self.run_worker(server, claimTasks=True), w.EXIT_REFUSED)
            self.assertEqual(server.requested().count(self.CLAIM), claims)
            self.assertIn("1 of 1 reports of task %d were not delivered." % task, LOGGED[-1])
        self.assertFalse(os.path.exists(self.marker("claimed")))


class SpoolTest(TemporaryDirectoryTest):
    def spool(self, directory=None, task=2):
        directory = directory or os.path.join(self.dir, "spool")
        return w.Spool(directory, KEY, 3, task)

    def test_writes_a_signed_file_under_its_name_mode_0600_in_a_0700_directory(self):
        spool = self.spool()
        body = w.encode_reports(
            [(4, "result", pickle.dumps(9, 4), None, None), (5, "error", b"Traceback", None, None)]
        )
        path = spool.write(body, 2)
        directory = os.path.join(self.dir, "spool")
        self.assertEqual(os.path.dirname(path), directory)
        name = os.path.basename(path)
        self.assertRegex(name, r"\A2-[A-Za-z0-9_-]{22}\.reports\Z")
        self.assertEqual(os.listdir(directory), [name])
        self.assertEqual(os.stat(path).st_mode & 0o777, 0o600)
        self.assertEqual(os.stat(directory).st_mode & 0o777, 0o700)
        with open(path, "rb") as handle:
            data = handle.read()
        head, stored = w.decode_frames(data)
        header = json.loads(bytes(head))
        nonce = name[2:24]
        self.assertEqual(list(header), ["version", "request", "task", "nonce", "mac"])
        self.assertEqual(header["nonce"], nonce)
        self.assertEqual(
            header["mac"], mac_of(["sheepdog-spool-v2", "3", "2", nonce], body)
        )
        self.assertEqual((header["version"], header["request"], header["task"]), (2, 3, 2))
        self.assertEqual(bytes(stored), body)
        self.assertEqual((spool.files, spool.reports), (1, 2))
        # A second post: a file of its own, with a new nonce.
        second = spool.write(body, 2)
        self.assertNotEqual(second, path)
        self.assertEqual(len(os.listdir(directory)), 2)

    def test_renames_a_whole_synced_file_into_place(self):
        renames = []
        synced = []
        original_rename, original_fsync = os.rename, os.fsync

        def rename(source, target):
            with open(source, "rb") as handle:
                renames.append((source, target, handle.read(), list(synced)))
            original_rename(source, target)

        def fsync(fd):
            synced.append(os.fstat(fd).st_size)
            original_fsync(fd)

        os.rename, os.fsync = rename, fsync
        try:
            path = self.spool().write(b"body", 1)
        finally:
            os.rename, os.fsync = original_rename, original_fsync
        [(source, target, content, synced_before)] = renames
        self.assertEqual(target, path)
        self.assertEqual(os.path.dirname(source), os.path.dirname(path))
        self.assertEqual(os.path.basename(source), "." + os.path.basename(path)[: -len(".reports")] + ".tmp")
        with open(path, "rb") as handle:
            self.assertEqual(handle.read(), content)
        self.assertEqual(synced_before, [len(content)])
        self.assertFalse(os.path.exists(source))

    def test_leaves_nothing_when_it_cannot_write(self):
        original_fsync = os.fsync

        def full(fd):
            raise OSError(28, "No space left on device")

        os.fsync = full
        try:
            with self.assertRaises(OSError):
                self.spool().write(b"body", 1)
        finally:
            os.fsync = original_fsync
        self.assertEqual(os.listdir(os.path.join(self.dir, "spool")), [])
        # Its parent gone (the request cleaned up): not made again.
        gone = os.path.join(self.dir, "gone", "spool")
        with self.assertRaises(OSError):
            self.spool(gone).write(b"body", 1)
        self.assertFalse(os.path.exists(os.path.dirname(gone)))


class SpoolingReporterTest(TemporaryDirectoryTest):
    def reporter(self, fail_with, directory=None):
        events = []
        connection = FakeConnection(events, fail_with)
        stdout = RecordingStdout(events)
        spool = w.Spool(directory or os.path.join(self.dir, "spool"), KEY, 3, 2)
        reporter = w.Reporter(connection, 3, 2, stdout, FakeClock().clock, spool=spool)
        return reporter, events, stdout, spool

    def spooled(self):
        """The indices of each spool file's reports, in order of their first index."""
        directory = os.path.join(self.dir, "spool")
        found = []
        for name in os.listdir(directory):
            with open(os.path.join(directory, name), "rb") as handle:
                body = w.decode_frames(handle.read())[1]
            reports = entries_of(w.decode_frames(body)[0])
            found.append([r["index"] for r in reports])
        return sorted(found)

    def test_spools_what_the_server_did_not_take_then_spools_the_rest_at_once(self):
        for error in (
            w.Undelivered("gone"),
            w.Unreachable("never there"),
            w.Refused("no such request", 404),
            w.Impostor("someone else"),
        ):
            shutil.rmtree(os.path.join(self.dir, "spool"), ignore_errors=True)
            del LOGGED[:]
            reporter, events, stdout, spool = self.reporter(lambda reports, sections, e=error: e)
            reporter.add(4, "result", b"a", 5.0)
            reporter.add(5, "result", b"b", 5.0)
            reporter.add(6, "result", b"c", 0.0)
            reporter.flush()
            self.assertIsNone(reporter.failure)
            self.assertEqual(reporter.undelivered, 0)
            # One post tried the server; the others went straight to the spool.
            self.assertEqual([e for e in events if e[0] == "post"], [("post", [4])])
            self.assertEqual(self.spooled(), [[4], [5], [6]])
            self.assertEqual((spool.files, spool.reports), (3, 3))
            self.assertEqual(stdout.text.count("SHEEPDOG-REPORT v1 3 "), 3)
            self.assertEqual(LOGGED[0], error.message)
            self.assertIn("Spooled 1 reports of task 2 in %s" % spool.directory, LOGGED[1])

    def test_a_post_too_large_for_the_server_is_still_split_for_it(self):
        def too_large(reports, sections):
            return w.Refused("too large", 413) if len(reports) > 1 else None

        reporter, events, _, spool = self.reporter(too_large)
        reporter.add(4, "result", b"a", 0.0)
        reporter.add(5, "result", b"b", 0.0)
        reporter.flush()
        self.assertIsNone(reporter.failure)
        self.assertEqual(spool.files, 0)
        self.assertEqual([e[1] for e in events if e[0] == "post"], [[4, 5], [4], [5]])

    def test_a_spool_that_cannot_take_a_post_leaves_it_undelivered(self):
        del LOGGED[:]
        missing = os.path.join(self.dir, "no-parent", "spool")
        reporter, events, stdout, spool = self.reporter(
            lambda reports, sections: w.Unreachable("never there"), missing
        )
        reporter.add(4, "result", b"a", 5.0)
        reporter.add(5, "result", b"b", 5.0)
        self.assertIsInstance(reporter.failure, w.Undelivered)
        self.assertEqual(reporter.failure.status, w.EXIT_UNDELIVERED)
        self.assertEqual(reporter.undelivered, 2)
        self.assertTrue(
            reporter.failure.message.startswith(
                "never there Cannot spool 1 reports of task 2 in %s either (FileNotFoundError"
                % missing
            )
        )
        self.assertEqual(LOGGED[0], reporter.failure.message)
        self.assertIn("sheepdog recover", LOGGED[1])
        self.assertEqual(stdout.text.count("SHEEPDOG-REPORT v1 3 "), 2)


class SpoolAfterTest(ServingTest):
    def test_a_spool_replaces_the_retry_window_and_first_contact(self):
        settings = w.Settings(launch(spoolDir="d", retryWindowSeconds=600, firstContactSeconds=60))
        self.assertEqual((settings.retry_window, settings.first_contact), (15.0, 15.0))
        settings = w.Settings(launch(spoolDir="/d", spoolAfterSeconds=2.5, retryWindowSeconds=600))
        self.assertEqual(
            (settings.retry_window, settings.first_contact, settings.spool_dir), (2.5, 2.5, "/d")
        )
        # Without a spool, spoolAfterSeconds changes nothing.
        settings = w.Settings(launch(spoolAfterSeconds=2, retryWindowSeconds=600))
        self.assertEqual((settings.retry_window, settings.first_contact, settings.spool_dir), (600.0, 60.0, None))
        self.assertIsNone(settings.staged_tasks)
        self.assertEqual(w.Settings(launch(stagedTasks="p/tasks-0.pack")).staged_tasks, "p/tasks-0.pack")

    def test_refuses_unusable_staging_settings(self):
        for bad in (
            {"stagedTasks": ""},
            {"stagedTasks": 5},
            {"stagedTasks": "a\x00b"},
            {"spoolDir": ""},
            {"spoolDir": ["d"]},
            {"spoolAfterSeconds": -1},
            {"spoolAfterSeconds": "15"},
            {"spoolAfterSeconds": True},
        ):
            with self.assertRaises(w.WorkerError) as caught:
                w.Settings(launch(**bad))
            self.assertEqual(caught.exception.status, w.EXIT_USAGE)
            self.assertIn("The launch setting %s must be" % list(bad)[0], caught.exception.message)

    def test_a_post_waits_for_the_server_only_so_long_then_is_spooled(self):
        fake = FakeClock()
        settings = w.Settings(launch(spoolDir="d", spoolAfterSeconds=3, retryWindowSeconds=600))
        connection = w.Connection(settings, KEY, fake.sleep, fake.clock, lambda: 1000.0)
        connection.reached = True

        def busy(*args):
            return w.Reply(503, b'{"status": 503, "message": "busy"}', False)

        connection._once = busy
        with self.assertRaises(w.Undelivered):
            connection.call("POST", "/x", "report to the server")
        self.assertAlmostEqual(fake.now - 100.0, 3.0)

    def test_a_post_that_no_route_answers_is_spooled_at_once(self):
        fake = FakeClock()
        settings = w.Settings(
            launch(spoolDir="d", spoolAfterSeconds=3, fallbackUrls=["http://head:7000"])
        )
        connection = w.Connection(settings, KEY, fake.sleep, fake.clock, lambda: 1000.0)
        tried = []

        def refused(route, *args):
            tried.append(route.url)
            raise ConnectionRefusedError(111, "Connection refused")

        connection._once = refused
        with self.assertRaises(w.Undelivered) as caught:
            connection.call("POST", "/x", "report to the server")
        self.assertEqual(fake.sleeps, [])
        self.assertEqual(len(tried), 2)
        self.assertIn("nothing answers at", caught.exception.message)

    def test_a_packed_task_with_no_server_spools_its_reports_and_exits_0(self):
        spool_dir = os.path.join(self.dir, "spool")
        source = "def f(x):\n    print('tripling', x)\n    return x * 3\n"
        pack = os.path.join(self.dir, "tasks-0.pack")
        with open(pack, "wb") as handle:
            handle.write(make_pack(common_section(source), [("task 1", task_section(1, 0, [(5,), (6,)]))]))
        del LOGGED[:]
        started = time.monotonic()
        code = self.run_main(
            closed_port_url(), stagedTasks=pack, spoolDir=spool_dir, spoolAfterSeconds=1,
            retryWindowSeconds=600, attempt=2,
        )
        elapsed = time.monotonic() - started
        self.assertEqual(code, w.EXIT_OK)
        # Nothing listens: no waiting for the window.
        self.assertLess(elapsed, 1.0)
        [name] = os.listdir(spool_dir)
        with open(os.path.join(spool_dir, name), "rb") as handle:
            body = w.decode_frames(handle.read())[1]
        sections = w.decode_frames(body)
        reports = entries_of(sections[0])
        self.assertEqual([r["index"] for r in reports], [0, 1])
        self.assertEqual([pickle.loads(bytes(p)) for p in sections[1:]], [15, 18])
        # The spool file carries the post's body: each report with the facts of its call.
        self.assertEqual(
            [(r["attempt"], r["host"], r["log"], r["startedAt"] <= r["endedAt"]) for r in reports],
            [(2, socket.gethostname(), "tripling %d\n" % x, True) for x in (5, 6)],
        )
        self.assertIn("Cannot report to the server: nothing answers at", LOGGED[0])
        self.assertIn("2 of 2 reports of task 1 are in 1 spool files in %s" % spool_dir, LOGGED[-1])


# --- what a report tells of its call -----------------------------------------------------


def utf8_size(text):
    return len(text.encode("utf-8"))


def cut_of(log):
    """(bytes cut, tail) of a log that starts with the cut mark."""
    mark, tail = log.split("\n", 1)
    found = re.match(r"^\[sheepdog: ([0-9]+) bytes cut\]$", mark)
    assert found is not None, mark
    return int(found.group(1)), tail


class TailOfLogTest(unittest.TestCase):
    def test_keeps_a_log_that_fits_whole(self):
        self.assertEqual(w.tail_of_log(b"hello\n"), "hello\n")
        self.assertEqual(w.tail_of_log("\u00e9".encode("utf-8") * 32768), "\u00e9" * 32768)

    def test_keeps_the_tail_after_the_contract_s_mark(self):
        # The example of tailOfLog in @sheepdog/contracts, to the byte.
        log = w.tail_of_log(b"x" * 100000)
        self.assertEqual(log, "[sheepdog: 34493 bytes cut]\n" + "x" * 65507)
        self.assertEqual(w.log_cut_mark(12), "[sheepdog: 12 bytes cut]\n")

    def test_cuts_at_a_character_s_start_and_counts_what_came_before(self):
        text = "\u00e9\u20ac\U0001f600x" * 20000  # 2 + 3 + 4 + 1 bytes, 200,000 in all
        log = w.tail_of_log(text.encode("utf-8"))
        cut, tail = cut_of(log)
        self.assertTrue(text.endswith(tail))
        self.assertEqual(cut + utf8_size(tail), utf8_size(text))
        self.assertLessEqual(utf8_size(log), w.MAX_LOG_BYTES)
        self.assertGreater(utf8_size(log), w.MAX_LOG_BYTES - 4)

    def test_undecodable_bytes_never_fail_nor_pass_the_limit(self):
        self.assertEqual(w.tail_of_log(b"ok \xc3("), "ok \ufffd(")
        for data in (b"\xff" * 30000, b"\xff" * 200000, b"\x80\x80\x80" * 40000, b"\xc3"):
            log = w.tail_of_log(data)
            self.assertLessEqual(utf8_size(log), w.MAX_LOG_BYTES)
            self.assertTrue(log.endswith("\ufffd"))


class TaskConnection(object):
    """Gives its task to a fetch, and keeps the (entry, payload) of each report posted."""

    def __init__(self, task_body):
        self.task_body = task_body
        self.reports = []

    def call(self, method, path, what, body=None, content_type=None):
        if method == "GET":
            return self.task_body
        sections = w.decode_frames(body)
        entries = entries_of(sections[0])
        self.reports.extend(zip(entries, [bytes(s) for s in sections[1:]]))
        return b'{"stored": 1, "duplicates": 0}'

    def close(self):
        pass


class CallFactsTest(unittest.TestCase):
    """Runs tasks in this process, with stand-ins for the job's output files as sys.stdout and
    sys.stderr (where the worker prints its report lines too)."""

    def setUp(self):
        self.saved = (sys.stdout, sys.stderr)
        self.out_bytes = io.BytesIO()
        self.out = io.TextIOWrapper(
            self.out_bytes, encoding="utf-8", errors="surrogateescape", write_through=True
        )
        self.err = io.StringIO()
        sys.stdout, sys.stderr = self.out, self.err

    def tearDown(self):
        sys.stdout, sys.stderr = self.saved

    def run_task(self, source, args, keeps_stdout=True, **overrides):
        """The (entry, payload) of each report of a task of `source` on `args`."""
        connection = TaskConnection(server_task(source, args))
        settings = w.Settings(launch(**overrides))
        code = w.run_task(settings, KEY, 1, sys.stdout, connection)
        self.assertEqual(code, w.EXIT_OK)
        if keeps_stdout:
            self.assertIs(sys.stdout, self.out)
        self.assertIs(sys.stderr, self.err)
        return connection.reports

    def printed(self):
        return self.out_bytes.getvalue().decode("utf-8", "replace")

    def test_a_call_s_output_is_its_log_and_still_reaches_the_job_s_files(self):
        source = (
            "import sys\n"
            "def f(x):\n"
            "    print('out', x)\n"
            "    sys.stderr.write('err %d\\n' % x)\n"
            "    return x\n"
        )
        reports = self.run_task(source, [(1,), (2,)])
        self.assertEqual([e["log"] for e, _ in reports], ["out 1\nerr 1\n", "out 2\nerr 2\n"])
        lines = self.printed().splitlines()
        self.assertEqual([line.split(" ")[:4] for line in lines[1::2]], [
            ["SHEEPDOG-REPORT", "v1", "3", "0"],
            ["SHEEPDOG-REPORT", "v1", "3", "1"],
        ])
        self.assertEqual(lines[0::2], ["out 1", "out 2"])
        self.assertEqual(self.err.getvalue(), "err 1\nerr 2\n")

    def test_a_silent_call_has_no_log(self):
        reports = self.run_task("def f(x):\n    print('', end='')\n    return x\n", [(1,), (2,)])
        self.assertEqual([("log" in e, pickle.loads(p)) for e, p in reports], [(False, 1), (False, 2)])

    def test_the_streams_come_back_after_a_call_that_raises_or_replaces_them(self):
        source = (
            "import io, sys\n"
            "def f(x):\n"
            "    print('before', x)\n"
            "    if x == 1:\n"
            "        sys.stdout = io.StringIO()\n"
            "        sys.stderr = None\n"
            "        print('hidden')\n"
            "        return x\n"
            "    raise ValueError(x)\n"
        )
        reports = self.run_task(source, [(1,), (2,)])
        self.assertEqual([(e["kind"], e["log"]) for e, _ in reports], [
            ("result", "before 1\n"),
            ("error", "before 2\n"),
        ])
        self.assertIn(b"ValueError: 2", reports[1][1])
        self.assertNotIn("hidden", self.printed())
        self.assertEqual(self.printed().count("SHEEPDOG-REPORT v1 3 "), 2)

    def test_bytes_and_text_that_do_not_decode_never_fail(self):
        source = (
            "import sys\n"
            "def f(x):\n"
            "    sys.stdout.flush()\n"
            "    sys.stdout.buffer.write(b'raw \\xff\\xfe bytes\\n')\n"
            "    print('text \\udcff')\n"
            "    return x\n"
        )
        reports = self.run_task(source, [(1,)])
        self.assertEqual(reports[0][0]["log"], "raw \ufffd\ufffd bytes\ntext \\udcff\n")
        self.assertIn(b"raw \xff\xfe bytes\ntext \xff\n", self.out_bytes.getvalue())

    def test_a_long_output_keeps_its_tail_after_the_mark(self):
        source = (
            "def f(x):\n"
            "    for i in range(x):\n"
            "        print('line %05d \\u00e9' % i)\n"
            "    print('z' * 200000)\n"
            "    return x\n"
        )
        reports = self.run_task(source, [(20000,), (1,)])
        full = "".join("line %05d \u00e9\n" % i for i in range(20000)) + "z" * 200000 + "\n"
        logs = [e["log"] for e, _ in reports]
        self.assertEqual(logs[0], w.tail_of_log(full.encode("utf-8")))
        cut, tail = cut_of(logs[0])
        self.assertEqual(cut + utf8_size(tail), utf8_size(full))
        self.assertLessEqual(utf8_size(logs[0]), w.MAX_LOG_BYTES)
        self.assertTrue(logs[1].startswith("[sheepdog: "))
        self.assertTrue(logs[1].endswith("z\n"))
        self.assertIn("line 00000 \u00e9\n", self.printed())

    def test_keeps_at_most_twice_the_limit_however_much_a_call_prints(self):
        capture = w.OutputCapture(limit=100)
        capture.start()
        try:
            sizes = []
            for _ in range(1000):
                print("0123456789")
                sizes.append(capture.size)
        finally:
            capture.stop()
        self.assertLessEqual(max(sizes), 200)
        self.assertEqual(cut_of(capture.take())[0], 11000 - 100 + len(w.log_cut_mark(10900)))
        self.assertIsNone(capture.take())

    def test_a_logging_handler_made_by_the_setup_is_captured(self):
        source = (
            "import logging\n"
            "log = logging.getLogger('sheepdog-worker-test')\n"
            "log.addHandler(logging.StreamHandler())\n"
            "log.setLevel(logging.INFO)\n"
            "log.propagate = False\n"
            "def f(x):\n"
            "    log.info('working on %d', x)\n"
            "    return x\n"
        )
        try:
            reports = self.run_task(source, [(1,), (2,)])
        finally:
            import logging

            logging.getLogger("sheepdog-worker-test").handlers = []
        self.assertEqual([e["log"] for e, _ in reports], ["working on 1\n", "working on 2\n"])
        self.assertEqual(self.err.getvalue(), "working on 1\nworking on 2\n")

    def test_a_stream_the_setup_puts_in_place_is_kept_and_nothing_is_kept_twice(self):
        source = (
            "import io, sys\n"
            "sys.stdout = io.TextIOWrapper(sys.stdout.buffer, encoding='utf-8', write_through=True)\n"
            "def f(x):\n"
            "    print('hi', x)\n"
            "    return type(sys.stdout).__name__\n"
        )
        reports = self.run_task(source, [(1,), (2,)], keeps_stdout=False)
        self.assertEqual([e["log"] for e, _ in reports], ["hi 1\n", "hi 2\n"])
        self.assertEqual(pickle.loads(reports[0][1]), "TeeStream")
        self.assertIsInstance(sys.stdout, io.TextIOWrapper)
        sys.stdout = self.out
        self.assertEqual(self.printed().count("hi "), 2)

    def test_facts_are_those_of_the_call(self):
        source = "import time\ndef f(x):\n    time.sleep(x)\n    return x\n"
        before = time.time() * 1000
        reports = self.run_task(source, [(0,), (0.05,)], attempt=3)
        after = time.time() * 1000
        maxrss = __import__("resource").getrusage(__import__("resource").RUSAGE_SELF).ru_maxrss
        for entry, _ in reports:
            self.assertEqual(entry["host"], socket.gethostname())
            self.assertEqual(entry["attempt"], 3)
            self.assertIsInstance(entry["startedAt"], int)
            self.assertLessEqual(before - 1, entry["startedAt"])
            self.assertLessEqual(entry["startedAt"], entry["endedAt"])
            self.assertLessEqual(entry["endedAt"], after)
            self.assertGreater(entry["peakMemoryBytes"], 1024 * 1024)
            self.assertLessEqual(entry["peakMemoryBytes"], maxrss * 1024)
            self.assertNotIn("log", entry)
        self.assertGreaterEqual(reports[1][0]["endedAt"] - reports[1][0]["startedAt"], 49)

    def test_a_setup_error_tells_only_where_and_which_attempt(self):
        reports = self.run_task("raise RuntimeError('no')\n", [(1,), (2,)], attempt=2)
        host = socket.gethostname()
        for entry, payload in reports:
            self.assertEqual(set(entry), {"index", "kind", "host", "attempt"})
            self.assertEqual((entry["kind"], entry["host"], entry["attempt"]), ("error", host, 2))
            self.assertIn(b"RuntimeError: no", payload)

    def test_host_names_are_made_printable_and_short(self):
        original = w.socket.gethostname
        try:
            w.socket.gethostname = lambda: "a\x00b\udcff\t" + "x" * 300
            self.assertEqual(w.node_host(), "ab" + "x" * 253)
            w.socket.gethostname = lambda: "\U0001f600" * 200
            self.assertEqual(w.node_host(), "\U0001f600" * 127)
            w.socket.gethostname = lambda: "\x01"
            self.assertIsNone(w.node_host())
            self.assertEqual(w.CallFacts(1).shared, {"attempt": 1})
        finally:
            w.socket.gethostname = original


class PeakMemoryTest(unittest.TestCase):
    def test_reads_the_peak_at_most_every_memory_read_seconds(self):
        memory = w.PeakMemory(now=100.0)
        first = memory.peak
        self.assertGreater(first, 1024 * 1024)
        readings = iter([5, 7])
        memory.getrusage = lambda who: types.SimpleNamespace(ru_maxrss=next(readings))
        step = w.MEMORY_READ_SECONDS
        self.assertEqual(memory.after_call(100.0 + step / 2), first)
        self.assertEqual(memory.after_call(100.0 + step), 5 * 1024)
        self.assertEqual(memory.after_call(100.0 + step * 1.5), 5 * 1024)
        self.assertEqual(memory.after_call(101.0), 7 * 1024)

    @unittest.skipUnless(os.path.exists("/proc/self/statm"), "no /proc")
    def test_covers_the_memory_a_call_took(self):
        # In a child: the memory this process took once does not hide the call's. (A child starts
        # with the peak of the process it was forked from, so the peak is compared with what
        # the block made resident, not with the peak before it.)
        child = (
            "import os, sys, time\n"
            "sys.path.insert(0, sys.argv[1])\n"
            "import sheepdog_worker as w\n"
            "memory = w.PeakMemory()\n"
            "block = bytearray(64 * 1024 * 1024)\n"
            "for i in range(0, len(block), 4096):\n"
            "    block[i] = 1\n"
            "with open('/proc/self/statm') as statm:\n"
            "    resident = int(statm.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')\n"
            "del block\n"
            "print(resident, memory.after_call(time.monotonic() + 1))\n"
        )
        here = os.path.dirname(os.path.abspath(__file__))
        output = subprocess.check_output([sys.executable, "-c", child, here])
        resident, peak = [int(n) for n in output.split()]
        self.assertGreater(resident, 64 * 1024 * 1024)
        # The kernel counts resident pages per CPU and sums them lazily: within a MiB.
        self.assertGreaterEqual(peak, resident - 1024 * 1024)


class FactsReporterTest(unittest.TestCase):
    def test_a_report_too_large_with_its_log_goes_without_it(self):
        events = []
        connection = FakeConnection(events)
        reporter = w.Reporter(
            connection, 3, 2, RecordingStdout(events), FakeClock().clock, max_body=2000,
            shared={"attempt": 1},
        )
        reporter.add(1, "result", b"r" * 100, 5.0, (1000, 1001, None), "x" * 5000)
        [(_, _, reports, payloads)] = connection.posts
        self.assertEqual(
            reports,
            [{"index": 1, "kind": "result", "startedAt": 1000, "endedAt": 1001, "attempt": 1}],
        )
        self.assertEqual(payloads, [b"r" * 100])

    def test_logs_count_toward_a_batch_s_size(self):
        events = []
        connection = FakeConnection(events)
        reporter = w.Reporter(connection, 3, 2, RecordingStdout(events), FakeClock().clock)
        log = "x" * (w.POST_BATCH_BYTES // 2)
        reporter.add(1, "result", b"r", 0.0, None, log)
        self.assertEqual(connection.posts, [])
        reporter.add(2, "result", b"r", 0.0, None, log)
        self.assertEqual([[r["index"] for r in p[2]] for p in connection.posts], [[1, 2]])


class SourceTest(unittest.TestCase):
    def test_parses_as_python_3_8_and_is_ascii(self):
        import ast

        path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sheepdog_worker.py")
        with open(path, "rb") as handle:
            source = handle.read()
        source.decode("ascii")
        if sys.version_info >= (3, 8):
            ast.parse(source, feature_version=(3, 8))


if __name__ == "__main__":
    unittest.main()
