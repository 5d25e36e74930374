import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { SheepdogError, type SheepdogErrorCode } from "../errors.js";
import type { RequestId, Store, StoreReport } from "../store.js";
import { tokenMatches } from "../token.js";

/**
 * What the suite hands the factory: a place for one test's data. Calling the factory again
 * with the same context (the same object) MUST open the same data — the suite closes a store
 * and opens another on its context to check that nothing is lost.
 */
export interface StoreContractContext {
  /** A fresh, empty directory for this test, deleted after it. */
  readonly dir: string;
}

/**
 * Opens a store on the data of `ctx`. A file-based store puts its file in `ctx.dir`; a store
 * that keeps its data elsewhere can key it by the context object (a `WeakMap`).
 */
export type StoreFactory = (ctx: StoreContractContext) => Store | Promise<Store>;

/** Options of {@link describeStoreContract}. */
export interface StoreContractOptions {
  /** How many tasks the big request has. @default 1_000_000 */
  manyTasks?: number;
  /** The size of the large argument and result, in bytes. @default 64 MiB */
  largeValueBytes?: number;
  /** Timeout of the heavy tests (many tasks, large values), in milliseconds. @default 120_000 */
  heavyTimeout?: number;
  /**
   * Whether two stores can be open on the same context at once (two processes sharing one
   * database file). When true, the suite races two stores against each other.
   * @default true
   */
  sharedOpen?: boolean;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** UTF-8 bytes of a string. */
function utf8(text: string): Uint8Array {
  return encoder.encode(text);
}

/** A readable form of bytes for assertions. */
function show(value: Uint8Array | null): string | null {
  return value === null ? null : decoder.decode(value);
}

function asBuffer(value: Uint8Array): Buffer {
  return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
}

/** Bytes that differ at every offset, so that a shifted or truncated copy is noticed. */
function patterned(size: number, seed: number): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i += 1) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

function* manyArgs(count: number): Generator<Uint8Array> {
  for (let i = 0; i < count; i += 1) {
    const arg = new Uint8Array(8);
    const view = new DataView(arg.buffer);
    view.setUint32(0, i, true);
    view.setUint32(4, (i * 2654435761) >>> 0, true);
    yield arg;
  }
}

function argIndex(arg: Uint8Array): number {
  const view = new DataView(arg.buffer, arg.byteOffset, arg.byteLength);
  const index = view.getUint32(0, true);
  return arg.byteLength === 8 && view.getUint32(4, true) === (index * 2654435761) >>> 0
    ? index
    : -1;
}

/**
 * Calls `start`, checks that it did not throw synchronously, and that the promise it returned
 * rejects with a {@link SheepdogError} of that code.
 */
async function expectFailure(
  start: () => Promise<unknown>,
  code: SheepdogErrorCode,
): Promise<SheepdogError> {
  let promise: Promise<unknown> | undefined;
  expect(() => {
    promise = start();
  }, "store methods must reject, never throw synchronously").not.toThrow();
  let caught: unknown;
  try {
    await promise;
  } catch (error) {
    caught = error;
  }
  if (!SheepdogError.isInstance(caught)) {
    throw new Error(
      `Expected a SheepdogError with code ${code}, but ${caught === undefined ? "the call succeeded" : `got ${String(caught)}`}.`,
    );
  }
  expect(caught.code).toBe(code);
  return caught;
}

/**
 * Registers a vitest suite that checks a {@link Store} against the contract: the request
 * lifecycle, argument order, first-report-wins under concurrency, counts, results and errors,
 * listing, errors for unknown requests and tasks and after close, values up to 64 MiB, a
 * request of 1,000,000 tasks, and data that survives close and reopen. Optional methods
 * (`putReports`, `resetTasks`) are checked when the store has them.
 *
 * @example
 * ```ts
 * import { join } from "node:path";
 * import { describeStoreContract } from "@sheepdog/contracts/testing";
 * import { sqliteStore } from "@sheepdog/store-sqlite";
 *
 * describeStoreContract("sqlite", (ctx) => sqliteStore({ dbfile: join(ctx.dir, "s.sqlite") }));
 * ```
 */
