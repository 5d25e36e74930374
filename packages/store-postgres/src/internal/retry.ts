import { isTransient } from "./errors.js";

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Runs `attempt` until it does not fail for want of the database (see {@link isTransient}),
 * waiting between tries (from 25 ms, doubling, up to 1 s, with jitter), for at most
 * `timeoutMs`. Then the last failure is thrown. `attempt` must be safe to repeat.
 */
export async function retrying<T>(
  attempt: () => Promise<T>,
  timeoutMs: number,
  canRetry: () => boolean = () => true,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (let tries = 0; ; tries += 1) {
    try {
      return await attempt();
    } catch (error) {
      if (!isTransient(error) || !canRetry() || Date.now() >= deadline) throw error;
      const pause = Math.min(1000, 25 * 2 ** tries) * (0.5 + Math.random());
      await sleep(Math.min(pause, Math.max(0, deadline - Date.now())));
    }
  }
}
