// Node `unleash-client` in one of its push modes: MODE=streaming (Server-Sent Events on
// /api/client/streaming) or MODE=delta (polling /api/client/delta with the revision as ETag).
// CHECKS is a JSON list of [flag, context]; emits {event: 'value', value: [bool, ...]} whenever
// any answer changes, {event: 'mode'} if the SDK fails over, and its warnings.
import { initialize, InMemStorageProvider } from 'unleash-client';
import { emit, setting, watch } from './harness.mjs';

const mode = setting('MODE');
const checks = JSON.parse(setting('CHECKS'));
const experimentalMode =
  mode === 'streaming' ? { type: 'streaming' } : { type: 'polling', format: 'delta' };
const unleash = initialize({
  url: `${setting('DARKLAUNCH_URL')}/api`,
  appName: process.env.APP_NAME || `node-${mode}-test`,
  instanceId: process.env.INSTANCE_ID || `node-${mode}-1`,
  refreshInterval: 200,
  // The stream process serves only the stream; registration and metrics belong to web.
  disableMetrics: process.env.METRICS !== '1',
  metricsInterval: 1000,
  storageProvider: new InMemStorageProvider(),
  customHeaders: { Authorization: setting('DARKLAUNCH_TOKEN') },
  experimentalMode,
});
unleash.on('error', (error) => emit({ event: 'error', message: String(error) }));
unleash.on('warn', (message) => emit({ event: 'warn', message: String(message) }));
// The failover's `mode` event stays on the repository (Unleash does not forward it).
unleash.repository.on('mode', (change) => emit({ event: 'mode', change }));
unleash.on('synchronized', () => {
  emit({ event: 'ready', mode: unleash.repository.getMode ? unleash.repository.getMode() : mode });
  watch(() => checks.map(([flag, context]) => unleash.isEnabled(flag, context || {})), 50);
});
process.on('SIGTERM', () => {
  unleash.destroy();
  process.exit(0);
});