export function describeStoreContract(
  name: string,
  factory: StoreFactory,
  options: StoreContractOptions = {},
): void {
  const manyTasks = options.manyTasks ?? 1_000_000;
  const largeBytes = options.largeValueBytes ?? 64 * 1024 * 1024;
  const heavyTimeout = options.heavyTimeout ?? 120_000;
  const sharedOpen = options.sharedOpen ?? true;

  describe(`Store contract: ${name}`, () => {
    let ctx: StoreContractContext;
    let opened: Store[] = [];

    async function open(): Promise<Store> {
      const store = await factory(ctx);
      opened.push(store);
      return store;
    }

    async function create(
      store: Store,
      tasks: number,
      meta?: Record<string, unknown>,
    ): Promise<RequestId> {
      const args = Array.from({ length: tasks }, (_, i) => utf8(`arg ${i}`));
      const created = await store.createRequest({
        func: utf8("func"),
        ns: utf8("ns"),
        args,
        ...(meta ? { meta } : {}),
      });
      return created.id;
    }

    beforeEach(async () => {
      ctx = Object.freeze({ dir: await mkdtemp(join(tmpdir(), "sheepdog-store-contract-")) });
      opened = [];
    });

    afterEach(async () => {
      for (const store of opened) await store.close();
      await rm(ctx.dir, { recursive: true, force: true });
    });

    describe("requests", () => {
      it("creates requests with increasing ids and a token kept only as its hash", async () => {
        const store = await open();
        const before = Date.now();
        const first = await store.createRequest({
          func: utf8("def f(a): return a"),
          ns: utf8("namespace"),
          args: [utf8("a0"), utf8("a1"), utf8("a2")],
          meta: { host: "fear", jobs: ["17"] },
        });
        const second = await store.createRequest({ func: utf8("g"), ns: utf8(""), args: [] });
        const after = Date.now();

        expect(second.id).toBeGreaterThan(first.id);
        expect(first.token).not.toBe(second.token);
        expect(first.token.length).toBeGreaterThanOrEqual(32);

        const info = await store.getRequest(first.id);
        expect(info.id).toBe(first.id);
        expect(show(info.func)).toBe("def f(a): return a");
        expect(show(info.ns)).toBe("namespace");
        expect(info.tasks).toBe(3);
        expect(info.meta).toEqual({ host: "fear", jobs: ["17"] });
        expect(info.createdAt).toBeGreaterThanOrEqual(before);
        expect(info.createdAt).toBeLessThanOrEqual(after);
        expect(tokenMatches(first.token, info.tokenHash)).toBe(true);
        expect(tokenMatches(second.token, info.tokenHash)).toBe(false);
        expect(asBuffer(info.tokenHash).toString("utf8")).not.toContain(first.token);

        const empty = await store.getRequest(second.id);
        expect(empty.tasks).toBe(0);
        expect(empty.meta).toEqual({});
        expect(show(empty.ns)).toBe("");
        expect(tokenMatches(second.token, empty.tokenHash)).toBe(true);
      });

      it("handles a request with zero tasks", async () => {
        const store = await open();
        const id = await create(store, 0);
        expect(await store.counts(id)).toEqual({ tasks: 0, results: 0, errors: 0 });
        expect(await store.getResults(id)).toEqual([]);
        expect(await store.getErrors(id)).toEqual([]);
        await expectFailure(() => store.putResult(id, 0, utf8("x")), "TASK_NOT_FOUND");
        await expectFailure(() => store.getArgs(id, 0), "TASK_NOT_FOUND");
      });

      it("keeps the bytes it was given, even if the caller reuses its buffers", async () => {
        const store = await open();
        const func = utf8("func");
        const arg = utf8("arg");
        const { id } = await store.createRequest({ func, ns: utf8("ns"), args: [arg, arg] });
        func.fill(0);
        arg.fill(0);
        const result = utf8("result");
        await store.putResult(id, 0, result);
        result.fill(0);
        expect(show((await store.getRequest(id)).func)).toBe("func");
        expect((await store.getArgs(id, 0, 2)).map(show)).toEqual(["arg", "arg"]);
        expect(show((await store.getResults(id))[0]?.result ?? null)).toBe("result");
      });

      it("rejects input of the wrong type with INVALID_INPUT and stores nothing", async () => {
        const store = await open();
        const bad = "not bytes" as unknown as Uint8Array;
        await expectFailure(
          () => store.createRequest({ func: utf8("f"), ns: utf8("n"), args: [utf8("a"), bad] }),
          "INVALID_INPUT",
        );
        await expectFailure(
          () => store.createRequest({ func: bad, ns: utf8("n"), args: [] }),
          "INVALID_INPUT",
        );
        expect(await store.listRequests()).toEqual([]);
        const id = await create(store, 2);
        await expectFailure(() => store.putResult(id, 0, bad), "INVALID_INPUT");
        await expectFailure(() => store.putError(id, 1, 42 as unknown as string), "INVALID_INPUT");
        expect(await store.counts(id)).toEqual({ tasks: 2, results: 0, errors: 0 });
      });

      it("answers REQUEST_NOT_FOUND for an unknown request, from every method", async () => {
        const store = await open();
        const id = await create(store, 1);
        const unknown = id + 1000;
        await expectFailure(() => store.getRequest(unknown), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.getArgs(unknown, 0), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.putResult(unknown, 0, utf8("r")), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.putError(unknown, 0, "e"), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.updateMeta(unknown, { a: 1 }), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.counts(unknown), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.getResults(unknown), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.getErrors(unknown), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.unreported(unknown, 0, 1), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.getRequest(0), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.getRequest(-1), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.getRequest(1.5), "REQUEST_NOT_FOUND");
        await expectFailure(() => store.getRequest(Number.NaN), "REQUEST_NOT_FOUND");
        if (store.putReports) {
          const { putReports } = store;
          await expectFailure(
            () => putReports.call(store, unknown, [{ index: 0, kind: "error", value: "e" }]),
            "REQUEST_NOT_FOUND",
          );
        }
        if (store.resetTasks) {
          const { resetTasks } = store;
          await expectFailure(() => resetTasks.call(store, unknown, [0]), "REQUEST_NOT_FOUND");
        }
      });

      it("merges meta shallowly, last write winning", async () => {
        const store = await open();
        const id = await create(store, 1, { host: "fear", jobs: ["1"] });
        await store.updateMeta(id, { jobs: ["1", "2"], port: 8080 });
        await store.updateMeta(id, { port: 8081, nested: { a: 1 } });
        const expected = { host: "fear", jobs: ["1", "2"], port: 8081, nested: { a: 1 } };
        expect((await store.getRequest(id)).meta).toEqual(expected);
        expect((await store.listRequests()).find((r) => r.id === id)?.meta).toEqual(expected);
      });

      it("lists requests oldest first, with their counts", async () => {
        const store = await open();
        expect(await store.listRequests()).toEqual([]);
        const before = Date.now();
        const a = await create(store, 3, { name: "a" });
        const b = await create(store, 0);
        const c = await create(store, 2);
        await store.putResult(a, 1, utf8("r"));
        await store.putError(a, 2, "boom");
        await store.putError(c, 0, "bang");
        const list = await store.listRequests();
        expect(list.map((r) => r.id)).toEqual([a, b, c]);
        expect(list.map(({ createdAt: _, ...rest }) => rest)).toEqual([
          { id: a, meta: { name: "a" }, tasks: 3, results: 1, errors: 1 },
          { id: b, meta: {}, tasks: 0, results: 0, errors: 0 },
          { id: c, meta: {}, tasks: 2, results: 0, errors: 1 },
        ]);
        for (const summary of list) expect(summary.createdAt).toBeGreaterThanOrEqual(before);
      });
    });

    describe("arguments", () => {
      it("keeps the arguments in order and reads any range of them", async () => {
        const store = await open();
        const id = await create(store, 1000);
        const all = await store.getArgs(id, 0, 1000);
        expect(all.map(show)).toEqual(Array.from({ length: 1000 }, (_, i) => `arg ${i}`));
        expect((await store.getArgs(id, 10, 5)).map(show)).toEqual([
          "arg 10",
          "arg 11",
          "arg 12",
          "arg 13",
          "arg 14",
        ]);
        expect((await store.getArgs(id, 999)).map(show)).toEqual(["arg 999"]);
        expect((await store.getArgs(id, 0)).map(show)).toEqual(["arg 0"]);
      });

      it("takes the arguments from any iterable", async () => {
        const store = await open();
        function* args(): Generator<Uint8Array> {
          for (let i = 0; i < 50; i += 1) yield utf8(`gen ${i}`);
        }
        const { id } = await store.createRequest({ func: utf8("f"), ns: utf8("n"), args: args() });
        expect((await store.getArgs(id, 0, 50)).map(show)).toEqual(
          Array.from({ length: 50 }, (_, i) => `gen ${i}`),
        );
      });

      it("answers TASK_NOT_FOUND for a range outside the request", async () => {
        const store = await open();
        const id = await create(store, 10);
        await expectFailure(() => store.getArgs(id, 10), "TASK_NOT_FOUND");
        await expectFailure(() => store.getArgs(id, -1), "TASK_NOT_FOUND");
        await expectFailure(() => store.getArgs(id, 8, 3), "TASK_NOT_FOUND");
        await expectFailure(() => store.getArgs(id, 0, 11), "TASK_NOT_FOUND");
        await expectFailure(() => store.getArgs(id, 0.5), "TASK_NOT_FOUND");
        await expectFailure(() => store.getArgs(id, Number.NaN), "TASK_NOT_FOUND");
        await expectFailure(() => store.getArgs(id, 0, -1), "TASK_NOT_FOUND");
      });
    });

    describe("reports", () => {
      it("stores results and errors, and counts them", async () => {
        const store = await open();
        const id = await create(store, 5);
        expect(await store.putResult(id, 0, utf8("r0"))).toBe(true);
        expect(await store.putResult(id, 3, utf8("r3"))).toBe(true);
        expect(await store.putError(id, 4, "Traceback: ValueError ✗")).toBe(true);
        expect(await store.counts(id)).toEqual({ tasks: 5, results: 2, errors: 1 });

        const results = await store.getResults(id);
        expect(results.map((r) => [r.index, show(r.args), show(r.result)])).toEqual([
          [0, "arg 0", "r0"],
          [1, "arg 1", null],
          [2, "arg 2", null],
          [3, "arg 3", "r3"],
          [4, "arg 4", null],
        ]);
        const errors = await store.getErrors(id);
        expect(errors.map((e) => [e.index, show(e.args), e.error])).toEqual([
          [4, "arg 4", "Traceback: ValueError ✗"],
        ]);
      });

      it("keeps the first report of a task: a later result or error is ignored", async () => {
        const store = await open();
        const id = await create(store, 3);
        expect(await store.putResult(id, 0, utf8("first"))).toBe(true);
        expect(await store.putResult(id, 0, utf8("second"))).toBe(false);
        expect(await store.putError(id, 0, "late error")).toBe(false);
        expect(await store.putError(id, 1, "first error")).toBe(true);
        expect(await store.putError(id, 1, "second error")).toBe(false);
        expect(await store.putResult(id, 1, utf8("late result"))).toBe(false);
        expect(await store.counts(id)).toEqual({ tasks: 3, results: 1, errors: 1 });
        expect((await store.getResults(id)).map((r) => show(r.result))).toEqual([
          "first",
          null,
          null,
        ]);
        expect((await store.getErrors(id)).map((e) => [e.index, e.error])).toEqual([
          [1, "first error"],
        ]);
      });

      it("keeps exactly one of many concurrent reports for one task", async () => {
        const store = await open();
        const id = await create(store, 2);
        const outcomes = await Promise.all(
          Array.from({ length: 20 }, (_, k) =>
            k % 3 === 0
              ? store.putError(id, 1, `error ${k}`)
              : store.putResult(id, 1, utf8(`r${k}`)),
          ),
        );
        expect(outcomes.filter(Boolean)).toHaveLength(1);
        const winner = outcomes.indexOf(true);
        const counts = await store.counts(id);
        expect(counts.results + counts.errors).toBe(1);
        if (winner % 3 === 0) {
          expect((await store.getErrors(id)).map((e) => e.error)).toEqual([`error ${winner}`]);
          expect(counts.errors).toBe(1);
        } else {
          expect(show((await store.getResults(id))[1]?.result ?? null)).toBe(`r${winner}`);
          expect(counts.results).toBe(1);
        }
      });

      it("never counts past the number of tasks", async () => {
        const store = await open();
        const id = await create(store, 50);
        const reports: Promise<boolean>[] = [];
        for (let round = 0; round < 3; round += 1) {
          for (let i = 0; i < 50; i += 1) {
            reports.push(
              (i + round) % 2 === 0
                ? store.putResult(id, i, utf8(`r${round}`))
                : store.putError(id, i, `e${round}`),
            );
          }
        }
        const outcomes = await Promise.all(reports);
        expect(outcomes.filter(Boolean)).toHaveLength(50);
        const counts = await store.counts(id);
        expect(counts.tasks).toBe(50);
        expect(counts.results + counts.errors).toBe(50);
        expect(counts.results).toBe(25);
        expect((await store.getErrors(id)).length).toBe(25);
      });

      it("says which tasks of a range have no report yet", async () => {
        const store = await open();
        const id = await create(store, 6);
        expect(await store.unreported(id, 0, 6)).toEqual([0, 1, 2, 3, 4, 5]);
        await store.putResult(id, 1, utf8("r1"));
        await store.putError(id, 4, "e4");
        expect(await store.unreported(id, 0, 6)).toEqual([0, 2, 3, 5]);
        expect(await store.unreported(id, 1, 1)).toEqual([]);
        expect(await store.unreported(id, 3, 3)).toEqual([3, 5]);
        expect(await store.unreported(id, 2, 0)).toEqual([]);
        await expectFailure(() => store.unreported(id, 4, 3), "TASK_NOT_FOUND");
        await expectFailure(() => store.unreported(id, -1, 2), "TASK_NOT_FOUND");
      });

      it("answers TASK_NOT_FOUND for an index outside the request, and stores nothing", async () => {
        const store = await open();
        const id = await create(store, 3);
        for (const index of [-1, 3, 1000, 0.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          await expectFailure(() => store.putResult(id, index, utf8("r")), "TASK_NOT_FOUND");
          await expectFailure(() => store.putError(id, index, "e"), "TASK_NOT_FOUND");
        }
        expect(await store.counts(id)).toEqual({ tasks: 3, results: 0, errors: 0 });
      });

      it("putReports (optional) stores a batch, first report winning within it", async (t) => {
        const store = await open();
        if (!store.putReports) {
          t.skip("this store has no putReports (an optional method)");
          return;
        }
        const id = await create(store, 4);
        expect(await store.putResult(id, 0, utf8("earlier"))).toBe(true);
        const batch: StoreReport[] = [
          { index: 0, kind: "result", value: utf8("too late") },
          { index: 1, kind: "result", value: utf8("r1") },
          { index: 2, kind: "error", value: "e2" },
          { index: 1, kind: "error", value: "duplicate in batch" },
          { index: 3, kind: "result", value: utf8("r3") },
        ];
        expect(await store.putReports(id, batch)).toEqual([false, true, true, false, true]);
        expect(await store.putReports(id, [])).toEqual([]);
        expect(await store.counts(id)).toEqual({ tasks: 4, results: 3, errors: 1 });
        expect((await store.getResults(id)).map((r) => show(r.result))).toEqual([
          "earlier",
          "r1",
          null,
          "r3",
        ]);
        expect((await store.getErrors(id)).map((e) => [e.index, e.error])).toEqual([[2, "e2"]]);
      });

      it("putReports (optional) rejects a batch with a bad index and stores none of it", async (t) => {
        const store = await open();
        if (!store.putReports) {
          t.skip("this store has no putReports (an optional method)");
          return;
        }
        const id = await create(store, 3);
        const { putReports } = store;
        await expectFailure(
          () =>
            putReports.call(store, id, [
              { index: 0, kind: "result", value: utf8("r0") },
              { index: 3, kind: "result", value: utf8("r3") },
            ]),
          "TASK_NOT_FOUND",
        );
        await expectFailure(
          () =>
            putReports.call(store, id, [
              { index: 1, kind: "error", value: "e1" },
              { index: -1, kind: "error", value: "e" },
            ]),
          "TASK_NOT_FOUND",
        );
        expect(await store.counts(id)).toEqual({ tasks: 3, results: 0, errors: 0 });
        expect(await store.putResult(id, 0, utf8("r0"))).toBe(true);
      });

      it("putReports (optional) races putResult fairly: one report per task", async (t) => {
        const store = await open();
        if (!store.putReports) {
          t.skip("this store has no putReports (an optional method)");
          return;
        }
        const id = await create(store, 100);
        const batch: StoreReport[] = Array.from({ length: 100 }, (_, i) => ({
          index: i,
          kind: "result",
          value: utf8(`batch ${i}`),
        }));
        const [single, batched] = await Promise.all([
          Promise.all(Array.from({ length: 100 }, (_, i) => store.putError(id, i, `single ${i}`))),
          store.putReports(id, batch),
        ]);
        for (let i = 0; i < 100; i += 1) expect(Number(single[i]) + Number(batched[i])).toBe(1);
        const counts = await store.counts(id);
        expect(counts.results).toBe(batched.filter(Boolean).length);
        expect(counts.errors).toBe(single.filter(Boolean).length);
      });

      it("getResultRange (optional) says what getResults says of a range, without args", async (t) => {
        const store = await open();
        if (!store.getResultRange) {
          t.skip("this store has no getResultRange (an optional method)");
          return;
        }
        const { getResultRange } = store;
        const range = (id: number, start: number, count: number) =>
          getResultRange.call(store, id, start, count);
        const id = await create(store, 50);
        for (let i = 0; i < 50; i++) {
          if (i % 5 === 0) continue;
          if (i % 7 === 0) await store.putError(id, i, `e${i}`);
          else await store.putResult(id, i, utf8(`r${i}`));
        }
        const all = (await store.getResults(id)).map((r) => show(r.result));
        expect((await range(id, 0, 50)).map(show)).toEqual(all);
        expect((await range(id, 13, 20)).map(show)).toEqual(all.slice(13, 33));
        expect((await range(id, 49, 1)).map(show)).toEqual([all[49]]);
        expect(await range(id, 50, 0)).toEqual([]);
        await expectFailure(() => range(id, 45, 6), "TASK_NOT_FOUND");
        await expectFailure(() => range(id, -1, 2), "TASK_NOT_FOUND");
        await expectFailure(() => range(id + 1000, 0, 1), "REQUEST_NOT_FOUND");
      });

      it("resetTasks (optional) forgets reports so that tasks can report again", async (t) => {
        const store = await open();
        if (!store.resetTasks) {
          t.skip("this store has no resetTasks (an optional method)");
          return;
        }
        const id = await create(store, 4);
        await store.putResult(id, 0, utf8("r0"));
        await store.putError(id, 1, "e1");
        await store.putResult(id, 2, utf8("r2"));
        await store.resetTasks(id, [0, 1, 3]);
        expect(await store.counts(id)).toEqual({ tasks: 4, results: 1, errors: 0 });
        expect(await store.getErrors(id)).toEqual([]);
        expect((await store.getResults(id)).map((r) => show(r.result))).toEqual([
          null,
          null,
          "r2",
          null,
        ]);
        expect(await store.putError(id, 0, "e0 again")).toBe(true);
        expect(await store.putResult(id, 1, utf8("r1 again"))).toBe(true);
        expect(await store.putResult(id, 2, utf8("not again"))).toBe(false);
        expect(await store.counts(id)).toEqual({ tasks: 4, results: 2, errors: 1 });
        const { resetTasks } = store;
        await expectFailure(() => resetTasks.call(store, id, [1, 4]), "TASK_NOT_FOUND");
        expect(await store.counts(id)).toEqual({ tasks: 4, results: 2, errors: 1 });
      });
    });

    describe("lifecycle", () => {
      it("rejects every call after close with CLOSED; a second close is harmless", async () => {
        const store = await open();
        const id = await create(store, 2);
        await store.close();
        await store.close();
        await expectFailure(
          () => store.createRequest({ func: utf8("f"), ns: utf8("n"), args: [] }),
          "CLOSED",
        );
        await expectFailure(() => store.getRequest(id), "CLOSED");
        await expectFailure(() => store.getArgs(id, 0), "CLOSED");
        await expectFailure(() => store.putResult(id, 0, utf8("r")), "CLOSED");
        await expectFailure(() => store.putError(id, 0, "e"), "CLOSED");
        await expectFailure(() => store.updateMeta(id, {}), "CLOSED");
        await expectFailure(() => store.counts(id), "CLOSED");
        await expectFailure(() => store.getResults(id), "CLOSED");
        await expectFailure(() => store.getErrors(id), "CLOSED");
        await expectFailure(() => store.listRequests(), "CLOSED");
        if (store.putReports) {
          const { putReports } = store;
          await expectFailure(() => putReports.call(store, id, []), "CLOSED");
        }
        if (store.resetTasks) {
          const { resetTasks } = store;
          await expectFailure(() => resetTasks.call(store, id, [0]), "CLOSED");
        }
      });

      it("finishes the calls in flight when closed", async () => {
        const store = await open();
        const id = await create(store, 20);
        const reports = Array.from({ length: 20 }, (_, i) => store.putResult(id, i, utf8(`r${i}`)));
        const closing = store.close();
        expect(await Promise.all(reports)).toEqual(Array(20).fill(true));
        await closing;
        const again = await open();
        expect(await again.counts(id)).toEqual({ tasks: 20, results: 20, errors: 0 });
      });

      it("keeps everything intact across close and reopen", async () => {
        const store = await open();
        const first = await store.createRequest({
          func: utf8("f"),
          ns: utf8("ns"),
          args: [utf8("a0"), utf8("a1"), utf8("a2")],
          meta: { host: "fear" },
        });
        const second = await create(store, 2);
        await store.putResult(first.id, 0, utf8("r0"));
        await store.putError(first.id, 2, "e2");
        await store.putResult(second, 1, utf8("s1"));
        await store.updateMeta(first.id, { jobs: ["9"] });
        const snapshot = {
          info: await store.getRequest(first.id),
          list: await store.listRequests(),
          results: await store.getResults(first.id),
          errors: await store.getErrors(first.id),
          counts: await store.counts(second),
        };
        await store.close();

        const reopened = await open();
        const info = await reopened.getRequest(first.id);
        expect(info.meta).toEqual({ host: "fear", jobs: ["9"] });
        expect(tokenMatches(first.token, info.tokenHash)).toBe(true);
        expect({
          ...info,
          func: show(info.func),
          ns: show(info.ns),
          tokenHash: [...info.tokenHash],
        }).toEqual({
          ...snapshot.info,
          func: show(snapshot.info.func),
          ns: show(snapshot.info.ns),
          tokenHash: [...snapshot.info.tokenHash],
        });
        expect(await reopened.listRequests()).toEqual(snapshot.list);
        const plain = (rows: { index: number; args: Uint8Array; result: Uint8Array | null }[]) =>
          rows.map((r) => [r.index, show(r.args), show(r.result)]);
        expect(plain(await reopened.getResults(first.id))).toEqual(plain(snapshot.results));
        expect(
          (await reopened.getErrors(first.id)).map((e) => [e.index, show(e.args), e.error]),
        ).toEqual(snapshot.errors.map((e) => [e.index, show(e.args), e.error]));
        expect(await reopened.counts(second)).toEqual(snapshot.counts);
        expect(await reopened.putResult(first.id, 0, utf8("again"))).toBe(false);
        expect(await reopened.putError(first.id, 1, "e1")).toBe(true);
        expect(await create(reopened, 1)).toBeGreaterThan(second);
      });

      it.runIf(sharedOpen)(
        "lets two stores share the same data, with one report per task between them",
        async () => {
          const a = await open();
          const b = await open();
          const [x, y] = await Promise.all([create(a, 300), create(b, 300)]);
          expect(x).not.toBe(y);
          expect((await b.getRequest(x)).tasks).toBe(300);
          const racing = await Promise.all(
            Array.from({ length: 300 }, (_, i) =>
              Promise.all([
                a.putResult(x, i, utf8(`a${i}`)),
                i % 2 === 0 ? b.putResult(x, i, utf8(`b${i}`)) : b.putError(x, i, `b${i}`),
              ]),
            ),
          );
          for (const [fromA, fromB] of racing) expect(Number(fromA) + Number(fromB)).toBe(1);
          const errors = racing.filter(([, fromB], i) => fromB && i % 2 === 1).length;
          const counts = await a.counts(x);
          expect(counts).toEqual({ tasks: 300, results: 300 - errors, errors });
          expect(await b.counts(x)).toEqual(counts);
          const results = await b.getResults(x);
          racing.forEach(([fromA], i) => {
            const got = results[i]?.result ?? null;
            if (fromA) expect(show(got)).toBe(`a${i}`);
            else if (i % 2 === 0) expect(show(got)).toBe(`b${i}`);
            else expect(got).toBeNull();
          });
        },
      );
    });

    describe("scale", () => {
      it(
        `stores values of ${largeBytes} bytes`,
        async () => {
          const store = await open();
          const bigArg = patterned(largeBytes, 1);
          const bigResult = patterned(largeBytes, 2);
          const bigError = "x".repeat(1024 * 1024);
          const { id } = await store.createRequest({
            func: utf8("f"),
            ns: patterned(1024 * 1024, 3),
            args: [utf8("small"), bigArg, utf8("small")],
          });
          expect(await store.putResult(id, 1, bigResult)).toBe(true);
          expect(await store.putError(id, 2, bigError)).toBe(true);
          const [arg] = await store.getArgs(id, 1);
          expect(arg?.byteLength).toBe(largeBytes);
          expect(asBuffer(arg as Uint8Array).equals(asBuffer(bigArg))).toBe(true);
          const results = await store.getResults(id);
          const result = results[1]?.result;
          expect(result?.byteLength).toBe(largeBytes);
          expect(asBuffer(result as Uint8Array).equals(asBuffer(bigResult))).toBe(true);
          expect(asBuffer(results[1]?.args as Uint8Array).equals(asBuffer(bigArg))).toBe(true);
          expect((await store.getErrors(id))[0]?.error).toBe(bigError);
          expect(
            asBuffer((await store.getRequest(id)).ns).equals(asBuffer(patterned(1024 * 1024, 3))),
          ).toBe(true);
        },
        heavyTimeout,
      );

      it(
        `holds a request of ${manyTasks} tasks`,
        async () => {
          const store = await open();
          const { id } = await store.createRequest({
            func: utf8("f"),
            ns: utf8("n"),
            args: manyArgs(manyTasks),
          });
          expect(await store.counts(id)).toEqual({ tasks: manyTasks, results: 0, errors: 0 });
          const last = manyTasks - 1;
          const middle = Math.floor(manyTasks / 2);
          expect((await store.getArgs(id, 0)).map(argIndex)).toEqual([0]);
          expect((await store.getArgs(id, last)).map(argIndex)).toEqual([last]);
          const range = await store.getArgs(id, middle, 1000);
          expect(range.map(argIndex)).toEqual(Array.from({ length: 1000 }, (_, i) => middle + i));
          await expectFailure(() => store.getArgs(id, manyTasks), "TASK_NOT_FOUND");

          expect(await store.putResult(id, last, utf8("last"))).toBe(true);
          expect(await store.putError(id, 0, "first")).toBe(true);
          expect(await store.counts(id)).toEqual({ tasks: manyTasks, results: 1, errors: 1 });

          const results = await store.getResults(id);
          expect(results).toHaveLength(manyTasks);
          let misplaced = 0;
          let withResult = 0;
          for (let i = 0; i < results.length; i += 1) {
            const row = results[i] as (typeof results)[number];
            if (row.index !== i || argIndex(row.args) !== i) misplaced += 1;
            if (row.result !== null) withResult += 1;
          }
          expect(misplaced).toBe(0);
          expect(withResult).toBe(1);
          expect(show(results[last]?.result ?? null)).toBe("last");
          expect(
            (await store.getErrors(id)).map((e) => [e.index, argIndex(e.args), e.error]),
          ).toEqual([[0, 0, "first"]]);
        },
        heavyTimeout,
      );
    });
  });
}
