import type { CreatedRequest, MacKey } from "@sheepdog/contracts";
import {
  hashToken,
  macKey,
  PROOF_HEADER,
  proofMatches,
  signWorkerRequest,
} from "@sheepdog/contracts";

/** The key of a request, from the token `createRequest` returned. */
export function keyOf(request: Pick<CreatedRequest, "token">): MacKey {
  return macKey(hashToken(request.token));
}

/** An answer read whole, and whether it carries a right proof for the request signed. */
export interface WorkerAnswer {
  status: number;
  headers: Headers;
  body: Uint8Array;
  proven: boolean;
  /** The body as JSON (`undefined` when it is not JSON). */
  json(): unknown;
}

/** Options of {@link workerFetch}. */
export interface WorkerFetchOptions {
  method?: "GET" | "POST" | (string & {});
  body?: Uint8Array;
  /** Extra headers (they win over the signed ones). */
  headers?: Record<string, string>;
  /** The signing time. @default Date.now() */
  time?: number;
}

/**
 * A worker request as the Python worker makes it (wire protocol v2): signed with `key` for
 * `path` on `baseUrl`, its answer read whole and its proof checked.
 */
export async function workerFetch(
  baseUrl: string,
  key: MacKey,
  path: string,
  options: WorkerFetchOptions = {},
): Promise<WorkerAnswer> {
  const method = options.method ?? (options.body === undefined ? "GET" : "POST");
  const { headers, nonce } = signWorkerRequest(key, {
    method,
    url: baseUrl,
    path,
    ...(options.body !== undefined && { body: options.body }),
    ...(options.time !== undefined && { time: options.time }),
  });
  const response = await fetch(`${baseUrl}${path}`, {
    method,
    headers: { ...headers, ...options.headers },
    ...(options.body !== undefined && { body: options.body }),
  });
  const body = new Uint8Array(await response.arrayBuffer());
  const proven = proofMatches(
    key,
    { method, path, nonce, status: response.status },
    body,
    response.headers.get(PROOF_HEADER),
  );
  return {
    status: response.status,
    headers: response.headers,
    body,
    proven,
    json() {
      try {
        return JSON.parse(new TextDecoder().decode(body));
      } catch {
        return undefined;
      }
    },
  };
}
