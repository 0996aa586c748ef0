import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vite';

// `npm run dev` proxies the API to a running Valdock (nginx) so the UI can be
// developed against the real backend. Override with VALDOCK_URL.
const backend = process.env.VALDOCK_URL ?? 'http://127.0.0.1:8080';

export default defineConfig({
	plugins: [sveltekit()],
	build: {
		// Never emit inline data: URLs for scripts; keep assets as files.
		assetsInlineLimit: 0
	},
	server: {
		proxy: {
			'/api/': { target: backend, changeOrigin: false }
		}
	}
});
