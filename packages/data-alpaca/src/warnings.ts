// Warnings that data preparation reports without throwing: returned in lists and passed to an
// optional callback, so a caller decides where they go (a log, a UI) instead of the console.

/** One warning; `code` is stable for programs, `message` is for people. */
export interface DataWarning {
  code:
    | 'pad-is-eos'
    | 'invalid-records-skipped'
    | 'boundary-merge'
    | 'truncated'
    | 'no-trained-tokens'
    | 'offsets-approximate';
  message: string;
}

/** Receives each warning as it is raised. */
export type WarningHandler = (warning: DataWarning) => void;

/** Appends to a list and forwards to the handler, if any. */
export function emitWarning(list: DataWarning[], warning: DataWarning, handler: WarningHandler | undefined): void {
  list.push(warning);
  handler?.(warning);
}
