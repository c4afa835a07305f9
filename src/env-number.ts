/** Whole-number settings read from the environment, for what must be known before any config. */
import { UserError } from "./errors.ts";

/** How one such setting is read: its default, its bounds, and how its error names them. */
export interface WholeNumberSetting {
  /** The variable, e.g. `CLUB_LOG_FLUSH_MS`. */
  name: string;
  /** The error's stable code. */
  code: string;
  fallback: number;
  min: number;
  max: number;
  /** The range as the error says it, e.g. "of milliseconds from 0 to 10000". */
  range: string;
}

/** The setting's value: its default when unset or blank; a UserError outside its bounds. */
export function wholeNumberSetting(value: string | undefined, s: WholeNumberSetting): number {
  if (value === undefined || value.trim() === "") return s.fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < s.min || n > s.max)
    throw new UserError(
      s.code,
      `${s.name} must be a whole number ${s.range}, not ${JSON.stringify(value)}`,
    );
  return n;
}
