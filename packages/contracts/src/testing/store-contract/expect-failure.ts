import { expect } from "vitest";
import type { SheepdogErrorCode } from "../../errors.js";
import { SheepdogError } from "../../errors.js";

/**
 * Calls `start`, checks that it did not throw synchronously, and that the promise it returned
 * rejects with a {@link SheepdogError} of that code.
 */
export async function expectFailure(
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
