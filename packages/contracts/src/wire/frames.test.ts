import { describe, expect, it } from "vitest";
import { SheepdogError } from "../errors.js";
import {
  decodeFrames,
  decodeReports,
  decodeTaskFrames,
  encodeFrames,
  encodeReports,
  encodeTaskFrames,
  encodeTaskFramesOfRuns,
} from "./frames.js";

const bytes = (...values: number[]) => new Uint8Array(values);
const text = (value: string) => new TextEncoder().encode(value);
/** A body as plain bytes: the sections decoded from it are views of whatever they are given. */
const plain = (body: Uint8Array) => new Uint8Array(body);

/** Every fact a report can carry. */
const facts = {
  startedAt: 1_700_000_000_000.5,
  endedAt: 1_700_000_000_250,
  host: "node-3",
  peakMemoryBytes: 123_456_789,
  attempt: 2,
  log: "printed ✓\n",
};

function invalid(run: () => unknown): SheepdogError {
  try {
    run();
  } catch (error) {
    if (SheepdogError.isInstance(error)) return error;
    throw error;
  }
  throw new Error("expected a SheepdogError");
}

describe("encodeFrames / decodeFrames", () => {
  it("writes 4-byte big-endian lengths before each section", () => {
    const body = encodeFrames([bytes(1, 2, 3), bytes(), bytes(9)]);
    expect([...body]).toEqual([0, 0, 0, 3, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 1, 9]);
    expect(decodeFrames(body).map((s) => [...s])).toEqual([[1, 2, 3], [], [9]]);
  });

  it("writes every byte of a body cut from Node's shared pool", () => {
    // Bodies taken one after another from the pool, over bytes a larger one left behind.
    encodeFrames([new Uint8Array(2000).fill(0xee)]);
    for (let i = 0; i < 50; i++) {
      const body = encodeFrames([bytes(i), bytes(), bytes(1, 2)]);
      expect(Buffer.isBuffer(body)).toBe(true);
      expect([...body]).toEqual([0, 0, 0, 1, i, 0, 0, 0, 0, 0, 0, 0, 2, 1, 2]);
    }
  });

  it("decodes an empty body as no sections", () => {
    expect(decodeFrames(new Uint8Array(0))).toEqual([]);
  });

  it("decodes sections of a body that is a view into a larger buffer", () => {
    const inner = encodeFrames([bytes(7, 8)]);
    const outer = new Uint8Array(inner.byteLength + 10);
    outer.set(inner, 5);
    const view = outer.subarray(5, 5 + inner.byteLength);
    expect(decodeFrames(view).map((s) => [...s])).toEqual([[7, 8]]);
  });

  it("refuses a body that ends inside a length or a section", () => {
    expect(invalid(() => decodeFrames(bytes(0, 0))).code).toBe("INVALID_INPUT");
    expect(invalid(() => decodeFrames(bytes(0, 0, 0, 5, 1, 2))).message).toMatch(
      /longer than the bytes that follow/,
    );
    expect(invalid(() => decodeFrames(bytes(0, 0, 0, 1, 1, 0))).message).toMatch(
      /ends inside a section length/,
    );
  });
});

