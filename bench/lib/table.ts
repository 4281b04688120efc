/** A Markdown table, columns padded so it also reads well in a terminal; numbers align right. */
export function markdownTable(
  headers: readonly string[],
  rows: ReadonlyArray<ReadonlyArray<string | number>>,
): string {
  const cells = rows.map((row) => row.map((cell) => String(cell)));
  const numeric = headers.map((_, column) => rows.every((row) => typeof row[column] === 'number'));
  const widths = headers.map((header, column) =>
    Math.max(header.length, 3, ...cells.map((row) => (row[column] ?? '').length)),
  );
  const line = (values: readonly string[]) =>
    `| ${values
      .map((value, column) =>
        numeric[column] ? value.padStart(widths[column] ?? 0) : value.padEnd(widths[column] ?? 0),
      )
      .join(' | ')} |`;
  const rule = `|${widths
    .map((width, column) => ` ${numeric[column] ? `${'-'.repeat(width - 1)}:` : '-'.repeat(width)} `)
    .join('|')}|`;
  return [line(headers), rule, ...cells.map(line)].join('\n');
}

/** Rounds to `digits` decimals (for reports: stable text, no float noise). */
export function round(value: number, digits: number): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}
