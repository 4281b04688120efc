import { createHash } from 'node:crypto';
import sharp from 'sharp';

type Rgb = readonly [number, number, number];

interface Shape {
  kind: 'circle' | 'rect';
  cx: number;
  cy: number;
  radius: number;
  color: Rgb;
}

const SHAPE_COUNT = 5;
/** RGB, no alpha. */
const CHANNELS = 3;

/** Raw RGB pixels, row by row. */
interface Picture {
  readonly width: number;
  readonly height: number;
  readonly data: Buffer;
}

/**
 * Renders a stand-in for a generated image: a real RGB PNG of `width` × `height` whose two-colour
 * gradient and shapes are derived from a hash of `prompt` and `seed`. The same inputs always give
 * identical bytes, so tests can compare downloads; another seed gives another picture.
 * The pixels are painted here and encoded by sharp (libvips, off the event loop): a 1024×1024
 * picture takes a few milliseconds, where pngjs took about 130.
 */
export async function renderPng(
  prompt: string,
  seed: number,
  width: number,
  height: number,
): Promise<Buffer> {
  const random = seededRandom(`${seed}\n${prompt}`);
  const pixels: Picture = { width, height, data: Buffer.alloc(width * height * CHANNELS) };
  paintGradient(pixels, randomColor(random), randomColor(random), random() * Math.PI * 2);
  for (let i = 0; i < SHAPE_COUNT; i += 1) paintShape(pixels, randomShape(random, width, height));
  // Fast compression, no per-row filter search: size does not matter for a stand-in.
  return sharp(pixels.data, { raw: { width, height, channels: CHANNELS } })
    .png({ compressionLevel: 1, adaptiveFiltering: false })
    .toBuffer();
}

/** mulberry32 seeded from SHA-256: cheap, deterministic and well spread for a few dozen draws. */
function seededRandom(key: string): () => number {
  let state = createHash('sha256').update(key).digest().readUInt32LE(0);
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomColor(random: () => number): Rgb {
  return [random() * 256, random() * 256, random() * 256].map(Math.floor) as unknown as Rgb;
}

function randomShape(random: () => number, width: number, height: number): Shape {
  return {
    kind: random() < 0.5 ? 'circle' : 'rect',
    cx: Math.floor(random() * width),
    cy: Math.floor(random() * height),
    radius: Math.max(4, Math.floor(random() * Math.min(width, height) * 0.25)),
    color: randomColor(random),
  };
}

function paintGradient(picture: Picture, from: Rgb, to: Rgb, angle: number): void {
  const { width, height, data } = picture;
  const dx = Math.cos(angle);
  const dy = Math.sin(angle);
  // Project the corners on the gradient axis so that t spans exactly 0..1 across the picture.
  const corners = [0, width * dx, height * dy, width * dx + height * dy];
  const min = Math.min(...corners);
  const span = Math.max(...corners) - min || 1;
  const [r0, g0, b0] = from;
  const dr = to[0] - r0;
  const dg = to[1] - g0;
  const db = to[2] - b0;
  let offset = 0;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const t = (x * dx + y * dy - min) / span;
      // Typed-array stores drop the fraction; rounding keeps the gradient even.
      data[offset] = Math.round(r0 + dr * t);
      data[offset + 1] = Math.round(g0 + dg * t);
      data[offset + 2] = Math.round(b0 + db * t);
      offset += CHANNELS;
    }
  }
}

function paintShape(picture: Picture, shape: Shape): void {
  const { width, height, data } = picture;
  const { cx, cy, radius, color } = shape;
  const top = Math.max(0, cy - radius);
  const bottom = Math.min(height - 1, cy + radius);
  const left = Math.max(0, cx - radius);
  const right = Math.min(width - 1, cx + radius);
  const radiusSquared = radius * radius;
  for (let y = top; y <= bottom; y += 1) {
    for (let x = left; x <= right; x += 1) {
      const inside = shape.kind === 'rect' || (x - cx) * (x - cx) + (y - cy) * (y - cy) <= radiusSquared;
      if (!inside) continue;
      const offset = (y * width + x) * CHANNELS;
      data[offset] = color[0];
      data[offset + 1] = color[1];
      data[offset + 2] = color[2];
    }
  }
}
