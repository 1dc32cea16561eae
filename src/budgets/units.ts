/** Money and time as the API writes them: dollars from integer nano-dollars, ISO 8601 instants. */
export const usd = (nanos: number): number => nanos / 1e9;
export const toNanos = (dollars: number): number => Math.round(dollars * 1e9);
export const iso = (ms: number): string => new Date(ms).toISOString();
