import { ApiError } from './api';

/**
 * Reactive poller (Svelte 5 runes): runs `load` now and then every
 * `intervalMs` after the previous run finished (never overlapping).
 * While the tab is hidden it pauses, and refreshes at once when shown again.
 *
 * Usage in a component:
 *   const info = new Poller((signal) => api.system.info({ signal }));
 *   $effect(() => info.start());
 */
export class Poller<T> {
	data = $state<T | null>(null);
	error = $state<ApiError | null>(null);
	/** True until the first run finished (success or failure). */
	loading = $state(true);
	updatedAt = $state<Date | null>(null);

	readonly intervalMs: number;
	#load: (signal: AbortSignal) => Promise<T>;
	#timer: ReturnType<typeof setTimeout> | undefined;
	#controller: AbortController | null = null;
	#running = false;

	constructor(load: (signal: AbortSignal) => Promise<T>, intervalMs = 5000) {
		this.#load = load;
		this.intervalMs = intervalMs;
	}

	/** Starts polling; returns the stop function (suits `$effect`). */
	start(): () => void {
		this.#running = true;
		document.addEventListener('visibilitychange', this.#onVisibility);
		void this.refresh();
		return () => this.stop();
	}

	stop(): void {
		this.#running = false;
		clearTimeout(this.#timer);
		this.#controller?.abort();
		this.#controller = null;
		document.removeEventListener('visibilitychange', this.#onVisibility);
	}

	async refresh(): Promise<void> {
		clearTimeout(this.#timer);
		this.#controller?.abort();
		const controller = new AbortController();
		this.#controller = controller;
		try {
			this.data = await this.#load(controller.signal);
			this.error = null;
			this.updatedAt = new Date();
		} catch (err) {
			if (controller.signal.aborted) return; // superseded or stopped
			this.error =
				err instanceof ApiError
					? err
					: new ApiError(0, 'client_error', err instanceof Error ? err.message : String(err));
			this.updatedAt = new Date();
		} finally {
			if (this.#controller === controller) {
				this.#controller = null;
				this.loading = false;
				this.#schedule();
			}
		}
	}

	#schedule(): void {
		clearTimeout(this.#timer);
		if (!this.#running || document.hidden) return;
		this.#timer = setTimeout(() => void this.refresh(), this.intervalMs);
	}

	#onVisibility = (): void => {
		if (!this.#running) return;
		if (document.hidden) clearTimeout(this.#timer);
		else void this.refresh();
	};
}
