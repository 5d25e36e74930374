import type { JobSpec } from "@sheepdog/contracts";
import { SheepdogError } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { splitDirective } from "./internal/directives.js";
import { jobScript, resourceOptions } from "./job-script.js";

const spec: JobSpec = {
  name: "sheepdog_7_ab12",
  tasks: 3,
  shell: "/usr/bin/python3",
  options: ["-l h_rt=0:10:0", "-l mem_grab=2G"],
  directory: ".sheepdog",
  program: "import os\nprint(os.environ['SGE_TASK_ID'])\n",
};

function rejection(change: Partial<JobSpec>): SheepdogError {
  try {
    jobScript({ ...spec, ...change });
  } catch (error) {
    if (SheepdogError.isInstance(error)) return error;
    throw error;
  }
  throw new Error("jobScript accepted it");
}

describe("jobScript", () => {
  it("writes the shebang, one directive per option, -t, -S, -N, default paths, then the program", () => {
    expect(jobScript(spec)).toBe(
      [
        "#!/usr/bin/python3",
        "#$ -l h_rt=0:10:0",
        "#$ -l mem_grab=2G",
        "#$ -t 1-3",
        "#$ -S /usr/bin/python3",
        "#$ -N sheepdog_7_ab12",
        "#$ -wd $HOME/.sheepdog",
        "#$ -o $HOME/.sheepdog",
        "#$ -e $HOME/.sheepdog",
        "import os",
        "print(os.environ['SGE_TASK_ID'])",
        "",
      ].join("\n"),
    );
  });

  it("writes a part's own task range", () => {
    expect(jobScript(spec, { firstTask: 2, lastTask: 3 })).toContain("\n#$ -t 2-3\n");
    expect(() => jobScript(spec, { firstTask: 3, lastTask: 4 })).toThrow(/within 1\.\.3/);
  });

  it("leaves -wd, -o and -e to the user when given, and uses an absolute directory as is", () => {
    const script = jobScript({
      ...spec,
      directory: "/scratch/me/jobs/",
      options: ["-cwd", "-o /scratch/out"],
    });
    expect(script).not.toContain("-wd");
    expect(script).not.toContain("-o /scratch/me");
    expect(script).toContain("\n#$ -e /scratch/me/jobs\n");
  });

  it("keeps the program verbatim, adding only a final newline", () => {
    const program = "x = '''\n  #$ indented is not a directive\n'''\nprint(x)";
    expect(jobScript({ ...spec, program }).endsWith(`${program}\n`)).toBe(true);
  });

  it("refuses newlines, carriage returns, NULs and control characters in an option, naming it", () => {
    for (const [option, what] of [
      ["-l h_rt=1\n#$ -N evil", "a newline"],
      ["-l h_rt=1\rimport os; os.system('touch /tmp/pwned')", "a carriage return"],
      ["-l h_rt=1\u0000", "a NUL character"],
      ["-l h_rt=1\u2028x", "the control character U+2028"],
      ["-l h_rt=1\u000bx", "the control character U+000B"],
    ] as const) {
      const error = rejection({ options: [option] });
      expect(error.code).toBe("CONFIG_INVALID");
      expect(error.message).toContain(
        `GridEngine option ${JSON.stringify(option)} contains ${what}`,
      );
    }
  });

  it("refuses an unclosed quote, single or double", () => {
    expect(rejection({ options: [`-v A='x`] }).message).toContain("opens a single quote");
    expect(rejection({ options: ['-v A="x y'] }).message).toContain("opens a double quote");
    expect(jobScript({ ...spec, options: [`-v A="it's"`] })).toContain(`#$ -v A="it's"\n`);
  });

  it("refuses a # (qsub ends a directive there, even in quotes)", () => {
    expect(rejection({ options: ['-v A="a#b"'] }).message).toMatch(/contains "#"/);
  });

  it("refuses the options Sheepdog sets, wherever they stand, and non-options", () => {
    for (const option of [
      "-t 1-100",
      "-N other",
      "-S /bin/sh",
      "-b y",
      "-C XX",
      "-sync y",
      "-@ /tmp/more_options",
    ]) {
      expect(rejection({ options: [option] }).message).toContain("which Sheepdog does not allow");
    }
    expect(rejection({ options: ["-l h_rt=1 -N evil"] }).message).toContain("sets -N");
    expect(rejection({ options: ["h_rt=1"] }).message).toContain("is not an option");
    expect(rejection({ options: [42 as unknown as string] }).code).toBe("CONFIG_INVALID");
  });

  it("refuses Slurm's options, naming GridEngine's", () => {
    expect(rejection({ options: ["--mem=4G"] }).message).toContain(
      '"--mem=4G" is a Slurm (sbatch) option, but this cluster runs GridEngine, whose options start with one "-". Put GridEngine\'s qsub options in geOpts; for this one write -l h_vmem=4G (or resources: { memory: "4G" }).',
    );
    expect(rejection({ options: ["--time 1:00:00"] }).message).toContain("-l h_rt=1:00:00");
    expect(rejection({ options: ["--qos=high"] }).message).toContain("of the same meaning");
  });

  it("writes resource requests before the user's options, so that those win", () => {
    const script = jobScript({
      ...spec,
      resources: { memoryBytes: 3 * 1024 ** 3, timeSeconds: 5400, cpus: 4, queue: "short.q" },
    });
    expect(script.split("\n").slice(1, 7)).toEqual([
      "#$ -l h_vmem=3072M",
      "#$ -l h_rt=1:30:00",
      "#$ -pe smp 4",
      "#$ -q short.q",
      "#$ -l h_rt=0:10:0",
      "#$ -l mem_grab=2G",
    ]);
    expect(resourceOptions({ cpus: 1 })).toEqual([]);
  });

  it("accepts values with spaces, quotes, $(...) and backticks: qsub reads them as words", () => {
    const options = ['-v "A=a b $(touch /tmp/x)"', "-v B=`id`,C='c;d'"];
    const script = jobScript({ ...spec, options });
    expect(script).toContain(`\n#$ ${options[0]}\n#$ ${options[1]}\n`);
  });

  it("refuses a program line that qsub would read as a directive", () => {
    const error = rejection({ program: "print(1)\n#$ -N evil\n" });
    expect(error.code).toBe("INVALID_INPUT");
    expect(error.message).toContain('"#$ -N evil"');
  });

  it("refuses a shell, name or directory that cannot be written safely", () => {
    expect(rejection({ shell: "/usr/bin/python3 -c 'import os'" }).message).toMatch(
      /^\[sheepdog\] \[gridengine\] shell/,
    );
    expect(rejection({ shell: "python3" }).code).toBe("CONFIG_INVALID");
    expect(rejection({ name: "9lives" }).message).toContain("letter");
    expect(rejection({ name: "a b" }).code).toBe("INVALID_INPUT");
    expect(rejection({ directory: "$(touch /tmp/x)" }).message).toContain("Job directory");
    expect(rejection({ directory: "my dir" }).code).toBe("CONFIG_INVALID");
    expect(rejection({ directory: "-rf" }).code).toBe("CONFIG_INVALID");
    expect(rejection({ tasks: 0 }).code).toBe("INVALID_INPUT");
    expect(rejection({ tasks: 1.5 }).code).toBe("INVALID_INPUT");
  });
});

