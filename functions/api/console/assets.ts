/**
 * The console's only script and stylesheet, served by the app itself (no CDN, works offline).
 * Kept as text here so the Lambda bundle carries them without a loader.
 */

/**
 * Live progress without reloading: every element with `data-live-src` whose `data-live-status` is
 * still going (a generation queued or running, a batch in progress or cancelling) is replaced by a
 * fresh server-rendered copy of itself, fetched from that URL, until it ends. The polling is light
 * (1 s, slowing to 5 s) and stops when the page goes. An answer without a copy (204: nothing
 * changed) leaves the element as it is. Images the copy shares with the element (the same object,
 * under a freshly signed link) are kept rather than loaded again. A `data-live-announce` text is
 * copied into the page's polite live region for screen readers.
 */
export const CONSOLE_SCRIPT = `'use strict';
(() => {
  const ENDED = new Set(['succeeded', 'failed', 'canceled', 'expired', 'completed', 'cancelled']);
  const announcer = document.getElementById('live-announcer');
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
  const objectOf = (image) => new URL(image.getAttribute('src') || '', location.href).pathname;

  function keepShownImages(from, to) {
    const shown = new Map();
    for (const image of from.querySelectorAll('img')) shown.set(objectOf(image), image);
    for (const image of to.querySelectorAll('img')) {
      const same = shown.get(objectOf(image));
      if (same && same.complete && same.naturalWidth > 0) image.replaceWith(same);
    }
  }

  async function follow(start) {
    let node = start;
    let delay = 1000;
    while (node.isConnected && node.dataset.liveSrc && !ENDED.has(node.dataset.liveStatus)) {
      await sleep(delay);
      delay = Math.min(Math.round(delay * 1.2), 5000);
      let response;
      try {
        response = await fetch(node.dataset.liveSrc, { cache: 'no-store', credentials: 'same-origin' });
      } catch {
        continue;
      }
      // Signed out meanwhile: show the sign-in page rather than poll it.
      if (response.redirected || response.status === 401) return location.reload();
      if (!response.ok) continue;
      const template = document.createElement('template');
      template.innerHTML = (await response.text()).trim();
      const next = template.content.firstElementChild;
      // An ended copy has no data-live-src any more: it replaces the node and ends the loop.
      if (!next || !next.hasAttribute('data-live-status')) continue;
      keepShownImages(node, next);
      node.replaceWith(next);
      node = next;
      const said = next.dataset.liveAnnounce;
      if (announcer && said && announcer.textContent !== said) announcer.textContent = said;
    }
  }

  for (const element of document.querySelectorAll('[data-live-src]')) follow(element);
})();
`;

