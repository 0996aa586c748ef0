#!/usr/bin/env node
// Browser smoke test of the Valdock dashboard shell, through nginx.
//
//   VALDOCK_URL        base URL of the running stack (default http://127.0.0.1:8080)
//   VALDOCK_ARTIFACTS  where screenshots go (default /tmp)
//   VALDOCK_CHROMIUM   browser binary (default /usr/bin/chromium)
//   VALDOCK_EXPECT_CSP set to 0 to skip the check of the CSP response header
//
// Each assertion group prints PASS/FAIL; the last line is "N passed, N failed".
// Exit status is non-zero when any group failed.

import { mkdtempSync, readFileSync, rmSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const BASE = (process.env.VALDOCK_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
const ARTIFACTS = process.env.VALDOCK_ARTIFACTS || '/tmp';
const CHROMIUM = process.env.VALDOCK_CHROMIUM || '/usr/bin/chromium';
const EXPECT_CSP = process.env.VALDOCK_EXPECT_CSP !== '0';
const HERE = dirname(fileURLToPath(import.meta.url));
const CSP_FILE = join(HERE, '../../frontend/csp.txt');
const FALLBACK_CSP =
	"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; " +
	"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; " +
	"base-uri 'self'; form-action 'self'";
const UNAVAILABLE = 'unavailable'; // what the UI shows for a null value
const TIMEOUT = 15_000;

const results = [];

/** Runs one assertion group; a thrown error fails it. */
async function group(name, fn) {
	const t0 = Date.now();
	try {
		await fn();
		results.push({ name, ok: true });
		console.log(`PASS ${name} (${Date.now() - t0} ms)`);
	} catch (err) {
		results.push({ name, ok: false });
		console.log(`FAIL ${name}: ${err instanceof Error ? err.message : String(err)}`);
	}
}

function assert(cond, msg) {
	if (!cond) throw new Error(msg);
}

function assertEqual(actual, expected, what) {
	if (actual !== expected) {
		throw new Error(`${what}: shown ${JSON.stringify(actual)}, expected ${JSON.stringify(expected)}`);
	}
}

async function getJson(path) {
	const res = await fetch(BASE + path, {
		headers: { Accept: 'application/json' },
		signal: AbortSignal.timeout(5000)
	});
	const text = await res.text();
	let body;
	try {
		body = JSON.parse(text);
	} catch {
		throw new Error(`${path}: HTTP ${res.status}, not JSON: ${text.slice(0, 120)}`);
	}
	return { status: res.status, body };
}

async function apiInfo() {
	const { status, body } = await getJson('/api/v1/system/info');
	assert(status === 200, `/api/v1/system/info answered HTTP ${status}`);
	for (const k of ['valdock_version', 'valkey_version']) {
		assert(typeof body[k] === 'string', `/system/info: ${k} is not a string`);
	}
	for (const k of ['docker_version', 'docker_api_version']) {
		assert(body[k] === null || typeof body[k] === 'string', `/system/info: ${k} not string|null`);
	}
	assert(Number.isInteger(body.instances_count), '/system/info: instances_count not an integer');
	return body;
}

async function apiHealth() {
	const { status, body } = await getJson('/api/v1/system/health');
	assert(status === 200 || status === 503, `/api/v1/system/health answered HTTP ${status}`);
	assert(body && typeof body.checks === 'object' && body.checks, '/system/health: no checks object');
	assert(status === 200 ? body.status === 'ok' : body.status === 'error', `/system/health: status ${body.status} with HTTP ${status}`);
	return { httpStatus: status, body };
}

function directives(policy) {
	return new Set(
		policy
			.split(';')
			.map((d) => d.trim().replace(/\s+/g, ' '))
			.filter(Boolean)
	);
}

// textContent, not innerText: CSS (e.g. text-transform) must not change what is compared.
const text = (page, testid) => page.getByTestId(testid).textContent().then((s) => (s ?? '').trim());

/** Re-reads API and page until they agree (the UI polls every 5 s), max ~12 s. */
async function eventuallyMatches(readPage, readApi, what) {
	const deadline = Date.now() + 12_000;
	for (;;) {
		const expected = await readApi();
		const shown = await readPage();
		const diff = Object.keys(expected).filter((k) => shown[k] !== expected[k]);
		if (diff.length === 0) return;
		if (Date.now() > deadline) {
			throw new Error(
				`${what} differ: ` +
					diff.map((k) => `${k} shown ${JSON.stringify(shown[k])}, API ${JSON.stringify(expected[k])}`).join('; ')
			);
		}
		await new Promise((r) => setTimeout(r, 1000));
	}
}

async function main() {
	console.log(`Valdock browser smoke test against ${BASE}`);
	let info;
	let health;

	await group('api: /system/info and /system/health answer per contract', async () => {
		info = await apiInfo();
		health = await apiHealth();
	});

	const userDataDir = mkdtempSync(join(tmpdir(), 'valdock-chromium-'));
	let context;
	const problems = []; // console errors, page errors, CSP violations
	const healthRequests = [];
	try {
		context = await chromium.launchPersistentContext(userDataDir, {
			executablePath: CHROMIUM,
			headless: true,
			args: [
				'--headless',
				'--no-sandbox',
				'--disable-gpu',
				'--disable-background-networking',
				'--disable-quic',
				'--no-first-run',
				'--disable-component-update',
				'--disable-sync'
			],
			viewport: { width: 1200, height: 760 },
			colorScheme: 'light',
			timeout: 30_000
		});
	} catch (err) {
		results.push({ name: 'browser: launch Chromium', ok: false });
		console.log(`FAIL browser: launch Chromium: ${err instanceof Error ? err.message : err}`);
		rmSync(userDataDir, { recursive: true, force: true });
		return;
	}

	try {
		context.setDefaultTimeout(TIMEOUT);
		// Record CSP violations from inside the page (injected by the driver, not subject to CSP).
		await context.addInitScript(() => {
			window.__cspViolations = [];
			document.addEventListener('securitypolicyviolation', (e) => {
				window.__cspViolations.push(`${e.violatedDirective} blocked ${e.blockedURI || 'inline'}`);
			});
		});
		const page = context.pages()[0] ?? (await context.newPage());
		page.on('console', (msg) => {
			if (msg.type() !== 'error') return;
			const where = msg.location()?.url ?? '';
			// A 503 from the health endpoint is a valid "unhealthy" report, yet Chromium
			// logs every non-2xx fetch as a console error. Only that one is tolerated.
			if (/status of 503/.test(msg.text()) && where.endsWith('/api/v1/system/health')) return;
			problems.push(`console error: ${msg.text()}${where ? ` (${where})` : ''}`);
		});
		page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
		page.on('request', (req) => {
			if (req.url().endsWith('/api/v1/system/health')) healthRequests.push(Date.now());
		});
		page.on('requestfailed', (req) => {
			if (req.failure()?.errorText === 'net::ERR_ABORTED') return; // navigation aborts
			problems.push(`request failed: ${req.url()} ${req.failure()?.errorText ?? ''}`);
		});
		page.on('response', (res) => {
			const url = res.url();
			if (res.status() >= 400 && !(res.status() === 503 && url.endsWith('/api/v1/system/health'))) {
				problems.push(`HTTP ${res.status()} for ${url}`);
			}
		});
		const collectCsp = async () => {
			const v = await page.evaluate(() => window.__cspViolations ?? []).catch(() => []);
			for (const x of v) problems.push(`CSP violation: ${x}`);
		};

		let rootResponse;
		await group('page /: SPA loads and shows the dashboard shell', async () => {
			rootResponse = await page.goto(BASE + '/', { waitUntil: 'load' });
			assert(rootResponse, 'no response for /');
			assert(rootResponse.status() === 200, `GET / answered HTTP ${rootResponse.status()}`);
			await page.getByTestId('app-title').waitFor();
			assertEqual(await text(page, 'app-title'), 'Valdock', 'header');
			await page.getByTestId('health-status').waitFor();
			await page.getByTestId('valdock-version').waitFor();
			await page.getByTestId('health-panel').waitFor();
			await page.getByTestId('info-panel').waitFor();
		});

		await group('csp: nginx sends the Content-Security-Policy header', async () => {
			if (!EXPECT_CSP) {
				console.log('  (skipped by VALDOCK_EXPECT_CSP=0)');
				return;
			}
			assert(rootResponse, 'no response for /');
			const header = (await rootResponse.allHeaders())['content-security-policy'];
			assert(header, 'no Content-Security-Policy header on /');
			const want = existsSync(CSP_FILE) ? readFileSync(CSP_FILE, 'utf8').trim() : FALLBACK_CSP;
			const got = directives(header);
			const missing = [...directives(want)].filter((d) => !got.has(d));
			assert(missing.length === 0, `CSP header lacks: ${missing.join('; ')} (got: ${header})`);
		});

		await group('info panel: versions and instance count equal /system/info', async () => {
			await eventuallyMatches(
				async () => ({
					valdock: await text(page, 'valdock-version'),
					valkey: await text(page, 'valkey-version'),
					docker: await text(page, 'docker-version'),
					instances: await text(page, 'instances-count')
				}),
				async () => {
					const i = await apiInfo();
					return {
						valdock: i.valdock_version,
						valkey: i.valkey_version,
						docker: i.docker_version ?? UNAVAILABLE,
						instances: String(i.instances_count)
					};
				},
				'system info'
			);
		});

		await group('health panel: status and store/docker checks equal /system/health', async () => {
			await eventuallyMatches(
				async () => ({
					status: await text(page, 'health-status'),
					store: await text(page, 'check-store'),
					docker: await text(page, 'check-docker')
				}),
				async () => {
					const h = (await apiHealth()).body;
					return { status: h.status, store: h.checks.store, docker: h.checks.docker };
				},
				'health checks'
			);
		});

		await group('screenshot: dashboard-shell.png saved', async () => {
			mkdirSync(ARTIFACTS, { recursive: true });
			const file = join(ARTIFACTS, 'dashboard-shell.png');
			await page.screenshot({ path: file, fullPage: true });
			await page.emulateMedia({ colorScheme: 'dark' });
			await page.screenshot({ path: join(ARTIFACTS, 'dashboard-shell-dark.png'), fullPage: true });
			await page.emulateMedia({ colorScheme: 'light' });
			console.log(`  screenshot: ${file}`);
		});

		await group('refresh: health is polled again within 7 s', async () => {
			const before = healthRequests.length;
			const deadline = Date.now() + 7000;
			while (healthRequests.length === before && Date.now() < deadline) {
				await page.waitForTimeout(250);
			}
			assert(healthRequests.length > before, 'no new /system/health request within 7 s');
		});

		await collectCsp();

		await group('deep link /instances: nginx serves the SPA, client routing works', async () => {
			const res = await page.goto(BASE + '/instances', { waitUntil: 'load' });
			assert(res, 'no response for /instances');
			assert(res.status() === 200, `GET /instances answered HTTP ${res.status()}`);
			assert(/text\/html/.test(res.headers()['content-type'] ?? ''), 'GET /instances is not HTML');
			await page.getByRole('heading', { level: 1, name: 'Instances' }).waitFor();
			assertEqual(await text(page, 'app-title'), 'Valdock', 'header');
			const current = await page.locator('nav a[aria-current="page"]').innerText();
			assertEqual(current.trim(), 'Instances', 'current nav item');
			await page.getByTestId('instances-count').waitFor();
			const i = await apiInfo();
			assertEqual(await text(page, 'instances-count'), String(i.instances_count), 'instances count');
			// Client-side navigation back to the dashboard (no full page load).
			await page.evaluate(() => (window.__noReload = true));
			await page.getByRole('link', { name: 'Overview' }).click();
			await page.getByTestId('health-status').waitFor();
			assert(await page.evaluate(() => window.__noReload === true), 'navigation reloaded the page');
		});

		await collectCsp();

		await group('console: no errors, page errors, failed requests or CSP violations', async () => {
			assert(problems.length === 0, `${problems.length} problem(s):\n  - ${problems.join('\n  - ')}`);
		});
	} finally {
		await context.close().catch(() => {});
		rmSync(userDataDir, { recursive: true, force: true });
	}
}

const watchdog = setTimeout(() => {
	console.log('FAIL smoke test timed out after 150 s');
	const passed = results.filter((r) => r.ok).length;
	console.log(`${passed} passed, ${results.length - passed + 1} failed`);
	process.exit(1);
}, 150_000);

try {
	await main();
} catch (err) {
	results.push({ name: 'unexpected error', ok: false });
	console.log(`FAIL unexpected error: ${err instanceof Error ? err.stack : err}`);
}
clearTimeout(watchdog);
const passed = results.filter((r) => r.ok).length;
const failed = results.length - passed;
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
