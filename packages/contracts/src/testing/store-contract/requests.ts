import { describe, expect, it } from "vitest";
import { tokenMatches } from "../../token.js";
import { asBuffer, show, utf8 } from "./bytes.js";
import { expectFailure } from "./expect-failure.js";
import type { StoreSuite } from "./suite.js";

/** The "requests" group: creating requests, reading, listing them, and updating their meta. */
export function describeRequests(suite: StoreSuite): void {
  describe("requests", () => {
    requestCreationTests(suite);
    requestLookupTests(suite);
  });
}

/** Creating requests: ids and tokens, zero tasks, bytes copied in, input of the wrong type. */
function requestCreationTests(suite: StoreSuite): void {
  const { open, create } = suite;

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
}

/** Finding requests: unknown ids from every method, merged meta, the list with its counts. */
function requestLookupTests(suite: StoreSuite): void {
  const { open, create } = suite;

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
}
