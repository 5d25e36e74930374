import { closeSync, openSync, readFileSync, writeSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import type {
  IndexedSettled,
  MapProgress,
  PyFunction,
  RequestSummary,
  SheepdogConfig,
} from "@sheepdog/core";
import {
  cancelRequest,
  getErrors,
  getResults,
  listRequests,
  mapAsync,
  mapStream,
  pyFile,
  recover,
  requestStatus,
  SheepdogError,
  serve,
  shutdown,
} from "@sheepdog/core";
import { configKeys, didYouMean, progressPrinter } from "@sheepdog/core/cli";
import { exitCodes, requestId, table, timeText, write } from "./common.js";
import { dashboardCommand, logsCommand } from "./dashboard.js";
import { attachCommand, cleanupCommand } from "./detached.js";
import { doctorCommand } from "./doctor.js";
import { jsonLine } from "./json-values.js";
import { readArgs, streamArgs } from "./read-args.js";

export { exitCodes };

import type { Settings } from "./settings.js";
import { configFlags, requestConfig, settings, source, usageError } from "./settings.js";

/** What the command line reads and writes: the process's own, or a test's. */
export interface CliIo {
  argv: string[];
  env: Record<string, string | undefined>;
  cwd: string;
  stdout: NodeJS.WritableStream & { isTTY?: boolean };
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  readStdin: () => string;
  /** Aborted on Ctrl-C. */
  signal: AbortSignal;
}

const usage = `Usage: sheepdog <command> [options]

Commands:
  map <file.py>:<function> --args <file.json|file.jsonl|->
                        run the function once per argument tuple; results as JSON lines,
                        written as they arrive (a .jsonl file is read as the map goes)
      --out <file>      write the results there instead of stdout
      --order <order>   arguments (default): one result per line, in argument order;
                        completion: {"index", "result"[, "error"]} lines as results arrive
      --ns <file.json>  values the function can use by name
      --async           print the request id once the job is queued, and exit
      --detach          stage the tasks on the cluster, print the request id and exit: the
                        job runs and keeps its results without this machine (sheepdog attach)
      --keep-jobs       on Ctrl-C, leave the job running
      --dashboard       open the dashboard while the map runs (its address on stderr)
  requests              the requests in the dbfile, with their counts
  status <id>           a request's counts and the state of its tasks on the cluster
                        (a detached request's spooled reports are brought home first)
  attach <id>           follow a request to its end (serving its workers, collecting its
                        spool), then print its results as map does (--out <file>)
  cleanup               what detached requests left on the cluster; removes those whose
                        results are all home (--dry-run: list only; --force: remove all)
  results <id>          a request's results (--json: JSON lines with args; --block: wait)
  errors <id>           a request's failed tasks with their tracebacks (--json)
  logs <id> [task]      what each task (or one, by its index) printed, with its arguments (--json)
  dashboard             a live web page of the dbfile's requests, on 127.0.0.1 (--port <n>
                        for the page's port, --listen <address>); prints its address and token
  cancel <id>           cancel a request's job (qdel)
  serve                 serve workers on --port from --dbfile until Ctrl-C (or --request <id> is done);
                        it listens on 127.0.0.1 unless --listen 0.0.0.0 (workers on a cluster's nodes)
  recover <id>          store the results the workers printed to their job output files
  config                the configuration in force and where each value came from (--json)
  doctor                check each step a map needs (SSH, scheduler, Python, the route back,
                        a one-call map) and say what to change; exit 0 only when a map would work
      --timeout <s>     how long the one-call map may wait and run (default 120)
      --json            print the report as JSON

Configuration (flags, then SHEEPDOG_* variables, then --config <file.json|file.ts>
or sheepdog.config.json in this directory, then defaults):
${Object.entries(configFlags)
  .map(
    ([flag, { option, kind }]) =>
      `  --${flag.padEnd(18)} ${option}${kind === "list" ? " (repeatable)" : ""}`,
  )
  .join("\n")}

Exit codes: 0 all results in, 1 some tasks failed (doctor: a map would not work), 2 usage or
configuration error, 130 Ctrl-C.`;

const commandOptions = {
  args: { type: "string" },
  out: { type: "string" },
  ns: { type: "string" },
  order: { type: "string" },
  async: { type: "boolean" },
  detach: { type: "boolean" },
  dashboard: { type: "boolean" },
  "dry-run": { type: "boolean" },
  force: { type: "boolean" },
  "keep-jobs": { type: "boolean" },
  json: { type: "boolean" },
  block: { type: "boolean" },
  request: { type: "string" },
  listen: { type: "string" },
  timeout: { type: "string" },
  config: { type: "string" },
  help: { type: "boolean", short: "h" },
  version: { type: "boolean" },
  ...Object.fromEntries(
    Object.entries(configFlags).map(([flag, { kind }]) => [
      flag,
      kind === "list" ? { type: "string", multiple: true } : { type: "string" },
    ]),
  ),
} as const;

type Values = Record<string, string | boolean | string[] | undefined>;

/** The flag a mistyped one, or one in the original's spelling (`--ge_opts`), most likely meant. */
function flagSuggestion(flag: string): string | undefined {
  return didYouMean(flag, Object.keys(commandOptions));
}

/** Runs one command line; resolves with the exit code. */
export async function main(io: CliIo): Promise<number> {
  const outcome = { keepLocalTasks: false };
  try {
    return await run(io, outcome);
  } catch (error) {
    if (SheepdogError.isInstance(error)) {
      write(io.stderr, error.message);
      if (error.code === "ABORTED") return exitCodes.interrupted;
      return error.code === "CONFIG_INVALID" ||
        error.code === "INVALID_INPUT" ||
        error.code === "PYTHON_SOURCE"
        ? exitCodes.usage
        : exitCodes.failed;
    }
    write(
      io.stderr,
      `[sheepdog] [${source}] ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
    return exitCodes.failed;
  } finally {
    await shutdown(outcome);
  }
}

async function run(io: CliIo, outcome: { keepLocalTasks: boolean }): Promise<number> {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: io.argv,
      options: commandOptions,
      allowPositionals: true,
      strict: true,
    });
  } catch (error) {
    const message = (error as Error).message.replace(/\. To specify.*$/s, "");
    const flag = /'--([^']+)'/.exec(message)?.[1];
    const near = flag && flagSuggestion(flag);
    throw usageError(
      `${message}.${near ? ` Did you mean --${near}?` : ""} Run "sheepdog --help" for the options.`,
    );
  }
  const values = parsed.values as Values;
  const positionals = parsed.positionals;
  const command = positionals[0];
  if (values.version) {
    write(io.stdout, "0.1.0");
    return exitCodes.ok;
  }
  if (values.help || command === undefined || command === "help") {
    write(command === undefined && !values.help ? io.stderr : io.stdout, usage);
    return command === undefined && !values.help ? exitCodes.usage : exitCodes.ok;
  }
  switch (command) {
    case "map":
      // With --async or --keep-jobs, local tasks outlive the command (a later `sheepdog serve`
      // receives their reports).
      outcome.keepLocalTasks =
        values.async === true || values.detach === true || values["keep-jobs"] === true;
      return mapCommand(io, values, positionals);
    case "requests":
      return requestsCommand(io, values);
    case "status":
      return statusCommand(io, values, positionals);
    case "attach":
      return attachCommand(io, values, positionals);
    case "cleanup":
      return cleanupCommand(io, values);
    case "logs":
      return logsCommand(io, values, positionals);
    case "dashboard":
      return dashboardCommand(io, values);
    case "results":
      return resultsCommand(io, values, positionals);
    case "errors":
      return errorsCommand(io, values, positionals);
    case "cancel":
      return cancelCommand(io, values, positionals);
    case "serve":
      return serveCommand(io, values);
    case "recover":
      return recoverCommand(io, values, positionals);
    case "config":
      return configCommand(io, values);
    case "doctor":
      return (await doctorCommand(io, values)) ? exitCodes.ok : exitCodes.failed;
    default:
      throw usageError(`Unknown command "${command}". Run "sheepdog --help" for the commands.`);
  }
}

async function mapCommand(io: CliIo, values: Values, positionals: string[]): Promise<number> {
  const target = positionals[1];
  const match = target === undefined ? null : /^(.+\.py):([A-Za-z_][A-Za-z0-9_]*)$/.exec(target);
  if (!match?.[1] || !match[2]) {
    throw usageError(
      '"sheepdog map" needs <file.py>:<function>, like "sheepdog map model.py:fit --args args.jsonl".',
    );
  }
  if (typeof values.args !== "string") {
    throw usageError(
      '"sheepdog map" needs --args <file.json|file.jsonl|-> (one argument array per task).',
    );
  }
  const { config } = await settings(values, io.env, io.cwd);
  const f = pyFile(resolve(io.cwd, match[1]), match[2]);
  const argsPath = values.args === "-" ? "-" : resolve(io.cwd, values.args);
  const order = orderOf(values);
  let ns: Record<string, unknown> | undefined;
  if (typeof values.ns === "string") {
    try {
      ns = JSON.parse(readFileSync(resolve(io.cwd, values.ns), "utf8"));
    } catch (error) {
      throw usageError(`Cannot read --ns ${values.ns}: ${(error as Error).message}.`);
    }
  }
  const options = { ...(ns && { ns }), signal: io.signal };
  if (values.detach) {
    const id = await mapAsync(f, readArgs(argsPath, io.readStdin), config, {
      ...options,
      detach: true,
    });
    write(io.stdout, String(id));
    write(
      io.stderr,
      `[sheepdog] Request ${id} is queued and detached: its tasks run, and keep their results on the cluster, without this machine. Collect them with "sheepdog attach ${id} --dbfile ${config.dbfile}" (or look with "sheepdog status ${id}").`,
    );
    return exitCodes.ok;
  }
  if (values.async) {
    const id = await mapAsync(f, readArgs(argsPath, io.readStdin), config, options);
    write(io.stdout, String(id));
    write(
      io.stderr,
      `[sheepdog] Request ${id} is queued. Its workers report to a server: run "sheepdog serve --request ${id} --dbfile ${config.dbfile}" to receive them, or "sheepdog recover ${id}" once they are done.`,
    );
    return exitCodes.ok;
  }
  const args = streamArgs(argsPath, io.readStdin);
  return streamResults(io, values, f, args, config, { ...options, order });
}

/** `--order`: "arguments" (the default) or "completion". */
function orderOf(values: Values): "arguments" | "completion" {
  const order = values.order ?? "arguments";
  if (order === "arguments" || order === "completion") return order;
  throw usageError(`--order must be "arguments" or "completion", not ${JSON.stringify(order)}.`);
}

/** A result as its JSON line: the value alone in argument order, with its index otherwise. */
function resultLine(item: IndexedSettled<unknown>, order: "arguments" | "completion"): string {
  const result = item.ok ? item.value : null;
  if (order === "arguments") return `${jsonLine(result)}\n`;
  const error = item.ok ? "" : `,"error":${JSON.stringify(item.error)}`;
  return `{"index":${item.index},"result":${jsonLine(result)}${error}}\n`;
}

/**
 * Runs the map with mapStream and writes each result's line as it arrives, to `--out` or
 * stdout (waiting while stdout's reader is behind); progress and each window's last count on
 * stderr. Exits 1 when tasks failed.
 */
async function streamResults(
  io: CliIo,
  values: Values,
  f: PyFunction,
  args: Iterable<unknown[]> | AsyncIterable<unknown[]>,
  config: SheepdogConfig,
  options: { ns?: Record<string, unknown>; signal: AbortSignal; order: "arguments" | "completion" },
): Promise<number> {
  const printer = progressPrinter(io.stderr);
  const windows = new Map<number, MapProgress>();
  const out = typeof values.out === "string" ? openSync(resolve(io.cwd, values.out), "w") : null;
  try {
    const results = mapStream(f, args, config, {
      ...options,
      keepJob: values["keep-jobs"] === true,
      ...(values.dashboard === true && { dashboard: true }),
      onProgress: (progress) => {
        windows.set(progress.request, progress);
        printer.update(progress);
      },
    });
    for await (const item of results) {
      const line = resultLine(item, options.order);
      if (out !== null) writeSync(out, line);
      else await writeOut(io.stdout, line);
    }
  } finally {
    if (out !== null) closeSync(out);
  }
  let failed = false;
  for (const last of windows.values()) {
    printer.done(last);
    if (last.errors === 0) continue;
    failed = true;
    write(
      io.stderr,
      `[sheepdog] See the tracebacks with "sheepdog errors ${last.request} --dbfile ${config.dbfile}".`,
    );
  }
  return failed ? exitCodes.failed : exitCodes.ok;
}

/** Writes to `stream`, waiting while its reader is behind; nothing once the reader has gone. */
async function writeOut(stream: NodeJS.WritableStream, text: string): Promise<void> {
  if ((stream as { destroyed?: boolean }).destroyed || stream.write(text)) return;
  await new Promise<void>((resume) => {
    const done = () => {
      for (const event of ["drain", "close", "error"]) stream.off(event, done);
      resume();
    };
    for (const event of ["drain", "close", "error"]) stream.once(event, done);
  });
}

function dbfileConfig(values: Values, io: CliIo) {
  return settings(values, io.env, io.cwd, true);
}

async function requestsCommand(io: CliIo, values: Values): Promise<number> {
  const { config } = await dbfileConfig(values, io);
  const requests = await listRequests({ dbfile: config.dbfile });
  if (values.json) {
    for (const r of requests) write(io.stdout, JSON.stringify(r));
    return exitCodes.ok;
  }
  const rows = requests.map((r) => {
    const state = requestState(r);
    return [
      String(r.id),
      timeText(r.createdAt),
      String(r.tasks),
      String(r.results),
      String(r.errors),
      state,
    ];
  });
  write(io.stdout, table(["id", "created", "tasks", "results", "errors", "state"], rows));
  return exitCodes.ok;
}

/** When and why a request's job was cancelled, as core keeps it in `meta.cancelled`. */
function cancellation(meta: Record<string, unknown>): { at: number; reason: string } | undefined {
  const cancelled = meta.cancelled as { at?: unknown; reason?: unknown } | undefined;
  if (typeof cancelled?.at !== "number" || typeof cancelled.reason !== "string") return undefined;
  return { at: cancelled.at, reason: cancelled.reason };
}

/** A request's state in words: "done", "done, with errors", "cancelled" or "in progress". */
function requestState(r: RequestSummary): string {
  if (r.results + r.errors >= r.tasks) return r.errors > 0 ? "done, with errors" : "done";
  const cancelled = cancellation(r.meta);
  if (!cancelled) return "in progress";
  return cancelled.reason === "cancelled" ? "cancelled" : `cancelled (${cancelled.reason})`;
}

async function statusCommand(io: CliIo, values: Values, positionals: string[]): Promise<number> {
  const id = requestId(positionals, "status");
  const resolved = await dbfileConfig(values, io);
  const status = await requestStatus(id, requestConfig(resolved));
  const cancelled = await cancelledUnfinished(id, resolved.config.dbfile, status);
  const states = { queued: 0, running: 0, finished: 0, unknown: 0 };
  const held: string[] = [];
  for (const [task, state] of status.taskStates ?? []) {
    states[state.state] += 1;
    if (state.state === "queued" && state.error) held.push(`task ${task}: ${state.error}`);
  }
  if (values.json) {
    write(
      io.stdout,
      JSON.stringify({
        ...status,
        taskStates: status.taskStates ? states : undefined,
        held,
        ...(cancelled && { cancelled }),
      }),
    );
    return exitCodes.ok;
  }
  const lines = [
    `request ${id}: ${status.results + status.errors}/${status.tasks} done, ${status.results} results, ${status.errors} errors`,
  ];
  if (cancelled) lines.push(`cancelled at ${timeText(cancelled.at)} (${cancelled.reason})`);
  if (status.job)
    lines.push(`job ${status.job.id} (${status.job.scheduler}), ${status.job.tasks} array tasks`);
  if (status.taskStates) {
    lines.push(
      `tasks: ${states.queued} queued, ${states.running} running, ${states.finished} finished, ${states.unknown} unknown`,
    );
  }
  if (status.schedulerError)
    lines.push(`the scheduler could not be asked: ${status.schedulerError}`);
  for (const line of held.slice(0, 10)) lines.push(`held: ${line}`);
  write(io.stdout, lines.join("\n"));
  return exitCodes.ok;
}

/** The cancellation of a request that is not finished, if its job was cancelled. */
async function cancelledUnfinished(
  id: number,
  dbfile: string,
  status: { tasks: number; results: number; errors: number },
) {
  if (status.results + status.errors >= status.tasks) return undefined;
  const summary = (await listRequests({ dbfile })).find((r) => r.id === id);
  return summary && cancellation(summary.meta);
}

async function resultsCommand(io: CliIo, values: Values, positionals: string[]): Promise<number> {
  const id = requestId(positionals, "results");
  const { config } = await dbfileConfig(values, io);
  const rows = await getResults(id, {
    dbfile: config.dbfile,
    block: values.block === true,
    verbose: values.block === true,
    signal: io.signal,
  });
  for (const [index, [args, result]] of rows.entries()) {
    write(
      io.stdout,
      values.json
        ? `{"index":${index},"args":${jsonLine(args)},"result":${jsonLine(result)}}`
        : `${jsonLine(args)} -> ${jsonLine(result)}`,
    );
  }
  const failed = (await getErrors(id, { dbfile: config.dbfile })).length;
  if (failed === 0) return exitCodes.ok;
  write(
    io.stderr,
    `[sheepdog] ${failed} of ${rows.length} tasks failed. See the tracebacks with "sheepdog errors ${id} --dbfile ${config.dbfile}".`,
  );
  return exitCodes.failed;
}

async function errorsCommand(io: CliIo, values: Values, positionals: string[]): Promise<number> {
  const id = requestId(positionals, "errors");
  const { config } = await dbfileConfig(values, io);
  const errors = await getErrors(id, { dbfile: config.dbfile });
  for (const [args, error] of errors) {
    write(
      io.stdout,
      values.json
        ? `{"args":${jsonLine(args)},"error":${JSON.stringify(error)}}`
        : `--- ${jsonLine(args)}\n${error.trimEnd()}`,
    );
  }
  return errors.length > 0 ? exitCodes.failed : exitCodes.ok;
}

async function cancelCommand(io: CliIo, values: Values, positionals: string[]): Promise<number> {
  const id = requestId(positionals, "cancel");
  const resolved = await dbfileConfig(values, io);
  const job = await cancelRequest(id, requestConfig(resolved));
  write(io.stdout, `cancelled job ${job.id} of request ${id}`);
  return exitCodes.ok;
}

async function serveCommand(io: CliIo, values: Values): Promise<number> {
  const resolved = await dbfileConfig(values, io);
  const { config } = resolved;
  const id =
    typeof values.request === "string"
      ? requestId(["serve", values.request], "serve --request")
      : undefined;
  // With a request, how to log in to its cluster: its workers' relay is started again there.
  const { port: _port, ...login } = requestConfig(resolved);
  const server = await serve({
    ...(id !== undefined && login),
    ...(config.port !== 0 && { port: config.port }),
    dbfile: config.dbfile,
    ...(id !== undefined && { request: id }),
    ...(typeof values.listen === "string" && { listen: values.listen }),
  });
  write(
    io.stderr,
    `[sheepdog] Serving workers on ${server.host}:${server.port} from ${config.dbfile}. Ctrl-C to stop.`,
  );
  if (id !== undefined) {
    await getResults(id, { dbfile: config.dbfile, block: true, verbose: true, signal: io.signal });
    return exitCodes.ok;
  }
  await new Promise<void>((resolve) =>
    io.signal.addEventListener("abort", () => resolve(), { once: true }),
  );
  return exitCodes.interrupted;
}

async function recoverCommand(io: CliIo, values: Values, positionals: string[]): Promise<number> {
  const id = requestId(positionals, "recover");
  const resolved = await dbfileConfig(values, io);
  const outcome = await recover(id, requestConfig(resolved));
  write(
    io.stdout,
    `request ${id}: ${outcome.found} reports in the job's output files, ${outcome.stored} stored now, ${outcome.missing} tasks still without a report`,
  );
  return outcome.missing > 0 ? exitCodes.failed : exitCodes.ok;
}

async function configCommand(io: CliIo, values: Values): Promise<number> {
  const resolved: Settings = await settings(values, io.env, io.cwd, true);
  const config = resolved.config as unknown as Record<string, unknown>;
  const rows = configKeys.map((key: keyof SheepdogConfig) => {
    const source = resolved.sources[key];
    const where =
      key === "host" && !resolved.hostGiven
        ? "not set"
        : source === "file"
          ? `file ${resolved.file}`
          : source;
    return {
      key,
      value: key === "host" && !resolved.hostGiven ? undefined : config[key],
      source: where,
    };
  });
  if (values.json) {
    write(
      io.stdout,
      JSON.stringify(
        Object.fromEntries(rows.map((r) => [r.key, { value: r.value, source: r.source }])),
        null,
        2,
      ),
    );
    return exitCodes.ok;
  }
  write(
    io.stdout,
    table(
      ["option", "value", "from"],
      rows.map((r) => [r.key, r.value === undefined ? "-" : JSON.stringify(r.value), r.source]),
    ),
  );
  return exitCodes.ok;
}
