import { describe, expect, it } from "vitest";
import { resolveConfig } from "./config.js";

describe("resolveConfig", () => {
  it("fills in the original's defaults", () => {
    const { config, sources } = resolveConfig({ host: "fear" }, {});
    expect(config).toEqual({
      host: "fear",
      scheduler: "auto",
      sshDir: ".sheepdog",
      dbfile: "./sheepdog.sqlite",
      port: 0,
      shell: "/usr/bin/python3",
      geOpts: [],
      slurmOpts: [],
      resources: {},
      pickleProtocol: 4,
      retryWindowSeconds: 600,
      retries: 0,
      retryOn: "died",
      connect: "auto",
    });
    expect(sources.host).toBe("option");
    expect(sources.dbfile).toBe("default");
  });

  it("reads the scheduler, Slurm's options and resources, from options and the environment", () => {
    const { config } = resolveConfig(
      { host: "login", slurmOpts: ["--qos=high"] },
      { SHEEPDOG_SCHEDULER: "slurm", SHEEPDOG_RESOURCES: "memory=4G, time=1:00:00,cpus=2" },
    );
    expect(config).toMatchObject({
      scheduler: "slurm",
      slurmOpts: ["--qos=high"],
      resources: { memory: "4G", time: "1:00:00", cpus: 2 },
    });
    expect(
      resolveConfig({ host: "login" }, { SHEEPDOG_RESOURCES: '{"memory":"1G","queue":"short"}' })
        .config.resources,
    ).toEqual({ memory: "1G", queue: "short" });
  });

  it("names the field and the fix for a bad scheduler or resources", () => {
    expect(() => resolveConfig({ host: "login", scheduler: "pbs" as "slurm" })).toThrow(
      /"scheduler" must be "auto", "gridengine" or "slurm", not "pbs"/,
    );
    expect(() => resolveConfig({ host: "login", connect: "tunnel" as "auto" }, {})).toThrow(
      '"connect" must be "auto", "direct" or "relay", not "tunnel".',
    );
    expect(resolveConfig({ host: "login" }, { SHEEPDOG_CONNECT: "relay" }).config.connect).toBe(
      "relay",
    );
    expect(() => resolveConfig({ host: "login" }, { SHEEPDOG_CONNECT: "Relay" })).toThrow(
      'SHEEPDOG_CONNECT must be "auto", "direct" or "relay", not "Relay".',
    );
    expect(() => resolveConfig({ host: "login", resources: { memory: "lots" } })).toThrow(
      /resources\.memory must be a size such as "512M"/,
    );
    expect(() => resolveConfig({ host: "login" }, { SHEEPDOG_RESOURCES: "memory" })).toThrow(
      /SHEEPDOG_RESOURCES must be name=value pairs/,
    );
    expect(() => resolveConfig({ host: "login" }, { SHEEPDOG_RESOURCES: "mem=4G" })).toThrow(
      /SHEEPDOG_RESOURCES has no field "mem"/,
    );
  });

  it("takes SHEEPDOG_* variables below explicit options", () => {
    const env = {
      SHEEPDOG_HOST: "fear",
      SHEEPDOG_SSH_PORT: "2222",
      SHEEPDOG_GE_OPTS: '["-l h_rt=0:1:0"]',
      SHEEPDOG_DBFILE: "/tmp/a.sqlite",
    };
    const { config, sources } = resolveConfig({ dbfile: "b.sqlite" }, env);
    expect(config).toMatchObject({
      host: "fear",
      sshPort: 2222,
      geOpts: ["-l h_rt=0:1:0"],
      dbfile: "b.sqlite",
    });
    expect(sources).toMatchObject({
      host: "env",
      sshPort: "env",
      dbfile: "option",
      shell: "default",
    });
  });

  it("puts a configuration file below the environment and above the defaults", () => {
    const file = {
      name: "sheepdog.config.json",
      config: { host: "fear", sshPort: 2200, shell: "/opt/py" },
    };
    const { config, sources } = resolveConfig(
      { shell: "/usr/bin/python3.11" },
      { SHEEPDOG_SSH_PORT: "2222" },
      file,
    );
    expect(config).toMatchObject({ host: "fear", sshPort: 2222, shell: "/usr/bin/python3.11" });
    expect(sources).toMatchObject({
      host: "file",
      sshPort: "env",
      shell: "option",
      dbfile: "default",
    });
    expect(() =>
      resolveConfig(
        {},
        {},
        { name: "sheepdog.config.json", config: { host: "fear", ge_opts: [] } },
      ),
    ).toThrow(
      'Unknown configuration option "ge_opts" in sheepdog.config.json. Sheepdog for TypeScript spells it "geOpts".',
    );
    expect(() =>
      resolveConfig({}, {}, { name: "c.json", config: { host: "fear", port: "x" } }),
    ).toThrow('"port" in c.json must be a port number');
  });

  it("names the right spelling for the original's options", () => {
    expect(() => resolveConfig({ host: "fear", ge_opts: [] } as never, {})).toThrow(
      '[sheepdog] [core] Unknown configuration option "ge_opts". Sheepdog for TypeScript spells it "geOpts".',
    );
    expect(() => resolveConfig({ host: "fear", ssh_keyfile: "k" } as never, {})).toThrow(
      'spells it "sshKeyfile"',
    );
    expect(() => resolveConfig({ host: "fear", sshPrt: 22 } as never, {})).toThrow(
      'Unknown configuration option "sshPrt". Did you mean "sshPort"?',
    );
  });

  it("names the bad field and what it must be", () => {
    expect(() => resolveConfig({}, {})).toThrow(/needs "host"/);
    expect(() => resolveConfig({ host: "fear", sshPort: 70000 }, {})).toThrow(
      '"sshPort" must be a port number from 0 to 65535, not 70000.',
    );
    expect(() => resolveConfig({ host: "fear", geOpts: "-l a=1" as never }, {})).toThrow(
      /"geOpts" must be an array of strings/,
    );
    expect(() => resolveConfig({ host: "fear", geOpts: ["-l a=1\n#$ -l b=2"] }, {})).toThrow(
      /newline/,
    );
    expect(() => resolveConfig({ host: "fear", pickleProtocol: 1 }, {})).toThrow(
      /pickle protocol from 2 to 5/,
    );
    expect(() => resolveConfig({ host: "fear" }, { SHEEPDOG_SSH_PORT: "abc" })).toThrow(
      /SHEEPDOG_SSH_PORT/,
    );
    expect(() => resolveConfig({ host: "fear", retries: -1 }, {})).toThrow(
      '"retries" must be a whole number, 0 or more, not -1.',
    );
    expect(() => resolveConfig({ host: "fear", retryOn: "raised" as never }, {})).toThrow(
      '"retryOn" must be "died" or "any", not "raised".',
    );
    expect(() => resolveConfig({ host: "fear" }, { SHEEPDOG_RETRY_ON: "all" })).toThrow(
      'SHEEPDOG_RETRY_ON must be "died" or "any"',
    );
    expect(
      resolveConfig({ host: "fear" }, { SHEEPDOG_RETRIES: "2", SHEEPDOG_RETRY_ON: "any" }).config,
    ).toMatchObject({ retries: 2, retryOn: "any" });
    try {
      resolveConfig({ host: "" }, {});
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: "CONFIG_INVALID", source: "core" });
    }
  });
});
