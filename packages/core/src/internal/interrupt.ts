import { SheepdogError } from "@sheepdog/contracts";
import { source } from "./source.js";

const handledSignals = ["SIGINT", "SIGTERM"] as const;
type HandledSignal = (typeof handledSignals)[number];

/** Runs work that Ctrl-C (SIGINT) or SIGTERM should abort; see {@link signalGuard}. */
export type Interruptible = <T>(run: (signal: AbortSignal) => Promise<T>) => Promise<T>;

/**
 * Lets Ctrl-C (SIGINT) and SIGTERM end maps cleanly in a program that does not handle those
 * signals itself: while work is under way, such a signal aborts the signal handed to it (so
 * that the map cancels its job and closes its server and connection), and once every map so
 * aborted has finished, the program ends by that signal as it would have without Sheepdog.
 * Listeners are installed only while work runs, and only for signals nobody else handles; a
 * program with its own handler is left alone and passes an `AbortSignal` to `map` instead.
 *
 * Each Sheepdog instance that asks for it (`handleSignals`) has its own guard: nothing is
 * installed at import.
 */
export function signalGuard(): Interruptible {
  const active = new Map<AbortController, Promise<unknown>>();
  const listening = new Set<HandledSignal>();
  let interrupted = false;

  const listeners: Record<HandledSignal, () => void> = {
    SIGINT: () => onSignal("SIGINT"),
    SIGTERM: () => onSignal("SIGTERM"),
  };

  function stopListening(): void {
    for (const signal of listening) process.off(signal, listeners[signal]);
    listening.clear();
  }

  function onSignal(signal: HandledSignal): void {
    if (interrupted) return;
    interrupted = true;
    const ends = [...active.values()];
    for (const controller of active.keys()) {
      controller.abort(
        new SheepdogError("ABORTED", source, `The map was interrupted (${signal}).`),
      );
    }
    // A second Ctrl-C while the jobs are cancelled ends the program at once, as it would have.
    stopListening();
    void Promise.allSettled(ends).then(() => {
      interrupted = false;
      if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
    });
  }

  return async (run) => {
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
  };
}

/** For instances that leave signals to the program: the work runs with a signal never aborted. */
export const uninterruptible: Interruptible = (run) => run(new AbortController().signal);
