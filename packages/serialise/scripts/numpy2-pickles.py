"""Writes src/__fixtures__/numpy2-pickles.json: pickles written by numpy 2, which names its modules
numpy._core (numpy 1: numpy.core). Debian 12's numpy is 1.24, so the tests read these stored ones.

Run with a Python that has numpy 2: python3 scripts/numpy2-pickles.py > src/__fixtures__/numpy2-pickles.json
"""
import base64
import json
import pickle
import sys

import numpy as np

assert np.__version__.startswith("2."), np.__version__

CASES = [
    "np.arange(6, dtype='f8').reshape(2, 3)",
    "np.asfortranarray(np.arange(6, dtype='>i4').reshape(2, 3))",
    "np.array([True, False, True])",
    "np.array(2**40, dtype='i8')",
    "np.float64(1.5)",
    "np.int64(-2**60)",
    "np.False_",
]


def expected(value):
    if isinstance(value, np.ndarray):
        items = [str(x) if value.dtype.kind in "iu" else x for x in value.ravel().tolist()]
        return {"shape": list(value.shape), "dtype": value.dtype.name, "items": items}
    return {"scalar": str(value.item()) if value.dtype.kind in "iu" else value.item()}


out = {
    "numpy": np.__version__,
    "cases": [
        {
            "expr": expr,
            "expected": expected(eval(expr)),  # noqa: S307 - the fixed expressions above
            "pickles": {p: base64.b64encode(pickle.dumps(eval(expr), p)).decode() for p in (2, 4, 5)},  # noqa: S307
        }
        for expr in CASES
    ],
}
json.dump(out, sys.stdout, indent=1)
sys.stdout.write("\n")
