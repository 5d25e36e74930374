"""Structural equality of two values Python loaded: what the re-encoding tests compare."""
import math

ATOMS = (type(None), bool, int, str, bytes, bytearray)
CONTAINERS = (list, tuple, dict, set, frozenset)


def reduced(x):
    """What pickle saves of x besides its class: arguments, state, list and dict items."""
    try:
        r = x.__reduce_ex__(4)
    except Exception:  # noqa: BLE001
        return None
    if not isinstance(r, tuple):
        return None
    r = list(r) + [None] * (5 - len(r))
    return (r[1], r[2], None if r[3] is None else list(r[3]), None if r[4] is None else list(r[4]))


class Same:
    """Whether two loaded values are equal twins: same types, equal contents, cycles included.

    Objects are compared by what pickle saves of them (their __reduce_ex__), so that two instances
    without __eq__ compare by their state. Dict and set members are matched by equality, else by
    this comparison. One documented limit of the codec is allowed: a float that is a whole number
    below 2**53 comes back as an int.
    """

    def __init__(self):
        self.assumed = set()

    def diff(self, a, b, path="value"):
        if a is b:
            return None
        if type(a) is float and type(b) is int:
            ok = a.is_integer() and abs(a) < 2**53 and a == b and math.copysign(1, a) > 0
            return None if ok else f"{path}: {a!r} != {b!r}"
        if type(a) is not type(b):
            return f"{path}: type {type(a).__name__} != {type(b).__name__}"
        if type(a) is float:
            ok = (math.isnan(a) and math.isnan(b)) or (
                a == b and math.copysign(1, a) == math.copysign(1, b))
            return None if ok else f"{path}: {a!r} != {b!r}"
        if type(a) is complex:
            return self.diff(a.real, b.real, path) or self.diff(a.imag, b.imag, path)
        if type(a) in ATOMS:
            return None if a == b else f"{path}: {a!r} != {b!r}"
        key = (id(a), id(b))
        if key in self.assumed:
            return None
        self.assumed.add(key)
        d = self.contents(a, b, path)
        if d or type(a) in CONTAINERS:
            return d
        ra, rb = reduced(a), reduced(b)
        if ra is None or rb is None:
            try:
                return None if a == b else f"{path}: {a!r} != {b!r}"
            except Exception as e:  # noqa: BLE001
                return f"{path}: cannot compare: {e}"
        return self.diff(ra, rb, f"{path}.__reduce_ex__(4)")

    def find(self, x, others):
        for y in others:
            kept = set(self.assumed)
            if self.diff(x, y) is None:
                return y
            self.assumed = kept
        return None

    def contents(self, a, b, path):
        if isinstance(a, (list, tuple)):
            if len(a) != len(b):
                return f"{path}: length {len(a)} != {len(b)}"
            for i, (x, y) in enumerate(zip(a, b)):
                d = self.diff(x, y, f"{path}[{i}]")
                if d:
                    return d
        elif isinstance(a, dict):
            if len(a) != len(b):
                return f"{path}: {len(a)} keys != {len(b)}"
            for k, v in a.items():
                k2 = k if k in b else self.find(k, list(b))
                if k2 is None and k not in b:
                    return f"{path}: key {k!r} missing"
                d = self.diff(v, b[k2], f"{path}[{k!r}]")
                if d:
                    return d
        elif isinstance(a, (set, frozenset)):
            if len(a) != len(b):
                return f"{path}: {len(a)} items != {len(b)}"
            for x in a:
                if x not in b and self.find(x, list(b)) is None:
                    return f"{path}: item {x!r} missing"
        elif isinstance(a, (int, float, complex, str, bytes, bytearray)) and not a == b:
            return f"{path}: {a!r} != {b!r}"
        return None
