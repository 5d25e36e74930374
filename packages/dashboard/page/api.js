// @ts-check
/* The dashboard's JSON API, as the page uses it (the shapes are in src/internal/api-types.ts). */

/**
 * @typedef {import("../src/internal/api-types.js").Session} Session
 * @typedef {import("../src/internal/api-types.js").RequestList} RequestList
 * @typedef {import("../src/internal/api-types.js").RequestDetail} RequestDetail
 * @typedef {import("../src/internal/api-types.js").TaskDetail} TaskDetail
 * @typedef {import("../src/internal/api-types.js").RequestRow} RequestRow
 * @typedef {import("../src/internal/api-types.js").RequestsEvent} RequestsEvent
 */

/** The answer of a route that failed, with the server's message. */
export class ApiError extends Error {
  /** @param {number} status @param {string} message */
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

/**
 * @param {Response} response
 * @returns {Promise<never>}
 */
async function failed(response) {
  let message = `The dashboard answered ${response.status}.`;
  try {
    const body = await response.json();
    if (typeof body?.error === "string") message = body.error;
  } catch {
    // Not JSON (a 401's text): the status says enough.
  }
  throw new ApiError(response.status, message);
}

/**
 * GETs a route's JSON.
 * @template T
 * @param {string} path
 * @returns {Promise<T>}
 */
export async function getJson(path) {
  const response = await fetch(path, { credentials: "same-origin", cache: "no-store" });
  if (!response.ok) return failed(response);
  return response.json();
}

/** @type {Session | undefined} */
let session;

/** What the page may do; read once. */
export async function getSession() {
  session ??= /** @type {Session} */ (await getJson("/api/session"));
  return session;
}

/**
 * Asks for an action on a request (`cancel`, `retry-failed`), with the action key in its header.
 * @param {number} id
 * @param {"cancel" | "retry-failed"} action
 */
export async function postAction(id, action) {
  const { actionKey } = await getSession();
  const response = await fetch(`/api/requests/${id}/${action}`, {
    method: "POST",
    credentials: "same-origin",
    headers: { "x-sheepdog-action-key": actionKey },
  });
  if (!response.ok) return failed(response);
}
