import { createHash } from 'node:crypto';

/**
 * The console's icon: a picture on the console's accent blue (a sun over a hill), as SVG for the
 * pages' `<link rel="icon">` and as a 32 × 32 ICO at `/favicon.ico`, where browsers look when a
 * page names none. Both are built here, so the Lambda bundle carries them without a loader.
 */

const ACCENT = [0x1a, 0x56, 0xb8] as const;
const SUN = [0xff, 0xd2, 0x7a] as const;
const HILL = [0xff, 0xff, 0xff] as const;

export const FAVICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#1a56b8"/><circle cx="11" cy="11" r="4.5" fill="#ffd27a"/><path d="M3 27 L13 16 L19 22 L23 18 L29 27 Z" fill="#fff"/></svg>`;

/** Where the pages link the SVG: its content hash in the name, so it can be cached for good. */
export const FAVICON_SVG_NAME = `favicon-${createHash('sha256').update(FAVICON_SVG).digest('hex').slice(0, 12)}.svg`;

/** A year, immutable: the SVG's name changes with its content; `/favicon.ico` is asked for by name. */
export const FAVICON_CACHE_CONTROL = 'public, max-age=31536000, immutable';

/** The top of the hills at `x`: the SVG path's line through 3,27 13,16 19,22 23,18 29,27. */
function ridge(x: number): number {
  if (x <= 13) return 27 - (x - 3) * 1.1;
  if (x <= 19) return 16 + (x - 13);
  if (x <= 23) return 22 - (x - 19);
  return 18 + (x - 23) * 1.5;
}

/** The same picture, rasterized: what each pixel (x, y from the top left, 0–31) shows. */
function pixel(x: number, y: number): readonly [number, number, number, number] {
  const cx = x + 0.5;
  const cy = y + 0.5;
  // Rounded corners of radius 6: transparent outside them.
  const corner = (px: number, py: number) => (cx - px) ** 2 + (cy - py) ** 2 > 36;
  if (
    (cx < 6 && cy < 6 && corner(6, 6)) ||
    (cx > 26 && cy < 6 && corner(26, 6)) ||
    (cx < 6 && cy > 26 && corner(6, 26)) ||
    (cx > 26 && cy > 26 && corner(26, 26))
  )
    return [0, 0, 0, 0];
  if ((cx - 11) ** 2 + (cy - 11) ** 2 <= 4.5 ** 2) return [...SUN, 255];
  if (cx >= 3 && cx <= 29 && cy <= 27 && cy >= ridge(cx)) return [...HILL, 255];
  return [...ACCENT, 255];
}

/** A 32 × 32, 32-bit ICO: one BMP image (BGRA rows bottom-up, then an empty AND mask). */
function buildIco(): Buffer {
  const size = 32;
  const pixels = size * size * 4;
  const mask = size * 4;
  const header = Buffer.alloc(6 + 16 + 40);
  header.writeUInt16LE(0, 0);
  header.writeUInt16LE(1, 2); // an icon
  header.writeUInt16LE(1, 4); // one image
  header.writeUInt8(size, 6);
  header.writeUInt8(size, 7);
  header.writeUInt16LE(1, 10); // planes
  header.writeUInt16LE(32, 12); // bits per pixel
  header.writeUInt32LE(40 + pixels + mask, 14);
  header.writeUInt32LE(22, 18); // where the image starts
  header.writeUInt32LE(40, 22); // BITMAPINFOHEADER
  header.writeInt32LE(size, 26);
  header.writeInt32LE(size * 2, 30); // the colours and the mask
  header.writeUInt16LE(1, 34);
  header.writeUInt16LE(32, 36);
  header.writeUInt32LE(pixels + mask, 42);
  const body = Buffer.alloc(pixels + mask);
  for (let row = 0; row < size; row++) {
    const y = size - 1 - row;
    for (let x = 0; x < size; x++) {
      const [r, g, b, a] = pixel(x, y);
      body.set([b, g, r, a], (row * size + x) * 4);
    }
  }
  return Buffer.concat([header, body]);
}

export const FAVICON_ICO: Buffer = buildIco();
