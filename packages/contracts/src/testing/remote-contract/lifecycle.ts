import { describe, expect, it } from "vitest";
import { SheepdogError } from "../../errors.js";
import { callAsync, expectCode, rejection } from "./expect-code.js";
import type { RemoteSuite } from "./suite.js";

/** The "lifecycle" group: use after close, a command in flight at close, bad arguments. */
export function describeLifecycle(suite: RemoteSuite): void {
  const { dir, open, timeout } = suite;

  describe("lifecycle", () => {
    it("rejects every call after close() with CLOSED; a second close is harmless", {
      timeout,
    }, async () => {
      const remote = await open();
      await remote.exec("true");
      await remote.close();
      await remote.close();
      await expectCode(
        callAsync(() => remote.exec("true")),
        "CLOSED",
      );
      await expectCode(
        callAsync(() => remote.upload(`${dir}/after-close`, "x")),
        "CLOSED",
      );
      await expectCode(
        callAsync(() => remote.readFile(`${dir}/where.txt`)),
        "CLOSED",
      );
      await expectCode(
        callAsync(() => remote.mkdir(`${dir}/after-close-dir`)),
        "CLOSED",
      );
    });

    it("rejects a command in flight with CLOSED when closed", { timeout }, async () => {
      const remote = await open();
      const marker = `${dir}/close-marker`;
      const running = expectCode(remote.exec(`sleep 1.5; echo late > ${marker}`), "CLOSED");
      await new Promise((resolve) => setTimeout(resolve, 200));
      await remote.close();
      await running;
      const checker = await open();
      await new Promise((resolve) => setTimeout(resolve, 1800));
      expect((await checker.exec(`test -e ${marker} && echo exists || echo absent`)).stdout).toBe(
        "absent\n",
      );
    });

    it("rejects bad arguments without throwing synchronously", { timeout }, async () => {
      const remote = await open();
      const error = await rejection(
        callAsync(() => remote.upload(`${dir}/bad-mode`, "x", -1 as number)),
      );
      expect(SheepdogError.isInstance(error)).toBe(true);
      const nul = await rejection(callAsync(() => remote.readFile("a\0b")));
      expect(SheepdogError.isInstance(nul)).toBe(true);
    });
  });
}
