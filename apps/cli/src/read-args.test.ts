import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { streamArgs } from "./read-args.js";

describe("streamArgs", () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), "sheepdog-read-args-"));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const noStdin = () => {
    throw new Error("stdin is not read");
  };

  it("reads a .jsonl file a line at a time: a bad line fails only when it is reached", async () => {
    const path = join(dir, "args.jsonl");
    writeFileSync(path, '[1, 2]\n\n["a"]\n{"not": "a tuple"}\n[3]\n');
    const args = streamArgs(path, noStdin);
    expect(Array.isArray(args)).toBe(false);
    const iterator = (args as AsyncIterable<unknown[]>)[Symbol.asyncIterator]();
    expect(await iterator.next()).toEqual({ done: false, value: [1, 2] });
    expect(await iterator.next()).toEqual({ done: false, value: ["a"] });
    await expect(iterator.next()).rejects.toThrow(
      `Line 4 of ${path} must be an array of positional arguments`,
    );
  });

  it("ends the file early when the map stops taking tuples", async () => {
    const path = join(dir, "long.jsonl");
    writeFileSync(path, Array.from({ length: 1000 }, (_, i) => `[${i}]`).join("\n"));
    const taken: unknown[] = [];
    for await (const tuple of streamArgs(path, noStdin) as AsyncIterable<unknown[]>) {
      taken.push(tuple);
      if (taken.length === 2) break;
    }
    expect(taken).toEqual([[0], [1]]);
  });

  it("reads a .json file and standard input whole, and says when a file cannot be read", () => {
    const path = join(dir, "args.json");
    writeFileSync(path, "[[1], [2]]");
    expect(streamArgs(path, noStdin)).toEqual([[1], [2]]);
    expect(streamArgs("-", () => "[5]\n[6]\n")).toEqual([[5], [6]]);
    expect(() => streamArgs(join(dir, "missing.jsonl"), noStdin)).toThrow(
      /Cannot read --args .*missing\.jsonl/,
    );
  });
});
