import { request as httpRequest } from "node:http";
import { SheepdogError } from "@sheepdog/contracts";
import { encode } from "@sheepdog/serialise";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import {
  createRequest,
  deathText,
  staggeredReports,
  submittedMeta,
  temporaryStore,
  traceback,
} from "./__fixtures__/requests.js";
import type { Dashboard } from "./dashboard.js";
import { createDashboard } from "./dashboard.js";
import type { RequestDetail, RequestList, Session, TaskDetail } from "./internal/api-types.js";

let store: ReturnType<typeof temporaryStore>;
let dashboard: Dashboard;
let token: string;

beforeEach(async () => {
  store = temporaryStore();
  dashboard = await createDashboard({ store, pollMs: 100 });
  token = new URL(dashboard.url).searchParams.get("token") as string;
});

afterEach(async () => {
  await dashboard.close();
  await store.dispose();
});

function get(path: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${dashboard.origin}${path}`, { headers, redirect: "manual" });
}

function authorised(path: string): Promise<Response> {
  return get(path, { authorization: `Bearer ${token}` });
}

async function json<T>(path: string): Promise<T> {
  const response = await authorised(path);
  expect(response.status).toBe(200);
  return (await response.json()) as T;
}

/** A request with a Host header of our choosing (fetch does not let one be set). */
function getWithHost(path: string, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      `${dashboard.origin}${path}`,
      { headers: { host, authorization: `Bearer ${token}` } },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

describe("the token", () => {
  it("is 32 random bytes in the URL, on 127.0.0.1, and not printed with the object", async () => {
    expect(dashboard.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/\?token=[A-Za-z0-9_-]{43}$/);
    expect(dashboard.origin).toBe(`http://127.0.0.1:${dashboard.port}`);
    const { inspect } = await import("node:util");
    expect(inspect(dashboard)).not.toContain(token);
    expect(JSON.stringify(dashboard)).not.toContain(token);
  });

  it("is needed by every route: missing or wrong gets 401 and no data", async () => {
    await createRequest(store, "secret_function", 2);
    for (const path of [
      "/",
      "/assets/app.js",
      "/assets/vendor/uplot.js",
      "/api/requests",
      "/api/requests/1",
      "/api/events",
      "/nothing",
    ]) {
      const wrong: Record<string, string>[] = [
        {},
        { authorization: "Bearer wrong-token-wrong-token" },
        { cookie: `sheepdog_dashboard_${dashboard.port}=${token}x` },
      ];
      for (const headers of wrong) {
        const response = await get(path, headers);
        expect(response.status, path).toBe(401);
        const body = await response.text();
        expect(body).not.toContain("secret_function");
        expect(body).toContain("needs its token");
      }
    }
    expect((await get(`/?token=${token}x`)).status).toBe(401);
  });

  it("in the query is swapped for an HttpOnly, SameSite=Strict cookie and a redirect without it", async () => {
    const response = await get(`/?token=${token}&x=1`);
    expect(response.status).toBe(303);
    expect(response.headers.get("location")).toBe("/?x=1");
    const cookie = response.headers.get("set-cookie") as string;
    expect(cookie).toBe(
      `sheepdog_dashboard_${dashboard.port}=${token}; Path=/; HttpOnly; SameSite=Strict`,
    );
    const page = await get("/", { cookie: cookie.split(";")[0] as string });
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toBe("text/html; charset=utf-8");
    expect(await page.text()).toContain('<script type="module" src="/assets/app.js"></script>');
  });

  it("is refused behind a Host that is not a loopback name (a rebound DNS name)", async () => {
    expect(await getWithHost("/api/requests", `localhost:${dashboard.port}`)).toBe(200);
    expect(await getWithHost("/api/requests", `127.0.0.1:${dashboard.port}`)).toBe(200);
    expect(await getWithHost("/api/requests", `attacker.example:${dashboard.port}`)).toBe(403);
  });
});

