'use strict';
// laravel-echo (broadcaster 'pusher') against Clarion. Echo passes its options straight to
// pusher-js; its `authorizer` option (pusher-js' deprecated-but-supported custom authorizer) is
// how an Echo app plugs in its own auth, and here it signs with the pusher SDK.
const { describe, it, before, after, afterEach } = require('node:test');
const assert = require('node:assert/strict');
const { setup, uniq, waitConnected, recordWire } = require('../helpers/clients');
const { withTimeout, deferred } = require('../helpers/timing');

// Laravel broadcasts presence members with the model's integer id.
const ALICE = { user_id: 1, user_info: { id: 1, name: 'Alice' } };
const BOB = { user_id: 2, user_info: { id: 2, name: 'Bob' } };

/** Resolve when an Echo channel's subscription succeeds; reject on its error() callback. */
function echoSubscribed(channel, label) {
  return withTimeout(
    new Promise((resolve, reject) => {
      channel.subscribed(resolve);
      channel.error((err) => reject(new Error(`${label}: subscription error ${JSON.stringify(err)}`)));
    }),
    `Echo subscription to ${label}`
  );
}

/**
 * An Echo callback that records its first call; `await cb.wait()` gives the first argument
 * (pusher-js also passes a metadata object as the second one), with a timeout.
 */
function nextCall(label) {
  const d = deferred();
  const fn = (data) => d.resolve(data);
  fn.wait = () => withTimeout(d.promise, label);
  return fn;
}

const byId = (a, b) => a.id - b.id;

describe('laravel-echo', () => {
  let h;
  before(async () => {
    h = await setup();
  });
  afterEach(() => h && h.disconnectAll());
  after(async () => {
    if (h) await h.close();
  });

  async function connectedEcho(opts) {
    const echo = await h.echo(opts);
    await waitConnected(echo.connector.pusher);
    assert.equal(echo.connectionStatus(), 'connected');
    assert.match(echo.socketId(), /^\d+\.\d+$/);
    return echo;
  }

  it("Echo.channel().listen('OrderShipped') gets App\\Events\\OrderShipped; '.OrderShipped' gets the bare name", async () => {
    const echo = await connectedEcho();
    const name = uniq('orders.');
    const onNamespaced = nextCall('namespaced OrderShipped');
    const onBare = nextCall('bare .OrderShipped');
    const channel = echo.channel(name).listen('OrderShipped', onNamespaced).listen('.OrderShipped', onBare);
    await echoSubscribed(channel, name);

    // What Laravel's PusherBroadcaster sends: the event class name with backslashes.
    await h.sdk.trigger(name, 'App\\Events\\OrderShipped', { order: { id: 99 }, socket: null });
    assert.deepEqual(await onNamespaced.wait(), { order: { id: 99 }, socket: null });

    // broadcastAs('OrderShipped') events carry the bare name, which '.OrderShipped' listens to.
    await h.sdk.trigger(name, 'OrderShipped', { order: { id: 100 } });
    assert.deepEqual(await onBare.wait(), { order: { id: 100 } });
  });

  it('Echo.private().listen() with the custom authorizer', async () => {
    const echo = await connectedEcho();
    const room = uniq('orders.user.');
    const onEvent = nextCall('private OrderShipped');
    const channel = echo.private(room).listen('OrderShipped', onEvent);
    await echoSubscribed(channel, `private-${room}`);
    await h.sdk.trigger(`private-${room}`, 'App\\Events\\OrderShipped', { total: 12.5 });
    assert.deepEqual(await onEvent.wait(), { total: 12.5 });
  });

  it('Echo.encryptedPrivate().listen() decrypts', async () => {
    const echo = await connectedEcho();
    const room = uniq('secrets.');
    const onEvent = nextCall('encrypted event');
    const channel = echo.encryptedPrivate(room).listen('SecretShared', onEvent);
    await echoSubscribed(channel, `private-encrypted-${room}`);
    await h.sdk.trigger(`private-encrypted-${room}`, 'App\\Events\\SecretShared', { pin: '1234' });
    assert.deepEqual(await onEvent.wait(), { pin: '1234' });
  });

  it('Echo.join().here().joining().leaving()', async () => {
    const room = uniq('room.');
    const e1 = await connectedEcho({ presence: ALICE });
    const e2 = await connectedEcho({ presence: BOB });

    const here1 = nextCall('here() on Alice');
    const joining1 = nextCall('joining() on Alice');
    const leaving1 = nextCall('leaving() on Alice');
    e1.join(room).here(here1).joining(joining1).leaving(leaving1);
    assert.deepEqual(await here1.wait(), [ALICE.user_info]);

    const here2 = nextCall('here() on Bob');
    e2.join(room).here(here2);
    assert.deepEqual([...(await here2.wait())].sort(byId), [ALICE.user_info, BOB.user_info]);
    assert.deepEqual(await joining1.wait(), BOB.user_info);

    e2.leave(room);
    assert.deepEqual(await leaving1.wait(), BOB.user_info);
  });

  it('whisper() / listenForWhisper() between two Echo clients (private and presence)', async () => {
    const e1 = await connectedEcho({ presence: ALICE });
    const e2 = await connectedEcho({ presence: BOB });
    const wire1 = recordWire(e1.connector.pusher);

    const chat = uniq('chat.');
    const c1 = e1.private(chat);
    const heard = nextCall('whisper on the private channel');
    const c2 = e2.private(chat).listenForWhisper('typing', heard);
    await Promise.all([echoSubscribed(c1, `private-${chat}`), echoSubscribed(c2, `private-${chat}`)]);
    c1.whisper('typing', { name: 'Alice', typing: true });
    assert.deepEqual(await heard.wait(), { name: 'Alice', typing: true });

    const room = uniq('room.');
    const here1 = nextCall('here on Alice');
    const here2 = nextCall('here on Bob');
    const p1 = e1.join(room).here(here1);
    const heardInRoom = nextCall('whisper on the presence channel');
    e2.join(room).here(here2).listenForWhisper('typing', heardInRoom);
    await Promise.all([here1.wait(), here2.wait()]);
    p1.whisper('typing', { name: 'Alice', where: 'room' });
    assert.deepEqual(await heardInRoom.wait(), { name: 'Alice', where: 'room' });

    // Neither whisper came back to Alice.
    const marker = nextCall('marker on Alice');
    e1.private(chat).listen('.marker', marker);
    await h.sdk.trigger(`private-${chat}`, 'marker', {});
    await marker.wait();
    assert.deepEqual(wire1.filter((m) => m.event === 'client-typing'), []);
  });

  it('toOthers(): trigger with the Echo socketId() skips that client', async () => {
    const e1 = await connectedEcho();
    const e2 = await connectedEcho();
    const wire1 = recordWire(e1.connector.pusher);
    const name = uniq('feed.');
    const got2 = nextCall('event on e2');
    const c1 = e1.channel(name);
    const c2 = e2.channel(name).listen('PostCreated', got2);
    await Promise.all([echoSubscribed(c1, name), echoSubscribed(c2, name)]);

    await h.sdk.trigger(name, 'App\\Events\\PostCreated', { id: 5 }, { socket_id: e1.socketId() });
    assert.deepEqual(await got2.wait(), { id: 5 });
    const marker = nextCall('marker on e1');
    c1.listen('.marker', marker);
    await h.sdk.trigger(name, 'marker', {});
    await marker.wait();
    assert.deepEqual(wire1.filter((m) => m.event === 'App\\Events\\PostCreated'), []);
  });
});
