// Interop checks for jwks-auth against code nobody on this project wrote.
//
//   node interop/run.mjs target/debug/examples/protected_api
//
// 1. Node's `jose` generates a key for every algorithm jwks-auth accepts, serves the
//    public keys as a JWKS on loopback and signs tokens; the example server must accept
//    each one and reject tampered, expired and misaddressed ones.
// 2. `oidc-provider` (a certified OpenID Provider) runs on loopback and issues JWT access
//    tokens through a real client_credentials grant with a resource indicator. The
//    example server finds its keys by discovery (OIDC_ISSUER), accepts its tokens and
//    follows a key rotation: a new signing key is picked up on first sight, and a removed
//    key stops verifying after the next periodic refresh.
//
// 3. Node's WebCrypto (`crypto.subtle`, no library) generates an Ed25519 and a P-521 key,
//    exports them as JWKs the way browsers do (`key_ops`, `ext`, RFC 9864's
//    `alg: "Ed25519"`), and signs compact JWS by hand: EdDSA and Ed25519 headers for the
//    Ed25519 key, ES512 for the P-521 one.
//
// 4. DPoP (RFC 9449): the same `oidc-provider` with its DPoP feature on issues DPoP-bound
//    JWT access tokens (`cnf.jkt`) to a client whose proofs `jose` signs (ES256 and
//    EdDSA keys); the example server with JWT_DPOP=required accepts them on /me and
//    /admin, and refuses a replayed proof, a proof by another key and the token used as
//    a bearer token.
//
// Every check that fails prints what it saw and makes the process exit non-zero; nothing
// is skipped. Everything binds to 127.0.0.1.

import { setTimeout as sleep } from 'node:timers/promises';
import * as jose from 'jose';
import Provider from 'oidc-provider';

import * as harness from './harness.mjs';
import { check, failed, finish, listen, stop, version } from './harness.mjs';

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node interop/run.mjs <path to the protected_api example binary>');
  process.exit(2);
}

const startExample = (env) => harness.startExample(binary, env);

/** GET `path` with a bearer token; returns status, challenge and parsed body. */
async function call(base, path, token) {
  const headers = token === undefined ? {} : { authorization: `Bearer ${token}` };
  const res = await fetch(`${base}${path}`, { headers });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body };
}

function invalidToken(reply) {
  return reply.status === 401 && /^Bearer error="invalid_token", error_description="[^"]+"$/.test(reply.challenge ?? '');
}

