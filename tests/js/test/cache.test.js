'use strict';
// Cache channels (reference 2.8): the last event triggered through the HTTP API on a cache-*,
// private-cache-*, presence-cache-* or private-encrypted-cache-* channel is replayed to every new
// subscriber right after pusher_internal:subscription_succeeded; with nothing cached the
// subscriber gets {"event":"pusher:cache_miss","channel":C}. pusher-js emits both on the channel.
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, subscribe, uniq, waitConnected, recordWire } = require('../helpers/clients');
const { nextEvent, withTimeout, deferred } = require('../helpers/timing');

/**
 * Subscribe a pusher-js client to `name` with a handler for `event` bound *before* the
 * subscription, and wait for the subscription and the first `event`. Also records the order in
 * which the channel emitted subscription_succeeded and everything else (bind_global).
 * Resolves with {channel, data, order}.
 */
async function subscribeAndWait(pusher, name, event) {
  const order = [];
  const channel = pusher.subscribe(name);
  channel.bind_global((ev) => order.push(ev));
  const d = deferred();
  const onEvent = (data) => d.resolve(data);
  const onError = (err) => d.reject(new Error(`subscription_error on ${name}: ${JSON.stringify(err)}`));
  channel.bind(event, onEvent);
  channel.bind('pusher:subscription_error', onError);
  try {
    const data = await withTimeout(d.promise, `${event} on ${name}`);
    return { channel, data, order };
  } finally {
    channel.unbind(event, onEvent);
    channel.unbind('pusher:subscription_error', onError);
  }
}

