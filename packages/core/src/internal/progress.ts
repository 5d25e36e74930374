import type { MapProgress } from "../types.js";

/** Where progress is written: a terminal (rewritten in place) or any text stream. */
export interface ProgressStream {
  write(text: string): unknown;
  isTTY?: boolean;
}

/**
 * Progress for people, as `map({ verbose: true })` prints it: done, failed, running, queued,
 * rate and ETA, on a line rewritten in place on a terminal, or a plain line every `everyMs`
 * otherwise; `done` always writes the last one.
 *
 * @example
 * ```ts
 * const printer = progressPrinter(process.stderr);
 * await map(f, args, config, { onProgress: printer.update });
 * ```
 */
export function progressPrinter(
  stream: ProgressStream = process.stderr,
  everyMs = stream.isTTY ? 200 : 5000,
): { update: (progress: MapProgress) => void; done: (progress: MapProgress) => void } {
  let last = 0;
  const line = (p: MapProgress) => {
    const done = p.results + p.errors;
    const seconds = p.elapsedMs / 1000;
    const rate = seconds > 0 ? done / seconds : 0;
    const eta = rate > 0 && done < p.tasks ? ` ETA ${formatSeconds((p.tasks - done) / rate)}` : "";
    const attempt = p.attempt > 1 ? ` (attempt ${p.attempt})` : "";
    return (
      `[sheepdog] request ${p.request}${attempt}: ${done}/${p.tasks} done (${p.errors} failed), ` +
      `${p.running} running, ${p.queued} queued, ${rate.toFixed(1)}/s${eta}`
    );
  };
  const write = (p: MapProgress, final: boolean) => {
    if (stream.isTTY) stream.write(`\r\x1b[K${line(p)}${final ? "\n" : ""}`);
    else stream.write(`${line(p)}\n`);
  };
  return {
    update(p) {
      const now = Date.now();
      if (now - last < everyMs) return;
      last = now;
      write(p, false);
    },
    done(p) {
      write(p, true);
    },
  };
}

function formatSeconds(seconds: number): string {
  if (seconds < 90) return `${Math.ceil(seconds)}s`;
  if (seconds < 5400) return `${Math.round(seconds / 60)}m`;
  return `${(seconds / 3600).toFixed(1)}h`;
}
