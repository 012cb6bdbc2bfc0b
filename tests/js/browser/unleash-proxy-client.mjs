// unleash-proxy-client (the browser SDK) against the frontend API, GET or POST (?post=1).
import { UnleashClient } from 'unleash-proxy-client';
import { fail, report, settings, watch } from './page.mjs';

const unleash = new UnleashClient({
  url: `${settings.url}/api/frontend`,
  clientKey: settings.token,
  appName: 'browser-test',
  refreshInterval: 1,
  metricsInterval: 1,
  usePOSTrequests: settings.post === '1',
  context: { userId: 'u1' },
});
unleash.on('error', fail);
unleash.on('ready', () => {
  report({ ready: true });
  watch(() => ({
    enabled: unleash.isEnabled(settings.flag),
    variant: unleash.getVariant(settings.flag).name,
  }));
});
unleash.start().catch(fail);
