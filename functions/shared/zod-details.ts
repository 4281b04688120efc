import * as z from 'zod';

type RawIssue = z.core.$ZodRawIssue;

const TYPE_NAMES: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'an object',
  bigint: 'an integer',
  date: 'a date',
};

const FORMAT_NAMES: Readonly<Record<string, string>> = {
  url: 'a URL',
  email: 'an email address',
  datetime: 'an ISO 8601 date-time',
  date: 'an ISO 8601 date',
  uuid: 'a UUID',
};

const UNITS: Readonly<Record<string, string>> = { string: 'characters', array: 'items', set: 'items' };

/** "must be at most 50", "must be at most 4096 characters", "must have at least 1 items"… */
function sizeMessage(origin: string, bound: string, value: unknown, exclusive: string | undefined): string {
  if (origin === 'string') return `must be ${bound} ${String(value)} characters`;
  const unit = UNITS[origin];
  if (unit) return `must have ${bound} ${String(value)} ${unit}`;
  return `must be ${exclusive ?? bound} ${String(value)}`;
}

const quote = (value: unknown) => (typeof value === 'string' ? JSON.stringify(value) : String(value));

/**
 * The project's message for a zod issue that its schema gave none: a short reason that follows
 * the field's name ("limit: must be a number"). Never zod's own English, never the input echoed
 * beyond its kind. Total: every issue code has a message.
 */
export function projectIssueMessage(issue: RawIssue): string {
  switch (issue.code) {
    case 'invalid_type': {
      if (issue.input === undefined) return 'is required';
      const expected = TYPE_NAMES[issue.expected] ?? `of type ${issue.expected}`;
      return `must be ${expected}`;
    }
    case 'too_big':
      return sizeMessage(
        issue.origin,
        'at most',
        issue.maximum,
        issue.inclusive === false ? 'less than' : undefined,
      );
    case 'too_small':
      if (Number(issue.minimum) === 1 && issue.origin in UNITS) return 'must not be empty';
      return sizeMessage(
        issue.origin,
        'at least',
        issue.minimum,
        issue.inclusive === false ? 'greater than' : undefined,
      );
    case 'invalid_format':
      return issue.format === 'regex'
        ? 'has the wrong format'
        : `must be ${FORMAT_NAMES[issue.format] ?? `in ${issue.format} format`}`;
    case 'not_multiple_of':
      return `must be a multiple of ${String(issue.divisor)}`;
    case 'invalid_value':
      return issue.values.length === 1
        ? `must be ${quote(issue.values[0])}`
        : `must be one of ${issue.values.map(quote).join(', ')}`;
    case 'unrecognized_keys':
      return `has unknown fields: ${issue.keys.join(', ')}`;
    case 'invalid_union':
      return 'matches none of the allowed forms';
    case 'invalid_key':
      return 'has an invalid key';
    case 'invalid_element':
      return 'has an invalid entry';
    default:
      return 'is invalid';
  }
}

// Installed once for the whole process: every schema that sets no message of its own (request
// bodies, queries, headers, request files, events, CLI flags, configuration) speaks the project's
// words. A schema's own message still wins over this one.
z.config({ customError: projectIssueMessage });

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
