// Node `unleash-client`: read the flags once and emit {event: 'answers', answers: {FLAG: bool}}
// for the comma-separated FLAGS (context: the JSON in CONTEXT, default {}).
import { initialize } from 'unleash-client';
import { emit, setting } from './harness.mjs';

const flags = setting('FLAGS').split(',');
const context = JSON.parse(process.env.CONTEXT || '{}');
const unleash = initialize({
  url: `${setting('DARKLAUNCH_URL')}/api`,
  appName: 'node-evaluate',
  disableMetrics: true,
  customHeaders: { Authorization: setting('DARKLAUNCH_TOKEN') },
});
unleash.on('error', (error) => emit({ event: 'error', message: String(error) }));
unleash.on('synchronized', () => {
  const answers = Object.fromEntries(flags.map((f) => [f, unleash.isEnabled(f, context)]));
  emit({ event: 'answers', answers });
  unleash.destroy();
});