describe("task frames", () => {
  const task = {
    header: { version: 2 as const, request: 3, task: 2, first: 2, count: 2 },
    func: text('{"name":"f","source":"def f(x): return x"}'),
    ns: bytes(),
    args: [bytes(0x80, 4, 0x2e), bytes(0x80, 4, 0x4e, 0x2e)],
  };

  it("round-trips", () => {
    const decoded = decodeTaskFrames(plain(encodeTaskFrames(task)));
    expect(decoded.header).toEqual(task.header);
    expect(decoded.func).toEqual(task.func);
    expect(decoded.ns).toEqual(task.ns);
    expect(decoded.args).toEqual(task.args);
  });

  it("encodes the same reply from its arguments encoded a run at a time", () => {
    const { header, func, ns, args } = task;
    const runs = [encodeFrames(args.slice(0, 1)), encodeFrames(args.slice(1))];
    expect(plain(encodeTaskFramesOfRuns({ header, func, ns, runs, count: 2 }))).toEqual(
      plain(encodeTaskFrames(task)),
    );
    expect(() => encodeTaskFramesOfRuns({ header, func, ns, runs, count: 1 })).toThrow(
      /says 2 argument tuples but 1/,
    );
  });

  it("refuses a header whose count disagrees with the sections", () => {
    const body = encodeFrames([
      text(JSON.stringify({ ...task.header, count: 3 })),
      task.func,
      task.ns,
      ...task.args,
    ]);
    expect(invalid(() => decodeTaskFrames(body)).code).toBe("INVALID_INPUT");
    expect(() => encodeTaskFrames({ ...task, args: [] })).toThrow(/says 2 argument tuples/);
  });

  it("round-trips a retry task's indices", () => {
    const retry = {
      ...task,
      header: { ...task.header, task: 5, first: 1, count: 2, indices: [1, 4] },
    };
    expect(decodeTaskFrames(plain(encodeTaskFrames(retry))).header).toEqual(retry.header);
  });

  it("refuses indices that do not list the header's count from its first", () => {
    for (const indices of [[1], [2, 4], [1, -4], "1,4", [1, 4, 5]]) {
      const header = { ...task.header, first: 1, indices };
      const body = encodeFrames([text(JSON.stringify(header)), task.func, task.ns, ...task.args]);
      const error = invalid(() => decodeTaskFrames(body));
      expect(error.source).toBe("contracts");
      expect(error.message).toBe(
        "[sheepdog] [contracts] The task header's indices do not list its count of argument indices.",
      );
    }
  });

  it("refuses a header of another version or without its fields", () => {
    for (const header of [
      { ...task.header, version: 1 },
      { ...task.header, version: 3 },
      { version: 2 },
      [2],
      "x",
      null,
    ]) {
      const body = encodeFrames([text(JSON.stringify(header)), task.func, task.ns]);
      expect(invalid(() => decodeTaskFrames(body)).message).toMatch(/wire version 2/);
    }
  });
});

