import { createServer as createNetServer } from "node:net";
import { encodeReports, SheepdogError } from "@sheepdog/contracts";
import { memoryStore } from "@sheepdog/contracts/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { keyOf, workerFetch } from "./__fixtures__/worker-client.js";
import { DEFAULT_MAX_BODY_BYTES } from "./server.js";
import type { ServerForOptions, ServerPool } from "./server-pool.js";
import { serverPool } from "./server-pool.js";

async function freePort(): Promise<number> {
  const probe = createNetServer();
  await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

async function isUp(url: string): Promise<boolean> {
  return fetch(`${url}/health`).then(
    (response) => response.ok,
    () => false,
  );
}

/** A store factory for serverFor that counts the stores it opened and those closed. */
function countedStores() {
  const counts = { opened: 0, closed: 0 };
  const open = () => {
    counts.opened += 1;
    const store = memoryStore();
    store.close = async () => {
      counts.closed += 1;
    };
    return store;
  };
  return { open, counts };
}

let pool: ServerPool;
const serverFor = (options: ServerForOptions) => pool.serverFor(options);

beforeEach(() => {
  pool = serverPool();
});

afterEach(async () => {
  await pool.close();
});

describe("ServerPool.serverFor", () => {
  it("shares one server per port and dbfile, and stops it with the last handle", async () => {
    const port = await freePort();
    const store = memoryStore();
    const a = await serverFor({ port, storeKey: "/data/a.sqlite", store });
    const b = await serverFor({ port, storeKey: "/data/a.sqlite", store });
    expect(b.port).toBe(port);
    expect(b.url).toBe(a.url);
    expect(b.maxBodyBytes).toBe(DEFAULT_MAX_BODY_BYTES);
    await a.close();
    await a.close();
    expect(await isUp(b.url)).toBe(true);
    await b.close();
    expect(await isUp(b.url)).toBe(false);
  });

  it("refuses a busy port for another dbfile with a clear error", async () => {
    const port = await freePort();
    await using _a = await serverFor({ port, storeKey: "/data/a.sqlite", store: memoryStore() });
    const error = await serverFor({
      port,
      storeKey: "/data/b.sqlite",
      store: memoryStore(),
    }).catch((e) => e);
    expect(SheepdogError.isInstance(error)).toBe(true);
    expect(error.code).toBe("SERVER_FAILED");
    expect(error.message).toBe(
      `[sheepdog] [server] Port ${port} already serves /data/a.sqlite in this process, not /data/b.sqlite. Use the same dbfile for both, another port, or leave the port unset to pick a free one.`,
    );
  });

  it("refuses a port taken by another program", async () => {
    const blocker = createNetServer();
    await new Promise<void>((resolve) => blocker.listen(0, resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      const error = await serverFor({ port, storeKey: "k", store: memoryStore() }).catch((e) => e);
      expect(error.code).toBe("SERVER_FAILED");
      expect(error.message).toMatch(/in use by another program/);
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it("reuses the free-port server of a dbfile, and starts another for another dbfile", async () => {
    const a1 = await serverFor({ storeKey: "/a", store: memoryStore() });
    const a2 = await serverFor({ port: 0, storeKey: "/a", store: memoryStore() });
    const b = await serverFor({ storeKey: "/b", store: memoryStore() });
    expect(a2.port).toBe(a1.port);
    expect(b.port).not.toBe(a1.port);
    // Naming the port a free-port server got finds that server too.
    const a3 = await serverFor({ port: a1.port, storeKey: "/a", store: memoryStore() });
    expect(a3.url).toBe(a1.url);
    const wrong = await serverFor({ port: a1.port, storeKey: "/b", store: memoryStore() }).catch(
      (e) => e,
    );
    expect(wrong.code).toBe("SERVER_FAILED");
  });

  it("opens a store from a factory once, and closes it with the server", async () => {
    const { open, counts } = countedStores();
    const [a, b] = await Promise.all([
      serverFor({ storeKey: "/f", store: open }),
      serverFor({ storeKey: "/f", store: open }),
    ]);
    expect(a.port).toBe(b.port);
    expect(counts.opened).toBe(1);
    await a.close();
    expect(counts.closed).toBe(0);
    await b.close();
    expect(counts.closed).toBe(1);
  });

  it("restarts a server on the same port right after the last handle closed", async () => {
    const port = await freePort();
    const first = await serverFor({ port, storeKey: "/r", store: memoryStore() });
    const closing = first.close();
    const second = await serverFor({ port, storeKey: "/r", store: memoryStore() });
    await closing;
    expect(second.port).toBe(port);
    expect(await isUp(second.url)).toBe(true);
  });

  it("drops a handle's report listeners when the handle closes", async () => {
    const store = memoryStore();
    const request = await store.createRequest({
      func: new Uint8Array(),
      ns: new Uint8Array(),
      args: [new Uint8Array([1]), new Uint8Array([2])],
    });
    const seenA: number[] = [];
    const seenB: number[] = [];
    const a = await serverFor({ storeKey: "/l", store, onReport: (e) => seenA.push(e.index) });
    const b = await serverFor({ storeKey: "/l", store, onReport: (e) => seenB.push(e.index) });
    const send = (index: number) =>
      workerFetch(b.url, keyOf(request), `/v2/requests/${request.id}/tasks/${index + 1}/reports`, {
        headers: { "content-type": "application/vnd.sheepdog.reports+frames" },
        body: encodeReports([{ index, kind: "error", payload: new Uint8Array([0x61]) }]),
      });
    expect((await send(0)).status).toBe(200);
    await a.close();
    expect((await send(1)).status).toBe(200);
    expect(seenA).toEqual([0]);
    expect(seenB).toEqual([0, 1]);
    await b.close();
  });
});

describe("ServerPool.close", () => {
  it("stops every server of the pool whatever handles remain, and closes the stores it opened", async () => {
    const { open, counts } = countedStores();
    const a = await serverFor({ storeKey: "/a", store: open });
    const b = await serverFor({ storeKey: "/b", store: memoryStore() });
    expect(await isUp(a.url)).toBe(true);
    await pool.close();
    expect(await isUp(a.url)).toBe(false);
    expect(await isUp(b.url)).toBe(false);
    expect(counts.closed).toBe(1);
    // Closing the pool again, or a handle after it, is harmless.
    await pool.close();
    await a.close();
  });

  it("refuses new servers once closed", async () => {
    await pool.close();
    const error = await serverFor({ storeKey: "/c", store: memoryStore() }).catch((e) => e);
    expect(SheepdogError.isInstance(error)).toBe(true);
    expect(error.code).toBe("CLOSED");
    expect(error.message).toBe(
      "[sheepdog] [server] This server pool is closed. Make a new one with serverPool().",
    );
  });

  it("rejects a serverFor that was starting a server when the pool closed, and stops that server", async () => {
    const { open, counts } = countedStores();
    const starting = serverFor({ storeKey: "/d", store: open });
    const closing = pool.close();
    const error = await starting.catch((e) => e);
    await closing;
    expect(error.code).toBe("CLOSED");
    // The server did start, and closing the pool stopped it with its store.
    expect(counts).toEqual({ opened: 1, closed: 1 });
  });

  it("shares nothing between pools, and works with await using", async () => {
    let url: string;
    {
      await using other = serverPool();
      const mine = await serverFor({ storeKey: "/e", store: memoryStore() });
      const theirs = await other.serverFor({ storeKey: "/e", store: memoryStore() });
      expect(theirs.port).not.toBe(mine.port);
      url = theirs.url;
      expect(await isUp(url)).toBe(true);
    }
    expect(await isUp(url)).toBe(false);
  });
});
