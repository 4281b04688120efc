import { describe, expect, it } from 'vitest';
import {
  formatIssues,
  generationRequestSchema,
  MAX_SEED,
  parseSize,
  SIDES,
} from '../../functions/shared/generation-request.js';

const PROMPT = 'a running cat';

describe('generationRequestSchema: defaults', () => {
  it('applies the documented defaults to a request with only a prompt', () => {
    // Act
    const request = generationRequestSchema.parse({ prompt: PROMPT });

    // Assess
    expect(request).toEqual({
      prompt: PROMPT,
      model: 'stable-diffusion-3.5-large',
      size: '1024*1024',
      n: 1,
      steps: 40,
      cfg: 4.5,
      shift: 3,
    });
  });

  it('leaves the seed unset when none is given', () => {
    // Act
    const request = generationRequestSchema.parse({ prompt: PROMPT });

    // Assess
    expect(request.seed).toBeUndefined();
  });

  it('keeps every value the caller sets', () => {
    // Prepare
    const input = {
      prompt: PROMPT,
      negative_prompt: 'yellow cat',
      model: 'stable-diffusion-3.5-large-turbo',
      size: '512*1024',
      n: 4,
      steps: 500,
      cfg: 5,
      seed: MAX_SEED - 3,
      shift: 2.5,
      init_image: 'https://example.com/ref.png',
    } as const;

    // Act
    const request = generationRequestSchema.parse(input);

    // Assess
    expect(request).toEqual(input);
  });

  it('trims the prompt', () => {
    // Act
    const request = generationRequestSchema.parse({ prompt: `  ${PROMPT}\n` });

    // Assess
    expect(request.prompt).toBe(PROMPT);
  });
});

describe('generationRequestSchema: bad fields', () => {
  const cases: Array<[string, Record<string, unknown>, string]> = [
    ['size off the grid (500*500)', { size: '500*500' }, 'size'],
    ['size with an x (1024x1024)', { size: '1024x1024' }, 'size'],
    ['size above the grid (1152*1024)', { size: '1152*1024' }, 'size'],
    ['n of 0', { n: 0 }, 'n'],
    ['n of 5', { n: 5 }, 'n'],
    ['n of 1.5', { n: 1.5 }, 'n'],
    ['steps of 0', { steps: 0 }, 'steps'],
    ['steps of 501', { steps: 501 }, 'steps'],
    ['seed of -1', { seed: -1 }, 'seed'],
    ['seed of 2147483648', { seed: 2_147_483_648 }, 'seed'],
    ['another model', { model: 'stable-diffusion-xl' }, 'model'],
    ['an empty prompt', { prompt: '' }, 'prompt'],
    ['a whitespace prompt', { prompt: ' \t\n ' }, 'prompt'],
    ['an ftp init_image', { init_image: 'ftp://example.com/x.png' }, 'init_image'],
    ['a cfg of 0', { cfg: 0 }, 'cfg'],
    ['a string n', { n: '2' }, 'n'],
  ];

  it.each(cases)('rejects %s', (_label, patch) => {
    // Act
    const result = generationRequestSchema.safeParse({ prompt: PROMPT, ...patch });

    // Assess
    expect(result.success).toBe(false);
  });

  it.each(cases)('reports %s against its field only', (_label, patch, field) => {
    // Act
    const result = generationRequestSchema.safeParse({ prompt: PROMPT, ...patch });

    // Assess
    expect(new Set(result.error?.issues.map((issue) => issue.path.join('.')))).toEqual(new Set([field]));
  });

  it.each(cases)('lets formatIssues name the field for %s', (_label, patch, field) => {
    // Prepare
    const result = generationRequestSchema.safeParse({ prompt: PROMPT, ...patch });
    if (result.success) throw new Error('expected a validation error');

    // Act
    const text = formatIssues(result.error);

    // Assess
    expect(text.startsWith(`${field}: `)).toBe(true);
  });

  it('rejects a request without a prompt and names prompt', () => {
    // Prepare
    const result = generationRequestSchema.safeParse({ n: 2 });
    if (result.success) throw new Error('expected a validation error');

    // Act
    const text = formatIssues(result.error);

    // Assess
    expect(text).toBe('prompt: is required');
  });

  it('rejects an unknown field and names it', () => {
    // Prepare
    const result = generationRequestSchema.safeParse({ prompt: PROMPT, negativePrompt: 'yellow cat' });
    if (result.success) throw new Error('expected a validation error');

    // Act
    const text = formatIssues(result.error);

    // Assess
    expect(text).toContain('negativePrompt');
  });

  it('reports every bad field at once, one per line item', () => {
    // Prepare
    const result = generationRequestSchema.safeParse({ prompt: PROMPT, n: 9, steps: 0 });
    if (result.success) throw new Error('expected a validation error');

    // Act
    const text = formatIssues(result.error);

    // Assess
    expect(text.split('; ').map((line) => line.split(':')[0])).toEqual(['n', 'steps']);
  });
});

