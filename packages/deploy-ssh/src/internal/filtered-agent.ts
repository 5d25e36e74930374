import ssh2, { type ParsedKey, type SignCallback, type SigningRequestOptions } from "ssh2";

// ssh2 is CommonJS: Node's ESM loader sees only its default export.
const { BaseAgent, OpenSSHAgent } = ssh2;

/**
 * The SSH agent at `socket`, showing only the keys whose public blobs are in `allowed`: what
 * OpenSSH's `IdentitiesOnly yes` does, so that an agent full of other keys cannot use up the
 * server's `MaxAuthTries` before the right key is offered.
 */
export class FilteredAgent extends BaseAgent<ParsedKey> {
  private readonly inner: InstanceType<typeof OpenSSHAgent>;
  private readonly allowed: Set<string>;

  constructor(socket: string, allowed: readonly Buffer[]) {
    super();
    this.inner = new OpenSSHAgent(socket);
    this.allowed = new Set(allowed.map((blob) => blob.toString("base64")));
  }

  getIdentities(cb: (error: Error | undefined, keys?: ParsedKey[]) => void): void {
    this.inner.getIdentities((error, keys) => {
      if (error) cb(error);
      else
        cb(
          undefined,
          (keys ?? []).filter(
            (key): key is ParsedKey =>
              "getPublicSSH" in key && this.allowed.has(key.getPublicSSH().toString("base64")),
          ),
        );
    });
  }

  sign(
    pubKey: ParsedKey,
    data: Buffer,
    options: SigningRequestOptions | SignCallback,
    cb?: SignCallback,
  ): void {
    if (typeof options === "function") this.inner.sign(pubKey, data, {}, options);
    else this.inner.sign(pubKey, data, options, cb);
  }
}
