/** Linux signal numbers (the platform clusters run on), for messages. */
const linuxSignals = [
  "SIGHUP",
  "SIGINT",
  "SIGQUIT",
  "SIGILL",
  "SIGTRAP",
  "SIGABRT",
  "SIGBUS",
  "SIGFPE",
  "SIGKILL",
  "SIGUSR1",
  "SIGSEGV",
  "SIGUSR2",
  "SIGPIPE",
  "SIGALRM",
  "SIGTERM",
  "SIGSTKFLT",
  "SIGCHLD",
  "SIGCONT",
  "SIGSTOP",
  "SIGTSTP",
  "SIGTTIN",
  "SIGTTOU",
  "SIGURG",
  "SIGXCPU",
  "SIGXFSZ",
  "SIGVTALRM",
  "SIGPROF",
  "SIGWINCH",
  "SIGIO",
  "SIGPWR",
  "SIGSYS",
] as const;

/** The Linux name of signal `number` ("SIGKILL" for 9), or `undefined`. */
export function signalName(number: number): string | undefined {
  if (number >= 1 && number <= linuxSignals.length) return linuxSignals[number - 1];
  if (number >= 34 && number <= 64) return number === 34 ? "SIGRTMIN" : `SIGRTMIN+${number - 34}`;
  return undefined;
}
