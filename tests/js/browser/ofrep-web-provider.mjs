// The OpenFeature web SDK with the OFREP web provider (bulk evaluation, polling).
import { OpenFeature } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';
import { fail, report, settings, watch } from './page.mjs';

async function main() {
  await OpenFeature.setContext({ targetingKey: 'u1' });
  await OpenFeature.setProviderAndWait(
    new OFREPWebProvider({
      baseUrl: settings.url,
      headers: [['Authorization', `Bearer ${settings.token}`]],
      pollInterval: 500,
    }),
  );
  const client = OpenFeature.getClient();
  report({ ready: true });
  watch(() => {
    const details = client.getBooleanDetails(settings.flag, false);
    return { enabled: details.value, reason: details.reason, error: details.errorCode ?? null };
  });
}
main().catch(fail);
