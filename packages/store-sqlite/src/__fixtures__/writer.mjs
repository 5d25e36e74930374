// One of the processes of processes.test.ts: writes results into a shared database file.
// Usage: node writer.mjs <dbfile> <request id> <worker> <workers> <per worker> <start at ms>
// It imports the package by its own name, so it runs the built dist.
import { sqliteStore } from "@sheepdog/store-sqlite";

const [file, requestArg, workerArg, workersArg, perWorkerArg, startArg] = process.argv.slice(2);
const id = Number(requestArg);
const worker = Number(workerArg);
const workers = Number(workersArg);
const perWorker = Number(perWorkerArg);
const encoder = new TextEncoder();
const value = (index) => encoder.encode(`w${worker}-${index}`);

const store = sqliteStore({ dbfile: file });
const won = new Uint8Array(Math.ceil((workers * perWorker) / 8));
const mark = (index, stored) => {
  if (stored) won[index >> 3] |= 1 << (index & 7);
};

// Open (and migrate, for the first one) before the start, then start together.
await store.counts(id);
while (Date.now() < Number(startArg)) await new Promise((resolve) => setTimeout(resolve, 1));

// A request of this worker's own, created while the others create theirs (two maps at once).
const mine = await store.createRequest({
  func: encoder.encode(`f${worker}`),
  ns: encoder.encode(`ns${worker}`),
  args: Array.from({ length: 2000 }, (_, i) => encoder.encode(`w${worker}-arg-${i}`)),
});

const own = worker * perWorker;
const half = Math.floor(perWorker / 2);
const neighbour = ((worker + 1) % workers) * perWorker;
const contested = Math.min(1000, perWorker);
// The first half of this worker's tasks one at a time, awaiting each, interleaved with
// batches that race the next worker for the first tasks of its range.
for (let i = 0; i < half; i += 1) {
  mark(own + i, await store.putResult(id, own + i, value(own + i)));
  if (i % 50 === 0 && i / 50 < contested / 50) {
    const first = neighbour + i;
    const reports = Array.from({ length: 50 }, (_, k) => ({
      index: first + k,
      kind: "result",
      value: value(first + k),
    }));
    const stored = await store.putReports(id, reports);
    for (const [k, s] of stored.entries()) mark(first + k, s);
  }
}
// The second half with 100 calls in flight, as a busy server makes them.
for (let start = half; start < perWorker; start += 100) {
  const indices = [];
  for (let i = start; i < Math.min(start + 100, perWorker); i += 1) indices.push(own + i);
  const stored = await Promise.all(
    indices.map((index) => store.putResult(id, index, value(index))),
  );
  for (const [k, s] of stored.entries()) mark(indices[k], s);
}
const decoder = new TextDecoder();
const myArgs = (await store.getArgs(mine.id, 0, 2000)).map((arg) => decoder.decode(arg));
const argsIntact = myArgs.every((arg, i) => arg === `w${worker}-arg-${i}`);
await store.close();
process.stdout.write(
  JSON.stringify({ worker, won: Buffer.from(won).toString("base64"), mine: mine.id, argsIntact }),
);