function tamper(token) {
  const [h, p, s] = token.split('.');
  const claims = JSON.parse(Buffer.from(p, 'base64url'));
  claims.scope = 'admin';
  return `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
}

/** An exportable key pair for `alg`: RSA-2048 for RS and PS, Ed25519 for EdDSA. */
function generateKeyPair(alg) {
  const rsa = alg.startsWith('RS') || alg.startsWith('PS');
  return jose.generateKeyPair(alg, {
    extractable: true,
    ...(rsa ? { modulusLength: 2048 } : {}),
    ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
  });
}

// ---------------------------------------------------------------------------------------
// 1. Tokens signed by jose, for every algorithm jwks-auth accepts by default.

const ALGORITHMS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'];

async function joseSigner() {
  console.log(`\n== jose ${version('jose')} signs, the example server verifies`);
  const issuer = 'https://jose.interop.invalid/';
  const audience = 'interop-api';
  const keys = {};
  for (const alg of ALGORITHMS) {
    const { publicKey, privateKey } = await generateKeyPair(alg);
    const jwk = await jose.exportJWK(publicKey);
    keys[alg] = { privateKey, jwk: { ...jwk, kid: `jose-${alg}`, alg, use: 'sig' } };
  }
  const stranger = await generateKeyPair('RS256');
  let jwksFetches = 0;
  const jwks = await listen((req, res) => {
    if (req.url !== '/jwks.json') { res.writeHead(404).end(); return; }
    jwksFetches += 1;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: ALGORITHMS.map((alg) => keys[alg].jwk) }));
  });
  const server = await startExample({
    JWKS_URL: `${jwks.base}/jwks.json`, JWT_ISSUER: issuer, JWT_AUDIENCE: audience,
  });
  try {
    const sign = (alg, { kid = `jose-${alg}`, key = keys[alg].privateKey, aud = audience, exp = '5m', typ = 'JWT' } = {}) => {
      const header = { alg, typ, ...(kid === null ? {} : { kid }) };
      return new jose.SignJWT({ scope: 'read' })
        .setProtectedHeader(header)
        .setIssuer(issuer).setAudience(aud).setSubject(`jose-${alg}`)
        .setIssuedAt().setExpirationTime(exp)
        .sign(key);
    };
    for (const alg of ALGORITHMS) {
      const reply = await call(server.base, '/me', await sign(alg));
      check(reply.status === 200 && reply.body.sub === `jose-${alg}`, `${alg}: accepted, claims passed through`, reply);
      const kidless = await call(server.base, '/me', await sign(alg, { kid: null }));
      check(kidless.status === 200, `${alg} without kid: accepted (tried against the keys that fit)`, kidless);
      const tampered = await call(server.base, '/me', tamper(await sign(alg)));
      check(invalidToken(tampered) && /signature is invalid/.test(tampered.challenge), `${alg} with a tampered payload: 401 invalid signature`, tampered);
    }
    const expired = await call(server.base, '/me', await sign('ES256', { exp: Math.floor(Date.now() / 1000) - 3600 }));
    check(invalidToken(expired) && /expired/.test(expired.challenge), 'expired: 401 token expired', expired);
    const misaddressed = await call(server.base, '/me', await sign('RS256', { aud: 'another-api' }));
    check(invalidToken(misaddressed), 'another audience: 401', misaddressed);
    const forged = await call(server.base, '/me', await sign('RS256', { key: stranger.privateKey }));
    check(invalidToken(forged) && /signature is invalid/.test(forged.challenge), 'a stranger key under a known kid: 401 invalid signature', forged);
    const hs = await new jose.SignJWT({}).setProtectedHeader({ alg: 'HS256', kid: 'jose-RS256' })
      .setIssuer(issuer).setAudience(audience).setExpirationTime('5m')
      .sign(new TextEncoder().encode(JSON.stringify(keys.RS256.jwk)));
    const confused = await call(server.base, '/me', hs);
    check(invalidToken(confused) && /algorithm/.test(confused.challenge), 'HS256 keyed with the public JWK: 401 algorithm not allowed', confused);
    const unsecured = new jose.UnsecuredJWT({ sub: 'x' }).setIssuer(issuer).setAudience(audience).setExpirationTime('5m').encode();
    const none = await call(server.base, '/me', unsecured);
    check(invalidToken(none) && /algorithm/.test(none.challenge), 'alg none (jose UnsecuredJWT): 401 algorithm not allowed', none);
    check(jwksFetches === 1, `one JWKS fetch served all of it (saw ${jwksFetches})`);
  } finally {
    await stop(server);
    jwks.server.close();
  }
}

// ---------------------------------------------------------------------------------------
// 2. A real OpenID provider: discovery, a client_credentials grant, key rotation.

const RESOURCE = 'urn:jwks-auth:interop';
const AUDIENCE = 'interop-api';
const CLIENT = { client_id: 'interop-client', client_secret: 'interop-secret-0123456789' };

async function privateJwk(alg, kid) {
  const { privateKey } = await generateKeyPair(alg);
  return { ...(await jose.exportJWK(privateKey)), kid, alg, use: 'sig' };
}

// The resource server's own client at the provider: it introspects opaque tokens, and
// asks for signed answers (RFC 9701). Its id is the tokens' audience, as RFC 9701's `aud`.
const API_CLIENT = { client_id: AUDIENCE, client_secret: 'interop-api-secret-0123456789' };

function provider(issuer, keys, signingAlg, { dpop = false, opaque = false } = {}) {
  const op = new Provider(issuer, {
    jwks: { keys },
    cookies: { keys: ['interop-cookie-key-not-secret'] },
    ttl: { ClientCredentials: 300 },
    clients: [{
      ...CLIENT,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      ...(dpop ? { dpop_bound_access_tokens: true } : {}),
    }, {
      ...API_CLIENT,
      grant_types: ['client_credentials'],
      redirect_uris: [],
      response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
      introspection_signed_response_alg: signingAlg,
    }],
    scopes: ['read', 'admin'],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      dPoP: { enabled: dpop },
      introspection: { enabled: true },
      jwtIntrospection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => RESOURCE,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => {
          if (indicator !== RESOURCE) throw new Provider.errors.InvalidTarget();
          return {
            scope: 'read admin',
            audience: AUDIENCE,
            accessTokenTTL: 300,
            accessTokenFormat: opaque ? 'opaque' : 'jwt',
            jwt: { sign: { alg: signingAlg } },
          };
        },
      },
    },
  });
  return op.callback();
}

async function grant(issuer, scope, dpopProof) {
  const res = await fetch(`${issuer}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      ...(dpopProof ? { dpop: dpopProof } : {}),
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: RESOURCE, scope }),
  });
  const body = await res.json();
  if (res.status !== 200 || typeof body.access_token !== 'string') {
    throw new Error(`token endpoint answered ${res.status}: ${JSON.stringify(body)}`);
  }
  return body.access_token;
}

