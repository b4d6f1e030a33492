#!/usr/bin/env node
// Test-only OpenID Connect provider for Tenantry's Rust integration tests.
//
// Runs a real `oidc-provider` (panva) instance on 127.0.0.1 with one confidential
// client and one account (`alice`), plus a `GET /test/login` helper that drives the
// browser part of the authorization code flow without a human. See README.md.
//
//   node server.mjs --client-id ID --client-secret SECRET --redirect-uri URI \
//     --claims '<json object>' [--mode ok|wrong-iss|bad-signature] [--port 0]
//
// When ready it prints exactly one line to stdout:
//   {"issuer":"http://127.0.0.1:PORT","port":PORT}
// and runs until killed or until its stdin reaches EOF.
//
// NOT for production use: everything is in memory, keys are generated per run and
// every interaction is auto-approved.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import http from 'node:http';
import { parseArgs } from 'node:util';

// ---------------------------------------------------------------------------
// stdout hygiene: the ready line must be the only thing on stdout. oidc-provider
// prints development NOTICEs through console.info (stdout) and WARNINGs through
// console.warn; route everything to stderr and drop the library's dev chatter
// unless OIDC_HARNESS_VERBOSE=1.
// ---------------------------------------------------------------------------
const verbose = process.env.OIDC_HARNESS_VERBOSE === '1';
const toStderr = (...args) => {
  const first = typeof args[0] === 'string' ? args[0] : '';
  if (!verbose && /^(\x1b\[[0-9;]*m)?oidc-provider (NOTICE|WARNING)/.test(first)) return;
  console.error(...args);
};
console.log = toStderr;
console.info = toStderr;
console.warn = toStderr;
console.debug = toStderr;

const log = (...args) => console.error('[oidc-harness]', ...args);

function die(message) {
  console.error(`[oidc-harness] error: ${message}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Arguments
// ---------------------------------------------------------------------------
let args;
try {
  ({ values: args } = parseArgs({
    options: {
      'client-id': { type: 'string' },
      'client-secret': { type: 'string' },
      'redirect-uri': { type: 'string' },
      claims: { type: 'string', default: '{}' },
      mode: { type: 'string', default: 'ok' },
      port: { type: 'string', default: '0' },
      'ignore-stdin': { type: 'boolean', default: false },
    },
    strict: true,
    allowPositionals: false,
  }));
} catch (err) {
  die(err.message);
}

const CLIENT_ID = args['client-id'];
const CLIENT_SECRET = args['client-secret'];
const REDIRECT_URI = args['redirect-uri'];
const MODE = args.mode;
const PORT = Number(args.port);

if (!CLIENT_ID) die('--client-id is required');
if (!CLIENT_SECRET) die('--client-secret is required');
if (!REDIRECT_URI) die('--redirect-uri is required');
try {
  // eslint-disable-next-line no-new
  new URL(REDIRECT_URI);
} catch {
  die(`--redirect-uri is not an absolute URL: ${REDIRECT_URI}`);
}
if (!['ok', 'wrong-iss', 'bad-signature'].includes(MODE)) {
  die(`--mode must be one of ok, wrong-iss, bad-signature (got ${MODE})`);
}
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) die(`--port must be 0..65535 (got ${args.port})`);

let EXTRA_CLAIMS;
try {
  EXTRA_CLAIMS = JSON.parse(args.claims);
} catch (err) {
  die(`--claims is not valid JSON: ${err.message}`);
}
if (EXTRA_CLAIMS === null || typeof EXTRA_CLAIMS !== 'object' || Array.isArray(EXTRA_CLAIMS)) {
  die('--claims must be a JSON object');
}
// Claims the provider itself controls; letting --claims set them would either be
// silently ignored or produce confusing tokens.
const RESERVED = ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'azp', 'at_hash', 'c_hash', 's_hash', 'sid', 'auth_time', 'acr', 'amr'];
for (const key of Object.keys(EXTRA_CLAIMS)) {
  if (RESERVED.includes(key)) die(`--claims must not contain the reserved claim "${key}"`);
}

const ACCOUNT_ID = 'alice';

// ---------------------------------------------------------------------------
// Exit when stdin closes, so a test process that dies does not leave us behind.
// ---------------------------------------------------------------------------
if (!args['ignore-stdin']) {
  process.stdin.on('end', () => process.exit(0));
  process.stdin.on('close', () => process.exit(0));
  process.stdin.on('error', () => process.exit(0));
  process.stdin.resume();
}
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

// ---------------------------------------------------------------------------
// Server: bind first (port 0 => ephemeral) so the issuer can include the port.
// ---------------------------------------------------------------------------
const { default: Provider } = await import('oidc-provider');

let handle = (req, res) => {
  res.statusCode = 503;
  res.end();
};
const server = http.createServer((req, res) => handle(req, res));
server.keepAliveTimeout = 1000;
await new Promise((resolve, reject) => {
  server.once('error', reject);
  server.listen(PORT, '127.0.0.1', resolve);
});
const { port } = server.address();
const BASE = `http://127.0.0.1:${port}`;
// The issuer clients are configured with (discovery always reports this one).
const ADVERTISED_ISSUER = BASE;
// The issuer the provider really signs tokens with.
const SIGNING_ISSUER = MODE === 'wrong-iss' ? `${BASE}/evil` : BASE;

// Fresh RS256 signing key per run; published at the jwks endpoint.
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingJwk = {
  ...privateKey.export({ format: 'jwk' }),
  kid: randomUUID(),
  alg: 'RS256',
  use: 'sig',
};

const configuration = {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: [REDIRECT_URI],
    response_types: ['code'],
    grant_types: ['authorization_code'],
    // The provider also accepts client_secret_post for a client registered with
    // client_secret_basic (it treats the two as interchangeable).
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: 'RS256',
  }],
  jwks: { keys: [signingJwk] },
  cookies: {
    keys: [randomBytes(32).toString('base64url')],
    long: { signed: true, httpOnly: true, sameSite: 'lax' },
    short: { signed: true, httpOnly: true, sameSite: 'lax' },
  },
  // The `openid` scope covers `sub` and every --claims key, and with
  // conformIdTokenClaims=false those claims are placed in the ID token itself
  // (not only at the userinfo endpoint).
  claims: {
    openid: ['sub', ...Object.keys(EXTRA_CLAIMS)],
  },
  conformIdTokenClaims: false,
  scopes: ['openid'],
  responseTypes: ['code'],
  clientAuthMethods: ['client_secret_basic', 'client_secret_post'],
  pkce: {
    methods: ['S256'],
    required: () => true,
  },
  features: {
    devInteractions: { enabled: false },
    userinfo: { enabled: true },
  },
  // /interaction/:uid is served by this file (auto login + auto consent).
  interactions: {
    url: (ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  async findAccount(ctx, sub) {
    if (sub !== ACCOUNT_ID) return undefined;
    return {
      accountId: ACCOUNT_ID,
      async claims() {
        return { ...structuredClone(EXTRA_CLAIMS), sub: ACCOUNT_ID };
      },
    };
  },
  ttl: {
    AccessToken: 60 * 60,
    AuthorizationCode: 60,
    IdToken: 60 * 60,
    Interaction: 10 * 60,
    Session: 60 * 60,
    Grant: 60 * 60,
    RefreshToken: 60 * 60,
    ClientCredentials: 10 * 60,
    DeviceCode: 10 * 60,
    BackchannelAuthenticationRequest: 10 * 60,
  },
  clientBasedCORS: () => false,
  renderError(ctx, out) {
    ctx.status = ctx.status && ctx.status >= 400 ? ctx.status : 400;
    ctx.type = 'application/json';
    ctx.body = out;
  },
};

const provider = new Provider(SIGNING_ISSUER, configuration);

for (const event of ['server_error', 'authorization.error', 'grant.error', 'userinfo.error', 'discovery.error', 'jwks.error', 'introspection.error', 'revocation.error']) {
  provider.on(event, (...eventArgs) => {
    const err = eventArgs.find((a) => a instanceof Error);
    if (!err) { log(`${event}`); return; }
    const desc = [err.error_description, err.error_detail].filter(Boolean).join('; ');
    log(`${event}: ${err.name}: ${err.message}${desc ? ` (${desc})` : ''}`);
  });
}

// Post-processing of provider responses for the negative modes.
provider.use(async (ctx, next) => {
  await next();
  const route = ctx.oidc?.route;
  if (MODE === 'wrong-iss' && route === 'discovery' && ctx.body && typeof ctx.body === 'object') {
    ctx.body.issuer = ADVERTISED_ISSUER;
  }
  if (MODE === 'bad-signature' && route === 'token' && ctx.status === 200
      && ctx.body && typeof ctx.body === 'object' && typeof ctx.body.id_token === 'string') {
    ctx.body.id_token = tamperSignature(ctx.body.id_token);
  }
});

function tamperSignature(jwt) {
  const [header, payload, signature] = jwt.split('.');
  const sig = Buffer.from(signature, 'base64url');
  // Flip bits in a few bytes: still well-formed base64url of the same length,
  // but no longer a valid RS256 signature.
  for (const i of [0, Math.floor(sig.length / 2), sig.length - 1]) sig[i] ^= 0x5a;
  return `${header}.${payload}.${sig.toString('base64url')}`;
}

// ---------------------------------------------------------------------------
// Interactions: auto-login as alice, auto-consent to everything requested.
// ---------------------------------------------------------------------------
async function handleInteraction(req, res) {
  const details = await provider.interactionDetails(req, res);
  const { prompt, params, session } = details;

  if (prompt.name === 'login') {
    await provider.interactionFinished(req, res, {
      login: { accountId: ACCOUNT_ID },
    }, { mergeWithLastSubmission: false });
    return;
  }

  if (prompt.name === 'consent') {
    let { grantId } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    const missing = prompt.details || {};
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scopes.join(' '));
      }
    }
    grantId = await grant.save();
    const consent = {};
    if (!details.grantId) consent.grantId = grantId;
    await provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
    return;
  }

  sendJson(res, 400, { error: 'unsupported_prompt', prompt: prompt.name, details: prompt.details });
}

