import { createHash, createHmac, timingSafeEqual } from "node:crypto";

/** The header that carries the action key on every action (POST). */
export const ACTION_KEY_HEADER = "x-sheepdog-action-key";

/** What the gate reads of a request. */
export interface GateRequest {
  method: string;
  url: URL;
  headers: { get(name: string): string | null };
}

/** What the gate decides: let the request through, or answer it with `response`. */
export type GateVerdict = { pass: true } | { pass: false; response: Response };

const PASS: GateVerdict = { pass: true };

function digest(text: string): Buffer {
  return createHash("sha256").update(text, "utf8").digest();
}

/** Whether a loopback name: `localhost` (and `*.localhost`), `127.x.x.x`, `[::1]`. */
function isLoopbackName(hostname: string): boolean {
  const name = hostname.toLowerCase();
  return (
    name === "localhost" ||
    name.endsWith(".localhost") ||
    name === "[::1]" ||
    /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name)
  );
}

/** The host name of a `Host` header (`name:port`, `[v6]:port`), lower case. */
function hostnameOf(host: string): string {
  const v6 = /^(\[[^\]]*\])(?::\d+)?$/.exec(host);
  if (v6) return (v6[1] as string).toLowerCase();
  return host.replace(/:\d+$/, "").toLowerCase();
}

/**
 * The cookie's name, with the port the browser sees: a browser shares cookies between the ports
 * of a host, and two dashboards (or two forwarded with `ssh -L`) must not overwrite each other's.
 */
function cookieName(request: GateRequest): string {
  const port = /:(\d+)$/.exec(request.headers.get("host") ?? "")?.[1] ?? "80";
  return `sheepdog_dashboard_${port}`;
}

function refusal(
  status: number,
  message: string,
  headers: Record<string, string> = {},
): GateVerdict {
  return {
    pass: false,
    response: new Response(`${message}\n`, {
      status,
      headers: { "content-type": "text/plain; charset=utf-8", ...headers },
    }),
  };
}

const UNAUTHORIZED =
  "The dashboard needs its token. Open the whole URL it printed (it ends in ?token=...).";

/**
 * Lets through only requests that carry the dashboard's token, compared in constant time:
 * `?token=` on a GET (answered with a cookie and a redirect to the same URL without it), the
 * cookie, or `Authorization: Bearer`. An action (POST) must carry the token or the action key in
 * a header, a cookie alone is not enough, and it is refused when it comes from another origin.
 * When the dashboard listens on loopback only, a `Host` that is not a loopback name is refused
 * (a page that rebinds its own name to 127.0.0.1 gets nothing, not even a 401 to probe).
 */
export class Gate {
  readonly #tokenDigest: Buffer;
  readonly #actionKeyDigest: Buffer;
  readonly #token: string;
  readonly #loopbackOnly: boolean;
  /** What the page sends in {@link ACTION_KEY_HEADER}: derived from the token, not the token. */
  readonly actionKey: string;

  constructor(token: string, loopbackOnly: boolean) {
    this.#token = token;
    this.#tokenDigest = digest(token);
    this.actionKey = createHmac("sha256", token)
      .update("sheepdog dashboard actions")
      .digest("base64url");
    this.#actionKeyDigest = digest(this.actionKey);
    this.#loopbackOnly = loopbackOnly;
  }

  /** Whether `candidate` is the token (constant time). */
  #isToken(candidate: string | null | undefined): boolean {
    return typeof candidate === "string" && timingSafeEqual(digest(candidate), this.#tokenDigest);
  }

  #isActionKey(candidate: string | null): boolean {
    return (
      typeof candidate === "string" && timingSafeEqual(digest(candidate), this.#actionKeyDigest)
    );
  }

  #bearer(request: GateRequest): string | null {
    const header = request.headers.get("authorization");
    const match = header === null ? null : /^Bearer\s+(\S+)\s*$/i.exec(header);
    return match ? (match[1] as string) : null;
  }

  #cookie(request: GateRequest): string | null {
    const wanted = cookieName(request);
    const header = request.headers.get("cookie") ?? "";
    for (const part of header.split(";")) {
      const [name, ...value] = part.trim().split("=");
      if (name === wanted) return value.join("=");
    }
    return null;
  }

  /** Decides about one request. */
  check(request: GateRequest): GateVerdict {
    const host = request.headers.get("host");
    if (this.#loopbackOnly && (host === null || !isLoopbackName(hostnameOf(host)))) {
      return refusal(403, "This dashboard answers only on this machine's loopback address.");
    }
    if (request.method === "GET" || request.method === "HEAD") return this.#checkRead(request);
    if (request.method === "POST") return this.#checkAction(request, host);
    return refusal(405, "Method not allowed.", { allow: "GET, HEAD, POST" });
  }

  #checkRead(request: GateRequest): GateVerdict {
    const fromQuery = request.url.searchParams.get("token");
    if (fromQuery !== null) {
      if (!this.#isToken(fromQuery)) return refusal(401, UNAUTHORIZED);
      const clean = new URL(request.url);
      clean.searchParams.delete("token");
      return {
        pass: false,
        response: new Response(null, {
          status: 303,
          headers: {
            location: `${clean.pathname}${clean.search}`,
            "set-cookie": `${cookieName(request)}=${this.#token}; Path=/; HttpOnly; SameSite=Strict`,
          },
        }),
      };
    }
    if (this.#isToken(this.#cookie(request)) || this.#isToken(this.#bearer(request))) return PASS;
    return refusal(401, UNAUTHORIZED);
  }

  #checkAction(request: GateRequest, host: string | null): GateVerdict {
    const origin = request.headers.get("origin");
    const site = request.headers.get("sec-fetch-site");
    if (
      (origin !== null && origin !== `http://${host}`) ||
      (site !== null && site !== "same-origin" && site !== "none")
    ) {
      return refusal(403, "Actions are accepted only from the dashboard's own page.");
    }
    const keyed = this.#isActionKey(request.headers.get(ACTION_KEY_HEADER));
    if (keyed || this.#isToken(this.#bearer(request))) return PASS;
    return refusal(401, UNAUTHORIZED);
  }
}