function header(token) {
  return JSON.parse(Buffer.from(token.split('.')[0], 'base64url'));
}

async function openIdProvider() {
  console.log(`\n== oidc-provider ${version('oidc-provider')} issues, the example server discovers and verifies`);
  // One listener whose handler is swapped, so the issuer URL survives a key rotation.
  let handler = null;
  const seen = { discovery: 0, jwks: 0 };
  const host = await listen((req, res) => {
    if (req.url.startsWith('/.well-known/openid-configuration')) seen.discovery += 1;
    if (req.url.startsWith('/jwks')) seen.jwks += 1;
    handler(req, res);
  });
  const issuer = host.base;
  const first = await privateJwk('ES256', 'op-key-1');
  const second = await privateJwk('ES256', 'op-key-2');
  const rsa = await privateJwk('RS256', 'op-rsa'); // oidc-provider signs ID tokens with RS256
  handler = provider(issuer, [first, rsa], 'ES256');

  const server = await startExample({
    OIDC_ISSUER: issuer, JWT_AUDIENCE: AUDIENCE, JWKS_REFRESH_SECS: '1', JWKS_COOLDOWN_SECS: '0',
  });
  try {
    let health;
    for (let i = 0; i < 100; i += 1) {
      health = await call(server.base, '/health');
      if (health.status === 200) break;
      await sleep(100);
    }
    check(health.status === 200, 'the example server loaded keys by discovery (GET /health 200)', health);
    check(seen.discovery >= 1 && seen.jwks >= 1, `discovery then the jwks_uri were fetched (${seen.discovery} discovery, ${seen.jwks} jwks)`, seen);

    const token = await grant(issuer, 'read');
    check(header(token).kid === 'op-key-1' && header(token).typ === 'at+jwt', 'the grant returned an at+jwt signed by op-key-1', header(token));
    const me = await call(server.base, '/me', token);
    check(me.status === 200 && me.body.iss === issuer && [].concat(me.body.aud).includes(AUDIENCE) && me.body.sub === CLIENT.client_id,
      'client_credentials token accepted; iss, aud and sub as issued', me);
    const admin = await call(server.base, '/admin', token);
    check(admin.status === 403 && /insufficient_scope/.test(admin.challenge ?? ''), 'scope read only: /admin 403 insufficient_scope', admin);
    const adminToken = await grant(issuer, 'read admin');
    const allowed = await call(server.base, '/admin', adminToken);
    check(allowed.status === 200, 'scope admin: /admin 200', allowed);
    const tampered = await call(server.base, '/me', tamper(token));
    check(invalidToken(tampered), 'tampered provider token: 401', tampered);

    // Rotation, step 1: the provider signs with a new key and publishes both.
    handler = provider(issuer, [second, first, rsa], 'ES256');
    const rotated = await grant(issuer, 'read');
    check(header(rotated).kid === 'op-key-2', 'after rotation the provider signs with op-key-2', header(rotated));
    const fetchesBefore = seen.jwks;
    const fresh = await call(server.base, '/me', rotated);
    check(fresh.status === 200 && seen.jwks > fetchesBefore, 'a token under the new key is accepted on first sight (its kid forced a refresh)', { fresh, seen });
    const old = await call(server.base, '/me', token);
    check(old.status === 200, 'a token under the old key is still accepted while it is published', old);

    // Rotation, step 2: the old key is withdrawn; the next periodic refresh drops it.
    handler = provider(issuer, [second, rsa], 'ES256');
    const before = seen.jwks;
    let withdrawn;
    for (let i = 0; i < 100; i += 1) {
      withdrawn = await call(server.base, '/me', token);
      if (withdrawn.status !== 200) break;
      await sleep(100);
    }
    check(invalidToken(withdrawn) && /signing key is unknown/.test(withdrawn.challenge), `a token under the withdrawn key is rejected after a refresh (${seen.jwks - before} refreshes)`, withdrawn);
    const still = await call(server.base, '/me', rotated);
    check(still.status === 200, 'the new key keeps working', still);
  } catch (e) {
    check(false, 'oidc-provider scenario', String(e?.stack ?? e));
  } finally {
    await stop(server);
    if (failed()) console.log(server.stderr.slice(-20).join('\n'));
    host.server.close();
  }
}

