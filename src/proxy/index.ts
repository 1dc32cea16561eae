export { generateGatewayKey, readKeysFile } from './keys.js';
export { type Route, resolveRoute } from './routes.js';
export { startProxy } from './server.js';
export { DEFAULT_TIMEOUTS } from './timeouts.js';
export type { GatewayKey, ProxyOptions, ProxyStats, ProxyTimeouts, RunningProxy } from './types.js';
