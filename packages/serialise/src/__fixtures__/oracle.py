"""The Python side of the round-trip tests: one process, JSON lines in and out.

Each request line is a JSON object with "op"; pickles travel base64-encoded. Ops:
  dump    {expr, protocols, keep?}      -> {pickles: [b64 per protocol]}; evaluates expr
  reload  {pickle, protocol}            -> {pickle: b64}: loads, dumps again at protocol
  check   {pickle, expr | kept, floatInt?} -> {ok, detail}: loads and compares strictly
  twin    {pickle, original}            -> {ok, detail}: loads both, compares them as twins.Same
  gen     {seed, count, protocols}      -> {values: [{id, repr, pickles}]}: random values, kept
  batch   {items: [request]}            -> {results: [response]}
Errors come back as {error: traceback}.
"""
import base64
import collections
import dataclasses
import datetime
import decimal
import fractions
import json
import math
import pickle
import random
import re
import sys
import traceback

import numpy as np

import sheepdog_fixtures as fx
from twins import Same

kept = {}

NS = {
    "collections": collections,
    "dataclasses": dataclasses,
    "datetime": datetime,
    "decimal": decimal,
    "fractions": fractions,
    "math": math,
    "np": np,
    "fx": fx,
    "pickle": pickle,
}


def b64(data):
    return base64.b64encode(data).decode("ascii")


def unb64(text):
    return base64.b64decode(text)


def is_float_like_int(a, b):
    return (
        type(a) is float
        and type(b) is int
        and a.is_integer()
        and abs(a) < 2**53
        and not (a == 0 and math.copysign(1, a) < 0)
        and a == b
    )


def same(a, b, float_int=False, seen=None, path="value"):
    """None when b is a's equal twin (types, values, sharing), else where they differ."""
    if seen is None:
        seen = {}
    if isinstance(a, (list, dict, set, bytearray, np.ndarray)) or (
        hasattr(a, "__dict__") and not isinstance(a, type)
    ):
        if id(a) in seen:
            return None if seen[id(a)] is b else f"{path}: sharing differs"
        seen[id(a)] = b
    if float_int and is_float_like_int(a, b):
        return None
    if float_int and isinstance(a, np.generic) and type(b) in (bool, int, float):
        # The codec's mapping: numpy's bools, ints and floats decode to JavaScript's.
        return same(a.item(), b, float_int, seen, path)
    if type(a) is not type(b):
        return f"{path}: type {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, float):
        if math.isnan(a) and math.isnan(b):
            return None
        if a == b and math.copysign(1, a) == math.copysign(1, b):
            return None
        return f"{path}: {a!r} != {b!r}"
    if isinstance(a, complex):
        return None if same(a.real, b.real, path=path) is None and same(a.imag, b.imag, path=path) is None else f"{path}: {a!r} != {b!r}"
    if isinstance(a, decimal.Decimal):
        return None if (a == b or str(a) == str(b)) else f"{path}: {a!r} != {b!r}"
    if isinstance(a, (list, tuple)):
        if len(a) != len(b):
            return f"{path}: length {len(a)} != {len(b)}"
        for i, (x, y) in enumerate(zip(a, b)):
            d = same(x, y, float_int, seen, f"{path}[{i}]")
            if d:
                return d
        return None
    if isinstance(a, dict):
        if len(a) != len(b):
            return f"{path}: {len(a)} keys != {len(b)}"
        if type(a) is collections.OrderedDict and list(a) != list(b):
            return f"{path}: key order differs"
        for k, v in a.items():
            if k not in b:
                return f"{path}: key {k!r} missing"
            d = same(v, b[k], float_int, seen, f"{path}[{k!r}]")
            if d:
                return d
        return None
    if isinstance(a, np.ndarray):
        if a.dtype != b.dtype or a.shape != b.shape:
            return f"{path}: dtype/shape {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        if a.flags.f_contiguous != b.flags.f_contiguous:
            return f"{path}: memory order differs"
        equal_nan = a.dtype.kind in "fc"
        return None if np.array_equal(a, b, equal_nan=equal_nan) else f"{path}: array values differ"
    if isinstance(a, np.generic):
        if a.dtype.kind in "fc" and np.isnan(a) and np.isnan(b):
            return None
        return None if a == b else f"{path}: {a!r} != {b!r}"
    if isinstance(a, fx.Bag):
        return same((a.items, a.named), (b.items, b.named), float_int, seen, path)
    if dataclasses.is_dataclass(a) and not isinstance(a, type):
        for f in dataclasses.fields(a):
            d = same(getattr(a, f.name), getattr(b, f.name), float_int, seen, f"{path}.{f.name}")
            if d:
                return d
        return None
    try:
        return None if a == b else f"{path}: {a!r} != {b!r}"
    except Exception as e:  # noqa: BLE001
        return f"{path}: cannot compare: {e}"


