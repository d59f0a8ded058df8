import { z } from 'zod';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Parses Go-style durations as TiCDC's config writes them ("30s", "10m", "1h30m", "500ms") into ms. */
export function parseDuration(text: string): number | undefined {
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/gy;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    total += Number(m[1]) * UNITS[m[2]];
    matched = re.lastIndex;
  }
  return matched === text.length && text.length > 0 ? total : undefined;
}

/** A zod field for a duration string, validated and turned into ms, with a minimum. */
export function durationMs(minMs = 0): z.ZodEffects<z.ZodString, number, string> {
  return z.string().transform((text, ctx) => {
    const ms = parseDuration(text);
    if (ms === undefined) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${text}" is not a duration; use forms like 500ms, 30s, 10m, 1h` });
      return z.NEVER;
    }
    if (ms < minMs) {
      ctx.addIssue({ code: z.ZodIssueCode.custom, message: `"${text}" is below the minimum of ${minMs / 1000}s` });
      return z.NEVER;
    }
    return ms;
  });
}
