import { spawn } from 'node:child_process';

/**
 * Opens `url` with the platform's opener (`open` on macOS, `start` on Windows, `xdg-open`
 * elsewhere), without waiting for the browser.
 *
 * @throws Error when the opener cannot be started (e.g. no `xdg-open` on a server)
 */
export function openInBrowser(url: string, platform: NodeJS.Platform = process.platform): Promise<void> {
  const [command, args] =
    platform === 'darwin'
      ? ['open', [url]]
      : platform === 'win32'
        ? ['cmd', ['/c', 'start', '""', url]]
        : ['xdg-open', [url]];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { detached: true, stdio: 'ignore' });
    child.once('error', (error) => reject(new Error(`${command}: ${error.message}`, { cause: error })));
    child.once('spawn', () => {
      child.unref();
      resolve();
    });
  });
}
