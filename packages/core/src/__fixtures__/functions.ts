import { py } from "../index.js";

/**
 * A function returning `x * scale`, except for `x == 1`: an object that pickles as a copyreg
 * extension code (EXT1, `code`), which a decoder without Python's extension registry cannot read.
 */
export function undecodableAtOne(code: number, scale: number) {
  return py`
def f(x):
    import copyreg, sys
    class Point(object):
        pass
    Point.__module__ = "__sheepdog__"
    Point.__qualname__ = "Point"
    setattr(sys.modules["__sheepdog__"], "Point", Point)
    if x == 1:
        copyreg.add_extension("__sheepdog__", "Point", ${code})
        return Point()
    return x * ${scale}
`;
}