describe("answers", () => {
  it("carry the security headers, refusals and files included", async () => {
    for (const response of [
      await get("/api/requests"),
      await authorised("/"),
      await authorised("/assets/style.css"),
      await authorised("/api/requests"),
    ]) {
      expect(response.headers.get("content-security-policy")).toContain("default-src 'self'");
      expect(response.headers.get("content-security-policy")).toContain("frame-ancestors 'none'");
      expect(response.headers.get("x-content-type-options")).toBe("nosniff");
      expect(response.headers.get("cache-control")).toBe("no-store");
      expect(response.headers.get("referrer-policy")).toBe("no-referrer");
    }
  });

  it("serve the page's files and uPlot from its package, and nothing else of the disk", async () => {
    const uplot = await authorised("/assets/vendor/uplot.js");
    expect(uplot.headers.get("content-type")).toBe("text/javascript; charset=utf-8");
    expect(await uplot.text()).toContain("export { uPlot as default }");
    expect((await authorised("/assets/vendor/uplot.css")).status).toBe(200);
    expect((await authorised("/assets/icon.svg")).headers.get("content-type")).toBe(
      "image/svg+xml",
    );
    for (const path of [
      "/assets/tsconfig.json",
      "/assets/vendor/uplot.d.ts",
      "/assets/%2e%2e/package.json",
      "/assets/../package.json",
      "/package.json",
    ]) {
      expect((await authorised(path)).status, path).toBe(404);
    }
  });
});