# ---- random values for the Python -> JS -> Python property ----

def rand_str(rng):
    kind = rng.randrange(5)
    n = rng.randrange(0, 12)
    if kind == 0:
        return "".join(chr(rng.randrange(32, 127)) for _ in range(n))
    if kind == 1:
        return "".join(chr(rng.randrange(0, 0x800)) for _ in range(n))
    if kind == 2:
        return "".join(chr(rng.randrange(0x10000, 0x110000)) for _ in range(n))
    if kind == 3:
        s = "".join(chr(rng.choice([0xD800, 0xDBFF, 0xDC00, 0xDFFF, 0xFEFF, 0, 10, 92, 0x1F600])) for _ in range(n))
        # A high surrogate followed by a low one would read as one astral character in
        # JavaScript (a documented limit), so keep lone surrogates lone.
        return re.sub("([\ud800-\udbff])(?=[\udc00-\udfff])", "\\1x", s)
    return "x" * rng.choice([0, 1, 85, 86, 255, 256, 1000])


def rand_int(rng):
    return rng.choice([
        0, 1, -1, 255, 256, 65535, 65536, 2**31 - 1, -(2**31), 2**31, -(2**31) - 1,
        2**53 - 1, -(2**53 - 1), 2**53, -(2**53), 2**63, -(2**64), 10**100, -(10**100),
        2**(8 * 256), -(2**(8 * 256)) + 1, rng.randrange(-(2**70), 2**70), rng.randrange(-1000, 1000),
    ])


def rand_float(rng):
    return rng.choice([
        0.0, -0.0, 1.5, -2.25, 3.0, float("inf"), float("-inf"), float("nan"), 1e300, 5e-324,
        2.0**53, rng.uniform(-1e9, 1e9), float(rng.randrange(-100, 100)),
    ])


def rand_hashable(rng, depth):
    k = rng.randrange(6)
    if k == 0:
        return rand_int(rng)
    if k == 1:
        return rand_str(rng)
    if k == 2 and depth > 0:
        return tuple(rand_hashable(rng, depth - 1) for _ in range(rng.randrange(4)))
    if k == 3:
        return rng.choice([None, True, False, b"k", rand_float(rng)])
    if k == 4 and depth > 0:
        return frozenset(rand_hashable(rng, depth - 1) for _ in range(rng.randrange(3)))
    return rand_str(rng)


def rand_object(rng):
    k = rng.randrange(20)
    if k == 0:
        return datetime.datetime(2024, 2, 29, 23, 59, 58, 999999, tzinfo=datetime.timezone(datetime.timedelta(hours=-5)))
    if k == 1:
        return decimal.Decimal(rng.choice(["1.10", "-0", "NaN", "Infinity", "1E+1000", "3.14159"]))
    if k == 2:
        return fractions.Fraction(rng.randrange(-50, 50), rng.randrange(1, 50))
    if k == 3:
        return complex(rand_float(rng), rand_float(rng))
    if k == 4:
        return collections.OrderedDict((rand_str(rng), rand_int(rng)) for _ in range(rng.randrange(4)))
    if k == 5:
        dtype = rng.choice(["f8", "f4", "i8", "u1", "c16", "?", "<U3", "i2"])
        arr = (np.arange(12) % 7).astype(dtype)
        arr = arr.reshape(rng.choice([(12,), (3, 4), (2, 2, 3)]))
        return np.asfortranarray(arr) if rng.random() < 0.3 and arr.ndim > 1 else arr
    if k == 6:
        return fx.Point(rand_float(rng), 2.0, rand_str(rng))
    if k == 7:
        return fx.Pair(rand_int(rng), [rand_str(rng)])
    if k == 8:
        return fx.Color.GREEN
    if k == 9:
        return fx.Outer.Inner(rand_int(rng))
    if k == 10:
        return fx.Slotted(1, (2, 3))
    if k == 11:
        return fx.KwOnly(size=rand_int(rng))
    if k == 12:
        return fx.WithState(rng.randrange(100))
    if k == 13:
        return fx.make_bag()
    if k == 14:
        return collections.deque([1, 2, 3], maxlen=5)
    if k == 15:
        d = collections.defaultdict(list)
        d["a"].append(1)
        return d
    if k == 16:
        return collections.Counter("abracadabra")
    if k == 17:
        return rng.choice([range(1, 10, 2), slice(1, None, 3), Ellipsis, int, math.sqrt, np.float64(1.5), np.int32(-7)])
    if k == 18:
        return datetime.timedelta(days=-1, seconds=5)
    return fx.Frozen(3, (1, "x"))


