import { describe, expect, it } from "vitest";
import { SheepdogError } from "./errors.js";

class NoSuchThingError extends SheepdogError {
  static override readonly marker: symbol = Symbol.for("sheepdog.error.test.NoSuchThingError");
  override readonly name = "NoSuchThingError";
  readonly thing: string;
  constructor(thing: string) {
    super("INVALID_INPUT", "test", `There is no ${thing}.`, { detail: { thing } });
    this.thing = thing;
  }
}

class NoSuchGadgetError extends NoSuchThingError {
  static override readonly marker: symbol = Symbol.for("sheepdog.error.test.NoSuchGadgetError");
}

class OtherError extends SheepdogError {
  static override readonly marker: symbol = Symbol.for("sheepdog.error.test.OtherError");
}

/** A subclass that forgot its marker. */
class UnmarkedError extends SheepdogError {}

describe("SheepdogError", () => {
  it("prefixes the message with the project and the package, and keeps the bare text", () => {
    const error = new SheepdogError("CONFIG_INVALID", "core", 'Unknown option "ge_opts".');
    expect(error.message).toBe('[sheepdog] [core] Unknown option "ge_opts".');
    expect(error.text).toBe('Unknown option "ge_opts".');
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.source).toBe("core");
    expect(error.name).toBe("SheepdogError");
  });

  it("holds structured detail apart from the message, frozen, empty by default", () => {
    const facts = { host: "fear", port: 22 };
    const error = new SheepdogError("SSH_CONNECT", "deploy-ssh", "Cannot reach fear:22.", {
      detail: facts,
    });
    expect(error.detail).toEqual({ host: "fear", port: 22 });
    expect(error.detail).not.toBe(facts);
    expect(Object.isFrozen(error.detail)).toBe(true);
    expect(error.message).not.toContain("port");
    expect(new SheepdogError("INTERNAL", "core", "x").detail).toEqual({});
  });

  it("takes an adapter's own code beside the known ones", () => {
    const error = new SheepdogError("REDIS_STORE_EVICTED", "redis-store", "The key was evicted.");
    expect(error.code).toBe("REDIS_STORE_EVICTED");
    expect(SheepdogError.isInstance(error)).toBe(true);
  });

  it("is recognised across copies by its marker, not by instanceof", () => {
    const error = new SheepdogError("INTERNAL", "core", "x");
    const lookalike = Object.assign(new Error("y"), { code: "INTERNAL" });
    expect(SheepdogError.isInstance(error)).toBe(true);
    expect(SheepdogError.isInstance(lookalike)).toBe(false);
    expect(SheepdogError.isInstance({ [Symbol.for("sheepdog.error")]: true })).toBe(true);
    expect(SheepdogError.isInstance(null)).toBe(false);
    expect(SheepdogError.isInstance("[sheepdog] x")).toBe(false);
  });

  it("gives subclasses an isInstance that knows their own marker", () => {
    const thing = new NoSuchThingError("spoon");
    const gadget = new NoSuchGadgetError("phone");
    const plain = new SheepdogError("INVALID_INPUT", "test", "x");
    expect(SheepdogError.isInstance(thing)).toBe(true);
    expect(NoSuchThingError.isInstance(thing)).toBe(true);
    expect(NoSuchThingError.isInstance(plain)).toBe(false);
    expect(OtherError.isInstance(thing)).toBe(false);
    expect([NoSuchThingError.isInstance(gadget), NoSuchGadgetError.isInstance(gadget)]).toEqual([
      true,
      true,
    ]);
    expect(NoSuchGadgetError.isInstance(thing)).toBe(false);
    // Another copy's instance carries the same Symbol.for markers.
    const fromAnotherCopy = { [Symbol.for("sheepdog.error.test.NoSuchThingError")]: true };
    expect(NoSuchThingError.isInstance(fromAnotherCopy)).toBe(true);
    expect(thing.detail).toEqual({ thing: "spoon" });
  });

  it("falls back to instanceof for a subclass without a marker of its own", () => {
    const unmarked = new UnmarkedError("INTERNAL", "test", "x");
    expect(UnmarkedError.isInstance(unmarked)).toBe(true);
    expect(SheepdogError.isInstance(unmarked)).toBe(true);
    expect(UnmarkedError.isInstance(new SheepdogError("INTERNAL", "test", "x"))).toBe(false);
  });

  it("wraps unknown throws, keeping the cause, and passes its own through", () => {
    const cause = new Error("ECONNREFUSED");
    const wrapped = SheepdogError.from(cause, "SSH_CONNECT", "deploy-ssh", "Cannot reach fear:22", {
      detail: { host: "fear" },
    });
    expect(wrapped.message).toBe("[sheepdog] [deploy-ssh] Cannot reach fear:22: ECONNREFUSED");
    expect(wrapped.text).toBe("Cannot reach fear:22: ECONNREFUSED");
    expect(wrapped.cause).toBe(cause);
    expect(wrapped.detail).toEqual({ host: "fear" });
    expect(SheepdogError.from(wrapped, "INTERNAL", "core", "again")).toBe(wrapped);
    expect(SheepdogError.from("boom", "INTERNAL", "core", "Failed").text).toBe("Failed: boom");
  });
});