describe("report frames", () => {
  it("round-trips results and errors", () => {
    const reports = [
      { index: 4, kind: "result" as const, payload: bytes(0x80, 4, 0x2e) },
      { index: 5, kind: "error" as const, payload: text("Traceback ...\nValueError: no") },
    ];
    expect(decodeReports(plain(encodeReports(reports)))).toEqual(reports);
  });

  it("refuses headers that do not list one report per payload", () => {
    const cases = [
      encodeFrames([]),
      encodeFrames([text("not json")]),
      encodeFrames([bytes(0xff, 0xfe)]),
      encodeFrames([text('{"version":2,"reports":[]}'), bytes(1)]),
      encodeFrames([text('{"version":2,"reports":[{"index":0,"kind":"result"}]}')]),
      encodeFrames([text('{"version":2,"reports":[{"index":-1,"kind":"result"}]}'), bytes(1)]),
      encodeFrames([text('{"version":2,"reports":[{"index":1.5,"kind":"result"}]}'), bytes(1)]),
      encodeFrames([text('{"version":2,"reports":[{"index":0,"kind":"maybe"}]}'), bytes(1)]),
      encodeFrames([text('{"version":2,"reports":[null]}'), bytes(1)]),
      encodeFrames([text('{"version":3,"reports":[]}')]),
      encodeFrames([text('{"version":2,"reports":{}}')]),
    ];
    for (const body of cases) expect(invalid(() => decodeReports(body)).code).toBe("INVALID_INPUT");
  });

  it("accepts an empty post", () => {
    expect(decodeReports(encodeReports([]))).toEqual([]);
  });

  it("round-trips each report's facts, and decodes a report without any as before", () => {
    const reports = [
      { index: 0, kind: "result" as const, payload: bytes(0x80, 4, 0x2e), ...facts },
      { index: 1, kind: "error" as const, payload: text("Traceback"), host: "node-4" },
      { index: 2, kind: "result" as const, payload: bytes(0x80, 4, 0x2e) },
    ];
    const decoded = decodeReports(plain(encodeReports(reports)));
    expect(decoded.map((report) => ({ ...report }))).toStrictEqual(reports);
    expect(Object.keys(decoded[2] ?? {})).toEqual(["index", "kind", "payload"]);
  });

  it("ignores fields it does not know", () => {
    const header = '{"version":2,"reports":[{"index":0,"kind":"error","cpu":9,"host":"n"}]}';
    const decoded = decodeReports(plain(encodeFrames([text(header), text("e")])));
    expect(decoded.map((report) => ({ ...report }))).toStrictEqual([
      { index: 0, kind: "error", host: "n", payload: text("e") },
    ]);
  });

  it("refuses a post whose facts have the wrong type or are out of bounds", () => {
    const bad = [
      '"startedAt":-1',
      '"startedAt":"1700000000000"',
      '"endedAt":null',
      '"host":""',
      `"host":"${"h".repeat(256)}"`,
      '"host":7',
      '"host":"node\\u0000"',
      '"host":"node\\n1"',
      '"peakMemoryBytes":1.5',
      '"peakMemoryBytes":-1',
      '"peakMemoryBytes":1e300',
      '"attempt":0',
      '"log":["a"]',
      '"log":null',
    ];
    for (const field of bad) {
      const header = `{"version":2,"reports":[{"index":0,"kind":"result",${field}}]}`;
      const error = invalid(() => decodeReports(encodeFrames([text(header), bytes(1)])));
      expect(error.code).toBe("INVALID_INPUT");
      expect(error.message).toContain("A report's facts are malformed: ");
    }
  });
});

