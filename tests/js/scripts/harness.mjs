// What every Node test script shares with tests/common/node.py: JSON lines both ways.
import { createInterface } from 'node:readline';

/** Write one message (a JSON line) for the test's NodeScript.wait_for(). */
export function emit(message) {
  process.stdout.write(JSON.stringify(message) + '\n');
}

const waiting = [];
const received = [];
createInterface({ input: process.stdin }).on('line', (line) => {
  const message = JSON.parse(line);
  const resolve = waiting.shift();
  if (resolve) resolve(message);
  else received.push(message);
});

/** The next message the test sent with NodeScript.send(). */
export function next() {
  if (received.length) return Promise.resolve(received.shift());
  return new Promise((resolve) => waiting.push(resolve));
}

/** A required environment variable (the test passes them to run_node). */
export function setting(name) {
  const value = process.env[name];
  if (value === undefined) {
    emit({ event: 'error', message: `missing environment variable ${name}` });
    process.exit(2);
  }
  return value;
}

/** Call `read` every `ms` and emit {event: 'value', value} whenever the answer changes. */
export function watch(read, ms = 100) {
  let last;
  const tick = async () => {
    try {
      const value = await read();
      if (JSON.stringify(value) !== JSON.stringify(last)) {
        last = value;
        emit({ event: 'value', value });
      }
    } catch (error) {
      emit({ event: 'error', message: String(error && error.stack || error) });
    }
  };
  tick();
  return setInterval(tick, ms);
}

process.on('unhandledRejection', (error) => {
  emit({ event: 'error', message: String(error && error.stack || error) });
});
