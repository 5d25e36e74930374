import { SheepdogError } from "@sheepdog/contracts";

const handledSignals = ["SIGINT", "SIGTERM"] as const;
type HandledSignal = (typeof handledSignals)[number];

/** The maps waiting now, each with its controller and the promise of its end. */
const active = new Map<AbortController, Promise<unknown>>();
/** The signals this module listens for (only those nobody else in the program handles). */
const listening = new Set<HandledSignal>();
let interrupted = false;

function onSignal(signal: HandledSignal): void {
  if (interrupted) return;
  interrupted = true;
  const ends = [...active.values()];
  for (const controller of active.keys()) {
    controller.abort(new SheepdogError("ABORTED", "core", `The map was interrupted (${signal}).`));
  }
  // A second Ctrl-C while the jobs are cancelled ends the program at once, as it would have.
  stopListening();
  void Promise.allSettled(ends).then(() => {
    interrupted = false;
    // End the program as the signal would have, unless something else now handles it.
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  });
}

const listeners: Record<HandledSignal, () => void> = {
  SIGINT: () => onSignal("SIGINT"),
  SIGTERM: () => onSignal("SIGTERM"),
};

function stopListening(): void {
  for (const signal of listening) process.off(signal, listeners[signal]);
  listening.clear();
}

/**
 * Lets Ctrl-C (SIGINT) and SIGTERM end a map cleanly in a program that does not handle those
 * signals itself: while `run` is under way, such a signal aborts the signal handed to it (so
 * that the map cancels its job and closes its server and connection), and once every map so
 * aborted has finished, the program ends by that signal as it would have without Sheepdog.
 * A program with its own handler is left alone; it passes an `AbortSignal` to `map` instead.
 */
export async function interruptible<T>(run: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  if (!interrupted) {
    for (const signal of handledSignals) {
      if (!listening.has(signal) && process.listenerCount(signal) === 0) {
        process.on(signal, listeners[signal]);
        listening.add(signal);
      }
    }
  }
  const running = run(controller.signal);
  active.set(controller, running);
  try {
    return await running;
  } finally {
    active.delete(controller);
    if (active.size === 0 && !interrupted) stopListening();
  }
}
