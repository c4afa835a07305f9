/** The serving schedule and the pause state it feeds, on an injected clock. */
import { describe, expect, it } from "vitest";
import { resolveConfig } from "../../src/config.ts";
import { PauseState, manualReason } from "../../src/daemon/pause.ts";
import {
  OUTSIDE_SCHEDULE,
  checkSchedule,
  inSchedule,
  type ScheduleWindow,
} from "../../src/daemon/schedule.ts";

/** 2026-12-07 is a Monday; local time, as the schedule is. */
const at = (day: number, hh: number, mm = 0): Date => new Date(2026, 11, 7 + day, hh, mm);
const MON = 0;
const FRI = 4;
const SAT = 5;
const SUN = 6;

describe("serving schedule", () => {
  const evenings: ScheduleWindow[] = [
    { days: ["mon", "tue", "wed", "thu", "fri"], from: "09:00", to: "17:30" },
    { days: ["sat"], from: "22:00", to: "06:00" },
  ];

  it("serves inside a window and not outside", () => {
    expect(inSchedule(evenings, at(MON, 9, 0))).toBe(true);
    expect(inSchedule(evenings, at(MON, 17, 29))).toBe(true);
    expect(inSchedule(evenings, at(MON, 17, 30))).toBe(false);
    expect(inSchedule(evenings, at(MON, 8, 59))).toBe(false);
    expect(inSchedule(evenings, at(SUN, 12))).toBe(false);
  });

  it("runs a window whose end is before its start past midnight", () => {
    expect(inSchedule(evenings, at(SAT, 21, 59))).toBe(false);
    expect(inSchedule(evenings, at(SAT, 23))).toBe(true);
    expect(inSchedule(evenings, at(SUN, 5, 59))).toBe(true);
    expect(inSchedule(evenings, at(SUN, 6))).toBe(false);
    // Friday night is not Saturday's window.
    expect(inSchedule(evenings, at(FRI, 23))).toBe(false);
  });

  it("serves always with no schedule, and all day with 00:00 to 24:00", () => {
    expect(inSchedule([], at(SUN, 3))).toBe(true);
    const allDay: ScheduleWindow[] = [{ days: ["sun"], from: "00:00", to: "24:00" }];
    expect(inSchedule(allDay, at(SUN, 23, 59))).toBe(true);
    expect(inSchedule(allDay, at(MON, 0))).toBe(false);
  });

  it("names every bad window and value", () => {
    expect(
      checkSchedule([
        { days: [], from: "9:00", to: "25:00" },
        { days: ["mon"], from: "10:00", to: "10:00" },
        { days: ["monday" as "mon"], from: "24:00", to: "12:61" },
      ]),
    ).toEqual([
      "schedule[0].days: expected days among sun, mon, tue, wed, thu, fri, sat, got []",
      'schedule[0].from: expected HH:MM from 00:00 to 23:59, got "9:00"',
      'schedule[0].to: expected HH:MM from 00:00 to 24:00, got "25:00"',
      "schedule[1]: from and to are both 10:00; for the whole day use 00:00 to 24:00",
      'schedule[2].days: expected days among sun, mon, tue, wed, thu, fri, sat, got ["monday"]',
      'schedule[2].from: expected HH:MM from 00:00 to 23:59, got "24:00"',
      'schedule[2].to: expected HH:MM from 00:00 to 24:00, got "12:61"',
    ]);
  });

  it("is checked with the rest of the config", () => {
    expect(() =>
      resolveConfig({ schedule: [{ days: ["mon"], from: "18:00", to: "18:00" }] }, {}),
    ).toThrow(/schedule\[0\]: from and to are both 18:00/);
    const config = resolveConfig({ schedule: evenings }, {});
    expect(config.schedule).toEqual(evenings);
    expect(config.autoPause).toMatchObject({ afterMs: 5000, resumeMs: 60_000, pollMs: 5000 });
    expect(config.autoPause.ignore).toContain("Xorg");
    expect(config.paused).toBe(undefined);
  });
});

describe("pause state", () => {
  it("pauses the rig outside the schedule, and the owner's pause wins", () => {
    let now = at(MON, 8);
    const kept: (string | undefined)[] = [];
    const state = new PauseState({
      schedule: () => [{ days: ["mon"], from: "09:00", to: "17:00" }],
      now: () => now,
      persist: (r) => kept.push(r),
    });
    expect(state.rig()).toBe(OUTSIDE_SCHEDULE);
    expect(state.fields()).toEqual({ paused: OUTSIDE_SCHEDULE });
    expect(state.view()).toMatchObject({ paused: OUTSIDE_SCHEDULE, outside_schedule: true });
    now = at(MON, 10);
    expect(state.rig()).toBe(undefined);
    expect(state.fields()).toEqual({});
    state.pause(manualReason("gaming tonight"));
    expect(state.model("any")).toBe("paused by its owner: gaming tonight");
    expect(state.view()).toMatchObject({ manual: "paused by its owner: gaming tonight" });
    state.resume();
    expect(kept).toEqual(["paused by its owner: gaming tonight", undefined]);
    expect(state.rig()).toBe(undefined);
  });

  it("pauses models alone, and the rig's pause covers them", () => {
    const state = new PauseState({ manual: "paused by its owner" });
    state.setModels({ "qwen3-8b": "GPU 0 is in use by another program (blender, pid 7)" });
    expect(state.fields()).toEqual({
      paused: "paused by its owner",
      paused_models: { "qwen3-8b": "GPU 0 is in use by another program (blender, pid 7)" },
    });
    state.resume();
    expect(state.model("qwen3-8b")).toMatch(/GPU 0/);
    expect(state.model("other")).toBe(undefined);
  });

  it("keeps reasons within the heartbeat's 256 characters", () => {
    expect(manualReason("x".repeat(400))).toHaveLength(256);
    expect(manualReason("  ")).toBe("paused by its owner");
  });
});
