import { describe, expect, it } from "vitest";
import { SheepdogError } from "./errors.js";
import { checkFileMode, checkRemotePath } from "./remote-arguments.js";

function thrown(fn: () => void): SheepdogError {
  try {
    fn();
  } catch (error) {
    if (SheepdogError.isInstance(error)) return error;
    throw error;
  }
  throw new Error("expected a throw");
}

describe("checkRemotePath", () => {
  it("accepts a non-empty path", () => {
    expect(() => checkRemotePath("a/b", "upload", "local")).not.toThrow();
  });

  it("refuses an empty path, a NUL and a non-string with INVALID_INPUT from the caller", () => {
    for (const bad of ["", "a\0b", 42, undefined]) {
      const error = thrown(() => checkRemotePath(bad, "readFile", "deploy-ssh"));
      expect(error.code).toBe("INVALID_INPUT");
      expect(error.message).toBe(
        "[sheepdog] [deploy-ssh] readFile needs a non-empty path without NUL characters.",
      );
    }
  });
});

describe("checkFileMode", () => {
  it("accepts 0 to 0o7777", () => {
    for (const mode of [0, 0o600, 0o7777]) {
      expect(() => checkFileMode(mode, "mkdir", "local")).not.toThrow();
    }
  });

  it("refuses anything else", () => {
    for (const bad of [-1, 0o10000, 1.5, "0o600", Number.NaN]) {
      const error = thrown(() => checkFileMode(bad, "upload", "local"));
      expect(error.code).toBe("INVALID_INPUT");
      expect(error.text).toBe(
        `upload mode ${String(bad)} is not a file mode. Pass an integer from 0 to 0o7777, such as 0o600.`,
      );
    }
  });
});