// ---------------------------------------------------------------------------
// GET /test/login?authorize=<authorization URL>: a tiny cookie-aware "browser".
// ---------------------------------------------------------------------------
class CookieJar {
  #cookies = new Map(); // key `${name};${path}` -> { name, value, path }

  store(setCookieHeaders, requestUrl) {
    for (const header of setCookieHeaders) {
      const [pair, ...attrs] = header.split(';').map((s) => s.trim());
      const eq = pair.indexOf('=');
      if (eq <= 0) continue;
      const name = pair.slice(0, eq);
      const value = pair.slice(eq + 1);
      let path = null;
      let expired = false;
      for (const attr of attrs) {
        const [k, ...v] = attr.split('=');
        const key = k.trim().toLowerCase();
        const val = v.join('=').trim();
        if (key === 'path') path = val;
        if (key === 'expires' && Date.parse(val) <= Date.now()) expired = true;
        if (key === 'max-age' && Number(val) <= 0) expired = true;
      }
      if (!path || !path.startsWith('/')) {
        const p = new URL(requestUrl).pathname;
        path = p.lastIndexOf('/') > 0 ? p.slice(0, p.lastIndexOf('/')) : '/';
      }
      const id = `${name};${path}`;
      if (expired) this.#cookies.delete(id);
      else this.#cookies.set(id, { name, value, path });
    }
  }

