// Run by `npm run check:arm64` under an arm64 Node (qemu-user on an x64 host): loads sharp from a
// Persist bundle exactly as the bundle resolves it, makes a thumbnail, and prints what ran.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

const [bundle, pngFile] = process.argv.slice(2);
const resolved = createRequire(path.join(bundle, 'index.mjs')).resolve('sharp');
const { default: sharp } = await import(pathToFileURL(resolved).href);
const png = readFileSync(pngFile);
const { data, info } = await sharp(png)
  .resize(256, 256, { fit: 'inside', withoutEnlargement: true })
  .webp({ quality: 75 })
  .toBuffer({ resolveWithObject: true });
console.log(
  JSON.stringify({
    arch: process.arch,
    node: process.version,
    glibc: process.report.getReport().header.glibcVersionRuntime,
    sharp: path.relative(bundle, resolved),
    libvips: sharp.versions.vips,
    input: { format: 'png', bytes: png.length },
    thumbnail: { format: info.format, width: info.width, height: info.height, bytes: data.length },
  }),
);