// ---------------------------------------------------------------------------------------
// 3. WebCrypto keys and signatures, with no JOSE library at all.

async function webCryptoSigner() {
  console.log(`\n== WebCrypto (Node ${process.version}) signs Ed25519 and ES512 by hand`);
  const { subtle } = globalThis.crypto;
  const ed = await subtle.generateKey({ name: 'Ed25519' }, true, ['sign', 'verify']);
  const p521 = await subtle.generateKey({ name: 'ECDSA', namedCurve: 'P-521' }, true, ['sign', 'verify']);
  // Browsers and recent Node write alg "Ed25519" (RFC 9864); older Node leaves it out.
  const edJwk = { alg: 'Ed25519', ...(await subtle.exportKey('jwk', ed.publicKey)), kid: 'webcrypto-ed25519' };
  const p521Jwk = { ...(await subtle.exportKey('jwk', p521.publicKey)), kid: 'webcrypto-p521' };
  check(edJwk.key_ops?.includes('verify') && edJwk.ext === true && edJwk.use === undefined,
    'the Ed25519 JWK has the WebCrypto shape (key_ops, ext, no use)', edJwk);
  const jwks = await listen((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [edJwk, p521Jwk] }));
  });
  const server = await startExample({
    JWKS_URL: `${jwks.base}/jwks.json`, JWT_ISSUER: 'https://webcrypto.example/', JWT_AUDIENCE: 'webcrypto-api',
  });
  const b64 = (bytes) => Buffer.from(bytes).toString('base64url');
  const exp = Math.floor(Date.now() / 1000) + 300;
  const sign = async (header, key, params) => {
    const input = `${b64(JSON.stringify(header))}.${b64(JSON.stringify({ iss: 'https://webcrypto.example/', aud: 'webcrypto-api', sub: `webcrypto-${header.alg}`, exp }))}`;
    // WebCrypto's ECDSA signature is r || s, the JWS form.
    const signature = await subtle.sign(params, key, new TextEncoder().encode(input));
    return `${input}.${b64(signature)}`;
  };
  try {
    for (const alg of ['EdDSA', 'Ed25519']) {
      const token = await sign({ alg, kid: edJwk.kid }, ed.privateKey, { name: 'Ed25519' });
      const reply = await call(server.base, '/me', token);
      check(reply.status === 200 && reply.body.sub === `webcrypto-${alg}`, `Ed25519 key, header alg ${alg}: accepted`, reply);
      const tampered = await call(server.base, '/me', tamper(token));
      check(invalidToken(tampered), `Ed25519 key, header alg ${alg}, tampered: 401`, tampered);
    }
    const es512 = await sign({ alg: 'ES512', kid: p521Jwk.kid }, p521.privateKey, { name: 'ECDSA', hash: 'SHA-512' });
    const reply = await call(server.base, '/me', es512);
    check(reply.status === 200 && reply.body.sub === 'webcrypto-ES512', 'P-521 key, ES512: accepted', reply);
    const tampered = await call(server.base, '/me', tamper(es512));
    check(invalidToken(tampered), 'P-521 key, ES512, tampered: 401', tampered);
  } finally {
    await stop(server);
    jwks.server.close();
  }
}

