/** Quotes a word for a POSIX shell, leaving plain words (letters, digits, `@%+=:,./_-`) bare. */
export function quoteShell(word: string): string {
  if (word !== "" && /^[A-Za-z0-9@%+=:,./_-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}
