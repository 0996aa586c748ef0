/** Text shown for a value the API reports as null (e.g. Docker down). */
export const UNAVAILABLE = 'unavailable';

export function orUnavailable(v: string | number | null | undefined): string {
	return v === null || v === undefined || v === '' ? UNAVAILABLE : String(v);
}

export function timeOfDay(d: Date | null): string {
	return d ? d.toLocaleTimeString(undefined, { hour12: false }) : '';
}
