import { describe, expect, it } from 'vitest';
import { sharpThumbnail } from '../../functions/persist/sharp-thumbnail.js';
import { ThumbnailError } from '../../functions/persist/thumbnail.js';
import { renderPng } from '../../local/dashscope-emulator/png.js';

/** The sharp adapter on the real library (the x64 build `npm ci` installs) and real emulator PNGs. */
const isWebp = (bytes: Buffer) =>
  bytes.subarray(0, 4).toString('latin1') === 'RIFF' && bytes.subarray(8, 12).toString('latin1') === 'WEBP';

describe('sharpThumbnail', () => {
  it('turns an emulator PNG into a WebP at most 256 px on its longest side, far smaller than the PNG', async () => {
    const png = await renderPng('Eagle flying freely in the blue sky and white clouds', 42, 768, 1024);

    const thumbnail = await sharpThumbnail()(png);

    expect(isWebp(thumbnail.bytes)).toBe(true);
    expect(thumbnail.contentType).toBe('image/webp');
    expect([thumbnail.width, thumbnail.height]).toEqual([192, 256]);
    expect(thumbnail.bytes.length).toBeLessThan(png.length / 4);
  });

  it('never enlarges an image already smaller than the thumbnail size', async () => {
    const png = await renderPng('a small lighthouse', 7, 200, 100);

    const thumbnail = await sharpThumbnail()(png);

    expect([thumbnail.width, thumbnail.height]).toEqual([200, 100]);
  });

  it('throws ThumbnailError, with the cause, for bytes that are not an image', async () => {
    const notAnImage = Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47]), Buffer.alloc(100, 1)]);

    const error = await sharpThumbnail()(notAnImage).catch((caught: unknown) => caught);

    expect(error).toBeInstanceOf(ThumbnailError);
    expect((error as ThumbnailError).cause).toBeInstanceOf(Error);
  });
});
