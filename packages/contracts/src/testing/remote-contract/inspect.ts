// How the Remote suite looks at what a remote did: file contents as text, and file modes.

/** Bytes read from the remote, decoded as UTF-8. */
export const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString("utf8");

/** A portable `stat` of a file's permission bits, as octal digits. */
export const modeOf = (path: string): string =>
  `(stat -c %a ${path} 2>/dev/null || stat -f %Lp ${path})`;