describe('cache channels', () => {
  let h;
  before(async () => {
    h = await setup();
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  it('cache-*: a new subscriber gets the last triggered event, after subscription_succeeded', async () => {
    const name = uniq('cache-ticker.');
    await h.sdk.trigger(name, 'price', { v: 1 });
    await h.sdk.trigger(name, 'price', { v: 2 });
    await h.sdk.trigger(name, 'volume', { n: 7 }); // the last event, whatever its name

    const pusher = await h.connectedClient();
    const wire = recordWire(pusher);
    const { data, order, channel } = await subscribeAndWait(pusher, name, 'volume');
    assert.deepEqual(data, { n: 7 });
    assert.deepEqual(order.slice(0, 2), ['pusher:subscription_succeeded', 'volume']);
    assert.equal(channel.subscribed, true);

    // exactly one replayed event, and no cache_miss (flushed by a trigger that is delivered live)
    const live = nextEvent(channel, 'price', 'live price event');
    await h.sdk.trigger(name, 'price', { v: 3 });
    assert.deepEqual((await live)[0], { v: 3 });
    const events = wire.filter((m) => m.channel === name && !m.event.startsWith('pusher_internal:')).map((m) => [m.event, m.data]);
    assert.deepEqual(events, [
      ['volume', { n: 7 }],
      ['price', { v: 3 }],
    ]);

    // the live event is now the cached one for the next subscriber
    const other = await h.connectedClient();
    const second = await subscribeAndWait(other, name, 'price');
    assert.deepEqual(second.data, { v: 3 });
  });

  it('cache-*: with nothing triggered the subscriber gets pusher:cache_miss on the channel', async () => {
    const name = uniq('cache-empty.');
    const pusher = await h.connectedClient();
    const wire = recordWire(pusher);
    const { data, order } = await subscribeAndWait(pusher, name, 'pusher:cache_miss');
    assert.equal(data, undefined, 'pusher:cache_miss carries no data');
    assert.deepEqual(order.slice(0, 2), ['pusher:subscription_succeeded', 'pusher:cache_miss']);
    const frames = wire.filter((m) => m.event === 'pusher:cache_miss');
    assert.deepEqual(frames.map((m) => m.channel), [name]);
  });

  it('cache miss then cache hit: after a trigger, the next subscriber gets the event instead of a miss', async () => {
    const name = uniq('cache-later.');
    const a = await h.connectedClient();
    const first = await subscribeAndWait(a, name, 'pusher:cache_miss');
    assert.deepEqual(first.order.slice(0, 2), ['pusher:subscription_succeeded', 'pusher:cache_miss']);

    const live = nextEvent(first.channel, 'hello', 'live hello on the first subscriber');
    await h.sdk.trigger(name, 'hello', { x: 1 });
    await live;

    const b = await h.connectedClient();
    const wireB = recordWire(b);
    const second = await subscribeAndWait(b, name, 'hello');
    assert.deepEqual(second.data, { x: 1 });
    assert.deepEqual(wireB.filter((m) => m.event === 'pusher:cache_miss'), []);
  });

  it('private-cache-*: client events are never cached', async () => {
    const name = uniq('private-cache-chat.');
    const [a, b] = await Promise.all([h.connectedClient(), h.connectedClient()]);
    const [[chA], [chB]] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const got = nextEvent(chB, 'client-typing', 'client-typing on B');
    assert.equal(chA.trigger('client-typing', { typing: true }), true);
    await got; // the client event went through the server

    const c = await h.connectedClient();
    const third = await subscribeAndWait(c, name, 'pusher:cache_miss');
    assert.deepEqual(third.order.slice(0, 2), ['pusher:subscription_succeeded', 'pusher:cache_miss']);
    assert.ok(!third.order.includes('client-typing'), JSON.stringify(third.order));

    // while an HTTP trigger is
    const live = nextEvent(chB, 'server-says', 'server-says on B');
    await h.sdk.trigger(name, 'server-says', { ok: true });
    await live;
    const d = await h.connectedClient();
    const fourth = await subscribeAndWait(d, name, 'server-says');
    assert.deepEqual(fourth.data, { ok: true });
  });

  it('private-encrypted-cache-*: the cached event is replayed and pusher-js decrypts it', async () => {
    const name = uniq('private-encrypted-cache-vault.');
    await h.sdk.trigger(name, 'secret', { pin: 4321 });
    const pusher = await h.connectedClient();
    const { data, order } = await subscribeAndWait(pusher, name, 'secret');
    assert.deepEqual(data, { pin: 4321 });
    assert.deepEqual(order.slice(0, 2), ['pusher:subscription_succeeded', 'secret']);
  });

  it('presence-cache-* with Echo.join(): the cached event reaches .listen(); a miss reaches .listen(".pusher:cache_miss")', async () => {
    const echo = await h.echo({ presence: { user_id: 7, user_info: { name: 'Seven' } } });
    await waitConnected(echo.connector.pusher);

    const room = uniq('cache-room.');
    await h.sdk.trigger(`presence-${room}`, 'RoomState', { open: true });
    const hit = deferred();
    const here = deferred();
    echo
      .join(room)
      .here((members) => here.resolve(members))
      .listen('.RoomState', (data) => hit.resolve(data))
      .error((err) => hit.reject(new Error(`Echo join error ${JSON.stringify(err)}`)));
    const [members, state] = await Promise.all([
      withTimeout(here.promise, `Echo here() on presence-${room}`),
      withTimeout(hit.promise, `cached RoomState on presence-${room}`),
    ]);
    assert.deepEqual(members, [{ name: 'Seven' }]);
    assert.deepEqual(state, { open: true });

    const emptyRoom = uniq('cache-empty-room.');
    const miss = deferred();
    echo
      .join(emptyRoom)
      .listen('.pusher:cache_miss', () => miss.resolve(true))
      .listen('.RoomState', () => miss.reject(new Error('unexpected RoomState on an empty cache channel')));
    assert.equal(await withTimeout(miss.promise, `pusher:cache_miss on presence-${emptyRoom}`), true);
  });

  it('a non-cache channel gets neither a replay nor a cache_miss', async () => {
    const name = uniq('plain-');
    await h.sdk.trigger(name, 'old', { stale: true });
    const pusher = await h.connectedClient();
    const wire = recordWire(pusher);
    const [channel] = await subscribe(pusher, name);
    const live = nextEvent(channel, 'marker', 'marker on a plain channel');
    await h.sdk.trigger(name, 'marker', {});
    await live;
    assert.deepEqual(
      wire.filter((m) => m.channel === name && !m.event.startsWith('pusher_internal:')).map((m) => m.event),
      ['marker']
    );
  });
});
