import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * Every prop of every construct documented, as aws-solutions-constructs does: each member of an
 * exported `*Props` interface in infra/constructs/ (and infra/stack.ts) has a doc comment that says
 * what it is, and an optional one says what happens without it in an `@default` tag. TypeScript 7
 * has no JS compiler API (docs/tooling.md), so the interfaces are read by the small scanner below,
 * which fails on a member it cannot read rather than skip it.
 */
const ROOT = path.join(import.meta.dirname, '..', '..');
const FILES = [
  ...readdirSync(path.join(ROOT, 'infra', 'constructs'))
    .filter((name) => name.endsWith('.ts'))
    .map((name) => `infra/constructs/${name}`),
  'infra/stack.ts',
];

interface Member {
  readonly text: string;
  readonly doc: string | undefined;
  readonly line: number;
}

interface PropsInterface {
  readonly name: string;
  readonly heritage: string;
  readonly line: number;
  readonly members: readonly Member[];
}

const lineAt = (source: string, index: number) => source.slice(0, index).split('\n').length;

/** Where the string literal or comment starting at `i` ends (the index after it), or `i` if none starts. */
function skipLiteral(source: string, i: number): number {
  const char = source[i];
  if (char === "'" || char === '"' || char === '`') {
    let j = i + 1;
    while (j < source.length && source[j] !== char) j += source[j] === '\\' ? 2 : 1;
    return j + 1;
  }
  if (source.startsWith('//', i)) {
    const end = source.indexOf('\n', i);
    return end === -1 ? source.length : end;
  }
  if (source.startsWith('/*', i)) return source.indexOf('*/', i + 2) + 2;
  return i;
}

/**
 * The exported interfaces named `*Props` of a TypeScript source: each member's text (up to its
 * `;` at the body's depth, comments left out) and the doc comment right before it.
 */
function propsInterfaces(source: string): PropsInterface[] {
  const found: PropsInterface[] = [];
  for (const match of source.matchAll(/^export interface (\w+Props)\b/gm)) {
    const open = source.indexOf('{', match.index);
    const heritage = source.slice(match.index + match[0].length, open).trim();
    const members: Member[] = [];
    let depth = 0;
    let doc: { text: string; end: number } | undefined;
    let start = -1;
    let i = open + 1;
    while (i < source.length) {
      const after = skipLiteral(source, i);
      if (after !== i) {
        const literal = source.slice(i, after);
        if (depth === 0 && start === -1 && literal.startsWith('/**')) doc = { text: literal, end: after };
        i = after;
        continue;
      }
      const char = source[i] as string;
      if (depth === 0 && start === -1 && /\S/.test(char)) {
        if (char === '}') break;
        start = i;
      }
      if ('{(['.includes(char)) depth += 1;
      if ('})]'.includes(char)) depth -= 1;
      if (depth === 0 && char === ';' && start !== -1) {
        const attached = doc && /^\s*$/.test(source.slice(doc.end, start)) ? doc.text : undefined;
        const text = source.slice(start, i).replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, '');
        members.push({ text: text.replace(/\s+/g, ' ').trim(), doc: attached, line: lineAt(source, start) });
        start = -1;
        doc = undefined;
      }
      i += 1;
    }
    found.push({ name: match[1] as string, heritage, line: lineAt(source, match.index), members });
  }
  return found;
}

/** A doc comment's lines without its `/**`, `*` margins and `*\/`. */
const docLines = (doc: string) =>
  doc
    .replace(/^\/\*\*|\*\/$/g, '')
    .split('\n')
    .map((line) => line.replace(/^\s*\*?\s?/, '').trim());