export const CONSOLE_STYLES = `:root {
  color-scheme: light dark;
  --fg: #1b1b1f; --bg: #fafafa; --muted: #5b5b66; --line: #d6d6de; --card: #fff; --accent: #1a56b8;
  --ok: #0f6b3a; --bad: #a4161a; --wait: #7a4b00; --run: #1a4fa0;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; line-height: 1.5;
}
@media (prefers-color-scheme: dark) {
  :root { --fg: #ececf1; --bg: #16161a; --muted: #a9a9b6; --line: #3a3a44; --card: #1f1f25; --accent: #8ab4ff;
    --ok: #6ee7a8; --bad: #ff8a8a; --wait: #ffd27a; --run: #9ec1ff; }
}
* { box-sizing: border-box; }
body { margin: 0; color: var(--fg); background: var(--bg); }
a { color: var(--accent); }
:focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; padding: .5rem 1rem; background: var(--card); }
.skip:focus { left: 1rem; }
header { border-bottom: 1px solid var(--line); background: var(--card); }
.engine-status { margin: 0; padding: .25rem 1rem; font-size: .85rem; color: var(--muted); border-bottom: 1px solid var(--line); }
header nav { display: flex; flex-wrap: wrap; gap: .5rem 1.25rem; align-items: center; max-width: 72rem; margin: 0 auto; padding: .75rem 1rem; }
header nav .brand { font-weight: 700; color: var(--fg); text-decoration: none; margin-right: auto; }
header form { margin: 0; }
main { max-width: 72rem; margin: 0 auto; padding: 1rem; }
h1 { font-size: 1.5rem; margin: .5rem 0 1rem; word-break: break-all; }
h2 { font-size: 1.15rem; margin: 1.5rem 0 .5rem; }
button, .button { font: inherit; padding: .45rem .9rem; border-radius: .4rem; border: 1px solid var(--line);
  background: var(--card); color: var(--fg); cursor: pointer; text-decoration: none; display: inline-block; }
button.primary, .button.primary { background: var(--accent); color: var(--bg); border-color: var(--accent); }
button.danger { color: var(--bad); border-color: var(--bad); }
.toolbar { display: flex; flex-wrap: wrap; gap: .75rem; align-items: end; margin-bottom: 1rem; }
.toolbar form { display: flex; gap: .5rem; align-items: end; }
.gallery { list-style: none; padding: 0; margin: 0; display: grid; gap: 1rem;
  grid-template-columns: repeat(auto-fill, minmax(13rem, 1fr)); }
.card { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; overflow: hidden; display: flex; flex-direction: column; }
.card a.open { color: inherit; text-decoration: none; display: block; }
.card .thumb { aspect-ratio: 1; width: 100%; height: auto; object-fit: cover; display: block; background: var(--line); }
.card .placeholder { aspect-ratio: 1; display: grid; place-items: center; background: var(--line); color: var(--muted); }
.card .text { padding: .5rem .75rem .75rem; display: grid; gap: .25rem; }
.card .prompt { overflow: hidden; display: -webkit-box; -webkit-line-clamp: 2; -webkit-box-orient: vertical; }
.meta { color: var(--muted); font-size: .875rem; }
.badge { display: inline-block; font-size: .8rem; font-weight: 600; padding: .05rem .5rem; border-radius: 1rem; border: 1px solid currentColor; }
.badge.succeeded { color: var(--ok); } .badge.failed, .badge.expired { color: var(--bad); }
.badge.canceled { color: var(--muted); } .badge.queued { color: var(--wait); } .badge.running { color: var(--run); }
.badge.completed { color: var(--ok); } .badge.cancelled, .badge.cancelling { color: var(--muted); } .badge.in_progress { color: var(--run); }
.batches { list-style: none; padding: 0; margin: 0; display: grid; gap: .75rem; }
.batch { background: var(--card); border: 1px solid var(--line); border-radius: .5rem; padding: .75rem 1rem; display: grid; gap: .35rem; min-width: 0; }
.batch p { margin: 0; }
.batch .head { display: flex; flex-wrap: wrap; gap: .25rem .75rem; align-items: baseline; }
.batch .head a, h1 code, .lines code { overflow-wrap: anywhere; }
.lines { padding-left: 1.25rem; margin: 0; }
.lines li { overflow-wrap: anywhere; }
.pager { display: flex; gap: 1rem; margin: 1.5rem 0; }
/* Images side by side on a wide screen (each at most its natural size), one column on a phone. */
.images { display: grid; gap: 1.5rem; grid-template-columns: repeat(auto-fit, minmax(min(100%, 22rem), 1fr)); align-items: start; }
figure { margin: 0; }
figure img { max-width: 100%; height: auto; display: block; border: 1px solid var(--line); }
figcaption { margin-top: .35rem; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: .25rem 1rem; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; overflow-wrap: anywhere; white-space: pre-wrap; }
.status-line { display: flex; gap: .75rem; align-items: center; flex-wrap: wrap; }
progress { width: 16rem; max-width: 100%; }
.problem { border-left: 4px solid var(--bad); padding: .5rem .75rem; background: var(--card); }
form.create { display: grid; gap: 1rem; max-width: 44rem; }
.field { display: grid; gap: .25rem; }
.field label, fieldset legend { font-weight: 600; }
/* A row of short fields. Each field spans four rows of the row's grid (label, control, error, hint)
   through a subgrid, so a label that wraps pushes down the whole row's controls: they share a top edge. */
.row { display: grid; gap: 0 1rem; grid-template-columns: repeat(auto-fill, minmax(9rem, 1fr)); align-items: start; }
.row > .field { grid-row: span 4; grid-template-rows: subgrid; row-gap: .25rem; margin-bottom: .75rem; align-content: start; }
/* The model's names are long: it takes two columns, wide enough for them from a phone up. */
.row.models > .field:first-child { grid-column: span 2; }
input, select, textarea { font: inherit; padding: .4rem .5rem; border: 1px solid var(--line); border-radius: .35rem;
  background: var(--card); color: var(--fg); width: 100%; }
textarea { min-height: 6rem; resize: vertical; }
fieldset { border: 1px solid var(--line); border-radius: .5rem; }
fieldset label { font-weight: normal; display: inline-flex; gap: .35rem; margin-right: 1rem; }
fieldset input[type=checkbox] { width: auto; }
[aria-invalid=true] { border-color: var(--bad); border-width: 2px; }
.hint { color: var(--muted); font-size: .875rem; margin: 0; }
.error { color: var(--bad); font-weight: 600; margin: 0; }
.error-summary { border: 2px solid var(--bad); border-radius: .5rem; padding: .5rem 1rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip-path: inset(50%); white-space: nowrap; }
`;
