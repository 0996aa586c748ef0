// Pure client-side SPA: nothing is rendered or prerendered at build time.
// adapter-static writes the fallback page (build/index.html) instead.
export const ssr = false;
export const prerender = false;
export const trailingSlash = 'never';
