/**
 * The serving schedule: windows of local time in which the rig serves. Outside every window it
 * is paused; an empty schedule means always.
 */

/** A day as the schedule names it. */
export type Day = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";

/**
 * One window: on each of `days`, from `from` to `to` (`HH:MM`, local time; `to` may be `24:00`).
 * A window whose `to` is earlier than its `from` runs past midnight into the next day.
 */
export interface ScheduleWindow {
  days: Day[];
  from: string;
  to: string;
}

/** The reason a rig outside its schedule carries in its heartbeat. */
export const OUTSIDE_SCHEDULE = "outside its serving schedule";

const DAYS: readonly Day[] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];
const MINUTES_PER_DAY = 24 * 60;

/** `HH:MM` as minutes after midnight, or undefined when it is not a time of day. */
function minutes(text: string, allowEnd: boolean): number | undefined {
  const m = /^(\d\d):(\d\d)$/.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]) * 60 + Number(m[2]);
  if (Number(m[2]) > 59) return undefined;
  if (value < MINUTES_PER_DAY || (allowEnd && value === MINUTES_PER_DAY)) return value;
  return undefined;
}

/** Every problem with a schedule, each naming the window and the value received. */
export function checkSchedule(schedule: readonly ScheduleWindow[]): string[] {
  const problems: string[] = [];
  schedule.forEach((w, i) => {
    const at = `schedule[${i}]`;
    if (!Array.isArray(w.days) || w.days.length === 0 || w.days.some((d) => !DAYS.includes(d)))
      problems.push(
        `${at}.days: expected days among ${DAYS.join(", ")}, got ${JSON.stringify(w.days)}`,
      );
    const from = minutes(w.from, false);
    const to = minutes(w.to, true);
    if (from === undefined)
      problems.push(
        `${at}.from: expected HH:MM from 00:00 to 23:59, got ${JSON.stringify(w.from)}`,
      );
    if (to === undefined)
      problems.push(`${at}.to: expected HH:MM from 00:00 to 24:00, got ${JSON.stringify(w.to)}`);
    if (from !== undefined && from === to)
      problems.push(`${at}: from and to are both ${w.from}; for the whole day use 00:00 to 24:00`);
  });
  return problems;
}

/** Whether `now` (local time) falls inside a window; always true for an empty schedule. */
export function inSchedule(schedule: readonly ScheduleWindow[], now: Date): boolean {
  if (schedule.length === 0) return true;
  const today = DAYS[now.getDay()] as Day;
  const yesterday = DAYS[(now.getDay() + 6) % 7] as Day;
  const t = now.getHours() * 60 + now.getMinutes();
  return schedule.some((w) => {
    const from = minutes(w.from, false) ?? 0;
    const to = minutes(w.to, true) ?? 0;
    if (from < to) return w.days.includes(today) && t >= from && t < to;
    // Past midnight: the evening part belongs to the day named, the morning to the day after.
    return (w.days.includes(today) && t >= from) || (w.days.includes(yesterday) && t < to);
  });
}

/** The pause reason the schedule gives at `now`, or undefined inside a window. */
export function scheduleReason(schedule: readonly ScheduleWindow[], now: Date): string | undefined {
  return inSchedule(schedule, now) ? undefined : OUTSIDE_SCHEDULE;
}
