// The Unleash Proxy (@unleash/proxy) fed by Darklaunch's client API, and `unleash-proxy-client`
// in Node reading the proxy; emits the flag's value whenever the proxy client's answer changes.
import { createApp } from '@unleash/proxy';
import { UnleashClient, InMemoryStorageProvider } from 'unleash-proxy-client';
import { emit, setting, watch } from './harness.mjs';

const flag = setting('FLAG');
const proxy = createApp({
  unleashUrl: `${setting('DARKLAUNCH_URL')}/api`,
  unleashApiToken: setting('DARKLAUNCH_TOKEN'),
  unleashAppName: 'unleash-proxy-test',
  clientKeys: ['proxy-client-key'],
  refreshInterval: 200,
  metricsInterval: 1000,
  logLevel: 'warn',
});
const server = proxy.listen(0, '127.0.0.1', async () => {
  const url = `http://127.0.0.1:${server.address().port}/proxy`;
  emit({ event: 'proxy', url });
  const client = new UnleashClient({
    url,
    clientKey: 'proxy-client-key',
    appName: 'proxy-client-test',
    refreshInterval: 1,
    disableMetrics: true,
    storageProvider: new InMemoryStorageProvider(),
    context: { userId: 'u1' },
  });
  client.on('error', (error) => emit({ event: 'error', message: String(error) }));
  client.on('ready', () => {
    emit({ event: 'ready' });
    watch(() => ({
      enabled: client.isEnabled(flag),
      variant: client.getVariant(flag).name,
    }));
  });
  await client.start();
});