describe("splitDirective (qsub's reading of a #$ line, as seen on the cluster)", () => {
  it("splits on blanks and strips every quote character", () => {
    expect(splitDirective("  -l\th_rt=1  ")).toEqual(["-l", "h_rt=1"]);
    expect(splitDirective(`-v X='a "b" c'`)).toEqual(["-v", "X=a b c"]);
    expect(splitDirective(`-v X=a"b c"d`)).toEqual(["-v", "X=ab cd"]);
    expect(splitDirective('-v X=\\"a b\\"')).toEqual(["-v", "X=\\a b\\"]);
  });

  it("takes the rest of the line as one word once a word has a quote, as qsub does", () => {
    expect(splitDirective(`-v SD='a b' -v SE=x`)).toEqual(["-v", "SD=a b -v SE=x"]);
    expect(splitDirective(`-v SD="a" -v SE=x`)).toEqual(["-v", "SD=a -v SE=x"]);
    expect(splitDirective(`-v SD=a -v SE='x y'`)).toEqual(["-v", "SD=a", "-v", "SE=x y"]);
  });

  it("refuses an option with text after a quoted value (qsub would swallow it)", () => {
    const error = rejection({ options: [`-v SD='a b' -l h_rt=1`] });
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.message).toContain("has text after a quoted value");
    expect(rejection({ options: ['-l h_rt=1 "-t" 1-5'] }).message).toContain(
      "text after a quoted value",
    );
    expect(jobScript({ ...spec, options: [`-v SD='a b'`, `-v 'SE=x;y'`] })).toContain(
      "#$ -v 'SE=x;y'\n",
    );
  });
});
