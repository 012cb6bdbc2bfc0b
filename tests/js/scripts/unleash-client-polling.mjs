// Node `unleash-client` polling /api/client/features; emits the flag's value whenever it changes.
import { initialize } from 'unleash-client';
import { emit, setting, watch } from './harness.mjs';

const flag = setting('FLAG');
const unleash = initialize({
  url: `${setting('DARKLAUNCH_URL')}/api`,
  appName: 'node-polling-test',
  instanceId: 'node-1',
  refreshInterval: 200,
  metricsInterval: 1000,
  customHeaders: { Authorization: setting('DARKLAUNCH_TOKEN') },
});
unleash.on('error', (error) => emit({ event: 'error', message: String(error) }));
unleash.on('synchronized', () => {
  emit({ event: 'ready' });
  watch(() => ({
    enabled: unleash.isEnabled(flag, { userId: 'u1' }),
    variant: unleash.getVariant(flag, { userId: 'u1' }).name,
  }));
});
