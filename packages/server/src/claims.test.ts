import type { CreatedRequest, RequestMeta, Store } from "@sheepdog/contracts";
import { decodeTaskFrames, encodeReports } from "@sheepdog/contracts";
import { memoryStore } from "@sheepdog/contracts/testing";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import type { WorkerAnswer } from "./__fixtures__/worker-client.js";
import { keyOf, workerFetch } from "./__fixtures__/worker-client.js";
import type { SheepdogServer } from "./server.js";
import { startServer } from "./server.js";

const text = (value: string) => new TextEncoder().encode(value);
const pickled = (n: number) => new Uint8Array([0x80, 4, 0x4b, n, 0x2e]);
const func = text(JSON.stringify({ name: "f", source: "def f(x):\n    return x\n" }));
const ns = new Uint8Array([0x80, 4, 0x7d, 0x94, 0x2e]);

let store: Store;
let server: SheepdogServer;
const servers: SheepdogServer[] = [];

async function serve(on: Store): Promise<SheepdogServer> {
  const started = await startServer({ store: on, port: 0, host: "127.0.0.1", onError: () => {} });
  servers.push(started);
  return started;
}

/** Eight arguments in chunk tasks of two (tasks 1 to 4), letting tasks claim unless told not. */
function newRequest(meta: RequestMeta = { chunkSize: 2, claims: {} }): Promise<CreatedRequest> {
  return store.createRequest({
    func,
    ns,
    args: Array.from({ length: 8 }, (_, i) => pickled(i)),
    meta,
  });
}

const path = (request: CreatedRequest, task: number) => `/v2/requests/${request.id}/tasks/${task}`;

function fetchOwn(request: CreatedRequest, task: number, at = server): Promise<WorkerAnswer> {
  return workerFetch(at.url, keyOf(request), path(request, task));
}

function claimNext(request: CreatedRequest, holder: number, at = server): Promise<WorkerAnswer> {
  return workerFetch(at.url, keyOf(request), `${path(request, holder)}/next`, {
    body: new Uint8Array(0),
  });
}

/** The task a proven claim gave (its header's task and first argument), or null for none. */
function claimed(answer: WorkerAnswer): { task: number; first: number } | null {
  expect(answer.status).toBe(200);
  expect(answer.proven).toBe(true);
  if (answer.body.byteLength === 0) return null;
  const { header } = decodeTaskFrames(answer.body);
  return { task: header.task, first: header.first };
}

async function claimsInMeta(request: CreatedRequest): Promise<unknown> {
  return (await store.getRequest(request.id)).meta.claims;
}

/**
 * A claim by array task `holder` of `request`, held while it checks its first candidate until
 * `release` is called.
 */
async function claimHeldWhileChecking(request: CreatedRequest, holder: number) {
  let release: () => void = () => {};
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const unreported = store.unreported.bind(store);
  store.unreported = async (...args) => {
    await gate;
    return unreported(...args);
  };
  const claiming = claimNext(request, holder);
  await new Promise((resolve) => setTimeout(resolve, 50));
  return { release, claiming };
}

/** A claim by array task 4 of a new request, held while it checks task 1 (see above). */
async function claimWhileChecking() {
  const request = await newRequest();
  return { ...(await claimHeldWhileChecking(request, 4)), request };
}

beforeEach(async () => {
  store = memoryStore();
  server = await serve(store);
});

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