describe('generationRequestSchema: the size grid', () => {
  const grid = SIDES.flatMap((width) => SIDES.map((height) => `${width}*${height}`));

  it.each(grid)('accepts %s', (size) => {
    // Act
    const result = generationRequestSchema.safeParse({ prompt: PROMPT, size });

    // Assess
    expect(result.success).toBe(true);
  });

  it.each(grid)('parses %s back into its width and height', (size) => {
    // Prepare
    const [width, height] = size.split('*').map(Number);

    // Act
    const parsed = parseSize(size);

    // Assess
    expect(parsed).toEqual({ width, height });
  });
});

describe('generationRequestSchema: exact forms', () => {
  it.each(['0512*512', '512*0768', ' 512*512', '512*512 '])('refuses the non-canonical size %j', (size) => {
    const parsed = generationRequestSchema.safeParse({ prompt: 'a cat', size });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]?.path).toEqual(['size']);
  });

  it('refuses a seed whose batch would run past the largest seed, naming seed', () => {
    const parsed = generationRequestSchema.safeParse({ prompt: 'a cat', n: 4, seed: 2_147_483_645 });
    expect(parsed.success).toBe(false);
    expect(formatIssues(parsed.error!)).toMatch(/^seed: /);
  });

  it('accepts the largest seed whose batch stays in range', () => {
    expect(generationRequestSchema.safeParse({ prompt: 'a cat', n: 4, seed: 2_147_483_644 }).success).toBe(
      true,
    );
  });
});

describe('generationRequestSchema: well-formed text in every string field', () => {
  const BAD_TEXT = [
    ['a NUL character', 'a\u0000b', /NUL/],
    ['a lone high surrogate', 'a\uD800b', /lone surrogate/],
    ['a lone low surrogate', 'a\uDC00b', /lone surrogate/],
    ['a lone surrogate at the end', 'ab\uD83D', /lone surrogate/],
    ['the replacement character of bytes that were not UTF-8', 'caf\uFFFD', /U\+FFFD.*not UTF-8/],
  ] as const;
  const FREE_TEXT_FIELDS = ['prompt', 'negative_prompt'] as const;
  const URL_FIELDS = ['init_image', 'webhook_url'] as const;
  const cases = [
    ...FREE_TEXT_FIELDS.flatMap((field) =>
      BAD_TEXT.map(([label, text, reason]) => [field, label, text, reason] as const),
    ),
    ...URL_FIELDS.flatMap((field) =>
      BAD_TEXT.map(
        ([label, text, reason]) => [field, label, `https://img.example/${text}.png`, reason] as const,
      ),
    ),
  ];

  it.each(cases)('refuses %s with %s, naming the field and the reason', (field, _label, value, reason) => {
    const parsed = generationRequestSchema.safeParse({ prompt: PROMPT, [field]: value });
    expect(parsed.success).toBe(false);
    const issue = parsed.error?.issues.find((i) => i.path.join('.') === field);
    expect(issue?.message).toMatch(reason);
  });

  it('accepts characters outside the BMP written as a surrogate pair', () => {
    expect(generationRequestSchema.safeParse({ prompt: 'an eagle 🦅 over 𝔰𝔢𝔞' }).success).toBe(true);
  });
});
