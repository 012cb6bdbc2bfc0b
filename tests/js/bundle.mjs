// Bundle one tests/js/browser/ENTRY.mjs for a browser: node bundle.mjs ENTRY OUTFILE
import { build } from 'esbuild';

const [entry, outfile] = process.argv.slice(2);
await build({
  entryPoints: [new URL(`./browser/${entry}.mjs`, import.meta.url).pathname],
  bundle: true,
  format: 'iife',
  platform: 'browser',
  target: 'es2020',
  outfile,
  logLevel: 'warning',
});
