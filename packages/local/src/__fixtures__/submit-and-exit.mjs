// A program that submits a local job of more tasks than slots, closes its scheduler with
// keepTasksOnClose, and exits at once (as `sheepdog map --async` does): argv = home, tasks.
// It runs the built package: build it first.
import { localScheduler } from "../../dist/index.js";

const [home, tasks] = process.argv.slice(2);
const scheduler = localScheduler({ concurrency: 2, home, keepTasksOnClose: true });
const program = [
  "import os, time",
  "time.sleep(0.3)",
  'open(os.path.join(os.environ["HOME_DIR"], "done-" + os.environ["SHEEPDOG_TASK_ID"]), "w").close()',
].join("\n");
await scheduler.submit({
  name: "kept",
  tasks: Number(tasks),
  program,
  shell: "/usr/bin/python3",
  options: [],
  directory: ".sheepdog",
});
await scheduler.close();
process.exit(0);
