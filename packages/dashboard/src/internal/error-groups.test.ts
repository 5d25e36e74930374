import { describe, expect, it } from "vitest";
import { deathText, traceback } from "../__fixtures__/requests.js";
import { MAX_ERROR_GROUPS } from "./api-types.js";
import { errorCause, groupErrors } from "./error-groups.js";

const args = new Uint8Array([0x80, 0x04, 0x4e, 0x2e]); // pickle of None

describe("errorCause", () => {
  it("reads the exception of a traceback's last line", () => {
    expect(errorCause({ index: 0, args, error: traceback("KeyError", "'x'") })).toEqual({
      dead: false,
      type: "KeyError",
      message: "'x'",
    });
    expect(
      errorCause({
        index: 0,
        args,
        error: "Traceback (most recent call last):\n  ...\nmymod.Oops\n",
      }),
    ).toEqual({ dead: false, type: "mymod.Oops", message: "" });
    expect(
      errorCause({ index: 0, args, error: "The result could not be read: bad pickle\nmore" }),
    ).toEqual({ dead: false, type: "Error", message: "The result could not be read: bad pickle" });
  });

  it("reads the kind and cause of a task that ended without reporting", () => {
    const text = deathText(
      3,
      "77.1",
      "time-limit",
      "over its run-time limit (qmaster enforced h_rt limit)",
    );
    expect(errorCause({ index: 2, args, error: text, provisional: true })).toEqual({
      dead: true,
      kind: "time-limit",
      cause: "over its run-time limit (qmaster enforced h_rt limit)",
    });
    // After a retry the error is no longer provisional: the words still say it died.
    expect(errorCause({ index: 2, args, error: text })).toMatchObject({
      dead: true,
      kind: "time-limit",
    });
    expect(errorCause({ index: 2, args, error: "lost", provisional: true })).toEqual({
      dead: true,
      kind: "unknown",
      cause: "lost",
    });
  });
});

describe("groupErrors", () => {
  it("groups by type and message, largest first, and keeps a few examples of each", () => {
    const errors = [
      ...Array.from({ length: 8 }, (_, i) => ({
        index: i,
        args,
        error: traceback("ZeroDivisionError", "division by zero"),
      })),
      { index: 8, args, error: traceback("ValueError", "bad") },
      {
        index: 9,
        args,
        error: deathText(10, "1", "signal", "killed by signal 9"),
        provisional: true as const,
      },
    ];
    const grouped = groupErrors(errors);
    expect(grouped.errors.map((group) => [group.type, group.count, group.examples.length])).toEqual(
      [
        ["ZeroDivisionError", 8, 5],
        ["ValueError", 1, 1],
      ],
    );
    expect(grouped.errors[0]?.examples[0]?.args).toBe("None");
    expect(grouped.dead).toMatchObject([
      { kind: "signal", cause: "killed by signal 9", count: 1, indices: [9] },
    ]);
    expect(grouped.moreErrorGroups).toBe(0);
  });

  it("lists the largest groups only", () => {
    const errors = Array.from({ length: MAX_ERROR_GROUPS + 3 }, (_, i) => ({
      index: i,
      args,
      error: traceback("ValueError", `value ${i}`),
    }));
    const grouped = groupErrors(errors);
    expect(grouped.errors).toHaveLength(MAX_ERROR_GROUPS);
    expect(grouped.moreErrorGroups).toBe(3);
  });
});
