/** An error's message without the `[sheepdog] [package] ` prefix, for a sentence of its own. */
export function messageOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return text.replace(/^(\[[^\]]*\] )+/, "");
}
