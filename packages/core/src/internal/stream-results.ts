import type { IndexRun, RequestId, Store } from "@sheepdog/contracts";
import { indexRuns } from "@sheepdog/contracts";
import { decode } from "@sheepdog/serialise";
import type { IndexedSettled, StreamOrder } from "../types.js";
import { undecodableReason } from "./result-check.js";

/** The most tasks one store read covers, and about the most outcomes one poll hands out. */
export const pollSlice = 10_000;

/** A window's request, as its reader reads it. */
export interface WindowRequest {
  store: Store;
  request: RequestId;
  /** The index (in the whole stream) of the window's first argument tuple. */
  first: number;
  /** How many tuples the window has. */
  tasks: number;
  /**
   * Whether an error is final as soon as it is stored (no retries can replace it). A
   * provisional error (a death the scheduler inferred) never is until the window's wait is over.
   */
  errorsFinal: boolean;
}

/** What the store says of the reported tasks of a range: result bytes, or `null` for an error. */
type StoredError = { error: string; provisional: boolean };

/**
 * Reads the outcomes of one window's request from the store as they arrive, by ranges of tasks
 * not yet handed out, and hands each out once: nothing is kept once handed out, except the
 * indices of errors held back until they are final.
 */
export class WindowResults {
  readonly #window: WindowRequest;
  readonly #order: StreamOrder;
  /** Completion order: the runs of tasks not yet handed out (held errors excepted). */
  #pending: IndexRun[];
  /** Completion order: errors seen that may still change (retries, provisional deaths). */
  readonly #held = new Set<number>();
  /** Argument order: the next task to hand out. */
  #cursor = 0;

  constructor(window: WindowRequest, order: StreamOrder) {
    this.#window = window;
    this.#order = order;
    this.#pending = window.tasks > 0 ? [{ first: 0, count: window.tasks }] : [];
  }

  /** Whether every outcome of the window has been handed out. */
  get exhausted(): boolean {
    return this.#order === "arguments"
      ? this.#cursor >= this.#window.tasks
      : this.#pending.length === 0 && this.#held.size === 0;
  }

  /**
   * The outcomes stored since the last poll, about {@link pollSlice} at most (poll again for
   * more); `final` once the window's wait is over, so that held errors are handed out too.
   */
  poll(final: boolean): Promise<OutcomeBatch> {
    return this.#order === "arguments" ? this.#pollInOrder(final) : this.#pollCompleted(final);
  }

  async #pollCompleted(final: boolean): Promise<OutcomeBatch> {
    const out = new OutcomeBatch();
    const { store, request } = this.#window;
    const remaining: IndexRun[] = [];
    for (const run of this.#pending.flatMap(sliced)) {
      if (out.length >= pollSlice) {
        remaining.push(run);
        continue;
      }
      const missing = await store.unreported(request, run.first, run.count);
      remaining.push(...indexRuns(missing));
      const reported = complementOf(run, missing);
      const outcomes = await this.#outcomes(reported, final);
      for (let i = 0; i < reported.length; i++) {
        if (!outcomes.addTo(out, i)) this.#held.add(reported[i] as number);
      }
    }
    this.#pending = remaining;
    if (final && this.#held.size > 0 && out.length < pollSlice) {
      const held = [...this.#held].sort((a, b) => a - b).slice(0, pollSlice);
      const outcomes = await this.#outcomes(held, true);
      for (const [i, index] of held.entries()) {
        if (!outcomes.addTo(out, i)) remaining.push({ first: index, count: 1 });
        this.#held.delete(index);
      }
      this.#pending = normalised(remaining);
    }
    return out;
  }

