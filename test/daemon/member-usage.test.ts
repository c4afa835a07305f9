import { describe, expect, it } from "vitest";
import { renderMemberUsage } from "../../src/cli/status.ts";
import { MemberUsage } from "../../src/daemon/member-usage.ts";

const done = (member: string | undefined, status: number, bytes = 1024 * 1024) => ({
  requestId: "req_1",
  ...(member === undefined ? {} : { member }),
  model: "qwen3-8b",
  endpoint: "/v1/chat/completions",
  service: "llamacpp-8080",
  status,
  ms: 5,
  bytes,
  tokens: null,
  aborted: status === 499,
});

describe("other members' use of the rig", () => {
  it("counts requests, errors, aborted and bytes per member and model, not the owner's", () => {
    const usage = new MemberUsage();
    for (const status of [200, 200, 500, 499]) usage.add(done("bob", status));
    usage.add(done("carol", 200));
    usage.add(done(undefined, 200));
    expect(usage.list()).toEqual([
      {
        member: "bob",
        model: "qwen3-8b",
        requests: 4,
        errors: 1,
        aborted: 1,
        bytes_out: 4 * 1024 * 1024,
      },
      {
        member: "carol",
        model: "qwen3-8b",
        requests: 1,
        errors: 0,
        aborted: 0,
        bytes_out: 1024 * 1024,
      },
    ]);
    const text = renderMemberUsage(usage.list()).join("\n");
    expect(text).toMatch(/bob\s+qwen3-8b\s+4\s+1\s+1\s+4\.0 MiB/);
    expect(renderMemberUsage([])).toEqual([]);
  });

  it("stays bounded: past 1000 member-model pairs the rest count as (others)", () => {
    const usage = new MemberUsage();
    for (let i = 0; i < 1500; i++) usage.add(done(`m${i}`, 200, 1));
    const rows = usage.list();
    expect(rows).toHaveLength(1001);
    expect(rows[0]).toMatchObject({ member: "(others)", requests: 500 });
  });
});
