// @ts-check
/* The server's events: rows of requests that changed, as soon as the store's counts move. */

/**
 * @typedef {import("../src/internal/api-types.js").RequestsEvent} RequestsEvent
 * @typedef {{ onChanged?: (event: RequestsEvent) => void, onConnected?: () => void }} LiveListener
 */

/** @type {Set<LiveListener>} */
const listeners = new Set();
/** @type {EventSource | undefined} */
let source;

/** @param {string} state @param {string} text */
function showState(state, text) {
  const badge = document.getElementById("live");
  if (!badge) return;
  badge.dataset.state = state;
  badge.textContent = text;
}

function connect() {
  source = new EventSource("/api/events");
  source.addEventListener("hello", () => {
    showState("live", "live");
    // Events may have been missed while disconnected: every view reads its data again.
    for (const listener of listeners) listener.onConnected?.();
  });
  source.addEventListener("requests", (message) => {
    /** @type {RequestsEvent} */
    const event = JSON.parse(message.data);
    for (const listener of listeners) listener.onChanged?.(event);
  });
  source.addEventListener("error", () => showState("down", "reconnecting…"));
}

/**
 * Listens to the server's events (connecting on first use); returns a function that stops.
 * @param {LiveListener} listener
 */
export function listen(listener) {
  if (!source) connect();
  listeners.add(listener);
  return () => {
    listeners.delete(listener);
  };
}
