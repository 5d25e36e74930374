import { describe, expect, it } from "vitest";
import { factsOf } from "./request-meta.js";

describe("factsOf", () => {
  it("names the route the workers try first, and a relay kept only as their fallback", () => {
    expect(factsOf({ route: "direct" }).route).toBe("direct");
    expect(factsOf({ route: "direct", relay: "head:4100" }).route).toBe(
      "direct (relay as fallback)",
    );
    expect(factsOf({ route: "relay", relay: "head:4100" }).route).toBe("relay on the head node");
    // A request from before the route was kept: a relay is all that is known.
    expect(factsOf({ relay: "head:4100" }).route).toBe("relay on the head node");
    expect(factsOf({}).route).toBeUndefined();
  });
});
