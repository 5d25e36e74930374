import { describe, expect, it } from "vitest";
import { tokenMatches } from "../../token.js";
import { show, utf8 } from "./bytes.js";
import { expectFailure } from "./expect-failure.js";
import type { StoreSuite } from "./suite.js";

/**
 * The "lifecycle" group: close, data that survives close and reopen, and (when `sharedOpen`)
 * two stores open on the same data at once.
 */
export function describeLifecycle(suite: StoreSuite, sharedOpen: boolean): void {
  describe("lifecycle", () => {
    closeTests(suite);
    reopenTest(suite);
    sharedOpenTest(suite, sharedOpen);
  });
}

/** Every call after close is CLOSED; calls in flight when closed finish. */
function closeTests(suite: StoreSuite): void {
  const { open, create } = suite;

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
}

/** Everything a store holds is the same after close and reopen. */
function reopenTest(suite: StoreSuite): void {
  const { open, create } = suite;

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
}

/** Two stores on the same data keep one report per task between them. */
function sharedOpenTest(suite: StoreSuite, sharedOpen: boolean): void {
  const { open, create } = suite;

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
}
