// The OpenFeature server SDK with the OFREP provider in Node; emits the flag's value on change.
import { OpenFeature } from '@openfeature/server-sdk';
import { OFREPProvider } from '@openfeature/ofrep-provider';
import { emit, setting, watch } from './harness.mjs';

const flag = setting('FLAG');
await OpenFeature.setProviderAndWait(
  new OFREPProvider({
    baseUrl: setting('DARKLAUNCH_URL'),
    headers: [['Authorization', `Bearer ${setting('DARKLAUNCH_TOKEN')}`]],
  }),
);
const client = OpenFeature.getClient();
emit({ event: 'ready' });
watch(async () => {
  const details = await client.getBooleanDetails(flag, false, { targetingKey: 'u1' });
  return { enabled: details.value, reason: details.reason, error: details.errorCode ?? null };
});
