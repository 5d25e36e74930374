import { SheepdogError } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { checkOption, checkOptions, memBytes, splitDirective } from "./directives.js";

function refusal(option: unknown): string {
  try {
    checkOption(option);
  } catch (error) {
    expect(SheepdogError.isInstance(error) && error.code).toBe("CONFIG_INVALID");
    return (error as Error).message;
  }
  throw new Error(`${JSON.stringify(option)} was accepted`);
}

describe("splitDirective", () => {
  it("splits as sbatch does: blanks, quotes, backslashes, and # ends the line", () => {
    expect(splitDirective("--mem=4G --time=10")).toEqual(["--mem=4G", "--time=10"]);
    expect(splitDirective('--comment="a b" -p short')).toEqual(["--comment=a b", "-p", "short"]);
    expect(splitDirective("--comment='it''s'")).toEqual(["--comment=its"]);
    expect(splitDirective("--comment=a\\ b")).toEqual(["--comment=a b"]);
    expect(splitDirective("--mem=4G # more")).toEqual(["--mem=4G"]);
  });
});

describe("checkOption", () => {
  it("accepts Slurm's options and returns their arguments", () => {
    expect(checkOption("--time=1:00:00")).toEqual(["--time=1:00:00"]);
    expect(checkOption("-p debug")).toEqual(["-p", "debug"]);
    expect(checkOption('--comment="two words"')).toEqual(["--comment=two words"]);
  });

  it("refuses what could add a line or a directive", () => {
    expect(refusal("--mem=4G\n#SBATCH --wrap=id")).toContain("line break");
    expect(refusal("--mem=4G\r")).toContain("line break");
    expect(refusal("--comment=a#b")).toContain('"#"');
    expect(refusal('--comment="open')).toContain("never closes");
    expect(refusal("--comment=a\\")).toContain("backslash");
    expect(refusal("time=1:00:00")).toContain("is not an option");
    expect(refusal(42)).toContain("must be a string");
  });

  it("refuses the options Sheepdog sets, saying why", () => {
    expect(refusal("--array=1-5")).toContain("sets --array");
    expect(refusal("-J other")).toContain("names the job itself");
    expect(refusal("--output=/tmp/x")).toContain("output file");
    expect(refusal("--wrap=hostname")).toContain("worker script");
  });

  it("refuses GridEngine's options, naming Slurm's", () => {
    expect(refusal("-l h_vmem=4G")).toMatch(
      /"-l h_vmem=4G" is a GridEngine \(qsub\) option, but this cluster runs Slurm\. Put Slurm's sbatch options in slurmOpts; for this one write --mem=4G or --time/,
    );
    expect(refusal("-pe smp 4")).toContain("--cpus-per-task=N");
    expect(refusal("-cwd")).toContain("--chdir");
  });

  it("refuses a --mem that is not a size", () => {
    expect(refusal("--mem=4GB")).toContain('--mem="4GB", which is not a size');
    expect(checkOption("--mem=0")).toEqual(["--mem=0"]);
  });

  it("checkOptions wants an array", () => {
    expect(() => checkOptions("--mem=4G")).toThrow(/must be an array of strings/);
  });
});

describe("memBytes", () => {
  it("reads --mem as sbatch does: megabytes, or K/M/G/T; the last wins; 0 is no limit", () => {
    const words = (options: string[]) => options.map(checkOption);
    expect(memBytes(words(["--mem=2G"]))).toBe(2 * 1024 ** 3);
    expect(memBytes(words(["--mem 512"]))).toBe(512 * 1024 ** 2);
    expect(memBytes(words(["--mem=1G", "--time=10", "--mem=3G"]))).toBe(3 * 1024 ** 3);
    expect(memBytes(words(["--mem=0"]))).toBeUndefined();
    expect(memBytes(words(["--time=10"]))).toBeUndefined();
  });
});
