import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { emptyDictsThenJunk, emptyLists, MB } from "./__fixtures__/hostile-pickles.js";

// Core's build checks large results on a worker thread as its source does (see
// internal/result-checker.test.ts): a program that imports the built package posts results to
// a Sheepdog's server, and ends by itself once its server is closed, closed instance or not.

const run = promisify(execFile);
const resolveFrom = createRequire(import.meta.url);
const url = (path: string) => JSON.stringify(pathToFileURL(path).href);

/** Posts each file as a result of its own task, timing this thread; prints what was stored. */
const PROGRAM = `
import { readFileSync } from "node:fs";
import { createSheepdog } from ${url(join(import.meta.dirname, "../dist/index.js"))};
import { memoryStore } from ${url(resolveFrom.resolve("@sheepdog/contracts/testing"))};
import {
  encodeReports, hashToken, macKey, REPORTS_CONTENT_TYPE, signWorkerRequest, WIRE_VERSION,
} from ${url(resolveFrom.resolve("@sheepdog/contracts"))};

const [ending, ...files] = process.argv.slice(2);
const payloads = files.map((file) => new Uint8Array(readFileSync(file)));
const store = memoryStore();
const request = await store.createRequest({
  func: new TextEncoder().encode(JSON.stringify({ name: "f", source: "def f():\\n    pass\\n" })),
  ns: new Uint8Array([0x80, 4, 0x7d, 0x2e]),
  args: payloads.map(() => new Uint8Array([0x80, 4, 0x4e, 0x2e])),
  meta: {},
});
const sheepdog = createSheepdog({ store });
const server = await sheepdog.serve({ port: 0 });
let last = performance.now();
let longestGapMs = 0;
const ticker = setInterval(() => {
  longestGapMs = Math.max(longestGapMs, performance.now() - last);
  last = performance.now();
}, 5);
const replies = [];
for (const [index, payload] of payloads.entries()) {
  const path = "/v" + WIRE_VERSION + "/requests/" + request.id + "/tasks/" + (index + 1) + "/reports";
  const body = encodeReports([{ index, kind: "result", payload }]);
  const key = macKey(hashToken(request.token));
  const { headers } = signWorkerRequest(key, { method: "POST", url: server.url, path, body });
  const reply = await fetch(server.url + path, {
    method: "POST",
    headers: { ...headers, "content-type": REPORTS_CONTENT_TYPE },
    body,
  });
  replies.push(await reply.json());
}
clearInterval(ticker);
const results = (await store.getResults(request.id)).filter((row) => row.result).map((row) => row.index);
const errors = (await store.getErrors(request.id)).map(({ index, error }) => [index, error]);
console.log(JSON.stringify({ replies, longestGapMs, results, errors }));
if (ending === "close") await sheepdog.close();
else await server.close();
`;

let dir: string;
let files: string[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "sheepdog-dist-check-"));
  writeFileSync(join(dir, "post.mjs"), PROGRAM);
  const payloads = [emptyLists(MB), emptyDictsThenJunk(MB), new Uint8Array([0x80, 4, 0x4e, 0x2e])];
  files = payloads.map((payload, i) => {
    const file = join(dir, `result-${i}.pickle`);
    writeFileSync(file, payload);
    return file;
  });
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe("core's build", () => {
  for (const ending of ["close", "leave open"]) {
    it(`decodes large results on a worker thread, and the program ends (instance: ${ending})`, {
      timeout: 60_000,
    }, async () => {
      // A worker thread left running would keep the program alive past the timeout.
      const post = async () => {
        const { stdout } = await run(process.execPath, [join(dir, "post.mjs"), ending, ...files], {
          cwd: dir,
          timeout: 30_000,
        });
        return JSON.parse(stdout.trim().split("\n").at(-1) ?? "null");
      };
      // Up to three runs: a busy machine can hold the program off the CPU for longer than the
      // bound now and then; decoding on the program's own thread fails every run.
      let outcome = await post();
      for (let again = 0; again < 2 && !(outcome.longestGapMs < 250); again++)
        outcome = await post();
      expect(outcome.replies).toEqual(files.map(() => ({ stored: 1, duplicates: 0 })));
      expect(outcome.results).toEqual([0, 2]);
      expect(outcome.errors).toEqual([[1, expect.stringMatching(/Cannot decode pickle at byte/)]]);
      // Decoded on this thread, a megabyte of empty lists or dicts holds it for half a second.
      expect(outcome.longestGapMs).toBeLessThan(250);
    });
  }
});
