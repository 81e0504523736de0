'use strict';
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, subscribe, uniq, recordWire, waitConnected } = require('../helpers/clients');
const { nextEvent } = require('../helpers/timing');

describe('public channels (pusher-js + pusher SDK)', () => {
  let h;
  before(async () => {
    h = await setup();
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  it('connects with a socket_id every server SDK accepts', async () => {
    const pusher = h.client();
    const socketId = await waitConnected(pusher);
    assert.match(socketId, /^\d+\.\d+$/);
    assert.equal(pusher.connection.state, 'connected');
  });

  it('subscribes, gets pusher:subscription_succeeded and receives an SDK-triggered event', async () => {
    const pusher = await h.connectedClient();
    const name = uniq('orders-');
    const [channel] = await subscribe(pusher, name);
    assert.equal(channel.subscribed, true);

    const payload = { id: 42, items: ['book', 'pen'], note: 'héllo ✓ "quoted" \\ back', nested: { ok: true, n: null } };
    const received = nextEvent(channel, 'order-shipped', 'order-shipped on the public channel');
    const res = await h.sdk.trigger(name, 'order-shipped', payload);
    assert.equal(res.status, 200);
    const [data] = await received;
    assert.deepEqual(data, payload);
  });

  it('delivers string data unchanged', async () => {
    const pusher = await h.connectedClient();
    const name = uniq('strings-');
    const [channel] = await subscribe(pusher, name);
    const received = nextEvent(channel, 'plain', 'plain-text event');
    await h.sdk.trigger(name, 'plain', 'just some text, not JSON');
    const [data] = await received;
    assert.equal(data, 'just some text, not JSON');
  });

  it('trigger with socket_id excludes that socket but not the others', async () => {
    const [a, b] = [h.client(), h.client()];
    await Promise.all([waitConnected(a), waitConnected(b)]);
    const name = uniq('excl-');
    const [[chA], [chB]] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const wireA = recordWire(a);

    const bGot = nextEvent(chB, 'news', 'news on client B');
    await h.sdk.trigger(name, 'news', { headline: 'only for others' }, { socket_id: a.connection.socket_id });
    const [data] = await bGot;
    assert.deepEqual(data, { headline: 'only for others' });

    // The server writes to each socket in order: once A has the marker (triggered after B got
    // `news`), an un-excluded `news` would already have reached A.
    const aMarker = nextEvent(chA, 'marker', 'marker on client A');
    await h.sdk.trigger(name, 'marker', { n: 1 });
    await aMarker;
    assert.deepEqual(
      wireA.filter((e) => e.event === 'news'),
      [],
      'the socket named in socket_id must not receive the event'
    );
  });

  it('triggers to several channels at once and in a batch', async () => {
    const pusher = await h.connectedClient();
    const [n1, n2] = [uniq('multi-a-'), uniq('multi-b-')];
    const [[c1], [c2]] = await Promise.all([subscribe(pusher, n1), subscribe(pusher, n2)]);

    const both = Promise.all([nextEvent(c1, 'multi', 'multi on c1'), nextEvent(c2, 'multi', 'multi on c2')]);
    await h.sdk.trigger([n1, n2], 'multi', { to: 'both' });
    const [[d1], [d2]] = await both;
    assert.deepEqual(d1, { to: 'both' });
    assert.deepEqual(d2, { to: 'both' });

    const batch = Promise.all([nextEvent(c1, 'b1', 'b1 on c1'), nextEvent(c2, 'b2', 'b2 on c2')]);
    const res = await h.sdk.triggerBatch([
      { channel: n1, name: 'b1', data: { i: 1 } },
      { channel: n2, name: 'b2', data: { i: 2 } },
    ]);
    assert.equal(res.status, 200);
    const [[b1], [b2]] = await batch;
    assert.deepEqual(b1, { i: 1 });
    assert.deepEqual(b2, { i: 2 });
  });

  it('stops delivering after unsubscribe and reports the channel as vacated', async () => {
    const [a, b] = [h.client(), h.client()];
    await Promise.all([waitConnected(a), waitConnected(b)]);
    const name = uniq('leave-');
    const [, [chB]] = await Promise.all([subscribe(a, name), subscribe(b, name)]);
    const wireA = recordWire(a);

    const info = await h.getJSON(`/channels/${name}`, { info: 'subscription_count' });
    assert.equal(info.occupied, true);
    assert.equal(info.subscription_count, 2);

    a.unsubscribe(name);
    // pusher:unsubscribe has no reply: a later subscribe on the same socket is processed after it.
    await subscribe(a, uniq('sync-'));
    const bGot = nextEvent(chB, 'after', 'event after A left');
    await h.sdk.trigger(name, 'after', { x: 1 });
    await bGot;
    assert.deepEqual(wireA.filter((e) => e.event === 'after'), [], 'no frame for a channel the socket left');

    const after1 = await h.getJSON(`/channels/${name}`, { info: 'subscription_count' });
    assert.equal(after1.subscription_count, 1);
  });
});
