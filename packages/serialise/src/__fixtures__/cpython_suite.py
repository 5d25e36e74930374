"""CPython's own pickle tests as a corpus: every pickle they build or hold that CPython loads.

Runs the pickle tests of Debian's libpython3.11-testsuite (test.pickletester) with the C pickler,
the pure-Python pickler and pickletools.optimize, recording every pickle passed to loads or
returned by dumps (the constant test data DATA0 to DATA6 and the others included), and keeps those
that pickle.loads reads back. The tests build values from the clock, the file system and local
classes, so the corpus lives in this one process, which later compares the re-encodings:

  stdout, first line: {"pickles": [b64, ...]}, or {"missing": reason} without the test suite
  stdin, a line each:  {"index": i, "protocol": p, "pickle": b64}, then {"done": true}
  stdout, last line:   {"failures": [{"index", "protocol", "detail"}], "compared": n}

A re-encoding passes when CPython loads it to a value equal to what it loads from the original
(see twins.Same). What the codec refuses is not sent here: the test checks how it refused.
"""
import base64
import io
import json
import pickle
import pickletools
import sys
import threading
import unittest

from twins import Same

try:
    from test import pickletester as pt
except ImportError as e:
    print(json.dumps({"missing": f"test.pickletester cannot be imported ({e})"}), flush=True)
    sys.exit(0)

recorded = {}


def record(data, kwargs):
    if not kwargs:
        recorded.setdefault(bytes(data), None)
    return data


class Recording:
    bad_stack_errors = (pickle.UnpicklingError, IndexError)
    truncated_errors = (pickle.UnpicklingError, EOFError, AttributeError, ValueError,
                        IndexError, ImportError)

    def loads(self, buf, **kwargs):
        record(buf, kwargs)
        return pickle.loads(buf, **kwargs)


class CPicklerCorpus(Recording, pt.AbstractPickleTests, pt.AbstractUnpickleTests,
                     unittest.TestCase):
    pickler = pickle.Pickler
    unpickler = pickle.Unpickler

    def dumps(self, arg, proto=None, **kwargs):
        return record(pickle.dumps(arg, proto, **kwargs), kwargs)


class PyPicklerCorpus(Recording, pt.AbstractPickleTests, unittest.TestCase):
    pickler = pickle._Pickler
    unpickler = pickle._Unpickler

    def dumps(self, arg, proto=None, **kwargs):
        f = io.BytesIO()
        pickle._Pickler(f, proto, **kwargs).dump(arg)
        return record(f.getvalue(), kwargs)


class OptimizedCorpus(Recording, pt.AbstractPickleTests, unittest.TestCase):
    pickler = pickle.Pickler
    unpickler = pickle.Unpickler
    test_pickle_to_2x = None
    test_framed_write_sizes_with_delayed_writer = None

    def dumps(self, arg, proto=None, **kwargs):
        return record(pickletools.optimize(pickle.dumps(arg, proto, **kwargs)), kwargs)


def collect():
    suite = unittest.TestSuite()
    for cls in (CPicklerCorpus, PyPicklerCorpus, OptimizedCorpus):
        suite.addTests(unittest.defaultTestLoader.loadTestsFromTestCase(cls))
    unittest.TextTestRunner(stream=io.StringIO(), verbosity=0).run(suite)
    loadable = []
    for data in recorded:
        try:
            pickle.loads(data)
        except Exception:  # noqa: BLE001 - refused by CPython itself: not in the corpus
            continue
        loadable.append(data)
    return loadable


def compare(corpus, answer):
    """Where CPython loads the re-encoding to another value than the original, else None."""
    expected = pickle.loads(corpus[answer["index"]])
    try:
        actual = pickle.loads(base64.b64decode(answer["pickle"]))
    except Exception as e:  # noqa: BLE001
        return f"CPython cannot load it: {e!r}"
    detail = Same().diff(expected, actual)
    return detail[:500] if detail else None


def main():
    corpus = collect()
    print(json.dumps({"pickles": [base64.b64encode(p).decode() for p in corpus]}), flush=True)
    failures = []
    compared = 0
    for line in sys.stdin:
        answer = json.loads(line)
        if answer.get("done"):
            break
        compared += 1
        detail = compare(corpus, answer)
        if detail:
            failures.append({**answer, "pickle": None, "detail": detail})
    print(json.dumps({"failures": failures, "compared": compared}), flush=True)


# The corpus holds values nested thousands deep: compare them on a thread with a big stack.
sys.setrecursionlimit(200_000)
threading.stack_size(512 * 1024 * 1024)
worker = threading.Thread(target=main)
worker.start()
worker.join()
