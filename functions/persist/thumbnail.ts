/**
 * The thumbnail port: a small, web-friendly copy of one stored image, for galleries. Persist makes
 * it from the image's bytes as they stream into S3 (no second read of the image), stores it under
 * {@link thumbnailKey} before the manifest, and records it beside the image. The adapter is
 * `sharp-thumbnail.ts` (libvips); tests pass fakes.
 */

/** What every thumbnail is: WebP, at most {@link THUMBNAIL.maxSide} px on its longest side. */
export const THUMBNAIL = {
  maxSide: 256,
  contentType: 'image/webp',
  extension: 'webp',
  /**
   * The largest image a thumbnail is made of, in bytes: Persist keeps the image's bytes in memory
   * for the thumbnail only up to this (the image itself still streams, whatever its size).
   */
  maxInputBytes: 16 * 1024 * 1024,
  /** The most pixels decoded for a thumbnail (4096 × 4096, 64 MiB as RGBA): bounds Persist's memory. */
  maxInputPixels: 4096 * 4096,
} as const;

/** A made thumbnail. */
export interface MadeThumbnail {
  readonly bytes: Buffer;
  readonly contentType: string;
  readonly width: number;
  readonly height: number;
}

/**
 * Makes a thumbnail of a whole image (PNG, JPEG or WebP bytes).
 * Throws {@link ThumbnailError} when the bytes cannot be decoded or the image library cannot load.
 */
export type MakeThumbnail = (image: Buffer) => Promise<MadeThumbnail>;

/** A thumbnail could not be made. Never fails a generation: the image is kept without one. */
export class ThumbnailError extends Error {
  override readonly name = 'ThumbnailError';
}

/** Where image `index` of generation `id` has its thumbnail. */
export const thumbnailKey = (id: string, index: number): string =>
  `generations/${id}/thumbnails/${index}.${THUMBNAIL.extension}`;
