import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
const config = {
	preprocess: vitePreprocess(),
	compilerOptions: {
		// Svelte 5 runes everywhere.
		runes: true
	},
	kit: {
		// SPA: every unknown path is answered by nginx with build/index.html
		// (try_files ... /index.html); routing happens in the browser.
		adapter: adapter({
			pages: 'build',
			assets: 'build',
			fallback: 'index.html',
			precompress: false,
			strict: true
		}),
		// Content-hashed assets go to build/_app/immutable/ (kit default).
		appDir: '_app',
		paths: {
			// Absolute asset URLs so deep links such as /instances load /_app/... correctly.
			relative: false
		}
		// CSP: the bootstrap <script> that kit inlines into the fallback page is moved
		// into an external, content-hashed file by scripts/postbuild-csp.mjs, so the
		// fixed policy in csp.txt (script-src 'self', no hashes) is enough.
	}
};

export default config;
