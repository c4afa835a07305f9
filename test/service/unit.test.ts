/** The systemd unit's text: quoting of ExecStart and the directives the service relies on. */
import { describe, expect, it } from "vitest";
import { PATHS, quoteArg, renderUnit } from "../../src/service/unit.ts";

describe("quoteArg", () => {
  it("leaves plain words alone and escapes specifiers and variables", () => {
    expect(quoteArg("/usr/bin/node")).toBe("/usr/bin/node");
    expect(quoteArg("wss://club.example:8787/x")).toBe("wss://club.example:8787/x");
    expect(quoteArg("100%")).toBe("100%%");
    expect(quoteArg("$HOME")).toBe('"$$HOME"');
    expect(quoteArg('my "rig" 1')).toBe('"my \\"rig\\" 1"');
    expect(quoteArg("a\\b c")).toBe('"a\\\\b c"');
  });
});

describe("renderUnit", () => {
  const unit = renderUnit({
    node: "/usr/bin/node",
    bin: "/usr/local/bin/club-provider",
    user: "club-provider",
    startArgs: ["--relay", "wss://club.example", "--name", "rig one"],
    supplementaryGroups: ["video", "render"],
  });
  const lines = unit.split("\n");

  it("runs start with the key file, as the service user, restarted always", () => {
    expect(lines).toContain(
      `ExecStart=/usr/bin/node /usr/local/bin/club-provider start --api-key-file ${PATHS.key} --relay wss://club.example --name "rig one"`,
    );
    expect(lines).toEqual(
      expect.arrayContaining([
        "User=club-provider",
        "Restart=always",
        "Environment=CLUB_LOG_FORMAT=json",
        "SupplementaryGroups=video render",
        "WantedBy=multi-user.target",
      ]),
    );
  });

  it("is hardened and still reaches the GPU devices", () => {
    expect(lines).toEqual(
      expect.arrayContaining([
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "CapabilityBoundingSet=",
        "DevicePolicy=closed",
        "DeviceAllow=char-nvidia* rw",
        "DeviceAllow=char-drm rw",
        "DeviceAllow=char-kfd rw",
      ]),
    );
    // Hiding /dev would hide the GPUs from nvidia-smi.
    expect(unit).not.toMatch(/PrivateDevices=yes/);
  });

  it("leaves SupplementaryGroups out when no GPU group exists", () => {
    const bare = renderUnit({ node: "/n", bin: "/b", user: "u", startArgs: [] });
    expect(bare).not.toMatch(/SupplementaryGroups/);
  });
});
