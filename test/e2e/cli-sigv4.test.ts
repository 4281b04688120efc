import { execFile } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { closeServer, listenOnLoopback } from '../support/loopback.js';

/**
 * `sd35` against an IAM-authorized API: a loopback server stands in for API Gateway and checks the
 * SigV4 signature with its own implementation of the spec (canonical request, string to sign,
 * signing-key HMAC chain), never with the signer the CLI uses.
 */
const ROOT = path.join(import.meta.dirname, '..', '..');
const CREDENTIALS = {
  accessKeyId: 'AKIDEXAMPLESD35TEST',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  sessionToken: 'session-token-for-the-sigv4-test',
};
const REGION = 'eu-west-1';

let server: Server | undefined;
afterEach(async () => {
  await closeServer(server);
  server = undefined;
});

/** RFC 3986 encoding, as SigV4 wants it. */
function uriEncode(text: string): string {
  return encodeURIComponent(text).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

const sha256Hex = (data: string) => createHash('sha256').update(data).digest('hex');
const hmac = (key: string | Buffer, data: string) => createHmac('sha256', key).update(data).digest();

/** Why `request` is not signed by `secret` for `region`/execute-api, or undefined when it is. */
function sigV4Problem(request: IncomingMessage, body: string, secret: string): string | undefined {
  const header = request.headers.authorization ?? '';
  const match =
    /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, ?SignedHeaders=([^,]+), ?Signature=([0-9a-f]{64})$/.exec(
      header,
    );
  if (!match) return `malformed Authorization: ${header}`;
  const [, accessKey, date, region, service, signedHeaders = '', signature] = match;
  if (accessKey !== CREDENTIALS.accessKeyId) return `access key ${accessKey}`;
  if (region !== REGION || service !== 'execute-api') return `scope ${region}/${service}`;
  const amzDate = String(request.headers['x-amz-date']);
  if (!amzDate.startsWith(date ?? '-')) return `x-amz-date ${amzDate} is not of ${date}`;
  const names = signedHeaders.split(';');
  for (const required of ['host', 'x-amz-date', 'x-amz-security-token'])
    if (!names.includes(required)) return `${required} is not signed`;
  if (request.headers['x-amz-security-token'] !== CREDENTIALS.sessionToken) return 'session token';

  const url = new URL(request.url ?? '/', 'http://placeholder');
  // Non-S3 services: each path segment is URI-encoded twice.
  const canonicalUri = url.pathname
    .split('/')
    .map((segment) => uriEncode(uriEncode(decodeURIComponent(segment))))
    .join('/');
  const canonicalQuery = [...url.searchParams]
    .map(([key, value]) => [uriEncode(key), uriEncode(value)])
    .sort(([a = '', x = ''], [b = '', y = '']) => (a === b ? x.localeCompare(y) : a < b ? -1 : 1))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
  const canonicalHeaders = names
    .map(
      (name) =>
        `${name}:${String(request.headers[name] ?? '')
          .trim()
          .replace(/\s+/g, ' ')}\n`,
    )
    .join('');
  const canonicalRequest = [
    request.method,
    canonicalUri,
    canonicalQuery,
    canonicalHeaders,
    signedHeaders,
    sha256Hex(body),
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const stringToSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256Hex(canonicalRequest)].join('\n');
  const signingKey = hmac(
    hmac(hmac(hmac(`AWS4${secret}`, date ?? ''), region ?? ''), service ?? ''),
    'aws4_request',
  );
  const expected = createHmac('sha256', signingKey).update(stringToSign).digest('hex');
  return expected === signature ? undefined : 'signature does not match';
}

/** Starts the stand-in API Gateway; returns its base URL (with a stage) and what it saw. */
async function verifyingGateway(secret: string) {
  const seen: { url?: string; problem?: string } = {};
  server = createServer((request, response) => {
    let body = '';
    request.on('data', (chunk) => {
      body += chunk;
    });
    request.on('end', () => {
      seen.url = request.url;
      seen.problem = sigV4Problem(request, body, secret);
      response.setHeader('content-type', 'application/json');
      if (seen.problem) {
        response.statusCode = 403;
        response.end(JSON.stringify({ message: 'The request signature we calculated does not match' }));
      } else {
        response.end(JSON.stringify({ data: [] }));
      }
    });
  });
  return { url: `${await listenOnLoopback(server)}/prod`, seen };
}

function sd35(args: string[]): Promise<{ code: number; stdout: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['bin/sd35.js', ...args],
      {
        cwd: ROOT,
        env: {
          PATH: process.env.PATH,
          AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
          AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
          AWS_SESSION_TOKEN: CREDENTIALS.sessionToken,
          AWS_REGION: REGION,
          AWS_CONFIG_FILE: path.join(ROOT, 'no-such-aws-config'),
          AWS_SHARED_CREDENTIALS_FILE: path.join(ROOT, 'no-such-aws-credentials'),
          AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
        },
      },
      (error, stdout) => resolve({ code: error ? Number(error.code) : 0, stdout }),
    );
  });
}

describe('sd35 with --auth iam', () => {
  it('sends a request whose SigV4 signature checks out, from the standard credential chain', async () => {
    const gateway = await verifyingGateway(CREDENTIALS.secretAccessKey);

    const { code, stdout } = await sd35([
      'list',
      '--status',
      'succeeded',
      '--limit',
      '5',
      '--auth',
      'iam',
      '--api',
      gateway.url,
      '--json',
    ]);

    expect(gateway.seen).toEqual({
      url: '/prod/v1/generations?status=succeeded&limit=5',
      problem: undefined,
    });
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toEqual({ data: [] });
  });

  it('is refused by the verifier when signed with another secret, and exits 3', async () => {
    const gateway = await verifyingGateway('not-the-secret-the-cli-has');

    const { code, stdout } = await sd35(['get', 'gen-1', '--auth', 'iam', '--api', gateway.url, '--json']);

    expect(gateway.seen.problem).toBe('signature does not match');
    expect(code).toBe(3);
    expect(JSON.parse(stdout).error.type).toBe('forbidden');
  });
});
