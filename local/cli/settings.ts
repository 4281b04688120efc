import * as z from 'zod';
import { UsageError } from './errors.js';

/**
 * Settings the commands read from a flag or from the environment, checked with zod. An error
 * names where the value came from, as the user wrote it: `SD35_API_URL: "notaurl" is not a URL`
 * for a variable, `--api: …` only when the flag was typed.
 */

/** A setting's value and where it came from: the flag the user typed, or the variable they set. */
export interface Setting {
  readonly value: string;
  readonly from: string;
}

/** The flag's value if given, else the variable's if set (and not empty), else undefined. */
export function settingOf(
  flag: { readonly name: string; readonly value: string | undefined },
  variable: { readonly name: string; readonly value: string | undefined },
): Setting | undefined {
  if (flag.value !== undefined) return { value: flag.value, from: flag.name };
  return variable.value ? { value: variable.value, from: variable.name } : undefined;
}

/** The setting's value as `schema` reads it. @throws UsageError naming the setting's source */
export function parseSetting<T>(schema: z.ZodType<T>, setting: Setting): T {
  const parsed = schema.safeParse(setting.value);
  if (parsed.success) return parsed.data;
  throw new UsageError(`${setting.from}: ${parsed.error.issues[0]?.message ?? 'invalid'}`);
}

/** A base URL: http or https (a stage or path included), read without a trailing slash. */
export const httpUrlSchema = z.string().transform((raw, context) => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    context.addIssue({ code: 'custom', message: `${JSON.stringify(raw)} is not a URL` });
    return z.NEVER;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    context.addIssue({ code: 'custom', message: `must be an http or https URL, got ${JSON.stringify(raw)}` });
    return z.NEVER;
  }
  return `${url.origin}${url.pathname.replace(/\/+$/, '')}`;
});

/**
 * `value` as an http(s) base URL, without a trailing slash.
 * @throws UsageError naming `from` (`DASHSCOPE_BASE_URL: "x" is not a URL`)
 */
export function httpUrlOf(value: string, from: string): string {
  return parseSetting(httpUrlSchema, { value, from });
}