// ---------------------------------------------------------------------------------------
// 4. DPoP: oidc-provider binds the tokens, jose signs the client's proofs.

/** A DPoP client: a key pair, and proofs signed by `jose` (RFC 9449 §4.2). */
async function dpopClient(alg) {
  const { privateKey, publicKey } = await jose.generateKeyPair(alg, { extractable: true, crv: alg === 'EdDSA' ? 'Ed25519' : undefined });
  const jwk = await jose.exportJWK(publicKey);
  const proof = async (htm, htu, accessToken) => {
    const claims = { jti: crypto.randomUUID(), htm, htu };
    if (accessToken) {
      const digest = await globalThis.crypto.subtle.digest('SHA-256', new TextEncoder().encode(accessToken));
      claims.ath = Buffer.from(digest).toString('base64url');
    }
    return new jose.SignJWT(claims)
      .setProtectedHeader({ typ: 'dpop+jwt', alg, jwk })
      .setIssuedAt()
      .sign(privateKey);
  };
  return { alg, jwk, thumbprint: await jose.calculateJwkThumbprint(jwk, 'sha256'), proof };
}

/** GET with `Authorization: DPoP` and a proof. */
async function callDpop(base, path, token, proof) {
  const headers = { authorization: `DPoP ${token}`, ...(proof ? { dpop: proof } : {}) };
  const res = await fetch(`${base}${path}`, { headers });
  const text = await res.text();
  let body;
  try { body = JSON.parse(text); } catch { body = text; }
  return { status: res.status, challenge: res.headers.get('www-authenticate'), body };
}

