// A client program for tests that run it inside a network namespace the cluster cannot reach
// (see isolatedClient in @sheepdog/testcluster). It runs one scenario with the built
// @sheepdog/core and prints what happened as JSON lines on stdout:
//   {"event": "route", "why": ...}                 (from verbose output, when asked)
//   {"event": "running", "request": N}             once the job is queued
//   {"event": "progress", ...MapProgress}
//   {"event": "done", "request": N, "results": [...], "errors": [...], "ms": N}
//   {"event": "failed", "code": ..., "message": ...}
// Scenarios: examples, map, serve-and-collect, recover, collect (a detached request's spool).
// Usage: node isolated-client.mjs '<json: { scenario, config, ... }>'

import { createSheepdog, py } from "@sheepdog/core";

const input = JSON.parse(process.argv[2] ?? "{}");
const say = (event) => process.stdout.write(`${JSON.stringify(event)}\n`);

const add = py`
def f(a, b):
    return a + b
`;

async function mapEvents(dog, f, args, options = {}) {
  const started = Date.now();
  let announced = false;
  const settled = await dog.mapSettled(f, args, {
    ...options,
    onProgress: (progress) => {
      if (!announced) {
        announced = true;
        say({ event: "running", request: progress.request });
      }
      if (input.progress) say({ event: "progress", ...progress });
    },
  });
  return {
    request: settled.request,
    results: settled.results.map((r) => (r.ok ? r.value : null)),
    errors: settled.results.map((r) => (r.ok ? null : r.error)),
    ms: Date.now() - started,
  };
}

/** The original's examples: a synchronous map, a namespace, an asynchronous map, errors. */
async function examples(dog) {
  // verbose: says on stderr which route the workers take back, and why.
  const sync = await dog.map(
    add,
    [
      [1, 1],
      [1, 2],
      [2, 2],
    ],
    { verbose: true },
  );
  const g = py`
def g(x):
    return x * scale
`;
  const withNs = await dog.map(
    py`
def f(x):
    return g(x) + 1
`,
    [[1], [2]],
    { ns: { g, scale: 10 } },
  );
  const request = await dog.mapAsync(add, [
    [5, 5],
    [6, 6],
  ]);
  const later = await dog.getResults(request, { block: true });
  const failing = await mapEvents(
    dog,
    py`
def f(x):
    return 1 / x
`,
    [[1], [0]],
  );
  return { sync, withNs, async: later.map(([, value]) => value), failing };
}

/** A `py` function from source text (the tag takes a template's strings). */
function pySource(text) {
  return py(Object.assign([text], { raw: [text] }));
}

/** A client that comes back after the one that submitted was killed: it serves the request. */
async function serveAndCollect(dog) {
  const server = await dog.serve({ request: input.request });
  try {
    const rows = await dog.getResults(input.request, { block: true });
    return { request: input.request, results: rows.map(([, value]) => value) };
  } finally {
    await server.close();
  }
}

/** A client that comes back after the job ended: it recovers the reports from the output. */
async function recoverAndRead(dog) {
  const outcome = await dog.recover(input.request);
  const rows = await dog.getResults(input.request);
  return { request: input.request, outcome, results: rows.map(([, value]) => value) };
}

/** A client that collects a detached request's spool: how long each result is, in order. */
async function collect(dog) {
  const rows = await dog.getResults(input.request, { block: true });
  return { request: input.request, results: rows.map(([, value]) => value?.length ?? value) };
}

const scenarios = {
  examples,
  collect,
  recover: recoverAndRead,
  "serve-and-collect": serveAndCollect,
  map: (dog) => mapEvents(dog, pySource(input.source), input.args, input.options ?? {}),
};

const dog = createSheepdog(input.config);
try {
  const scenario = scenarios[input.scenario];
  if (!scenario) throw new Error(`no scenario ${input.scenario}`);
  say({ event: "done", ...(await scenario(dog)) });
} catch (error) {
  say({ event: "failed", code: error?.code, message: String(error?.message ?? error) });
  process.exitCode = 1;
} finally {
  await dog.close();
}
