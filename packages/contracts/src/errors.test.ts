import { describe, expect, it } from "vitest";
import { SheepdogError } from "./errors.js";

describe("SheepdogError", () => {
  it("prefixes the message with the project and the package", () => {
    const error = new SheepdogError("CONFIG_INVALID", "core", 'Unknown option "ge_opts".');
    expect(error.message).toBe('[sheepdog] [core] Unknown option "ge_opts".');
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.source).toBe("core");
  });

  it("is recognised across copies by its marker, not by instanceof", () => {
    const error = new SheepdogError("INTERNAL", "core", "x");
    const lookalike = Object.assign(new Error("y"), { code: "INTERNAL" });
    expect(SheepdogError.isInstance(error)).toBe(true);
    expect(SheepdogError.isInstance(lookalike)).toBe(false);
    expect(SheepdogError.isInstance({ [Symbol.for("sheepdog.error")]: true })).toBe(true);
  });

  it("wraps unknown throws, keeping the cause, and passes its own through", () => {
    const cause = new Error("ECONNREFUSED");
    const wrapped = SheepdogError.from(cause, "SSH_CONNECT", "deploy-ssh", "Cannot reach fear:22");
    expect(wrapped.message).toBe("[sheepdog] [deploy-ssh] Cannot reach fear:22: ECONNREFUSED");
    expect(wrapped.cause).toBe(cause);
    expect(SheepdogError.from(wrapped, "INTERNAL", "core", "again")).toBe(wrapped);
  });
});