describe("the JSON API", () => {
  it("lists every request with its function, host, scheduler and counts", async () => {
    const first = await createRequest(store, "divide", 4);
    const second = await createRequest(store, "other", 2, {
      connection: { host: "local" },
      job: { scheduler: "local", id: "77", tasks: 2 },
    });
    await store.putResult(first, 0, encode(1));
    await store.putError(first, 1, traceback("ZeroDivisionError", "division by zero"));
    await store.putResult(second, 0, encode(1));
    await store.putResult(second, 1, encode(2));
    const { requests } = await json<RequestList>("/api/requests");
    expect(requests).toMatchObject([
      {
        id: first,
        name: "divide",
        host: "fear",
        scheduler: "gridengine",
        jobId: "4242",
        tasks: 4,
        done: 1,
        failed: 1,
        pending: 2,
        state: "running",
        etaSeconds: null,
      },
      {
        id: second,
        name: "other",
        host: "local",
        scheduler: "local",
        jobId: "77",
        done: 2,
        failed: 0,
        pending: 0,
        state: "complete",
        throughput: null,
      },
    ]);
  });

  it("gives a request's task states, errors grouped with their arguments, dead tasks and attempts", async () => {
    const id = await createRequest(store, "divide", 6);
    await store.putResult(id, 0, encode(0));
    await store.putError(id, 1, traceback("ZeroDivisionError", "division by zero"));
    await store.putError(id, 2, traceback("ZeroDivisionError", "division by zero"));
    await store.putError(id, 3, traceback("ValueError", "math domain error"));
    await store.putError(
      id,
      4,
      deathText(5, "4242", "out-of-memory", "over its memory limit (exit status 137)"),
      { provisional: true },
    );
    const detail = await json<RequestDetail>(`/api/requests/${id}`);
    expect(detail.stateRuns).toBe("de3x.");
    expect(detail.source).toBe("def divide(a, b):\n    return a / b\n");
    expect(
      detail.errors.map(({ type, message, count, indices }) => ({ type, message, count, indices })),
    ).toEqual([
      { type: "ZeroDivisionError", message: "division by zero", count: 2, indices: [1, 2] },
      { type: "ValueError", message: "math domain error", count: 1, indices: [3] },
    ]);
    expect(detail.errors[0]?.examples[0]).toEqual({
      index: 1,
      args: "(1, 1)",
      error: traceback("ZeroDivisionError", "division by zero"),
    });
    expect(detail.dead).toMatchObject([
      {
        kind: "out-of-memory",
        cause: "over its memory limit (exit status 137)",
        count: 1,
        indices: [4],
      },
    ]);
    expect(detail.attempts).toEqual([
      { attempt: 0, jobId: "4242", scheduler: "gridengine", tasks: 6, results: null, errors: null },
    ]);
    expect(detail.factsRecorded).toBe(true);
    expect(detail.timing).toBeNull();
    expect(detail.facts).toEqual({ "chunk size": "1", "pickle protocol": "4", port: "40123" });
    expect((await authorised(`/api/requests/${id + 1}`)).status).toBe(404);
    expect((await authorised("/api/requests/x")).status).toBe(404);
  });

  it("counts the tasks each retry ran and what each attempt reported", async () => {
    const meta = submittedMeta("fear", "slurm", "900", 4);
    const retry = { ...(meta.job as object), id: "901", tasks: 1 };
    const id = await createRequest(store, "divide", 4, {
      ...meta,
      jobs: [meta.job, retry],
      job: retry,
      retryTasks: [[1, 3]],
      attempt: 1,
    });
    await store.putReports(id, [
      { index: 0, kind: "result", value: encode(1), facts: { attempt: 1 } },
      { index: 1, kind: "result", value: encode(1), facts: { attempt: 2 } },
      { index: 3, kind: "error", value: traceback("ValueError", "x"), facts: { attempt: 2 } },
    ]);
    const detail = await json<RequestDetail>(`/api/requests/${id}`);
    expect(detail.request).toMatchObject({ scheduler: "slurm", jobId: "901" });
    expect(detail.attempts).toEqual([
      { attempt: 0, jobId: "900", scheduler: "slurm", tasks: 4, results: 1, errors: 0 },
      { attempt: 1, jobId: "901", scheduler: "slurm", tasks: 2, results: 1, errors: 1 },
    ]);
  });

  it("gives run times, hosts, peak memory and logs where the store records them", async () => {
    const id = await createRequest(store, "divide", 3);
    const start = Date.now();
    const facts = (seconds: number, host: string) => ({
      startedAt: start,
      endedAt: start + seconds * 1000,
      host,
      peakMemoryBytes: 50_000_000,
      attempt: 1,
    });
    await store.putReports(id, [
      {
        index: 0,
        kind: "result",
        value: encode(0),
        facts: { ...facts(2, "node1"), log: "hello\n" },
      },
      {
        index: 1,
        kind: "result",
        value: encode(1),
        facts: { ...facts(8, "node2"), log: "[sheepdog: 1234 bytes cut]\nthe tail\n" },
      },
    ]);
    const detail = await json<RequestDetail>(`/api/requests/${id}`);
    expect(detail.timing?.slowest).toEqual([
      { index: 1, runSeconds: 8, host: "node2", peakMemoryBytes: 50_000_000, attempt: 1 },
      { index: 0, runSeconds: 2, host: "node1", peakMemoryBytes: 50_000_000, attempt: 1 },
    ]);
    expect(detail.timing?.histogram?.counts.reduce((a, b) => a + b)).toBe(2);
    expect(detail.timing?.waitVsRun?.run.sort()).toEqual([2, 8]);
    const task = await json<TaskDetail>(`/api/requests/${id}/tasks/1`);
    expect(task).toEqual({
      index: 1,
      state: "done",
      args: "(1, 1)",
      result: "1",
      error: null,
      run: { index: 1, runSeconds: 8, host: "node2", peakMemoryBytes: 50_000_000, attempt: 1 },
      log: { text: "the tail\n", cutBytes: 1234 },
    });
    const pending = await json<TaskDetail>(`/api/requests/${id}/tasks/2`);
    expect(pending).toMatchObject({ state: "pending", result: null, run: null, log: null });
    expect((await authorised(`/api/requests/${id}/tasks/3`)).status).toBe(404);
  });

  it("draws a finished request's reports per second from when its tasks ended, opened long after", async () => {
    const id = await createRequest(store, "divide", 300);
    const began = Date.now() - 3_600_000;
    await store.putReports(id, staggeredReports(300, began));
    const detail = await json<RequestDetail>(`/api/requests/${id}`);
    const first = Math.floor(began / 1000);
    const last = Math.floor((began + 299 * 100 + 500) / 1000);
    expect(detail.rate).toMatchObject({ from: "reports", binSeconds: 1 });
    expect(detail.rate.t).toEqual(Array.from({ length: last - first + 1 }, (_, i) => first + i));
    const sum = (values: number[]) => values.reduce((a, b) => a + b, 0);
    expect(sum(detail.rate.results)).toBe(295);
    expect(sum(detail.rate.errors)).toBe(5);
    // From the first start to the last end: 300 reports in 30.4 s; nothing left to wait for.
    expect(detail.request.state).toBe("complete");
    expect(detail.request.throughput).toBeCloseTo(300 / 30.4);
    expect(detail.request.etaSeconds).toBeNull();
    // The list reads no task's times: a finished request's throughput is its page's.
    const { requests } = await json<RequestList>("/api/requests");
    expect(requests[0]?.throughput).toBeNull();
  });

  it("bins a long request's reports per second to at most 600 points", async () => {
    const id = await createRequest(store, "divide", 2_000);
    const began = Date.now() - 86_400_000;
    // 2,000 tasks ending over three hours.
    await store.putReports(
      id,
      Array.from({ length: 2_000 }, (_, i) => ({
        index: i,
        kind: "result" as const,
        value: encode(i),
        facts: { startedAt: began + i * 5_400, endedAt: began + i * 5_400 + 1_000 },
      })),
    );
    const { rate } = await json<RequestDetail>(`/api/requests/${id}`);
    expect(rate.binSeconds).toBe(30);
    expect(rate.t.length).toBeLessThanOrEqual(600);
    expect(rate.t[0]).toBe(Math.floor(began / 1000));
    // Each point is per second over its bin; the last bin ends at the last report's second.
    const last = Math.floor((began + 1_999 * 5_400 + 1_000) / 1000);
    const reports = rate.results.reduce(
      (sum, perSecond, i) => sum + perSecond * Math.min(30, last + 1 - (rate.t[i] as number)),
      0,
    );
    expect(Math.round(reports)).toBe(2_000);
  });

  it("says 'not recorded' of logs where the store keeps none", async () => {
    const { getTaskFacts: _facts, getLogs: _logs, ...plain } = store;
    const bare = { ...plain, close: () => store.close() };
    await using other = await createDashboard({
      store: bare as typeof store,
      token: "a-token-of-my-own-choosing",
    });
    const id = await createRequest(store, "divide", 1);
    await store.putResult(id, 0, encode(5));
    const response = await fetch(`${other.origin}/api/requests/${id}/tasks/0`, {
      headers: { authorization: "Bearer a-token-of-my-own-choosing" },
    });
    expect(await response.json()).toMatchObject({
      state: "done",
      result: "5",
      run: null,
      log: "not recorded",
    });
    const detail = await fetch(`${other.origin}/api/requests/${id}`, {
      headers: { authorization: "Bearer a-token-of-my-own-choosing" },
    });
    expect(await detail.json()).toMatchObject({
      factsRecorded: false,
      timing: null,
      attempts: [{ results: null, errors: null }],
      rate: { from: "watched", binSeconds: 1 },
    });
  });
});

