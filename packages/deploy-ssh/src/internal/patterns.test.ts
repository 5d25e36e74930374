import { describe, expect, it } from "vitest";
import { matchPattern, matchPatternList, matchPatterns } from "./patterns.js";

describe("OpenSSH patterns", () => {
  it("match * and ? and nothing else", () => {
    expect(matchPattern("fear.cs.example", "*.example")).toBe(true);
    expect(matchPattern("fear", "f??r")).toBe(true);
    expect(matchPattern("fear", "f?r")).toBe(false);
    expect(matchPattern("fear", "*")).toBe(true);
    expect(matchPattern("", "*")).toBe(true);
    expect(matchPattern("a.b", "a[.]b")).toBe(false);
    expect(matchPattern("[127.0.0.1]:2222", "[127.0.0.1]:2222")).toBe(true);
    expect(matchPattern("[127.0.0.1]:2222", "[127.0.0.*]:22*")).toBe(true);
    expect(matchPattern("aaab", "*a*b")).toBe(true);
    expect(matchPattern("abcabd", "*abd")).toBe(true);
    expect(matchPattern("abc", "ab")).toBe(false);
  });

  it("let a negated match win over any positive one", () => {
    expect(matchPatterns("fear", ["f*", "!fear"])).toBe(false);
    expect(matchPatterns("fear", ["!fear", "*"])).toBe(false);
    expect(matchPatterns("fire", ["f*", "!fear"])).toBe(true);
    expect(matchPatterns("other", ["f*", "!fear"])).toBeUndefined();
    expect(matchPatterns("other", ["!fear"])).toBeUndefined();
    expect(matchPatternList("b", "a,b,c")).toBe(true);
  });
});
