import { spawn, spawnSync } from "node:child_process";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { SheepdogError } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { PYTHON } from "./__fixtures__/python.js";
import { decode, encode, type PickleProtocol } from "./index.js";

// CPython's own pickle tests (Debian's libpython3.11-testsuite, which the test cluster's set-up
// installs) hold and build about 11,000 pickles that CPython loads: the DATA0 to DATA6 constants,
// Python 2 pickles, recursive values, subclasses of every builtin, reductions of every shape.
// Each is decoded here, encoded again at every protocol, and CPython must load the re-encoding to
// a value equal to what it loads from the original; or the codec refuses it, saying why.

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "__fixtures__");
const env = {
  ...process.env,
  PYTHONPATH: fixtures,
  PYTHONHASHSEED: "0",
  PYTHONDONTWRITEBYTECODE: "1",
};
const WRITE: PickleProtocol[] = [2, 3, 4, 5];

/**
 * The refusals expected of the codec on CPython's suite: {K(s)} where K's constructor argument is
 * the set s itself. CPython writes it with EMPTY_SET and ADDITEMS from protocol 4; before, a set
 * is constructed from its items, and CPython cannot write this cycle either.
 */
const EXPECTED_REFUSAL =
  /@[23]: .*cycle through its own constructor arguments that Python cannot rebuild/;

function suiteIsInstalled(): boolean {
  const probe =
    "import importlib.util, sys; sys.exit(importlib.util.find_spec('test.pickletester') is None)";
  return spawnSync(PYTHON, ["-c", probe], { env }).status === 0;
}

function describeWithSuite(name: string, body: () => void): void {
  if (suiteIsInstalled()) {
    describe(name, body);
    return;
  }
  const message =
    '[serialise] CPython\'s pickle tests (test.pickletester) are not installed. Install them with "apt-get install libpython3.11-testsuite" (tooling/testcluster/up does).';
  if (process.env.CI === "true") throw new Error(`${message} Under CI=true this test must run.`);
  console.warn(`\n${"!".repeat(80)}\n${message}\nSkipping "${name}".\n${"!".repeat(80)}\n`);
  describe.skip(name, body);
}

interface Refusal {
  index: number;
  protocol: PickleProtocol | "decode";
  error: unknown;
}

/** Decodes each pickle and encodes it at every protocol, sending each encoding to `send`. */
function reencodeAll(
  pickles: string[],
  send: (answer: object) => void,
): { refusals: Refusal[]; sent: number } {
  const refusals: Refusal[] = [];
  let sent = 0;
  pickles.forEach((pickle, index) => {
    let value: unknown;
    try {
      value = decode(Buffer.from(pickle, "base64"));
    } catch (error) {
      refusals.push({ index, protocol: "decode", error });
      return;
    }
    for (const protocol of WRITE) {
      try {
        const bytes = encode(value, { protocol });
        send({ index, protocol, pickle: Buffer.from(bytes).toString("base64") });
        sent++;
      } catch (error) {
        refusals.push({ index, protocol, error });
      }
    }
  });
  return { refusals, sent };
}

describeWithSuite("CPython's own pickle test data", () => {
  it("round-trips through decode and encode, or is refused with a clear error", {
    timeout: 180_000,
  }, async () => {
    const child = spawn(PYTHON, [join(fixtures, "cpython_suite.py")], { env });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    const lines = createInterface({ input: child.stdout, crlfDelay: Number.POSITIVE_INFINITY })[
      Symbol.asyncIterator
    ]();
    const next = async () => {
      const line = await lines.next();
      if (line.done) throw new Error(`cpython_suite.py ended: ${stderr}`);
      return JSON.parse(line.value);
    };
    const { pickles, missing } = (await next()) as { pickles?: string[]; missing?: string };
    expect(missing).toBeUndefined();
    const corpus = pickles as string[];
    // Debian's Python 3.11 gives 10,999; far fewer would mean the tests stopped recording.
    expect(corpus.length).toBeGreaterThan(10_000);

    const { refusals, sent } = reencodeAll(corpus, (answer) => {
      child.stdin.write(`${JSON.stringify(answer)}\n`);
    });
    child.stdin.end(`${JSON.stringify({ done: true })}\n`);
    const { failures, compared } = (await next()) as {
      failures: { index: number; protocol: number; detail: string }[];
      compared: number;
    };

    expect(compared).toBe(sent);
    expect(failures.map((f) => `#${f.index} @${f.protocol}: ${f.detail}`)).toEqual([]);
    for (const { error } of refusals) {
      expect(SheepdogError.isInstance(error)).toBe(true);
      expect((error as SheepdogError).code).toMatch(/^PICKLE_(DECODE|ENCODE)$/);
    }
    const unexpected = refusals
      .map(({ index, protocol, error }) => `#${index} @${protocol}: ${(error as Error).message}`)
      .filter((text) => !EXPECTED_REFUSAL.test(text));
    expect(unexpected).toEqual([]);
    // Refusals stay the exception: a handful of pickles at two protocols.
    expect(refusals.length).toBeLessThan(20);
  });
});
