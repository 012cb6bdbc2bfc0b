// What the browser bundles share: settings from the page's query string, the state the test reads.
export const settings = Object.fromEntries(new URLSearchParams(window.location.search));

window.sdkState = { ready: false, value: null, errors: [] };

export function report(patch) {
  Object.assign(window.sdkState, patch);
}

export function fail(error) {
  window.sdkState.errors.push(String((error && error.stack) || error));
}

/** Call `read` every `ms` and store its answer as window.sdkState.value. */
export function watch(read, ms = 100) {
  const tick = async () => {
    try {
      report({ value: await read() });
    } catch (error) {
      fail(error);
    }
  };
  tick();
  return setInterval(tick, ms);
}
