import { type MakeThumbnail, THUMBNAIL, ThumbnailError } from './thumbnail.js';

/** What {@link sharpThumbnail} makes. */
export interface SharpThumbnailOptions {
  /** Longest side, in px. @default THUMBNAIL.maxSide (256) */
  readonly maxSide?: number;
  /** WebP quality, 1–100. @default 75 */
  readonly quality?: number;
}

type Sharp = typeof import('sharp').default;

let loaded: Promise<Sharp> | undefined;

/**
 * sharp is a native module (libvips): it is loaded on first use, not at import, so a bundle whose
 * native part fails to load still stores every image (each without its thumbnail) instead of
 * failing at cold start. A failed load is tried again on the next image.
 */
function loadSharp(): Promise<Sharp> {
  loaded ??= import('sharp').then(
    ({ default: sharp }) => {
      // One image at a time in a Lambda of 512 MB: no operation cache, one libvips thread pool.
      sharp.cache(false);
      sharp.concurrency(1);
      return sharp;
    },
    (error: unknown) => {
      loaded = undefined;
      throw error;
    },
  );
  return loaded;
}

/**
 * The thumbnail adapter on sharp: fits the image inside `maxSide` × `maxSide` (never enlarging),
 * WebP. Decodes at most {@link THUMBNAIL.maxInputPixels} pixels.
 * Throws {@link ThumbnailError} (with the cause) when sharp cannot load or cannot decode the bytes.
 */
export function sharpThumbnail(options: SharpThumbnailOptions = {}): MakeThumbnail {
  const maxSide = options.maxSide ?? THUMBNAIL.maxSide;
  const quality = options.quality ?? 75;
  return async (image) => {
    let sharp: Sharp;
    try {
      sharp = await loadSharp();
    } catch (error) {
      throw new ThumbnailError(`the image library (sharp) did not load: ${(error as Error).message}`, {
        cause: error,
      });
    }
    try {
      const { data, info } = await sharp(image, { limitInputPixels: THUMBNAIL.maxInputPixels })
        .rotate()
        .resize(maxSide, maxSide, { fit: 'inside', withoutEnlargement: true })
        .webp({ quality })
        .toBuffer({ resolveWithObject: true });
      return { bytes: data, contentType: THUMBNAIL.contentType, width: info.width, height: info.height };
    } catch (error) {
      throw new ThumbnailError(`thumbnail not made: ${(error as Error).message}`, { cause: error });
    }
  };
}
