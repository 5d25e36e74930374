"""Python types the round-trip tests pickle: importable from this directory on both sides."""
import collections
import dataclasses
import enum


@dataclasses.dataclass
class Point:
    x: float
    y: float
    label: str = ""


@dataclasses.dataclass(frozen=True)
class Frozen:
    a: int
    b: tuple


Pair = collections.namedtuple("Pair", "left right")


class Color(enum.Enum):
    RED = 1
    GREEN = 2


class Outer:
    class Inner:
        def __init__(self, v):
            self.v = v

        def __eq__(self, other):
            return type(other) is type(self) and other.v == self.v


class Slotted:
    __slots__ = ("a", "b")

    def __init__(self, a, b):
        self.a = a
        self.b = b

    def __getstate__(self):
        # What object.__reduce_ex__(2) uses for slots; defined so that protocols 0 and 1 work too.
        return (None, {"a": self.a, "b": self.b})

    def __eq__(self, other):
        return type(other) is type(self) and (other.a, other.b) == (self.a, self.b)


class KwOnly:
    """Pickled with NEWOBJ_EX (protocol 4+) or functools.partial (before)."""

    def __new__(cls, *, size):
        self = super().__new__(cls)
        self.size = size
        return self

    def __getnewargs_ex__(self):
        return (), {"size": self.size}

    def __eq__(self, other):
        return type(other) is type(self) and other.size == self.size


class WithState:
    def __init__(self, n):
        self.n = n

    def __getstate__(self):
        return {"n2": self.n * 2}

    def __setstate__(self, state):
        self.n = state["n2"] // 2

    def __eq__(self, other):
        return type(other) is type(self) and other.n == self.n


class Bag:
    """__reduce__ with list items and dict items (the 4th and 5th elements)."""

    def __init__(self):
        self.items = []
        self.named = {}

    def append(self, x):
        self.items.append(x)

    def extend(self, xs):
        self.items.extend(xs)

    def __setitem__(self, k, v):
        self.named[k] = v

    def __reduce__(self):
        return (Bag, (), None, iter(self.items), iter(self.named.items()))

    def __eq__(self, other):
        return type(other) is type(self) and (other.items, other.named) == (self.items, self.named)


def make_bag():
    b = Bag()
    b.extend([1, "two", (3,)])
    b["k"] = [4]
    return b


# ---- cycles through constructor arguments (CPython's pickletester has the same shapes) ----

class ListSub(list):
    pass


class DictSub(dict):
    pass


class SetSub(set):
    pass


class FrozenSetSub(frozenset):
    pass


class Holder:
    """An object whose attribute closes a cycle."""


def collection_holding_itself(factory):
    """A collection built from [holder] where holder.attr is the collection."""
    holder = Holder()
    holder.attr = factory([holder])
    return holder.attr


def holder_of_collection(factory):
    """holder.attr is a collection built from [holder]."""
    holder = Holder()
    holder.attr = factory([holder])
    return holder


def self_list():
    s = ListSub()
    s.append(s)
    return s


# ---- Python 2 classic instances, loaded by INST and OBJ ----

class Classic:
    """__init__ records its call: CPython calls it for INST / OBJ only with arguments."""

    def __init__(self, *args):
        self.init_args = args


class ClassicInitArgs(Classic):
    """With __getinitargs__, CPython calls __init__ even without arguments."""

    def __getinitargs__(self):
        return ()


class Reducer:
    """Reduced to Reducer(value): a constructor argument kept by reference (CPython's test K)."""

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return Reducer, (self.value,)


def reducer_in_its_argument():
    """r = Reducer(s) with s = {r}: r's construction saw s before r was added to it."""
    s = set()
    r = Reducer(s)
    s.add(r)
    return r
