/**
 * Text from the database, a provider or the command line, made safe to print on a terminal.
 * A model name is whatever a caller or an upstream said it was: raw, its ESC and BEL bytes
 * would drive the terminal (ANSI colours, OSC window titles, hyperlinks, clipboard writes) and
 * a newline or a bidi override could pass it off as other output. Each such character is
 * printed as a visible escape instead (`\x1b`, `\u202e`), so the rest of a sequence is inert
 * text and an operator can see that someone tried.
 */

// C0 (tab and newline included: one value, one line), DEL, C1, the bidi embeddings, overrides,
// isolates and marks, and the line and paragraph separators.
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
/** The same without C0, which JSON.stringify already escapes inside strings (and uses between them). */
const UNPRINTABLE_IN_JSON = /[\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

function visible(char: string): string {
  const code = char.charCodeAt(0);
  return code <= 0xff
    ? `\\x${code.toString(16).padStart(2, '0')}`
    : `\\u${code.toString(16).padStart(4, '0')}`;
}

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, visible);
}

/**
 * JSON for a terminal: `JSON.stringify` escapes C0 but leaves DEL, C1 and the bidi controls
 * raw. They can only be inside strings, so escaping them as `\uXXXX` keeps it the same JSON.
 */
export function terminalJson(value: unknown): string {
  return JSON.stringify(value, null, 2).replace(
    UNPRINTABLE_IN_JSON,
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}
