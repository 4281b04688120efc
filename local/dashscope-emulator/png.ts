import { createHash } from 'node:crypto';
import { PNG } from 'pngjs';

type Rgb = readonly [number, number, number];

interface Shape {
  kind: 'circle' | 'rect';
  cx: number;
  cy: number;
  radius: number;
  color: Rgb;
}

const SHAPE_COUNT = 5;

/**
 * Renders a stand-in for a generated image: a real RGB PNG of `width` × `height` whose two-colour
 * gradient and shapes are derived from a hash of `prompt` and `seed`. The same inputs always give
 * identical bytes, so tests can compare downloads; another seed gives another picture.
 */
export function renderPng(prompt: string, seed: number, width: number, height: number): Buffer {
  const random = seededRandom(`${seed}\n${prompt}`);
  const png = new PNG({ width, height });
  paintGradient(png, randomColor(random), randomColor(random), random() * Math.PI * 2);
  for (let i = 0; i < SHAPE_COUNT; i += 1) paintShape(png, randomShape(random, width, height));
  // Level 6 instead of pngjs's 9, and one filter instead of trying all five per row: several
  // times faster for a 1024×1024 picture, and size does not matter for a stand-in.
  return PNG.sync.write(png, { colorType: 2, deflateLevel: 6, filterType: 1 });
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

function paintGradient(png: PNG, from: Rgb, to: Rgb, angle: number): void {
  const { width, height, data } = png;
  const dx = Math.cos(angle);
  const dy = Math.sin(angle);
  // Project the corners on the gradient axis so that t spans exactly 0..1 across the picture.
  const corners = [0, width * dx, height * dy, width * dx + height * dy];
  const min = Math.min(...corners);
  const span = Math.max(...corners) - min || 1;
  for (let y = 0; y < height; y += 1) {
    for (let x = 0; x < width; x += 1) {
      const t = (x * dx + y * dy - min) / span;
      setPixel(data, (y * width + x) * 4, mix(from, to, t));
    }
  }
}

function paintShape(png: PNG, shape: Shape): void {
  const { width, height, data } = png;
  const { cx, cy, radius } = shape;
  const top = Math.max(0, cy - radius);
  const bottom = Math.min(height - 1, cy + radius);
  const left = Math.max(0, cx - radius);
  const right = Math.min(width - 1, cx + radius);
  const radiusSquared = radius * radius;
  for (let y = top; y <= bottom; y += 1) {
    for (let x = left; x <= right; x += 1) {
      const inside = shape.kind === 'rect' || (x - cx) * (x - cx) + (y - cy) * (y - cy) <= radiusSquared;
      if (inside) setPixel(data, (y * width + x) * 4, shape.color);
    }
  }
}

function mix(from: Rgb, to: Rgb, t: number): Rgb {
  return [from[0] + (to[0] - from[0]) * t, from[1] + (to[1] - from[1]) * t, from[2] + (to[2] - from[2]) * t];
}

function setPixel(data: Buffer, offset: number, color: Rgb): void {
  // Typed-array stores drop the fraction; rounding keeps the gradient even.
  data[offset] = Math.round(color[0]);
  data[offset + 1] = Math.round(color[1]);
  data[offset + 2] = Math.round(color[2]);
  data[offset + 3] = 255;
}