  async #pollInOrder(final: boolean): Promise<OutcomeBatch> {
    const out = new OutcomeBatch();
    const { store, request, tasks } = this.#window;
    while (out.length < pollSlice && this.#cursor < tasks) {
      const span = Math.min(pollSlice, tasks - this.#cursor);
      const missing = await store.unreported(request, this.#cursor, span);
      const readyEnd = missing[0] ?? this.#cursor + span;
      const ready = Array.from({ length: readyEnd - this.#cursor }, (_, i) => this.#cursor + i);
      const outcomes = await this.#outcomes(ready, final);
      for (const [i, index] of ready.entries()) {
        // An error that may still change holds back every outcome after it.
        if (!outcomes.addTo(out, i)) return out;
        this.#cursor = index + 1;
      }
      if (missing.length > 0) break;
    }
    return out;
  }

  /**
   * The outcomes of reported tasks (sorted local indices), decoded, in their order; an error
   * that is not final yet has none.
   */
  async #outcomes(indices: readonly number[], final: boolean): Promise<Outcomes> {
    const { first, errorsFinal } = this.#window;
    const outcomes = new Outcomes(first, indices);
    const failed: number[] = [];
    let at = 0;
    for (const run of indexRuns(indices)) {
      const results = await this.#resultRange(run.first, run.count);
      for (let i = 0; i < run.count; i++, at++) {
        const bytes = results[i] ?? null;
        if (bytes === null) failed.push(at);
        else outcomes.decode(at, bytes);
      }
    }
    if (failed.length === 0) return outcomes;
    const errors = await this.#errors();
    for (const at of failed) {
      const stored = errors.get(indices[at] as number);
      // Reported, no result, no error: a retry reset it meanwhile; it comes again.
      if (!stored) continue;
      if (final || (errorsFinal && !stored.provisional)) outcomes.fail(at, stored.error);
    }
    return outcomes;
  }

  async #resultRange(start: number, count: number): Promise<(Uint8Array | null)[]> {
    const { store, request } = this.#window;
    if (store.getResultRange) return store.getResultRange(request, start, count);
    const rows = await store.getResults(request);
    return rows.slice(start, start + count).map((row) => row.result);
  }

  async #errors(): Promise<Map<number, StoredError>> {
    const { store, request } = this.#window;
    const errors = new Map<number, StoredError>();
    for (const row of await store.getErrors(request)) {
      errors.set(row.index, { error: row.error, provisional: row.provisional === true });
    }
    return errors;
  }
}

/** What a reported task came to, so far. */
const NONE = 0;
const OK = 1;
const FAILED = 2;

/** The outcomes of some of a window's tasks, by their place in a list of local indices. */
class Outcomes {
  readonly #first: number;
  readonly #indices: readonly number[];
  readonly #kinds: Uint8Array;
  /** Each value decoded, or each error's text. */
  readonly #values: unknown[];

  constructor(first: number, indices: readonly number[]) {
    this.#first = first;
    this.#indices = indices;
    this.#kinds = new Uint8Array(indices.length);
    this.#values = new Array(indices.length);
  }

  /** Takes a result: its value decoded, or the reason it cannot be, as its task's error. */
  decode(at: number, bytes: Uint8Array): void {
    try {
      this.#values[at] = decode(bytes);
      this.#kinds[at] = OK;
    } catch {
      this.fail(at, undecodableReason(bytes) ?? "");
    }
  }

  fail(at: number, error: string): void {
    this.#values[at] = error;
    this.#kinds[at] = FAILED;
  }

  /** Adds the outcome at `at` to `batch`; false when it has none (yet). */
  addTo(batch: OutcomeBatch, at: number): boolean {
    const kind = this.#kinds[at];
    if (kind === NONE) return false;
    batch.push(this.#first + (this.#indices[at] as number), kind === OK, this.#values[at]);
    return true;
  }
}

/**
 * The outcomes one poll hands out, each made into its object only as it is handed out: made
 * ten thousand at a time, the objects lived long enough that V8 made all of them in the old
 * generation (about 50 bytes a call for it to collect there).
 */
export class OutcomeBatch {
  readonly #indices: number[] = [];
  readonly #ok: boolean[] = [];
  /** Each value, or each error's text. */
  readonly #values: unknown[] = [];

  get length(): number {
    return this.#indices.length;
  }

  push(index: number, ok: boolean, valueOrError: unknown): void {
    this.#indices.push(index);
    this.#ok.push(ok);
    this.#values.push(valueOrError);
  }

  /** The `i`th outcome, a new object. */
  at(i: number): IndexedSettled<unknown> {
    const index = this.#indices[i] as number;
    return this.#ok[i]
      ? { index, ok: true, value: this.#values[i] }
      : { index, ok: false, error: this.#values[i] as string };
  }
}

/** A run cut into runs of at most {@link pollSlice} tasks. */
function sliced(run: IndexRun): IndexRun[] {
  const out: IndexRun[] = [];
  for (let at = 0; at < run.count; at += pollSlice) {
    out.push({ first: run.first + at, count: Math.min(pollSlice, run.count - at) });
  }
  return out;
}

/** The indices of `run` that are not in `missing` (sorted, inside the run). */
function complementOf(run: IndexRun, missing: readonly number[]): number[] {
  const out: number[] = [];
  let next = 0;
  for (let index = run.first; index < run.first + run.count; index++) {
    if (missing[next] === index) next++;
    else out.push(index);
  }
  return out;
}

/** Runs sorted by their first task, and merged where they touch. */
function normalised(runs: IndexRun[]): IndexRun[] {
  const merged: IndexRun[] = [];
  for (const run of [...runs].sort((a, b) => a.first - b.first)) {
    const last = merged[merged.length - 1];
    if (last && last.first + last.count >= run.first) {
      last.count = Math.max(last.count, run.first + run.count - last.first);
    } else {
      merged.push({ ...run });
    }
  }
  return merged;
}
