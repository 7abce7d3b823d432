// MCP resource-server checks against examples/mcp_server, with independent parts: the MCP
// TypeScript SDK as the client, jose for tokens and DPoP proofs, and node oidc-provider
// (resource indicators) issuing JWT access tokens for the MCP resource.
//
//   node interop/mcp_check.mjs target/debug/examples/mcp_server
//
// The MCP project's published conformance suite (@modelcontextprotocol/conformance
// 0.1.16) has no resource-server authorization scenarios, and its client sends no token,
// so its server scenarios cannot run against a protected server: these checks are the
// equivalent ones the issue lists, with the SDK as the client. Everything binds to
// 127.0.0.1.


import * as jose from 'jose';
import Provider from 'oidc-provider';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import * as harness from './harness.mjs';
import { check, failed, finish, listen, version } from './harness.mjs';

const binary = process.argv[2];
if (!binary) {
  console.error('usage: node interop/mcp_check.mjs <path to the mcp_server example>');
  process.exit(2);
}

const startExample = (env) => harness.startExample(binary, env);

/** SIGTERM, and the exit within 10 s (checked). */
async function stop(server) {
  check(await harness.stop(server), 'mcp_server stops on SIGTERM');
}

/** A raw JSON-RPC POST (no SDK): status and challenge. */
async function raw(base, token, body = { jsonrpc: '2.0', id: 1, method: 'tools/list' }) {
  const res = await fetch(`${base}/mcp`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...(token ? { authorization: `Bearer ${token}` } : {}),
    },
    body: JSON.stringify(body),
  });
  await res.text();
  return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '' };
}

/** The SDK's client, with the token as its bearer header: initialize, list, call. */
async function sdkSession(base, token) {
  const transport = new StreamableHTTPClientTransport(new URL(`${base}/mcp`), {
    requestInit: { headers: { authorization: `Bearer ${token}` } },
  });
  const client = new Client({ name: 'jwks-auth-interop', version: '1.0.0' });
  await client.connect(transport);
  const tools = await client.listTools();
  const called = await client.callTool({ name: 'whoami', arguments: {} });
  await client.close();
  return { tools, called };
}

const RESOURCE_PATH = '/mcp';

// ---------------------------------------------------------------------------------------
// 1. jose: a local issuer's key set; tokens of every kind.