async function dpopWithOpenIdProvider() {
  console.log(`\n== DPoP: oidc-provider ${version('oidc-provider')} binds tokens, jose ${version('jose')} signs proofs, the example server (JWT_DPOP=required) checks them`);
  let handler = null;
  const host = await listen((req, res) => handler(req, res));
  const issuer = host.base;
  const signing = await privateJwk('ES256', 'op-dpop');
  const rsa = await privateJwk('RS256', 'op-rsa');
  handler = provider(issuer, [signing, rsa], 'ES256', { dpop: true });
  const server = await startExample({ OIDC_ISSUER: issuer, JWT_AUDIENCE: AUDIENCE, JWT_DPOP: 'required' });
  try {
    const none = await call(server.base, '/me');
    check(none.status === 401 && /^DPoP algs="[^"]*ES256[^"]*"$/.test(none.challenge ?? ''), 'no credentials: 401 with a DPoP challenge naming algs', none);
    for (const alg of ['ES256', 'EdDSA']) {
      const client = await dpopClient(alg);
      const token = await grant(issuer, 'read', await client.proof('POST', `${issuer}/token`));
      const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url'));
      check(claims.cnf?.jkt === client.thumbprint, `${alg}: the provider bound the token to the client's key (cnf.jkt)`, claims.cnf);

      const me = `${server.base}/me`;
      const proof = await client.proof('GET', me, token);
      const accepted = await callDpop(server.base, '/me', token, proof);
      check(accepted.status === 200 && accepted.body.sub === CLIENT.client_id, `${alg}: DPoP token with a jose proof: /me 200`, accepted);
      const replayed = await callDpop(server.base, '/me', token, proof);
      check(replayed.status === 401 && /^DPoP error="invalid_dpop_proof"/.test(replayed.challenge ?? ''), `${alg}: the same proof replayed: 401 invalid_dpop_proof`, replayed);
      const bearer = await call(server.base, '/me', token);
      check(bearer.status === 401 && /^DPoP error="invalid_token"/.test(bearer.challenge ?? ''), `${alg}: the token used as a bearer token: 401`, bearer);
      const thief = await dpopClient(alg);
      const stolen = await callDpop(server.base, '/me', token, await thief.proof('GET', me, token));
      check(stolen.status === 401 && /invalid_dpop_proof/.test(stolen.challenge ?? ''), `${alg}: the token with a proof by another key: 401`, stolen);
      const elsewhere = await callDpop(server.base, '/me', token, await client.proof('GET', `${server.base}/admin`, token));
      check(elsewhere.status === 401, `${alg}: a proof for another URL: 401`, elsewhere);
      const admin = `${server.base}/admin`;
      const readOnly = await callDpop(server.base, '/admin', token, await client.proof('GET', admin, token));
      check(readOnly.status === 403 && /^DPoP error="insufficient_scope"/.test(readOnly.challenge ?? ''), `${alg}: scope read: /admin 403 in a DPoP challenge`, readOnly);
      const adminToken = await grant(issuer, 'read admin', await client.proof('POST', `${issuer}/token`));
      const allowed = await callDpop(server.base, '/admin', adminToken, await client.proof('GET', admin, adminToken));
      check(allowed.status === 200, `${alg}: scope admin: /admin 200`, allowed);
    }
  } catch (e) {
    check(false, 'DPoP scenario', String(e?.stack ?? e));
  } finally {
    await stop(server);
    if (failed()) console.log(server.stderr.slice(-20).join('\n'));
    host.server.close();
  }
}

async function revoke(issuer, token) {
  const res = await fetch(`${issuer}/token/revocation`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${CLIENT.client_id}:${CLIENT.client_secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ token }),
  });
  if (res.status !== 200) throw new Error(`revocation answered ${res.status}`);
}

// ---------------------------------------------------------------------------------------
// 5. Opaque tokens: oidc-provider issues them and answers introspection (RFC 7662, and
//    signed answers, RFC 9701); the example server introspects (JWT_INTROSPECTION_*).

