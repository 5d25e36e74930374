import { describe, expect, it } from "vitest";

const dist = new URL("../dist/index.js", import.meta.url);

describe("the built package", () => {
  it("exports gridEngine and jobScript, and the script it writes is the source's", async () => {
    const mod = (await import(dist.href)) as Record<string, unknown>;
    expect(Object.keys(mod).sort()).toEqual(["gridEngine", "jobScript"]);
    const jobScript = mod.jobScript as (spec: unknown) => string;
    const script = jobScript({
      name: "built_1",
      tasks: 2,
      shell: "/usr/bin/python3",
      options: [],
      directory: ".sheepdog",
      program: "print(1)",
    });
    expect(script.split("\n").slice(0, 3)).toEqual([
      "#!/usr/bin/python3",
      "#$ -t 1-2",
      "#$ -S /usr/bin/python3",
    ]);
  });
});
