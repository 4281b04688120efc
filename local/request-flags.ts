/** The command-line flags that make up a generation request, shared by `generate` and `sd35`. */
export const REQUEST_FLAG_OPTIONS = {
  negative: { type: 'string' },
  size: { type: 'string' },
  n: { type: 'string' },
  steps: { type: 'string' },
  cfg: { type: 'string' },
  seed: { type: 'string' },
  shift: { type: 'string' },
  model: { type: 'string' },
  'init-image': { type: 'string' },
} as const;

export const REQUEST_FLAGS_HELP = `  --negative <text>      negative prompt
  --size <W*H>           e.g. 1024*1024 (W, H in 512..1024, step 128)   [default 1024*1024]
  --n <1-4>              number of images                                [default 1]
  --steps <1-500>        denoising steps                                 [default 40]
  --cfg <number>         guidance scale                                  [default 4.5]
  --seed <int>           seed; image i uses seed + i                     [default random]
  --shift <number>       shift                                           [default 3.0]
  --model <name>         stable-diffusion-3.5-large | stable-diffusion-3.5-large-turbo
  --init-image <url>     reference image URL`;

type FlagValues = { [K in keyof typeof REQUEST_FLAG_OPTIONS]?: string };

/**
 * Maps flags and the positional prompt to a request body. Numbers that do not read as numbers stay
 * strings, so the request schema rejects them naming the field.
 */
export function requestFromFlags(
  values: FlagValues,
  positionals: readonly string[],
): Record<string, unknown> {
  const number = (value: string | undefined) =>
    value === undefined
      ? undefined
      : value.trim() !== '' && Number.isFinite(Number(value))
        ? Number(value)
        : value;
  const body: Record<string, unknown> = {
    prompt: positionals.join(' ') || undefined,
    negative_prompt: values.negative,
    model: values.model,
    size: values.size,
    n: number(values.n),
    steps: number(values.steps),
    cfg: number(values.cfg),
    seed: number(values.seed),
    shift: number(values.shift),
    init_image: values['init-image'],
  };
  return Object.fromEntries(Object.entries(body).filter(([, value]) => value !== undefined));
}
