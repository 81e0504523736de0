'use strict';
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, subscribe, uniq, waitConnected } = require('../helpers/clients');
const { SCALE, nextEvent, quietWindow } = require('../helpers/timing');

describe('connection lifecycle (pusher-js)', () => {
  let h;
  before(async () => {
    h = await setup();
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  it('unknown app key: error 4001, connection ends disconnected/failed and does not retry', async () => {
    const pusher = h.client({ key: 'no-such-app-key' });
    const states = [];
    pusher.connection.bind('state_change', (s) => states.push(s.current));
    const errors = [];
    pusher.connection.bind('error', (e) => errors.push(e));

    const codeOf = (e) => (e && e.error && e.error.data ? e.error.data.code : e && e.data ? e.data.code : undefined);
    const [err] = await nextEvent(pusher.connection, 'error', 'connection error with code 4001', (e) => codeOf(e) === 4001);
    assert.equal(codeOf(err), 4001);

    const ended = ['disconnected', 'failed', 'unavailable'];
    if (!ended.includes(pusher.connection.state)) {
      await nextEvent(pusher.connection, 'state_change', 'a final connection state', (s) => ended.includes(s.current));
    }
    assert.ok(ended.includes(pusher.connection.state), `state is ${pusher.connection.state}`);
    assert.equal(pusher.connection.socket_id, undefined, 'never connected');

    // A refusal must not be retried. pusher-js would retry after 0 s (4200-range) or 1 s
    // (backoff, or a close code it does not understand); watch for longer than that. This is
    // the one place that waits a fixed time: it proves that something does not happen.
    // (The first 'connecting' happened inside the constructor, before `states` was recording.)
    await quietWindow(Math.round(1500 * SCALE));
    assert.ok(!states.includes('connecting'), `retried: ${states.join(' -> ')}`);
    assert.ok(!states.includes('connected'), `states: ${states.join(' -> ')}`);
    assert.ok(errors.every((e) => codeOf(e) === undefined || codeOf(e) === 4001), JSON.stringify(errors));
  });

  it('the right key still connects on the same server afterwards', async () => {
    const pusher = await h.connectedClient();
    assert.equal(pusher.connection.state, 'connected');
  });

  it('answers pusher-js activity pings with pong and keeps the socket', async () => {
    // activityTimeout: the client's silence threshold before it sends pusher:ping (the ws
    // transport has no protocol-level ping in pusher-js). pusher-js uses
    // min(this option, the server's activity_timeout).
    const pusher = h.client({ options: { activityTimeout: 200 } });
    const socketId = await waitConnected(pusher);
    assert.equal(pusher.connection.activityTimeout, 200);

    for (let i = 0; i < 2; i += 1) {
      await nextEvent(pusher.connection, 'message', `pusher:pong #${i + 1}`, (m) => m.event === 'pusher:pong');
    }
    assert.equal(pusher.connection.state, 'connected');
    assert.equal(pusher.connection.socket_id, socketId, 'no reconnect happened');

    // still usable
    const name = uniq('after-ping-');
    const [channel] = await subscribe(pusher, name);
    const got = nextEvent(channel, 'ok', 'event after pings');
    await h.sdk.trigger(name, 'ok', { ok: true });
    assert.deepEqual((await got)[0], { ok: true });
  });

  it('handshake advertises a usable activity_timeout', async () => {
    // pusher-js throws away a handshake without activity_timeout, and keeps
    // min(its own 120 s default, activity_timeout * 1000).
    const pusher = h.client();
    await waitConnected(pusher);
    const ms = pusher.connection.activityTimeout;
    assert.equal(typeof ms, 'number');
    assert.ok(ms >= 1000 && ms <= 120000, `activity timeout ${ms} ms`);
  });
});
