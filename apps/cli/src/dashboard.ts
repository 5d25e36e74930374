import { dashboard, getLogs } from "@sheepdog/core";
import { exitCodes, requestId, write } from "./common.js";
import { jsonLine } from "./json-values.js";
import type { CliIo } from "./main.js";
import { requestConfig, settings, usageError } from "./settings.js";

type Values = Record<string, string | boolean | string[] | undefined>;

/**
 * `sheepdog dashboard`: the live page of the dbfile's requests until Ctrl-C. `--port` is the
 * page's port here (a free one when not given), so that `ssh -L` can name it.
 */
export async function dashboardCommand(io: CliIo, values: Values): Promise<number> {
  const { port, ...rest } = values;
  const resolved = await settings(rest, io.env, io.cwd, true);
  const page = await dashboard(requestConfig(resolved), {
    ...(typeof port === "string" && { port: portOf(port) }),
    ...(typeof values.listen === "string" && { host: values.listen }),
  });
  try {
    write(io.stdout, page.url);
    write(
      io.stderr,
      `[sheepdog] The dashboard of ${resolved.config.dbfile} is at the address above (keep its token to yourself). From another machine: ssh -L ${page.port}:127.0.0.1:${page.port} <this machine>, then open it there. Ctrl-C to stop.`,
    );
    await new Promise<void>((resolve) =>
      io.signal.addEventListener("abort", () => resolve(), { once: true }),
    );
    return exitCodes.interrupted;
  } finally {
    await page.close();
  }
}

function portOf(text: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) {
    throw usageError(`--port takes the dashboard's port (0 to 65535), not "${text}".`);
  }
  return Number(text);
}

/** `sheepdog logs <id> [task]`: what each task printed, with its arguments. */
export async function logsCommand(
  io: CliIo,
  values: Values,
  positionals: string[],
): Promise<number> {
  const id = requestId(positionals, "logs");
  const task = positionals[2];
  if (task !== undefined && !/^\d+$/.test(task)) {
    throw usageError(
      `"sheepdog logs ${id} <task>" takes a task's index (0 for the first), not "${task}".`,
    );
  }
  const { config } = await settings(values, io.env, io.cwd, true);
  const logs = await getLogs(id, {
    dbfile: config.dbfile,
    ...(task !== undefined && { index: Number(task) }),
  });
  for (const { index, args, log } of logs) {
    write(
      io.stdout,
      values.json
        ? `{"index":${index},"args":${jsonLine(args)},"log":${JSON.stringify(log)}}`
        : `--- task ${index} ${jsonLine(args)}\n${log.trimEnd()}`,
    );
  }
  if (logs.length === 0 && !values.json) {
    const what =
      task === undefined
        ? `No task of request ${id} printed anything.`
        : `Task ${task} of request ${id} printed nothing.`;
    write(io.stderr, `[sheepdog] ${what}`);
  }
  return exitCodes.ok;
}