async function opaqueWithOpenIdProvider() {
  console.log(`\n== opaque tokens: oidc-provider ${version('oidc-provider')} issues them and answers introspection, the example server introspects`);
  let handler = null;
  const seen = { introspections: 0, signedAsked: 0 };
  const host = await listen((req, res) => {
    if (req.url.startsWith('/token/introspection')) {
      seen.introspections += 1;
      if ((req.headers.accept ?? '').includes('application/token-introspection+jwt')) seen.signedAsked += 1;
    }
    handler(req, res);
  });
  const issuer = host.base;
  const signing = await privateJwk('ES256', 'op-opaque');
  const rsa = await privateJwk('RS256', 'op-rsa');
  const plain = provider(issuer, [signing, rsa], 'ES256', { opaque: true });
  const bound = provider(issuer, [signing, rsa], 'ES256', { opaque: true, dpop: true });
  handler = plain;
  const introspecting = {
    OIDC_ISSUER: issuer,
    JWT_AUDIENCE: AUDIENCE,
    JWT_INTROSPECTION_CLIENT_ID: API_CLIENT.client_id,
    JWT_INTROSPECTION_CLIENT_SECRET: API_CLIENT.client_secret,
    JWT_INTROSPECTION_CACHE_SECS: '1',
  };
  const servers = [];
  try {
    const server = await startExample(introspecting);
    servers.push(server);
    const token = await grant(issuer, 'read');
    check(!token.includes('.'), 'the provider issued an opaque access token (not a JWT)', token.length);
    const me = await call(server.base, '/me', token);
    check(me.status === 200 && me.body.client_id === CLIENT.client_id && me.body.iss === issuer && me.body.active === true,
      'opaque token introspected (the endpoint from discovery) and accepted: /me 200 with the answer as claims', me);
    const admin = await call(server.base, '/admin', token);
    check(admin.status === 403 && /insufficient_scope/.test(admin.challenge ?? ''), 'opaque token with scope read: /admin 403', admin);
    const adminToken = await grant(issuer, 'read admin');
    const allowed = await call(server.base, '/admin', adminToken);
    check(allowed.status === 200, 'opaque token with scope admin: /admin 200', allowed);
    const calls = seen.introspections;
    await call(server.base, '/me', token);
    check(seen.introspections === calls, 'a second use within the cache bound makes no call', seen);
    await revoke(issuer, token);
    const cached = await call(server.base, '/me', token);
    check(cached.status === 200, 'revoked at the provider: still accepted from the cache (bound 1 s, as documented)', cached);
    await sleep(1200);
    const revoked = await call(server.base, '/me', token);
    check(revoked.status === 401 && /not active/.test(revoked.challenge ?? ''), 'revoked, once the cache bound has passed: 401 not active', revoked);
    const forged = await call(server.base, '/me', 'x'.repeat(43));
    check(forged.status === 401, 'an opaque token the provider never issued: 401', forged);

    // RFC 9701: the same, with answers signed by the provider and verified with its keys.
    const signedServer = await startExample({ ...introspecting, JWT_INTROSPECTION_SIGNED: '1' });
    servers.push(signedServer);
    const fresh = await grant(issuer, 'read');
    const signedMe = await call(signedServer.base, '/me', fresh);
    check(signedMe.status === 200 && seen.signedAsked >= 1 && signedMe.body.client_id === CLIENT.client_id,
      'signed introspection answers (RFC 9701) asked for, verified with the discovered key set, accepted', { signedMe, seen });

    // DPoP-bound opaque tokens: cnf.jkt in the answer binds them (RFC 9449 §6.2).
    handler = bound;
    const dpopServer = await startExample({ ...introspecting, JWT_DPOP: 'required' });
    servers.push(dpopServer);
    const client = await dpopClient('ES256');
    const boundToken = await grant(issuer, 'read', await client.proof('POST', `${issuer}/token`));
    const url = `${dpopServer.base}/me`;
    const withProof = await callDpop(dpopServer.base, '/me', boundToken, await client.proof('GET', url, boundToken));
    check(withProof.status === 200 && !boundToken.includes('.'), 'DPoP-bound opaque token with its proof: /me 200', withProof);
    const thief = await dpopClient('ES256');
    const stolen = await callDpop(dpopServer.base, '/me', boundToken, await thief.proof('GET', url, boundToken));
    check(stolen.status === 401 && /invalid_dpop_proof/.test(stolen.challenge ?? ''), 'the bound opaque token with another key\'s proof: 401', stolen);
    const asBearer = await call(dpopServer.base, '/me', boundToken);
    check(asBearer.status === 401, 'the bound opaque token as a bearer token: 401', asBearer);
  } catch (e) {
    check(false, 'opaque token scenario', String(e?.stack ?? e));
  } finally {
    for (const server of servers) {
      await stop(server);
      if (failed()) console.log(server.stderr.slice(-20).join('\n'));
    }
    host.server.close();
  }
}

try {
  await joseSigner();
  await webCryptoSigner();
  await openIdProvider();
  await dpopWithOpenIdProvider();
  await opaqueWithOpenIdProvider();
} catch (e) {
  check(false, 'interop run', String(e?.stack ?? e));
}
finish('interop');
