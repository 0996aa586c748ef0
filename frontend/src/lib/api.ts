/**
 * Typed client for the Valdock HTTP API (`/api/v1`).
 *
 * Every page talks to the backend through this module only.
 *
 * Error contract: a non-2xx answer carries
 *   {"status":"error","code":string,"message":string, ...extra}
 * which is thrown as an {@link ApiError}. Failures that never produced such a
 * body (network down, timeout, non-JSON reply) are thrown as ApiError too, with
 * a client-side code (`network_error`, `timeout`, `bad_response`) and status 0
 * or the HTTP status seen.
 */

export const API_BASE = '/api/v1';

/** Milliseconds before a request is aborted. */
const DEFAULT_TIMEOUT_MS = 4000;

export interface ApiErrorBody {
	status: 'error';
	code: string;
	message: string;
	[extra: string]: unknown;
}

export class ApiError extends Error {
	readonly code: string;
	/** HTTP status, or 0 when no HTTP response was received. */
	readonly status: number;
	/** The parsed error body when the server sent one. */
	readonly body: ApiErrorBody | null;

	constructor(status: number, code: string, message: string, body: ApiErrorBody | null = null) {
		super(message);
		this.name = 'ApiError';
		this.status = status;
		this.code = code;
		this.body = body;
	}
}

/* ----- Response types ---------------------------------------------------- */

/** Per-subsystem result: "ok", or a human-readable error text. */
export type HealthChecks = Record<string, string>;

export interface HealthOk {
	status: 'ok';
	checks: HealthChecks;
}

export interface HealthUnhealthy extends ApiErrorBody {
	checks: HealthChecks;
}

/** `GET /system/health`: 200 when healthy, 503 with checks when not. */
export type HealthReport = HealthOk | HealthUnhealthy;

/** `GET /system/info`. Docker fields are null while Docker is unreachable. */
export interface SystemInfo {
	valdock_version: string;
	valkey_version: string;
	docker_version: string | null;
	docker_api_version: string | null;
	instances_count: number;
}

/* ----- Transport --------------------------------------------------------- */

function isRecord(v: unknown): v is Record<string, unknown> {
	return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function isApiErrorBody(v: unknown): v is ApiErrorBody {
	return (
		isRecord(v) &&
		v.status === 'error' &&
		typeof v.code === 'string' &&
		typeof v.message === 'string'
	);
}

interface RequestOptions {
	method?: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
	body?: unknown;
	timeoutMs?: number;
	signal?: AbortSignal;
}

interface RawResponse {
	status: number;
	ok: boolean;
	json: unknown;
}

/** Performs the HTTP exchange and parses JSON; throws ApiError on transport problems only. */
async function exchange(path: string, opts: RequestOptions = {}): Promise<RawResponse> {
	const controller = new AbortController();
	const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
	let timedOut = false;
	const timer = setTimeout(() => {
		timedOut = true;
		controller.abort();
	}, timeoutMs);
	const onOuterAbort = () => controller.abort();
	opts.signal?.addEventListener('abort', onOuterAbort, { once: true });

	const headers: Record<string, string> = { Accept: 'application/json' };
	let body: string | undefined;
	if (opts.body !== undefined) {
		headers['Content-Type'] = 'application/json';
		body = JSON.stringify(opts.body);
	}

	let res: Response;
	try {
		res = await fetch(API_BASE + path, {
			method: opts.method ?? 'GET',
			headers,
			body,
			signal: controller.signal,
			credentials: 'same-origin',
			cache: 'no-store'
		});
	} catch (err) {
		if (timedOut) {
			throw new ApiError(0, 'timeout', `No answer from the API within ${timeoutMs / 1000} s`);
		}
		if (opts.signal?.aborted) {
			throw new ApiError(0, 'aborted', 'Request aborted');
		}
		const reason = err instanceof Error ? err.message : String(err);
		throw new ApiError(0, 'network_error', `Cannot reach the API (${reason})`);
	} finally {
		clearTimeout(timer);
		opts.signal?.removeEventListener('abort', onOuterAbort);
	}

	let json: unknown = null;
	const text = await res.text();
	if (text.length > 0) {
		try {
			json = JSON.parse(text);
		} catch {
			throw new ApiError(
				res.status,
				'bad_response',
				`Unexpected non-JSON answer from the API (HTTP ${res.status})`
			);
		}
	}
	return { status: res.status, ok: res.ok, json };
}

function toApiError(raw: RawResponse): ApiError {
	if (isApiErrorBody(raw.json)) {
		return new ApiError(raw.status, raw.json.code, raw.json.message, raw.json);
	}
	return new ApiError(raw.status, 'http_error', `The API answered HTTP ${raw.status}`);
}

/**
 * Generic typed request: resolves with the JSON body of a 2xx answer,
 * throws ApiError otherwise.
 */
export async function request<T>(path: string, opts: RequestOptions = {}): Promise<T> {
	const raw = await exchange(path, opts);
	if (!raw.ok) throw toApiError(raw);
	if (!isRecord(raw.json) && !Array.isArray(raw.json)) {
		throw new ApiError(raw.status, 'bad_response', 'Empty or malformed answer from the API');
	}
	return raw.json as T;
}

function isChecks(v: unknown): v is HealthChecks {
	return isRecord(v) && Object.values(v).every((x) => typeof x === 'string');
}

/* ----- Endpoints --------------------------------------------------------- */

/**
 * Health report. A 503 "unhealthy" answer is a valid report (it lists which
 * check failed), so it is returned, not thrown. Any other failure throws.
 */
export async function getHealth(opts?: RequestOptions): Promise<HealthReport> {
	const raw = await exchange('/system/health', opts);
	const body = raw.json;
	if (raw.ok && isRecord(body) && body.status === 'ok' && isChecks(body.checks)) {
		return { status: 'ok', checks: body.checks };
	}
	if (raw.status === 503 && isApiErrorBody(body) && isChecks(body.checks)) {
		return { ...body, checks: body.checks };
	}
	if (raw.ok) {
		throw new ApiError(raw.status, 'bad_response', 'Malformed health report from the API');
	}
	throw toApiError(raw);
}

export function getSystemInfo(opts?: RequestOptions): Promise<SystemInfo> {
	return request<SystemInfo>('/system/info', opts);
}

/** Namespaced access for pages: `api.system.health()`. */
export const api = {
	system: {
		health: getHealth,
		info: getSystemInfo
	}
} as const;
