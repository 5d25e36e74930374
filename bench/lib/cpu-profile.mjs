// Summarises a V8 .cpuprofile (node --cpu-prof): where the CPU time went, by function (self
// time) and by area (which package or part of Node the function lives in).
import { readFileSync } from "node:fs";

/** The area a profile node's code belongs to, from its URL. */
export function areaOf(url, functionName) {
  if (functionName === "(garbage collector)") return "garbage collection";
  if (functionName === "(idle)") return "idle";
  if (functionName === "(program)") return "V8 and native (program)";
  if (!url) return "V8 and native";
  const pkg = /\/packages\/([^/]+)\/dist\//.exec(url);
  if (pkg) return `@sheepdog/${pkg[1]}`;
  const mod = /node_modules\/(?:\.pnpm\/[^/]+\/node_modules\/)?((?:@[^/]+\/)?[^/]+)\//.exec(url);
  if (mod) return mod[1];
  if (url.startsWith("node:")) {
    const inner = url.slice(5);
    if (inner.startsWith("internal/deps/undici")) return "node: undici (fetch)";
    if (/^(_http|http|internal\/http)/.test(inner)) return "node: http";
    if (
      /^(net|internal\/net|internal\/stream_base|stream|internal\/streams|internal\/webstreams)/.test(
        inner,
      )
    ) {
      return inner.includes("webstreams") ? "node: web streams" : "node: net and streams";
    }
    return "node: other";
  }
  if (url.includes("/bench/")) return "benchmark code";
  return "other";
}

/** Reads a .cpuprofile and returns { totalMs, byArea: [[area, ms]], byFunction: [[name, ms]] }. */
export function summariseProfile(path, { top = 15 } = {}) {
  const profile = JSON.parse(readFileSync(path, "utf8"));
  const nodes = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMs = new Map();
  const { samples, timeDeltas } = profile;
  for (let i = 0; i < samples.length; i++) {
    const delta = (timeDeltas[i] ?? 0) / 1000;
    selfMs.set(samples[i], (selfMs.get(samples[i]) ?? 0) + delta);
  }
  const byArea = new Map();
  const byFunction = new Map();
  let totalMs = 0;
  let idleMs = 0;
  for (const [id, ms] of selfMs) {
    const { callFrame } = nodes.get(id);
    const area = areaOf(callFrame.url, callFrame.functionName);
    if (area === "idle") {
      idleMs += ms;
      continue;
    }
    totalMs += ms;
    byArea.set(area, (byArea.get(area) ?? 0) + ms);
    const file = callFrame.url
      ? callFrame.url.replace(/^.*\/(node_modules|packages)\//, "").replace(/^file:\/\//, "")
      : "";
    const name =
      `${callFrame.functionName || "(anonymous)"} ${file ? `(${file}:${callFrame.lineNumber + 1})` : ""}`.trim();
    byFunction.set(name, (byFunction.get(name) ?? 0) + ms);
  }
  const sorted = (map) => [...map].sort((a, b) => b[1] - a[1]);
  return {
    totalMs,
    idleMs,
    byArea: sorted(byArea),
    byFunction: sorted(byFunction).slice(0, top),
  };
}

/** A markdown table of a summary: area, ms, share. */
export function profileTable(summary, { rows = 12, what = "area" } = {}) {
  const list = what === "area" ? summary.byArea : summary.byFunction;
  const lines = [`| ${what} | CPU ms | share |`, "|---|---:|---:|"];
  for (const [name, ms] of list.slice(0, rows)) {
    lines.push(
      `| ${name.replaceAll("|", "\\|")} | ${ms.toFixed(0)} | ${((100 * ms) / summary.totalMs).toFixed(1)}% |`,
    );
  }
  return lines.join("\n");
}

if (process.argv[1]?.endsWith("cpu-profile.mjs")) {
  const summary = summariseProfile(process.argv[2], { top: 30 });
  console.log(`busy ${summary.totalMs.toFixed(0)} ms, idle ${summary.idleMs.toFixed(0)} ms\n`);
  console.log(profileTable(summary, { rows: 20 }));
  console.log();
  console.log(profileTable(summary, { rows: 30, what: "function" }));
}