  header(url) {
    const { pathname } = new URL(url);
    const matching = [...this.#cookies.values()]
      .filter(({ path }) => path === '/' || pathname === path || pathname.startsWith(path.endsWith('/') ? path : `${path}/`))
      .sort((a, b) => b.path.length - a.path.length);
    return matching.map(({ name, value }) => `${name}=${value}`).join('; ');
  }
}

async function handleTestLogin(req, res, url) {
  const authorize = url.searchParams.get('authorize');
  if (!authorize) {
    sendJson(res, 400, { error: 'missing_authorize', error_description: 'query parameter "authorize" (URL-encoded authorization URL) is required' });
    return;
  }
  let current;
  try {
    current = new URL(authorize);
  } catch {
    sendJson(res, 400, { error: 'invalid_authorize', error_description: `not an absolute URL: ${authorize}` });
    return;
  }
  if (current.origin !== BASE) {
    sendJson(res, 400, { error: 'invalid_authorize', error_description: `authorization URL must be on ${BASE}, got ${current.origin}` });
    return;
  }

  const jar = new CookieJar();
  const hops = [];
  for (let i = 0; i < 20; i += 1) {
    hops.push(current.href);
    const cookie = jar.header(current.href);
    // eslint-disable-next-line no-await-in-loop
    const response = await fetch(current, {
      redirect: 'manual',
      headers: cookie ? { cookie } : {},
    });
    jar.store(response.headers.getSetCookie(), current.href);

    const location = response.headers.get('location');
    if (response.status >= 300 && response.status < 400 && location) {
      const next = new URL(location, current);
      if (next.href.startsWith(REDIRECT_URI)) {
        await response.body?.cancel();
        let redirect = next.href;
        if (MODE === 'wrong-iss' && next.searchParams.get('iss') === SIGNING_ISSUER) {
          // Keep the RFC 9207 `iss` authorization-response parameter consistent with
          // discovery so that only the ID token's `iss` is wrong in this mode.
          next.searchParams.set('iss', ADVERTISED_ISSUER);
          redirect = next.href;
        }
        sendJson(res, 200, { redirect });
        return;
      }
      if (next.origin !== BASE) {
        await response.body?.cancel();
        sendJson(res, 400, { error: 'unexpected_redirect', location: next.href, hops });
        return;
      }
      await response.body?.cancel();
      current = next;
      continue; // eslint-disable-line no-continue
    }

    const text = await response.text();
    let body = text;
    try { body = JSON.parse(text); } catch { /* keep text */ }
    sendJson(res, 400, {
      error: 'flow_did_not_redirect_to_client',
      status: response.status,
      url: current.href,
      body,
      hops,
    });
    return;
  }
  sendJson(res, 400, { error: 'too_many_redirects', hops });
}

function sendJson(res, status, body) {
  const payload = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('Content-Type', 'application/json; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Content-Length', Buffer.byteLength(payload));
  res.end(payload);
}

// ---------------------------------------------------------------------------
// Routing
// ---------------------------------------------------------------------------
const providerCallback = provider.callback();

handle = async (req, res) => {
  try {
    const url = new URL(req.url, BASE);
    if (req.method === 'GET' && url.pathname === '/test/login') {
      await handleTestLogin(req, res, url);
      return;
    }
    if (req.method === 'GET' && /^\/interaction\/[^/]+$/.test(url.pathname)) {
      await handleInteraction(req, res);
      return;
    }
    providerCallback(req, res);
  } catch (err) {
    log('request failed:', err);
    if (!res.headersSent) {
      sendJson(res, err.statusCode || err.status || 500, {
        error: err.error || 'harness_error',
        error_description: err.error_description || err.message,
      });
    } else {
      res.destroy();
    }
  }
};

process.stdout.write(`${JSON.stringify({ issuer: ADVERTISED_ISSUER, port })}\n`);
