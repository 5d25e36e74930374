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
  poll(final: boolean): Promise<IndexedSettled<unknown>[]> {
    return this.#order === "arguments" ? this.#pollInOrder(final) : this.#pollCompleted(final);
  }

  async #pollCompleted(final: boolean): Promise<IndexedSettled<unknown>[]> {
    const out: IndexedSettled<unknown>[] = [];
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
      for (const index of reported) {
        const outcome = outcomes.get(index);
        if (outcome) out.push(outcome);
        else this.#held.add(index);
      }
    }
    this.#pending = remaining;
    if (final && this.#held.size > 0 && out.length < pollSlice) {
      const held = [...this.#held].sort((a, b) => a - b).slice(0, pollSlice);
      const outcomes = await this.#outcomes(held, true);
      for (const index of held) {
        const outcome = outcomes.get(index);
        if (outcome) out.push(outcome);
        else remaining.push({ first: index, count: 1 });
        this.#held.delete(index);
      }
      this.#pending = normalised(remaining);
    }
    return out;
  }

  async #pollInOrder(final: boolean): Promise<IndexedSettled<unknown>[]> {
    const out: IndexedSettled<unknown>[] = [];
    const { store, request, tasks } = this.#window;
    while (out.length < pollSlice && this.#cursor < tasks) {
      const span = Math.min(pollSlice, tasks - this.#cursor);
      const missing = await store.unreported(request, this.#cursor, span);
      const readyEnd = missing[0] ?? this.#cursor + span;
      const ready = Array.from({ length: readyEnd - this.#cursor }, (_, i) => this.#cursor + i);
      const outcomes = await this.#outcomes(ready, final);
      for (const index of ready) {
        const outcome = outcomes.get(index);
        // An error that may still change holds back every outcome after it.
        if (!outcome) return out;
        out.push(outcome);
        this.#cursor = index + 1;
      }
      if (missing.length > 0) break;
    }
    return out;
  }

  /**
   * The outcomes of reported tasks (sorted local indices), decoded, by index; an error that is
   * not final yet is left out.
   */
  async #outcomes(
    indices: readonly number[],
    final: boolean,
  ): Promise<Map<number, IndexedSettled<unknown>>> {
    const { first, errorsFinal } = this.#window;
    const outcomes = new Map<number, IndexedSettled<unknown>>();
    const failed: number[] = [];
    for (const run of indexRuns(indices)) {
      const results = await this.#resultRange(run.first, run.count);
      for (let i = 0; i < run.count; i++) {
        const bytes = results[i] ?? null;
        const index = run.first + i;
        if (bytes === null) failed.push(index);
        else outcomes.set(index, decoded(first + index, bytes));
      }
    }
    if (failed.length === 0) return outcomes;
    const errors = await this.#errors();
    for (const index of failed) {
      const stored = errors.get(index);
      // Reported, no result, no error: a retry reset it meanwhile; it comes again.
      if (!stored) continue;
      if (final || (errorsFinal && !stored.provisional)) {
        outcomes.set(index, { index: first + index, ok: false, error: stored.error });
      }
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

/** A result decoded, or the reason it cannot be, as its task's error. */
function decoded(index: number, bytes: Uint8Array): IndexedSettled<unknown> {
  try {
    return { index, ok: true, value: decode(bytes) };
  } catch {
    return { index, ok: false, error: undecodableReason(bytes) ?? "" };
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
