'use strict';
// Time limits and promise helpers. Nothing here sleeps for a fixed time except quietWindow(),
// which is used only to prove that something does NOT happen where no ordering trick exists.

const SCALE = Number(process.env.CLARION_TEST_TIMEOUT_SCALE || '1');
if (!(SCALE > 0)) {
  throw new Error(`CLARION_TEST_TIMEOUT_SCALE must be a positive number, got ${process.env.CLARION_TEST_TIMEOUT_SCALE}`);
}

/** Base time limit for any single wait (5 s, scaled). */
const TIMEOUT = Math.round(5000 * SCALE);

/** Reject with a clear message if `promise` does not settle within `ms`. */
function withTimeout(promise, label, ms = TIMEOUT) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${label}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * Resolve with the first emission of `event` on a pusher-js style emitter (bind/unbind), whose
 * arguments pass `predicate`. Returns an array [data, metadata].
 */
function nextEvent(emitter, event, label, predicate = () => true, ms = TIMEOUT) {
  let handler;
  const p = new Promise((resolve) => {
    handler = (data, metadata) => {
      if (predicate(data, metadata)) resolve([data, metadata]);
    };
    emitter.bind(event, handler);
  });
  return withTimeout(p, label || `event ${event}`, ms).finally(() => emitter.unbind(event, handler));
}

/** A promise with its resolve/reject exposed. */
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

/** Wait `ms` (scaled by the caller). Only for observing that nothing happens. */
function quietWindow(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

module.exports = { SCALE, TIMEOUT, withTimeout, nextEvent, deferred, quietWindow };