async function withJose() {
  console.log(`\n== MCP: the TypeScript SDK ${version('@modelcontextprotocol/sdk')} as the client, jose ${version('jose')} tokens, against examples/mcp_server`);
  const { publicKey, privateKey } = await jose.generateKeyPair('ES256');
  const jwk = { ...(await jose.exportJWK(publicKey)), kid: 'mcp-1', alg: 'ES256', use: 'sig' };
  const stranger = await jose.generateKeyPair('ES256');
  const host = await listen((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ keys: [jwk] }));
  });
  const issuer = `${host.base}/`;
  const resource = `https://mcp.example.com${RESOURCE_PATH}`;
  const metadataUrl = `https://mcp.example.com/.well-known/oauth-protected-resource${RESOURCE_PATH}`;
  const sign = (claims, { key = privateKey, kid = 'mcp-1' } = {}) => {
    const now = Math.floor(Date.now() / 1000);
    return new jose.SignJWT({ sub: 'alice', scope: 'mcp:tools', ...claims })
      .setProtectedHeader({ alg: 'ES256', kid, typ: 'at+jwt' })
      .setIssuer(issuer)
      .setIssuedAt(now)
      .setExpirationTime(now + 300)
      .sign(key);
  };
  const server = await startExample({
    MCP_RESOURCE_URL: resource,
    MCP_AUTHORIZATION_SERVERS: issuer,
    JWKS_URL: `${host.base}/jwks.json`,
    JWT_ISSUER: issuer,
    MCP_SCOPES: 'mcp:tools',
  });
  try {
    const meta = await fetch(`${server.base}/.well-known/oauth-protected-resource${RESOURCE_PATH}`);
    const doc = await meta.json();
    check(meta.status === 200 && doc.resource === resource && doc.authorization_servers?.[0] === issuer,
      'path-inserted metadata: resource identical to MCP_RESOURCE_URL, the authorization server listed', doc);

    const none = await raw(server.base);
    check(none.status === 401 && none.challenge.includes(`resource_metadata="${metadataUrl}"`)
      && none.challenge.includes('scope="mcp:tools"') && !none.challenge.includes('error='),
      'no token: 401 with resource_metadata and scope, no error', none);

    const good = await sign({ aud: resource });
    const session = await sdkSession(server.base, good);
    check(session.tools.tools.some((t) => t.name === 'whoami'), 'SDK client: initialize + tools/list (whoami listed)', session.tools);
    check(session.called.content?.[0]?.text === 'you are alice', 'SDK client: tools/call whoami sees the verified sub', session.called);

    const now = Math.floor(Date.now() / 1000);
    const bad = {
      'another audience': await sign({ aud: 'https://other.example.com/mcp' }),
      'no audience': await sign({}),
      'an audience with a trailing slash': await sign({ aud: `${resource}/` }),
      expired: await new jose.SignJWT({ sub: 'alice', scope: 'mcp:tools', aud: resource })
        .setProtectedHeader({ alg: 'ES256', kid: 'mcp-1' })
        .setIssuer(issuer).setIssuedAt(now - 7200).setExpirationTime(now - 3600).sign(privateKey),
      'an untrusted key': await sign({ aud: resource }, { key: stranger.privateKey }),
    };
    for (const [what, token] of Object.entries(bad)) {
      const r = await raw(server.base, token);
      check(r.status === 401 && r.challenge.includes('error="invalid_token"') && r.challenge.includes(`resource_metadata="${metadataUrl}"`),
        `${what}: 401 invalid_token with resource_metadata`, r);
    }
    let sdkRefused = false;
    try { await sdkSession(server.base, bad['another audience']); } catch { sdkRefused = true; }
    check(sdkRefused, 'SDK client with a token for another resource: refused');

    const kidless = await new jose.SignJWT({ sub: 'kidless', scope: 'mcp:tools', aud: resource })
      .setProtectedHeader({ alg: 'ES256' }).setIssuer(issuer).setIssuedAt().setExpirationTime('5m').sign(privateKey);
    const noKid = await sdkSession(server.base, kidless);
    check(noKid.called.content?.[0]?.text === 'you are kidless', 'a token without kid, one usable key in the set: accepted', noKid.called);

    const narrow = await sign({ aud: resource, scope: 'other' });
    const r = await raw(server.base, narrow);
    check(r.status === 403 && r.challenge.includes('error="insufficient_scope"') && r.challenge.includes('scope="mcp:tools"')
      && r.challenge.includes(`resource_metadata="${metadataUrl}"`), 'scope too narrow: 403 naming every needed scope and resource_metadata', r);
  } catch (e) {
    check(false, 'MCP jose scenario', String(e?.stack ?? e));
  } finally {
    await stop(server);
    if (failed()) console.log(server.stderr.slice(-20).join('\n'));
  }

  // DPoP required: the SDK's bearer use is refused; defective proofs are refused.
  const base = `http://127.0.0.1`;
  const dpopServer = await startExample({
    MCP_RESOURCE_URL: resource,
    MCP_AUTHORIZATION_SERVERS: issuer,
    JWKS_URL: `${host.base}/jwks.json`,
    JWT_ISSUER: issuer,
    JWT_DPOP: 'required',
    PUBLIC_BASE_URL: 'https://mcp.example.com',
  });
  try {
    const client = await jose.generateKeyPair('ES256');
    const clientJwk = await jose.exportJWK(client.publicKey);
    const jkt = await jose.calculateJwkThumbprint(clientJwk);
    const token = await sign({ aud: resource, cnf: { jkt } });
    const ath = jose.base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', new TextEncoder().encode(token))));
    const proof = (htu, extra = {}) => new jose.SignJWT({ htm: 'POST', htu, jti: crypto.randomUUID(), ath, ...extra })
      .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: clientJwk }).setIssuedAt().sign(client.privateKey);
    const post = async (p) => {
      const res = await fetch(`${dpopServer.base}/mcp`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `DPoP ${token}`, ...(p ? { dpop: p } : {}) },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
      });
      await res.text();
      return { status: res.status, challenge: res.headers.get('www-authenticate') ?? '' };
    };
    const good = await proof(resource);
    const accepted = await post(good);
    check(accepted.status === 200, 'DPoP required: a bound token with its proof: initialize 200', accepted);
    for (const [what, p] of [
      ['no proof', null],
      ['the same proof replayed', good],
      ['a proof for another URL', await proof('https://mcp.example.com/other')],
      ['a proof for another method', await proof(resource, { htm: 'GET' })],
    ]) {
      const r = await post(p);
      check(r.status === 401 && /^DPoP /.test(r.challenge), `DPoP required: ${what}: 401 in a DPoP challenge`, r);
    }
  } catch (e) {
    check(false, 'MCP DPoP scenario', String(e?.stack ?? e));
  } finally {
    await stop(dpopServer);
    host.server.close();
  }
  void base;
}

