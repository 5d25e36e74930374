import { expect } from "vitest";
import type { SheepdogErrorCode } from "../../errors.js";
import { SheepdogError } from "../../errors.js";

/** What `promise` rejects with; fails the test if it resolves. */
export async function rejection(promise: Promise<unknown>): Promise<unknown> {
  try {
    await promise;
  } catch (error) {
    return error;
  }
  throw new Error("expected the promise to reject, but it resolved");
}

/**
 * Asserts that `promise` rejects with a {@link SheepdogError} of that code, whose message
 * starts with the `[sheepdog] [<package>] ` prefix.
 */
export async function expectCode(
  promise: Promise<unknown>,
  code: SheepdogErrorCode,
): Promise<SheepdogError> {
  const error = await rejection(promise);
  expect(SheepdogError.isInstance(error), `expected a SheepdogError, got ${String(error)}`).toBe(
    true,
  );
  expect((error as SheepdogError).code).toBe(code);
  expect((error as SheepdogError).message).toMatch(/^\[sheepdog\] \[[a-z0-9-]+\] /);
  return error as SheepdogError;
}

/** Asserts that calling `fn` does not throw synchronously and returns a promise. */
export function callAsync(fn: () => Promise<unknown>): Promise<unknown> {
  let result: Promise<unknown> | undefined;
  expect(() => {
    result = fn();
  }).not.toThrow();
  expect(result).toBeInstanceOf(Promise);
  return result as Promise<unknown>;
}
