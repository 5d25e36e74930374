import { describe, expect, it } from "vitest";
import { show, utf8 } from "./bytes.js";
import { expectFailure } from "./expect-failure.js";
import type { StoreSuite } from "./suite.js";

/** The "arguments" group: arguments kept in order, read by range, taken from any iterable. */
export function describeArguments(suite: StoreSuite): void {
  const { open, create } = suite;

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
}
