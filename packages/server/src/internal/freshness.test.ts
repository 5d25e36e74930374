import { newNonce, REQUEST_TIME_AHEAD_MS, REQUEST_TIME_BEHIND_MS } from "@sheepdog/contracts";
import { describe, expect, it } from "vitest";
import { Freshness } from "./freshness.js";

describe("Freshness", () => {
  const start = 1_700_000_000_000;

  it("takes times from the window's start to its end, never before the server started", () => {
    const fresh = new Freshness(start);
    const now = start + 5 * 60_000;
    expect(fresh.inWindow(now, now)).toBe(true);
    expect(fresh.inWindow(now - REQUEST_TIME_BEHIND_MS, now)).toBe(true);
    expect(fresh.inWindow(now - REQUEST_TIME_BEHIND_MS - 1, now)).toBe(false);
    expect(fresh.inWindow(now + REQUEST_TIME_AHEAD_MS, now)).toBe(true);
    expect(fresh.inWindow(now + REQUEST_TIME_AHEAD_MS + 1, now)).toBe(false);
    const young = new Freshness(start);
    expect(young.inWindow(start - 1, start + 1000)).toBe(false);
    expect(young.inWindow(start, start + 1000)).toBe(true);
  });

  it("knows a clock set back: times older than the latest reading's window stay refused", () => {
    const fresh = new Freshness(start);
    const later = start + 10 * 60_000;
    expect(fresh.inWindow(later, later)).toBe(true);
    const setBack = later - 5 * 60_000;
    expect(fresh.inWindow(setBack, setBack)).toBe(false);
  });

  it("accepts a nonce once, and forgets it once its time has left the window", () => {
    const fresh = new Freshness(start);
    const now = start + 1000;
    const [n1, n2, n3] = [newNonce(), newNonce(), newNonce()];
    expect(fresh.firstUse(n1, now, now)).toBe(true);
    expect(fresh.firstUse(n1, now, now)).toBe(false);
    expect(fresh.firstUse(n2, now, now)).toBe(true);
    expect(fresh.size).toBe(2);
    const much = now + REQUEST_TIME_BEHIND_MS + 20_000;
    expect(fresh.firstUse(n3, much, much)).toBe(true);
    expect(fresh.size).toBe(1);
    // A replay of n1 now is out of the window, so its being forgotten lets nothing through.
    expect(fresh.inWindow(now, much)).toBe(false);
  });
});