/** Reads server-sent events until `until` says stop; resolves with what was read. */
async function readEvents(response: Response, until: (text: string) => boolean): Promise<string> {
  const reader = (response.body as ReadableStream<Uint8Array>).getReader();
  const decoder = new TextDecoder();
  let text = "";
  while (!until(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}

describe("server-sent events", () => {
  it("push a request's new counts within a second of a report", async () => {
    const id = await createRequest(store, "divide", 3);
    const events = await authorised("/api/events");
    expect(events.headers.get("content-type")).toBe("text/event-stream");
    const hello = readEvents(events, (text) => text.includes('"done":1'));
    await new Promise((resolve) => setTimeout(resolve, 300));
    const reported = Date.now();
    await store.putResult(id, 2, encode(2));
    const text = await hello;
    expect(Date.now() - reported).toBeLessThan(1000);
    expect(text).toMatch(/^event: hello\nretry: 2000\n/);
    expect(text).toContain("event: requests\n");
    expect(text).toContain(`"id":${id},"name":"divide"`);
  });

  it("end when the dashboard closes, and close() does not wait for them", async () => {
    const events = await authorised("/api/events");
    const ended = readEvents(events, () => false);
    const started = Date.now();
    await dashboard.close();
    await ended;
    expect(Date.now() - started).toBeLessThan(900);
    await expect(fetch(`${dashboard.origin}/api/requests`)).rejects.toThrow();
  });
});

describe("actions", () => {
  async function withActions(calls: string[], fail?: Error): Promise<Dashboard> {
    return createDashboard({
      store,
      token: "the-token-of-the-actions-test",
      actions: {
        async cancel(id) {
          calls.push(`cancel ${id}`);
          if (fail) throw fail;
        },
        async retryFailed(id) {
          calls.push(`retry ${id}`);
        },
      },
    });
  }

  async function post(
    on: Dashboard,
    path: string,
    headers: Record<string, string>,
  ): Promise<Response> {
    return fetch(`${on.origin}${path}`, { method: "POST", headers });
  }

  it("run with the action key or the token in a header, never with the cookie alone", async () => {
    const calls: string[] = [];
    await using on = await withActions(calls);
    const id = await createRequest(store, "divide", 1);
    const session = (await (
      await fetch(`${on.origin}/api/session`, {
        headers: { authorization: "Bearer the-token-of-the-actions-test" },
      })
    ).json()) as Session;
    expect(session.actions).toEqual({ cancel: true, retryFailed: true });
    expect(session.actionKey).not.toContain("the-token");
    const cookie = `sheepdog_dashboard_${on.port}=the-token-of-the-actions-test`;
    expect((await post(on, `/api/requests/${id}/cancel`, { cookie })).status).toBe(401);
    expect(
      (await post(on, `/api/requests/${id}/cancel`, { cookie, "x-sheepdog-action-key": "wrong" }))
        .status,
    ).toBe(401);
    expect(calls).toEqual([]);
    const ok = await post(on, `/api/requests/${id}/cancel`, {
      cookie,
      "x-sheepdog-action-key": session.actionKey,
    });
    expect(ok.status).toBe(200);
    expect(await ok.json()).toEqual({ ok: true });
    expect(
      (
        await post(on, `/api/requests/${id}/retry-failed`, {
          authorization: "Bearer the-token-of-the-actions-test",
        })
      ).status,
    ).toBe(200);
    expect(calls).toEqual([`cancel ${id}`, `retry ${id}`]);
    expect(
      (
        await post(on, `/api/requests/${id + 1}/cancel`, {
          authorization: "Bearer the-token-of-the-actions-test",
        })
      ).status,
    ).toBe(404);
  });

  it("are refused from another origin or site, whatever they carry", async () => {
    const calls: string[] = [];
    await using on = await withActions(calls);
    const id = await createRequest(store, "divide", 1);
    const auth = { authorization: "Bearer the-token-of-the-actions-test" };
    const foreign: Record<string, string>[] = [
      { origin: "http://attacker.example" },
      { origin: `http://localhost:${on.port + 1}` },
      { origin: "null" },
      { "sec-fetch-site": "cross-site" },
      { "sec-fetch-site": "same-site" },
    ];
    for (const headers of foreign) {
      const response = await post(on, `/api/requests/${id}/cancel`, { ...auth, ...headers });
      expect(response.status, JSON.stringify(headers)).toBe(403);
    }
    expect(
      (
        await post(on, `/api/requests/${id}/cancel`, {
          ...auth,
          origin: on.origin,
          "sec-fetch-site": "same-origin",
        })
      ).status,
    ).toBe(200);
    expect(calls).toEqual([`cancel ${id}`]);
  });

  it("say why an action failed, and are absent (404) when not given", async () => {
    const calls: string[] = [];
    await using on = await withActions(
      calls,
      new SheepdogError("SCHEDULER_FAILED", "core", "qdel said no. Try again."),
    );
    const id = await createRequest(store, "divide", 1);
    const failed = await post(on, `/api/requests/${id}/cancel`, {
      authorization: "Bearer the-token-of-the-actions-test",
    });
    expect(failed.status).toBe(500);
    expect(await failed.json()).toEqual({ error: "qdel said no. Try again." });
    const none = await post(dashboard, `/api/requests/${id}/cancel`, {
      authorization: `Bearer ${token}`,
    });
    expect(none.status).toBe(404);
    const session = (await json<Session>("/api/session")).actions;
    expect(session).toEqual({ cancel: false, retryFailed: false });
  });
});

describe("options", () => {
  it("are checked", async () => {
    const bad = [
      { store: {} },
      { store, token: "short" },
      { store, token: "has spaces in it, sixteen+" },
      { store, pollMs: 10 },
      { store, listen: { port: 70000 } },
      { store, actions: { cancel: "yes" } },
    ];
    for (const options of bad) {
      await expect(
        createDashboard(options as never),
        JSON.stringify(options),
      ).rejects.toMatchObject({ code: "CONFIG_INVALID" });
    }
  });

  it("a taken port is SERVER_FAILED", async () => {
    await expect(
      createDashboard({ store, listen: { port: dashboard.port } }),
    ).rejects.toMatchObject({
      code: "SERVER_FAILED",
      message: expect.stringContaining("another program uses it"),
    });
  });
});
