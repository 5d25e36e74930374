import { describeCluster } from "@sheepdog/testcluster";
import { afterAll, expect, it } from "vitest";
import { dropSchemas, testPostgres, throwawaySchema } from "./__fixtures__/postgres.js";
import { postgresStore } from "./postgres-store.js";

const utf8 = (text: string) => new TextEncoder().encode(text);
const text = (bytes: Uint8Array | null) => (bytes ? new TextDecoder().decode(bytes) : null);

describeCluster("postgresStore's reports", (cluster) => {
  const postgres = testPostgres(cluster);
  const schema = throwawaySchema("reports");
  afterAll(async () => {
    const admin = postgres.admin();
    await dropSchemas(admin, [schema]);
    await admin.end();
  });

  it("puts every report of a flush at its own task, whatever order they come in", async () => {
    await using store = postgresStore({ connectionString: postgres.url(), schema });
    const create = (n: number) =>
      store.createRequest({
        func: utf8("f"),
        ns: utf8(""),
        args: Array.from({ length: n }, (_, i) => utf8(`a${i}`)),
      });
    const { id: a } = await create(6);
    const { id: b } = await create(3);
    // One turn of the event loop: one statement, its reports sorted by key before they are sent.
    const outcomes = await Promise.all([
      store.putReports(b, [
        { index: 2, kind: "result", value: utf8("b2") },
        { index: 0, kind: "error", value: "b0 failed" },
      ]),
      store.putReports(a, [
        { index: 5, kind: "result", value: utf8("a5") },
        { index: 3, kind: "error", value: "a3 failed" },
        { index: 1, kind: "result", value: utf8("a1 longer value") },
        { index: 5, kind: "error", value: "later, ignored" },
        { index: 0, kind: "result", value: utf8("") },
      ]),
      store.putResult(a, 2, utf8("a2")),
    ]);
    expect(outcomes).toEqual([[true, true], [true, true, true, false, true], true]);
    expect((await store.getResults(a)).map((r) => text(r.result))).toEqual([
      "",
      "a1 longer value",
      "a2",
      null,
      null,
      "a5",
    ]);
    expect((await store.getResults(b)).map((r) => text(r.result))).toEqual([null, null, "b2"]);
    expect((await store.getErrors(a)).map((e) => [e.index, e.error])).toEqual([[3, "a3 failed"]]);
    expect((await store.getErrors(b)).map((e) => [e.index, e.error])).toEqual([[0, "b0 failed"]]);
    expect(await store.counts(a)).toEqual({ tasks: 6, results: 4, errors: 1 });
    expect(await store.counts(b)).toEqual({ tasks: 3, results: 1, errors: 1 });
  });

  it("stores an error whose text holds a NUL (as ␀) beside the other reports of its flush", async () => {
    await using store = postgresStore({ connectionString: postgres.url(), schema });
    const { id } = await store.createRequest({
      func: utf8("f"),
      ns: utf8(""),
      args: [utf8("a0"), utf8("a1"), utf8("a2")],
    });
    const outcomes = await Promise.all([
      store.putReports(id, [
        { index: 0, kind: "result", value: utf8("r0") },
        { index: 1, kind: "error", value: "ValueError: b'\\x00' is \0 here\0" },
      ]),
      store.putError(id, 2, "\0"),
    ]);
    expect(outcomes).toEqual([[true, true], true]);
    expect((await store.getErrors(id)).map((e) => [e.index, e.error])).toEqual([
      [1, "ValueError: b'\\x00' is ␀ here␀"],
      [2, "␀"],
    ]);
    expect(await store.counts(id)).toEqual({ tasks: 3, results: 1, errors: 2 });
  });

  it("puts the facts and log of every report of a flush at its own task, whatever the order", async () => {
    await using store = postgresStore({ connectionString: postgres.url(), schema });
    const create = (n: number) =>
      store.createRequest({
        func: utf8("f"),
        ns: utf8(""),
        args: Array.from({ length: n }, (_, i) => utf8(`a${i}`)),
      });
    const { id: a } = await create(5);
    const { id: b } = await create(2);
    const facts = (name: string) => ({ host: name, startedAt: name.length, log: `log of ${name}` });
    await Promise.all([
      store.putReports(b, [
        { index: 1, kind: "result", value: utf8("b1"), facts: facts("b1") },
        { index: 0, kind: "result", value: utf8("b0") },
      ]),
      store.putReports(a, [
        { index: 4, kind: "result", value: utf8("a4") },
        { index: 3, kind: "error", value: "a3", facts: { attempt: 3 } },
        { index: 1, kind: "result", value: utf8("a1"), facts: facts("a1") },
        { index: 0, kind: "error", value: "a0", facts: facts("a0 ✓") },
      ]),
    ]);
    const told = (name: string) => ({ host: name, startedAt: name.length, hasLog: true });
    expect(await store.getTaskFacts(a)).toStrictEqual([
      { kind: "error", ...told("a0 ✓") },
      { kind: "result", ...told("a1") },
      null,
      { kind: "error", attempt: 3, hasLog: false },
      { kind: "result", hasLog: false },
    ]);
    expect(await store.getTaskFacts(b)).toStrictEqual([
      { kind: "result", hasLog: false },
      { kind: "result", ...told("b1") },
    ]);
    expect(await store.getLogs(a)).toEqual([
      { index: 0, log: "log of a0 ✓" },
      { index: 1, log: "log of a1" },
    ]);
    expect(await store.getLogs(b)).toEqual([{ index: 1, log: "log of b1" }]);
  });
});