def rand_value(rng, depth):
    k = rng.randrange(14 if depth > 0 else 6)
    if k == 0:
        return rand_int(rng)
    if k == 1:
        return rand_float(rng)
    if k == 2:
        return rand_str(rng)
    if k == 3:
        return rng.choice([None, True, False])
    if k == 4:
        return bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 5, 300])))
    if k == 5:
        return bytearray(rng.randrange(256) for _ in range(rng.choice([0, 3, 70])))
    if k == 6:
        return [rand_value(rng, depth - 1) for _ in range(rng.randrange(5))]
    if k == 7:
        return tuple(rand_value(rng, depth - 1) for _ in range(rng.randrange(6)))
    if k == 8:
        keys = [rand_str(rng) for _ in range(rng.randrange(5))]
        if rng.random() < 0.4:
            keys.append(rand_hashable(rng, 2))
        return {key: rand_value(rng, depth - 1) for key in keys}
    if k == 9:
        return {rand_hashable(rng, 2) for _ in range(rng.randrange(5))}
    if k == 10:
        return frozenset(rand_hashable(rng, 2) for _ in range(rng.randrange(4)))
    if k == 11:
        shared = [rand_value(rng, depth - 1)]
        return [shared, (shared, shared), {"s": shared}]
    if k == 12:
        if rng.random() < 0.5:
            lst = [rand_int(rng)]
            lst.append(lst)
            return lst
        d = {"a": [rand_str(rng)]}
        d["a"].append(d)
        d[rand_int(rng)] = (d,)  # a non-str key after the dict was shared: becomes a Map
        return d
    return rand_object(rng)


def handle(req):
    op = req["op"]
    if op == "batch":
        return {"results": [safe_handle(r) for r in req["items"]]}
    if op == "dump":
        value = eval(req["expr"], NS)  # noqa: S307 - test fixture
        if "keep" in req:
            kept[req["keep"]] = value
        return {"pickles": [b64(pickle.dumps(value, p)) for p in req["protocols"]]}
    if op == "reload":
        value = pickle.loads(unb64(req["pickle"]))
        return {"pickle": b64(pickle.dumps(value, req["protocol"])), "repr": repr(value)[:300]}
    if op == "check":
        value = pickle.loads(unb64(req["pickle"]))
        expected = kept[req["kept"]] if "kept" in req else eval(req["expr"], NS)  # noqa: S307
        detail = same(expected, value, req.get("floatInt", False))
        return {"ok": detail is None, "detail": detail, "repr": repr(value)[:300]}
    if op == "twin":
        expected = pickle.loads(unb64(req["original"]))
        value = pickle.loads(unb64(req["pickle"]))
        detail = Same().diff(expected, value)
        return {"ok": detail is None, "detail": detail, "repr": repr(value)[:300]}
    if op == "gen":
        rng = random.Random(req["seed"])
        out = []
        for i in range(req["count"]):
            value = rand_value(rng, 3)
            key = f"gen:{req['seed']}:{i}"
            kept[key] = value
            out.append({
                "id": key,
                "repr": repr(value)[:300],
                "pickles": [b64(pickle.dumps(value, p)) for p in req["protocols"]],
            })
        return {"values": out}
    raise ValueError(f"unknown op {op!r}")


def safe_handle(req):
    try:
        return handle(req)
    except Exception:  # noqa: BLE001
        return {"error": traceback.format_exc()}


for line in sys.stdin:
    sys.stdout.write(json.dumps(safe_handle(json.loads(line))) + "\n")
    sys.stdout.flush()