describe("report frames with a header of columns", () => {
  const header = (body: Uint8Array) =>
    JSON.parse(new TextDecoder().decode(decodeFrames(body)[0])) as unknown;
  const decodeColumns = (columns: string, payloads = 1) =>
    decodeReports(
      plain(
        encodeFrames([
          text(`{"version":2,"columns":{${columns}}}`),
          ...Array.from({ length: payloads }, () => bytes(1)),
        ]),
      ),
    );

  it("are what encodeReports writes: a value all reports share once, a column per fact some have", () => {
    const reports = [
      { index: 7, kind: "result" as const, payload: bytes(1), ...facts },
      {
        index: 8,
        kind: "result" as const,
        payload: bytes(2),
        ...facts,
        startedAt: 5,
        log: undefined,
      },
    ];
    expect(header(encodeReports(reports))).toStrictEqual({
      version: 2,
      columns: {
        index: [7, 8],
        kind: "result",
        startedAt: [facts.startedAt, 5],
        endedAt: facts.endedAt,
        host: "node-3",
        peakMemoryBytes: 123_456_789,
        attempt: 2,
        log: [facts.log, null],
      },
    });
    expect(
      header(
        encodeReports([
          reports[0] as (typeof reports)[0],
          { index: 9, kind: "error", payload: bytes(3) },
        ]),
      ),
    ).toMatchObject({
      columns: { index: [7, 9], kind: ["result", "error"], host: ["node-3", null] },
    });
    const sameLog = [0, 1].map((index) => ({
      index,
      kind: "result" as const,
      payload: bytes(1),
      log: "hi",
    }));
    expect(header(encodeReports(sameLog))).toMatchObject({
      columns: { index: [0, 1], kind: "result", log: ["hi", "hi"] },
    });
  });

  it("decode to the same reports as a header of entries", () => {
    const entries = [
      { index: 0, kind: "result", ...facts },
      { index: 1, kind: "error", host: "node-4" },
      { index: 2, kind: "result" },
    ];
    const payloads = [bytes(0x80, 4, 0x2e), text("Traceback"), bytes(0x80, 4, 0x2e)];
    const asEntries = encodeFrames([
      text(JSON.stringify({ version: 2, reports: entries })),
      ...payloads,
    ]);
    const asColumns = encodeReports(
      entries.map((entry, i) => ({ ...entry, payload: payloads[i] as Uint8Array }) as never),
    );
    expect(header(asColumns)).toHaveProperty("columns");
    const decoded = decodeReports(plain(asColumns));
    expect(decoded.map((report) => ({ ...report }))).toStrictEqual(
      decodeReports(plain(asEntries)).map((report) => ({ ...report })),
    );
    expect(Object.keys(decoded[2] ?? {})).toEqual(["index", "kind", "payload"]);
    expect(Object.keys(decoded[1] ?? {})).toEqual(["index", "kind", "payload", "host"]);
  });

  it("take a shared value for every report and a null in a column as no value", () => {
    const decoded = decodeColumns(
      '"index":[3,4],"kind":"error","host":"n","attempt":[null,3],"cpu":[1,2],"startedAt":[null,null]',
      2,
    );
    expect(decoded.map((report) => ({ ...report }))).toStrictEqual([
      { index: 3, kind: "error", payload: bytes(1), host: "n" },
      { index: 4, kind: "error", payload: bytes(1), host: "n", attempt: 3 },
    ]);
  });

  it("refuse columns that do not give one value per report", () => {
    const cases: [string, number][] = [
      ['"kind":"result"', 1],
      ['"index":0,"kind":"result"', 1],
      ['"index":[0],"kind":"result"', 2],
      ['"index":[0,1],"kind":["result"]', 2],
      ['"index":[0],"kind":null', 1],
      ['"index":[0]', 1],
      ['"index":[0],"kind":["maybe"]', 1],
      ['"index":[0],"kind":[null]', 1],
      ['"index":[-1],"kind":"result"', 1],
      ['"index":["0"],"kind":"result"', 1],
      ['"index":[0,1],"kind":"result","startedAt":[1]', 2],
      ['"index":[0],"kind":"result","host":null', 1],
      ['"index":[0,1],"kind":"result","log":"the same for all"', 2],
    ];
    for (const [columns, payloads] of cases) {
      const error = invalid(() => decodeColumns(columns, payloads));
      expect(error.code, columns).toBe("INVALID_INPUT");
    }
    expect(invalid(() => decodeColumns('"index":[0,1],"kind":["result"]', 2)).message).toContain(
      "The report header's kind column has 1 values for 2 reports.",
    );
    expect(invalid(() => decodeColumns('"index":[0],"kind":"result","log":"x"')).message).toContain(
      "The report header's log column is not a list.",
    );
    expect(
      invalid(() => decodeReports(encodeFrames([text('{"version":2,"columns":[]}')]))).code,
    ).toBe("INVALID_INPUT");
  });

  it("refuse a fact of the wrong type or out of bounds, shared or in its report's place", () => {
    const bad = [
      '"startedAt":-1',
      '"startedAt":"1700000000000"',
      '"host":""',
      '"host":7',
      '"host":"node\\n1"',
      '"peakMemoryBytes":1.5',
      '"attempt":0',
    ];
    for (const field of bad) {
      const [name, value] = field.split(/:(.*)/s) as [string, string];
      for (const columns of [field, `${name}:[null,${value}]`]) {
        const error = invalid(() => decodeColumns(`"index":[0,1],"kind":"result",${columns}`, 2));
        expect(error.code, columns).toBe("INVALID_INPUT");
        expect(error.message, columns).toContain("A report's facts are malformed: ");
      }
    }
    const log = invalid(() =>
      decodeColumns('"index":[0,1],"kind":"result","log":[null,{"a":1}]', 2),
    );
    expect(log.message).toContain("A report's facts are malformed: ");
  });
});