// ---------------------------------------------------------------------------------------
// 2. oidc-provider with resource indicators: a JWT access token for the MCP resource.

async function withOpenIdProvider() {
  console.log(`\n== MCP: oidc-provider ${version('oidc-provider')} issues a JWT access token for the MCP resource (RFC 8707)`);
  let handler = (_req, res) => { res.writeHead(503); res.end(); };
  const host = await listen((req, res) => handler(req, res));
  const issuer = host.base;
  const { privateKey } = await jose.generateKeyPair('ES256', { extractable: true });
  const signing = { ...(await jose.exportJWK(privateKey)), kid: 'op-mcp', alg: 'ES256', use: 'sig' };
  const rsa = { ...(await jose.exportJWK((await jose.generateKeyPair('RS256', { extractable: true })).privateKey)), kid: 'op-rsa', alg: 'RS256', use: 'sig' };
  const resource = 'https://mcp.example.com/mcp';
  const other = 'https://other.example.com/mcp';
  const op = new Provider(issuer, {
    jwks: { keys: [signing, rsa] },
    cookies: { keys: ['mcp-cookie-key-not-secret'] },
    clients: [{
      client_id: 'mcp-client', client_secret: 'mcp-secret-0123456789abcdef',
      grant_types: ['client_credentials'], redirect_uris: [], response_types: [],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    scopes: ['mcp:tools'],
    features: {
      clientCredentials: { enabled: true },
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => resource,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, indicator) => ({
          scope: 'mcp:tools', audience: indicator, accessTokenTTL: 300, accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  handler = op.callback();
  // Started once the provider answers: its refresh task may fetch at once.
  const mcpServer = await startExample({
    MCP_RESOURCE_URL: 'https://mcp.example.com/mcp',
    MCP_AUTHORIZATION_SERVERS: issuer,
    OIDC_ISSUER: issuer,
    MCP_SCOPES: 'mcp:tools',
  });
  const grant = async (indicator) => {
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from('mcp-client:mcp-secret-0123456789abcdef').toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ grant_type: 'client_credentials', resource: indicator, scope: 'mcp:tools' }),
    });
    const body = await res.json();
    if (res.status !== 200) throw new Error(`token endpoint answered ${res.status}: ${JSON.stringify(body)}`);
    return body.access_token;
  };
  try {
    const token = await grant(resource);
    const claims = jose.decodeJwt(token);
    check([].concat(claims.aud).includes(resource), 'the provider issued a token whose aud is the MCP resource URL', claims.aud);
    const session = await sdkSession(mcpServer.base, token);
    check(session.called.content?.[0]?.text === 'you are mcp-client', 'SDK client with the provider\'s token: tools/call whoami', session.called);
    const foreign = await grant(other);
    const r = await raw(mcpServer.base, foreign);
    check(r.status === 401 && r.challenge.includes('error="invalid_token"'), 'a token for another resource: 401 invalid_token', r);
  } catch (e) {
    check(false, 'MCP oidc-provider scenario', String(e?.stack ?? e));
  } finally {
    await stop(mcpServer);
    if (failed()) console.log(mcpServer.stderr.slice(-20).join('\n'));
    host.server.close();
  }
}

try {
  await withJose();
  await withOpenIdProvider();
} catch (e) {
  check(false, 'mcp run', String(e?.stack ?? e));
}
finish('mcp');
