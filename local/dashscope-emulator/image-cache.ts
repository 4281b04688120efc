/**
 * Least-recently-used cache of rendered PNGs. Images are rendered on first download; the cap keeps
 * memory bounded however many tasks an emulator serves, while a client re-downloading the same
 * image (a retry, say) does not pay for rendering twice.
 */
export class ImageCache {
  readonly #capacity: number;
  readonly #entries = new Map<string, Promise<Buffer>>();

  constructor(capacity = 8) {
    this.#capacity = capacity;
  }

  /**
   * The cached image for `key`, rendering and caching it with `render` when missing. Two downloads
   * of an image still rendering share its one rendering; a rendering that fails is not kept.
   */
  getOrRender(key: string, render: () => Promise<Buffer>): Promise<Buffer> {
    const cached = this.#entries.get(key);
    if (cached) {
      // Re-insert to mark as most recently used: Map keeps insertion order.
      this.#entries.delete(key);
      this.#entries.set(key, cached);
      return cached;
    }
    const image = render();
    this.#entries.set(key, image);
    image.catch(() => {
      if (this.#entries.get(key) === image) this.#entries.delete(key);
    });
    this.#evict();
    return image;
  }

  /** Drops every cached image. */
  clear(): void {
    this.#entries.clear();
  }

  #evict(): void {
    for (const key of this.#entries.keys()) {
      if (this.#entries.size <= this.#capacity) return;
      this.#entries.delete(key);
    }
  }
}