/** What is missing from the props documentation of `source`, one line each, named `file:line`. */
function undocumentedProps(source: string, file: string): string[] {
  const problems: string[] = [];
  for (const props of propsInterfaces(source)) {
    if (/\b(Pick|Omit)</.test(props.heritage)) {
      problems.push(
        `${file}:${props.line} ${props.name} picks props from another interface: declare them here, with this construct's defaults`,
      );
    }
    for (const member of props.members) {
      const where = `${file}:${member.line} ${props.name}`;
      const parsed = /^(readonly\s+)?([A-Za-z_$][\w$]*)(\?)?\s*:/.exec(member.text);
      if (!parsed) {
        problems.push(
          `${where}: cannot read the member \`${member.text}\` (a prop is \`readonly name: Type;\`)`,
        );
        continue;
      }
      const [, readonly, name, optional] = parsed;
      if (!readonly) problems.push(`${where}.${name}: not readonly`);
      if (!member.doc) {
        problems.push(`${where}.${name}: no doc comment saying what it is`);
        continue;
      }
      const lines = docLines(member.doc);
      const firstTag = lines.findIndex((line) => line.startsWith('@'));
      const description = (firstTag === -1 ? lines : lines.slice(0, firstTag)).join(' ').trim();
      if (!description) problems.push(`${where}.${name}: its doc comment does not say what it is`);
      if (optional && !lines.some((line) => /^@default\s+\S/.test(line))) {
        problems.push(`${where}.${name}: optional, but no \`@default …\` line says what happens without it`);
      }
    }
  }
  return problems;
}

describe('the constructs’ props documentation', () => {
  it('is complete: every prop of every exported *Props interface has a doc comment, an optional one `@default`', () => {
    const problems = FILES.flatMap((file) =>
      undocumentedProps(readFileSync(path.join(ROOT, file), 'utf8'), file),
    );

    expect(problems).toEqual([]);
  });

  it('reads every exported *Props interface of infra/, each with its props', () => {
    for (const file of FILES) {
      const source = readFileSync(path.join(ROOT, file), 'utf8');
      const interfaces = propsInterfaces(source);

      expect(interfaces.map((each) => each.name)).toEqual(
        [...source.matchAll(/export interface (\w+Props)\b/g)].map((match) => match[1]),
      );
      for (const each of interfaces) expect(each.members.length, `${file} ${each.name}`).toBeGreaterThan(0);
    }
    expect(
      FILES.flatMap((file) => propsInterfaces(readFileSync(path.join(ROOT, file), 'utf8'))).length,
    ).toBeGreaterThan(10);
  });

  it('names each prop without a doc comment, each optional one without `@default`, and a picked prop', () => {
    const source = [
      "export interface WidgetProps extends Pick<OtherProps, 'size'> {",
      '  /** How big, in pixels. */',
      '  readonly width: number;',
      '  readonly color: string;',
      '  /** Shown beside it. */',
      '  readonly label?: string;',
      '  /** A note, with the tag inside a sentence. @default none */',
      '  readonly note?: string;',
      '  /**',
      '   * Counts by name; the type has its own `;` and a "}" inside.',
      '   * @default `{}`',
      '   */',
      "  readonly counts?: Readonly<Record<string, { a: 1; b: '}' }>>;",
      '  /** @default 3 */',
      '  readonly retries?: number;',
      '  /** Mutable. */',
      '  height: number;',
      '}',
      'interface HiddenProps {',
      '  readonly x: string;',
      '}',
      'export interface Settings {',
      '  readonly y: string;',
      '}',
    ].join('\n');

    expect(undocumentedProps(source, 'widget.ts')).toEqual([
      "widget.ts:1 WidgetProps picks props from another interface: declare them here, with this construct's defaults",
      'widget.ts:4 WidgetProps.color: no doc comment saying what it is',
      'widget.ts:6 WidgetProps.label: optional, but no `@default …` line says what happens without it',
      'widget.ts:8 WidgetProps.note: optional, but no `@default …` line says what happens without it',
      'widget.ts:15 WidgetProps.retries: its doc comment does not say what it is',
      'widget.ts:17 WidgetProps.height: not readonly',
    ]);
  });
});
