#!/usr/bin/env node
// Post-build step: make build/index.html work under a fixed, hash-free CSP.
//
// SvelteKit's SPA fallback page boots the app with one inline <script>
// (it sets the __sveltekit_* global and dynamic-imports start/app). An inline
// script is blocked by `script-src 'self'`. This step moves that script,
// byte for byte, into an external content-hashed file under
// build/_app/immutable/entry/ and references it with <script src>. It stays a
// classic (non-module) script placed where the inline one was, so
// `document.currentScript.parentElement` still points at the mount element.
//
// It then checks that no inline script or inline event handler is left and
// writes the policy nginx must send to frontend/csp.txt (one line).

import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const CSP =
	"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; " +
	"base-uri 'self'; form-action 'self'";

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const buildDir = join(root, 'build');
const indexPath = join(buildDir, 'index.html');

function fail(msg) {
	console.error(`postbuild-csp: ${msg}`);
	process.exit(1);
}

if (!existsSync(indexPath)) fail(`${indexPath} not found; run vite build first`);
let html = readFileSync(indexPath, 'utf8');

// Inline scripts are <script> tags without a src attribute.
const inlineRe = /<script(\s[^>]*)?>([\s\S]*?)<\/script>/gi;
const inline = [...html.matchAll(inlineRe)].filter((m) => !/\ssrc\s*=/i.test(m[1] ?? ''));

if (inline.length === 0) {
	if (!html.includes('/entry/boot.')) fail('no SvelteKit bootstrap script found in index.html');
	console.log('postbuild-csp: bootstrap already external');
} else {
	if (inline.length !== 1) fail(`expected 1 inline script, found ${inline.length}`);
	const [tag, attrs = '', body] = inline[0];
	if (/type\s*=\s*["']?module/i.test(attrs)) fail('unexpected module bootstrap script');

	// Put the file next to kit's own entry chunks: <base>/_app/immutable/entry/.
	const start = body.match(/import\("([^"]*\/immutable)\/entry\/start\.[^"]+\.js"\)/);
	if (!start) fail('cannot find the start entry import in the bootstrap script');
	const immutableUrl = start[1];
	if (!immutableUrl.startsWith('/')) {
		fail(`bootstrap imports are relative (${immutableUrl}); set kit.paths.relative = false`);
	}

	const code = body.trim() + '\n';
	const hash = createHash('sha256').update(code).digest('base64url').slice(0, 10);
	const fileName = `boot.${hash}.js`;
	writeFileSync(join(buildDir, '_app/immutable/entry', fileName), code);
	html = html.replace(tag, `<script src="${immutableUrl}/entry/${fileName}"></script>`);
	writeFileSync(indexPath, html);
	console.log(`postbuild-csp: moved inline bootstrap to ${immutableUrl}/entry/${fileName}`);
}

// Nothing inline may remain that `script-src 'self'` would block.
const leftovers = [...html.matchAll(inlineRe)].filter((m) => !/\ssrc\s*=/i.test(m[1] ?? ''));
if (leftovers.length) fail('inline <script> still present in index.html');
if (/<[^>]*\son[a-z]+\s*=/i.test(html)) fail('inline event handler attribute found in index.html');
if (/javascript:/i.test(html)) fail('javascript: URL found in index.html');

// Rewrite csp.txt only when it changes, so its mtime does not mark the sources as newer than build/.
const cspPath = join(root, 'csp.txt');
if (!existsSync(cspPath) || readFileSync(cspPath, 'utf8') !== CSP + '\n') {
	writeFileSync(cspPath, CSP + '\n');
	console.log('postbuild-csp: wrote csp.txt');
} else {
	console.log('postbuild-csp: csp.txt up to date');
}