describe("claiming tasks (POST .../tasks/:task/next)", () => {
  it("gives the lowest chunk task not fetched, in the meta first, and answers its own task 409", async () => {
    const request = await newRequest();
    expect((await fetchOwn(request, 1)).status).toBe(200);
    expect((await fetchOwn(request, 2)).status).toBe(200);
    expect(claimed(await claimNext(request, 1))).toEqual({ task: 3, first: 4 });
    expect(await claimsInMeta(request)).toEqual({ "3": 1 });
    const held = await fetchOwn(request, 3);
    expect(held.status).toBe(409);
    expect(held.proven).toBe(true);
    expect(held.json()).toEqual({
      status: 409,
      message: "Task 3 is being run by task 1, which claimed it.",
      heldBy: 1,
    });
    expect(claimed(await claimNext(request, 2))).toEqual({ task: 4, first: 6 });
    expect(claimed(await claimNext(request, 1))).toBeNull();
    expect(claimed(await claimNext(request, 3))).toBeNull();
    expect(await claimsInMeta(request)).toEqual({ "3": 1, "4": 2 });
    // The holder reports the claimed task's arguments on that task's route.
    const body = encodeReports([{ index: 4, kind: "result", payload: pickled(4) }]);
    const posted = await workerFetch(server.url, keyOf(request), `${path(request, 3)}/reports`, {
      body,
      headers: { "content-type": "application/vnd.sheepdog.reports+frames" },
    });
    expect(posted.json()).toEqual({ stored: 1, duplicates: 0 });
  });

  it("names the array tasks left without work once every task is taken and no claim is under way", async () => {
    const request = await newRequest();
    expect((await fetchOwn(request, 1)).status).toBe(200);
    expect((await fetchOwn(request, 2)).status).toBe(200);
    expect(claimed(await claimNext(request, 1))).toEqual({ task: 3, first: 4 });
    // Task 4 is free: its array task may still claim, or run its own.
    expect(await server.idleTasks(request.id)).toEqual([]);
    expect((await fetchOwn(request, 3)).status).toBe(409);
    expect(claimed(await claimNext(request, 3))).toEqual({ task: 4, first: 6 });
    // Array task 3 holds task 4: only array task 4 is left without work.
    expect(await server.idleTasks(request.id)).toEqual([4]);
    expect(await server.idleTasks(request.id + 1)).toEqual([]);
  });

  it("names no idle task while a claim is under way, nor for a request without claims", async () => {
    const request = await newRequest();
    expect((await fetchOwn(request, 1)).status).toBe(200);
    expect((await fetchOwn(request, 2)).status).toBe(200);
    expect(claimed(await claimNext(request, 1))).toEqual({ task: 3, first: 4 });
    expect((await fetchOwn(request, 3)).status).toBe(409);
    // Array task 3, whose own task is held, claims task 4 and is held while it checks it.
    const { release, claiming } = await claimHeldWhileChecking(request, 3);
    // Every task is taken, but array task 3 is about to run task 4: it is not idle.
    expect(await server.idleTasks(request.id)).toEqual([]);
    release();
    expect(claimed(await claiming)).toEqual({ task: 4, first: 6 });
    expect(await server.idleTasks(request.id)).toEqual([4]);
    const without = await newRequest({ chunkSize: 2 });
    for (const task of [1, 2, 3, 4]) expect((await fetchOwn(without, task)).status).toBe(200);
    expect(await server.idleTasks(without.id)).toEqual([]);
  });

  it("gives nothing of a request whose meta has no claims, and serves every task to its own", async () => {
    const request = await newRequest({ chunkSize: 2 });
    expect(claimed(await claimNext(request, 1))).toBeNull();
    for (const task of [1, 2, 3, 4]) expect((await fetchOwn(request, task)).status).toBe(200);
    expect(await claimsInMeta(request)).toBeUndefined();
    expect(await server.settleTask(request.id, 2)).toBeUndefined();
  });

  it("passes over a chunk task whose first argument has a report (its own ran before)", async () => {
    const request = await newRequest();
    await store.putResult(request.id, 0, pickled(0));
    await store.putResult(request.id, 2, pickled(2));
    expect(claimed(await claimNext(request, 4))).toEqual({ task: 3, first: 4 });
  });

  it("restores the claims from the meta in a server that starts later", async () => {
    const request = await newRequest();
    expect(claimed(await claimNext(request, 2))).toEqual({ task: 1, first: 0 });
    const later = await serve(store);
    const held = await fetchOwn(request, 1, later);
    expect(held.status).toBe(409);
    expect(held.json()).toMatchObject({ heldBy: 2 });
    expect(claimed(await claimNext(request, 3, later))).toEqual({ task: 2, first: 2 });
    expect(await later.settleTask(request.id, 4)).toEqual(
      new Map([
        [1, 2],
        [2, 3],
      ]),
    );
  });

  it("closes a task to claims once its end is settled, and tells the claims", async () => {
    const request = await newRequest();
    expect(await server.settleTask(request.id, 1)).toEqual(new Map());
    expect(claimed(await claimNext(request, 3))).toEqual({ task: 2, first: 2 });
    expect(await server.settleTask(request.id, 4)).toEqual(new Map([[2, 3]]));
    expect(claimed(await claimNext(request, 3))).toEqual({ task: 3, first: 4 });
    expect(claimed(await claimNext(request, 3))).toBeNull();
  });

  it("lets a task's own fetch win over a claim still checking it", async () => {
    const { release, claiming, request } = await claimWhileChecking();
    expect((await fetchOwn(request, 1)).status).toBe(200);
    release();
    expect(claimed(await claiming)).toEqual({ task: 2, first: 2 });
    expect(await claimsInMeta(request)).toEqual({ "2": 4 });
  });

  it("gives a claim still checking a task none of it once its end is settled", async () => {
    const { release, claiming, request } = await claimWhileChecking();
    expect(await server.settleTask(request.id, 1)).toEqual(new Map());
    release();
    expect(claimed(await claiming)).toEqual({ task: 2, first: 2 });
  });

  it("gives nothing when the claim cannot be written, and leaves the task free", async () => {
    const request = await newRequest();
    const updateMeta = store.updateMeta.bind(store);
    store.updateMeta = async () => {
      store.updateMeta = updateMeta;
      throw new Error("disk full");
    };
    expect(claimed(await claimNext(request, 4))).toBeNull();
    expect(await claimsInMeta(request)).toEqual({});
    expect(claimed(await claimNext(request, 4))).toEqual({ task: 1, first: 0 });
  });

  it("refuses a claim with a body (400) and one not signed with the request's key (401)", async () => {
    const request = await newRequest();
    const other = await newRequest();
    const withBody = await workerFetch(server.url, keyOf(request), `${path(request, 1)}/next`, {
      body: text("x"),
    });
    expect(withBody.status).toBe(400);
    expect(withBody.proven).toBe(true);
    const stranger = await workerFetch(server.url, keyOf(other), `${path(request, 1)}/next`, {
      body: new Uint8Array(0),
    });
    expect(stranger.status).toBe(401);
    const get = await workerFetch(server.url, keyOf(request), `${path(request, 1)}/next`);
    expect(get.status).toBe(405);
    expect(await claimsInMeta(request)).toEqual({});
    expect((await fetchOwn(request, 1)).status).toBe(200);
  });
});
