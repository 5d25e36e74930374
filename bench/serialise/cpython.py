"""CPython's side of the serialise benchmark (driven by run.mjs).

Builds the workloads, writes CPython's pickle of each to OUT_DIR (so that run.mjs decodes the
very bytes CPython made), then serves timing requests on stdin, one per line, "<case> <op>",
answering each with the milliseconds one pickle.dumps / pickle.loads took. run.mjs alternates
these with its own runs, so that both sides see the same machine load.

Usage: python3 cpython.py OUT_DIR PROTOCOL
"""
import json
import pickle
import platform
import sys
import time


def workloads():
    yield "ints", "list of 1e6 small ints", list(range(1_000_000))
    yield "dicts", "list of 1e5 small mixed dicts", [
        {"id": i, "name": f"item-{i}", "score": i * 0.5, "tags": ["a", "b"], "active": i % 2 == 0}
        for i in range(100_000)
    ]
    yield "bytes", "one 50 MB bytes value", bytes(range(256)) * (50 * 1024 * 1024 // 256)
    # Not in the goal: per-call overhead, as when a request's results arrive one by one.
    yield "small", "1e5 separate small pickles, (i, 'abc', i / 2) each", [
        (i, "abc", i / 2) for i in range(100_000)
    ]


def main():
    out_dir, protocol = sys.argv[1], int(sys.argv[2])
    assert pickle.Pickler.__module__ == "_pickle", "expected CPython's C pickle"
    values, pickles, cases = {}, {}, {}
    for key, label, value in workloads():
        if key == "small":
            # One pickle per item; the file holds the list of them, pickled.
            data = [pickle.dumps(item, protocol) for item in value]
            with open(f"{out_dir}/{key}.pickle", "wb") as f:
                f.write(pickle.dumps(data, protocol))
            values[key], pickles[key] = value, data
            cases[key] = {"label": label, "bytes": sum(map(len, data))}
            continue
        data = pickle.dumps(value, protocol)
        with open(f"{out_dir}/{key}.pickle", "wb") as f:
            f.write(data)
        values[key], pickles[key] = value, data
        cases[key] = {"label": label, "bytes": len(data)}
    print(json.dumps({"python": platform.python_version(), "implementation": "_pickle", "cases": cases}), flush=True)
    for line in sys.stdin:
        key, op = line.split()
        if key == "small" and op == "encode":
            value = values[key]
            t0 = time.perf_counter()
            for item in value:
                pickle.dumps(item, protocol)
        elif key == "small":
            data = pickles[key]
            t0 = time.perf_counter()
            for one in data:
                pickle.loads(one)
        elif op == "encode":
            value = values[key]
            t0 = time.perf_counter()
            pickle.dumps(value, protocol)
        else:
            data = pickles[key]
            t0 = time.perf_counter()
            pickle.loads(data)
        elapsed = (time.perf_counter() - t0) * 1000
        print(elapsed, flush=True)


main()
