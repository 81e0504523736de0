'use strict';
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, subscribe, uniq, waitConnected, recordWire } = require('../helpers/clients');
const { nextEvent } = require('../helpers/timing');

describe('client events (channel.trigger("client-…"))', () => {
  let h;
  before(async () => {
    h = await setup(); // the helper enables client messages (CLARION_APP_ENABLE_CLIENT_MESSAGES=true)
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  /**
   * Call after the receiver got the client event: prove the sender never got it back.
   * `wire` is the sender's recordWire(); `own` picks the sender's own event out of it.
   */
  async function assertNotEchoed(sender, channelName, wire, own) {
    const marker = nextEvent(sender.channel(channelName), 'marker', `marker on the sender (${channelName})`);
    await h.sdk.trigger(channelName, 'marker', {});
    await marker;
    assert.deepEqual(
      wire.filter(own),
      [],
      'a client event must never be sent back to its sender'
    );
  }

  it('private channel: reaches the other subscriber, never the sender', async () => {
    const [a, b] = [h.client(), h.client()];
    await Promise.all([waitConnected(a), waitConnected(b)]);
    const name = uniq('private-chat.');
    const [[chA], [chB]] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const [wireA, wireB] = [recordWire(a), recordWire(b)];

    const got = nextEvent(chB, 'client-typing', 'client-typing on B');
    assert.equal(chA.trigger('client-typing', { from: 'a', typing: true }), true);
    const [data, metadata] = await got;
    assert.deepEqual(data, { from: 'a', typing: true });
    assert.equal(metadata.user_id, undefined, 'no user_id on private channels');
    await assertNotEchoed(a, name, wireA, (m) => m.event === 'client-typing' && m.data.from === 'a');

    // and the other way round
    const back = nextEvent(chA, 'client-typing', 'client-typing on A');
    chB.trigger('client-typing', { from: 'b', typing: false });
    assert.deepEqual((await back)[0], { from: 'b', typing: false });
    await assertNotEchoed(b, name, wireB, (m) => m.event === 'client-typing' && m.data.from === 'b');
  });

  it('presence channel: receiver gets metadata.user_id of the sender', async () => {
    const alice = { user_id: 'u-alice', user_info: { name: 'Alice' } };
    const bob = { user_id: 'u-bob', user_info: { name: 'Bob' } };
    const [a, b] = [h.client({ presence: alice }), h.client({ presence: bob })];
    await Promise.all([waitConnected(a), waitConnected(b)]);
    const name = uniq('presence-chat.');
    const [[chA], [chB]] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const wireA = recordWire(a);

    const got = nextEvent(chB, 'client-typing', 'client-typing on B');
    chA.trigger('client-typing', { typing: true });
    const [data, metadata] = await got;
    assert.deepEqual(data, { typing: true });
    assert.equal(metadata.user_id, alice.user_id);

    await assertNotEchoed(a, name, wireA, (m) => m.event === 'client-typing');
  });

  it('a client event sent on a public channel is not delivered', async () => {
    const [a, b] = [h.client(), h.client()];
    await Promise.all([waitConnected(a), waitConnected(b)]);
    const name = uniq('public-chat.');
    const [[chA]] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const wireB = recordWire(b);
    const wireA = recordWire(a);

    chA.trigger('client-sneaky', { x: 1 });
    // The server handles A's frames in order: once A's next subscription succeeded, the client
    // event has been handled; the marker then proves nothing was queued for B.
    await subscribe(a, uniq('sync-'));
    const marker = nextEvent(b.channel(name), 'marker', 'marker on B');
    await h.sdk.trigger(name, 'marker', {});
    await marker;
    assert.deepEqual(wireB.filter((m) => m.event === 'client-sneaky'), []);
    assert.equal(a.connection.state, 'connected', 'a rejected client event must not close the socket');
    // Pusher answers with a pusher:error (code null) naming the reason (reference section 4).
    const errors = wireA.filter((m) => m.event === 'pusher:error');
    assert.equal(errors.length, 1, `expected one pusher:error for the rejected client event, got ${JSON.stringify(wireA)}`);
    assert.match(errors[0].data.message, /private and presence/);
  });
});

describe('client event rate limit (CLARION_APP_MAX_CLIENT_EVENTS_PER_SECOND=3)', () => {
  const LIMIT = 3;
  const BURST = 10;
  let h;
  before(async () => {
    h = await setup({ env: { CLARION_APP_MAX_CLIENT_EVENTS_PER_SECOND: String(LIMIT) } });
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  it('a burst past the limit: the first N reach the other client, the rest get pusher:error 4301, the socket stays', async () => {
    const [a, b] = [h.client(), h.client()];
    await Promise.all([waitConnected(a), waitConnected(b)]);
    const name = uniq('private-burst.');
    const [[chA], [chB]] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const wireA = recordWire(a);
    const errorsA = [];
    a.connection.bind('error', (err) => errorsA.push(err));
    const received = [];
    chB.bind('client-burst', (data) => received.push(data.i));

    const started = Date.now();
    for (let i = 0; i < BURST; i++) chA.trigger('client-burst', { i });
    // The server handles A's frames in order: once this subscription succeeded, every client
    // event of the burst has been handled (and its pusher:error, if any, sent before).
    await subscribe(a, uniq('sync-'));
    const elapsed = Date.now() - started;
    // Everything relayed to B was sent before this marker.
    const marker = nextEvent(chB, 'marker', 'marker on B');
    await h.sdk.trigger(name, 'marker', {});
    await marker;

    const rejected = wireA.filter((m) => m.event === 'pusher:error');
    assert.deepEqual(received.slice(0, LIMIT), [0, 1, 2], `the first ${LIMIT} events must go through; got ${JSON.stringify(received)}`);
    assert.deepEqual(received, [...received].sort((x, y) => x - y), 'relayed in order');
    // The bucket refills at LIMIT per second: a slow run may let a few more through.
    const allowed = LIMIT + Math.ceil((LIMIT * elapsed) / 1000);
    assert.ok(received.length <= allowed, `at most ${allowed} of ${BURST} events in ${elapsed} ms, got ${received.length}`);
    assert.equal(received.length + rejected.length, BURST, `every event is relayed or rejected: ${JSON.stringify(wireA)}`);
    for (const m of rejected) assert.equal(m.data.code, 4301, JSON.stringify(m));
    // pusher-js surfaces each as a connection 'error' event {type: 'PusherError', data: {code: 4301}}
    const pusherErrors = errorsA.filter((err) => err.type === 'PusherError' && err.data && err.data.code === 4301);
    assert.equal(pusherErrors.length, rejected.length, JSON.stringify(errorsA));
    assert.equal(a.connection.state, 'connected', 'a rate-limited client stays connected');
    assert.equal(chA.subscribed, true);

    // The limit is per connection: B's own events still go through to A.
    const fromB = [];
    const bDone = nextEvent(chA, 'client-reply', 'third client-reply from B on A', (data) => fromB.push(data.i) === LIMIT);
    for (let i = 0; i < LIMIT; i++) chB.trigger('client-reply', { i });
    await bDone;
    assert.deepEqual(fromB, [0, 1, 2]);

    // And A's bucket refills: keep offering one event every 150 ms until B gets one.
    const late = nextEvent(chB, 'client-late', 'a client event from A once its bucket refilled');
    const ticker = setInterval(() => chA.trigger('client-late', {}), 150);
    try {
      await late;
    } finally {
      clearInterval(ticker);
    }
    assert.equal(a.connection.state, 'connected');
  });
});
