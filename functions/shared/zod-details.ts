import type { z } from 'zod';

/** One problem of a zod error as `{field, message}`; unknown keys are named one by one. */
export function detailsOf(error: z.ZodError, prefix = ''): Array<{ field: string; message: string }> {
  return error.issues.flatMap((issue) => {
    const path = issue.path.map(String).join('.');
    if (issue.code === 'unrecognized_keys') {
      // An unknown key is named as sent, even the empty string.
      return issue.keys.map((key) => ({
        field: prefix + (path ? `${path}.${key}` : key),
        message: 'is not a known field',
      }));
    }
    return [{ field: path ? prefix + path : prefix || '(body)', message: issue.message }];
  });
}
