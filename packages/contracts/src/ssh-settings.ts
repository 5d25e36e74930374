/**
 * How to log in to a head node over SSH: the settings that `@sheepdog/core`'s configuration
 * and `@sheepdog/deploy-ssh`'s `connect()` share, under the same names. An OpenSSH client
 * configuration (`sshConfig`) may set them per host too: its `Port` and `User` win, as in the
 * original Sheepdog.
 */
export interface SshSettings {
  /** The SSH port. A `Port` for this host in ~/.ssh/config wins over it. @default 22 */
  sshPort?: number;
  /** The login user. A `User` for this host in ~/.ssh/config wins over it. @default the current local user */
  sshUser?: string;
  /**
   * A private key file to try after the SSH agent and before ~/.ssh/config `IdentityFile`s and
   * ~/.ssh/id_ed25519, id_ecdsa, id_rsa. It must have no passphrase: keep keys with a
   * passphrase in the agent (`ssh-add`). Also tried for ProxyJump hosts.
   */
  sshKeyfile?: string;
  /**
   * The known_hosts file to check the host key against, and the only one read.
   * @default ~/.ssh/known_hosts (and known_hosts2, /etc/ssh/ssh_known_hosts), or the config's `UserKnownHostsFile`
   */
  sshKnownHosts?: string;
  /** The OpenSSH client configuration to read. @default ~/.ssh/config */
  sshConfig?: string;
}

/** The names of {@link SshSettings}. */
export const sshSettingKeys = [
  "sshPort",
  "sshUser",
  "sshKeyfile",
  "sshKnownHosts",
  "sshConfig",
] as const satisfies readonly (keyof SshSettings)[];
