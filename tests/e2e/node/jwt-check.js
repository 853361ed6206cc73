#!/usr/bin/env node
// The independent side of tests/e2e/test_jwt_interop.sh: issues and verifies JWTs with
// node's jsonwebtoken (pinned in package-lock.json), so our tokens are checked by code
// that shares nothing with ours but the RFCs.
//
//   node jwt-check.js issue  --alg ALG [--key-file F] [--kid K]   < claims.json
//       prints the token; the claims are signed as given (jsonwebtoken adds iat only
//       when the claims have none). ALG none takes no key.
//   node jwt-check.js verify --alg ALG (--key-file F | --jwks-file F --kid K)
//                            [--iss I] [--aud A] [--now T]          < token
//       prints the verified claims as JSON (exit 0) or the refusal on stderr (exit 1).
//
// Keys are read from files only, never from argv: for HS256 the secret file's bytes
// (one trailing newline dropped, the same rule as tests/helpers/jwt_tool.c), for ES256 a
// PEM (private to issue, public or private to verify), or the key with the given kid in
// a JWK Set, imported with crypto.createPublicKey({key: jwk, format: 'jwk'}).
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const jwt = require('jsonwebtoken');

function fail(msg) {
    process.stderr.write(`jwt-check: ${msg}\n`);
    process.exit(1);
}

function parseArgs(argv) {
    const out = {};
    for (let i = 0; i < argv.length; i += 2) {
        const name = argv[i];
        const value = argv[i + 1];
        if (!name.startsWith('--') || value === undefined) fail(`bad argument ${name}`);
        out[name.slice(2)] = value;
    }
    return out;
}

function readSecret(path) {
    let b = fs.readFileSync(path);
    if (b.length > 0 && b[b.length - 1] === 0x0a) b = b.subarray(0, b.length - 1);
    return b;
}

function signingKey(o) {
    if (o.alg === 'none') return null;
    if (!o['key-file']) fail('--key-file is required');
    if (o.alg === 'HS256') return crypto.createSecretKey(readSecret(o['key-file']));
    return crypto.createPrivateKey(fs.readFileSync(o['key-file']));
}

function verifyingKey(o) {
    if (o['jwks-file']) {
        const set = JSON.parse(fs.readFileSync(o['jwks-file'], 'utf8'));
        const jwk = (set.keys || []).find((k) => k.kid === o.kid);
        if (!jwk) fail(`no key with kid ${o.kid} in the JWK Set`);
        if ('d' in jwk) fail('the JWK Set holds a private key');
        return crypto.createPublicKey({ key: jwk, format: 'jwk' });
    }
    if (!o['key-file']) fail('--key-file or --jwks-file is required');
    if (o.alg === 'HS256') return crypto.createSecretKey(readSecret(o['key-file']));
    return crypto.createPublicKey(fs.readFileSync(o['key-file']));
}

function main() {
    const mode = process.argv[2];
    const o = parseArgs(process.argv.slice(3));
    if (!o.alg) fail('--alg is required');
    const input = fs.readFileSync(0, 'utf8');
    if (mode === 'issue') {
        const claims = JSON.parse(input);
        const options = { algorithm: o.alg }; // an iat in the claims is kept as given
        if (o.kid) options.keyid = o.kid;
        process.stdout.write(jwt.sign(claims, signingKey(o), options) + '\n');
        return;
    }
    if (mode === 'verify') {
        const options = { algorithms: [o.alg], complete: true };
        if (o.iss) options.issuer = o.iss;
        if (o.aud) options.audience = o.aud;
        if (o.now) options.clockTimestamp = Number(o.now);
        let decoded;
        try {
            decoded = jwt.verify(input.trim(), verifyingKey(o), options);
        } catch (e) {
            fail(`refused: ${e.message}`);
        }
        if (o.kid && decoded.header.kid !== o.kid) fail(`header kid is ${decoded.header.kid}`);
        process.stdout.write(JSON.stringify(decoded.payload) + '\n');
        return;
    }
    fail(`unknown mode ${mode}`);
}

main();
