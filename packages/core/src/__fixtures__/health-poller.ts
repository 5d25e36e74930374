import { once } from "node:events";
import { Worker } from "node:worker_threads";

/** One answer of /health: its status and its time from request to response. */
export interface HealthAnswer {
  status: number;
  ms: number;
}

/**
 * Asks /health every `interval` ms from a worker thread until stopped, so that what is measured
 * is the server's event loop alone (this thread may be the server's).
 */
const POLLER = `
const { parentPort, workerData } = require("node:worker_threads");
const answers = [];
let stopped = false;
parentPort.once("message", () => { stopped = true; });
(async () => {
  await (await fetch(workerData.url + "/health")).arrayBuffer(); // this thread's own warm-up
  parentPort.postMessage("ready");
  while (!stopped) {
    const start = performance.now();
    const response = await fetch(workerData.url + "/health");
    await response.arrayBuffer();
    answers.push({ status: response.status, ms: performance.now() - start });
    await new Promise((resolve) => setTimeout(resolve, workerData.interval));
  }
  parentPort.postMessage(answers);
  parentPort.close();
})();
`;

/** Starts polling `url`'s /health; resolves once the poller is ready. */
export async function pollHealth(url: string, interval = 20) {
  const worker = new Worker(POLLER, { eval: true, workerData: { url, interval } });
  await once(worker, "message");
  return {
    /** Stops polling; every answer. */
    async stop(): Promise<HealthAnswer[]> {
      const answers = once(worker, "message") as Promise<[HealthAnswer[]]>;
      worker.postMessage("stop");
      const [list] = await answers;
      await worker.terminate();
      return list;
    },
  };
}
