// @ts-check
/* Numbers, times and sizes as people read them. */

const counts = new Intl.NumberFormat("en");

/** @param {number} n */
export function count(n) {
  return counts.format(n);
}

/** @param {number | null} perSecond */
export function rate(perSecond) {
  if (perSecond === null) return "—";
  if (perSecond >= 100) return `${count(Math.round(perSecond))}/s`;
  if (perSecond >= 1) return `${perSecond.toFixed(1)}/s`;
  if (perSecond > 0) return `${(perSecond * 60).toFixed(1)}/min`;
  return "0/s";
}

/** @param {number | null} seconds */
export function duration(seconds) {
  if (seconds === null || !Number.isFinite(seconds)) return "—";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} d ${hours % 24} h`;
}

/**
 * How long ago, from the server's clock.
 * @param {number} at milliseconds since the epoch
 * @param {number} now
 */
export function ago(at, now) {
  const seconds = Math.max(0, (now - at) / 1000);
  if (seconds < 5) return "just now";
  return `${duration(seconds).replace(/ \d+ (s|min|h)$/, "")} ago`;
}

/** @param {number} at milliseconds since the epoch */
export function dateTime(at) {
  return new Date(at).toLocaleString("en-GB", { dateStyle: "medium", timeStyle: "medium" });
}

/** @param {number | null} bytes */
export function bytes(bytes) {
  if (bytes === null) return "—";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value < 10 && unit > 0 ? value.toFixed(1) : Math.round(value)} ${units[unit]}`;
}

/** @param {number} part @param {number} whole */
export function percent(part, whole) {
  if (whole === 0) return "100%";
  const value = (100 * part) / whole;
  return `${value > 0 && value < 1 ? value.toFixed(1) : Math.floor(value)}%`;
}
