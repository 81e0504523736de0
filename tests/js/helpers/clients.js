'use strict';
// Builds the official clients against a running Clarion server:
//  * the `pusher` server SDK (pusher-http-node) for triggering and for the HTTP API,
//  * pusher-js clients whose channel authorization / user authentication are custom handlers
//    that sign with the server SDK (authorizeChannel / authenticateUser), so every signature in
//    these tests comes from the official SDK,
//  * laravel-echo clients using the same signing through Echo's `authorizer` option.
//
// Encryption: `require('pusher-js')` in Node resolves to dist/node/pusher.js, which *is* the
// with-encryption build (PusherWithEncryption, tweetnacl bundled and set as `nacl`). The
// `pusher-js/with-encryption` entry point maps to the *web* bundle, which cannot load under Node
// ("self is not defined"), so the node entry is the one that exercises encrypted channels here.

const crypto = require('node:crypto');
const PusherServer = require('pusher');
const PusherJS = require('pusher-js');
// laravel-echo 2.x ships dist/echo.common.js as CommonJS code inside a "type": "module" package,
// so require('laravel-echo') fails under Node ("exports is not defined in ES module scope"). Its
// ESM build (the `import` export) works: load that one, lazily, with a dynamic import.
let echoModule;
async function loadEcho() {
  if (!echoModule) echoModule = await import('laravel-echo');
  return echoModule.default;
}
const { startServer } = require('./server');
const { TIMEOUT, nextEvent, withTimeout } = require('./timing');

/**
 * Sign a channel subscription with the official server SDK.
 * presenceData is only passed for presence channels.
 */
function sdkAuthorize(sdk, socketId, channelName, presenceData) {
  const isPresence = channelName.startsWith('presence-');
  if (isPresence && !presenceData) {
    throw new Error(`no presence data given for ${channelName}`);
  }
  return sdk.authorizeChannel(socketId, channelName, isPresence ? presenceData : undefined);
}

class Harness {
  constructor(server) {
    this.server = server;
    this.app = server.app;
    this.port = server.port;
    this.host = server.host;
    this.masterKeyBase64 = crypto.randomBytes(32).toString('base64');
    this.sdk = new PusherServer({
      appId: this.app.id,
      key: this.app.key,
      secret: this.app.secret,
      host: this.host,
      port: String(this.port),
      useTLS: false,
      encryptionMasterKeyBase64: this.masterKeyBase64,
      timeout: TIMEOUT,
    });
    this.clients = [];
    this.echos = [];
  }

  /** Options shared by pusher-js and Echo: plain ws to the local server, no stats/fallbacks. */
  connectionOptions() {
    return {
      wsHost: this.host,
      wsPort: this.port,
      forceTLS: false,
      enabledTransports: ['ws'],
      disableStats: true,
      cluster: 'mt1',
    };
  }

  /**
   * A pusher-js client.
   * @param {object} [opts]
   * @param {object} [opts.presence] presence data ({user_id, user_info}) for presence channels
   * @param {object} [opts.user] user data ({id, user_info}) for pusher.signin()
   * @param {function} [opts.authorize] override: (socketId, channelName) => authData
   * @param {string} [opts.key] app key to connect with (default: the server's app key)
   * @param {object} [opts.options] extra pusher-js options (e.g. activityTimeout)
   * @param {function} [opts.authenticate] override: (socketId) => {auth, user_data}
   */
  client(opts = {}) {
    const sdk = this.sdk;
    const authorize = opts.authorize || ((socketId, channelName) => sdkAuthorize(sdk, socketId, channelName, opts.presence));
    const pusher = new PusherJS(opts.key || this.app.key, {
      ...this.connectionOptions(),
      ...(opts.options || {}),
      channelAuthorization: {
        customHandler: ({ socketId, channelName }, callback) => {
          let data;
          try {
            data = authorize(socketId, channelName);
          } catch (err) {
            callback(err, null);
            return;
          }
          callback(null, data);
        },
      },
      userAuthentication: {
        customHandler: ({ socketId }, callback) => {
          let data;
          try {
            if (opts.authenticate) data = opts.authenticate(socketId);
            else if (opts.user) data = sdk.authenticateUser(socketId, opts.user);
            else throw new Error('this client has no user data');
          } catch (err) {
            callback(err, null);
            return;
          }
          callback(null, data);
        },
      },
    });
    this.clients.push(pusher);
    return pusher;
  }

  /** A pusher-js client that is already connected. */
  async connectedClient(opts = {}) {
    const pusher = this.client(opts);
    await waitConnected(pusher);
    return pusher;
  }

  /**
   * A laravel-echo client (broadcaster 'pusher') whose custom `authorizer` signs with the SDK.
   * Async because Echo is loaded through import().
   * @param {object} [opts]
   * @param {object} [opts.presence] presence data ({user_id, user_info}) for Echo.join()
   */
  async echo(opts = {}) {
    const Echo = await loadEcho();
    const sdk = this.sdk;
    const echo = new Echo({
      broadcaster: 'pusher',
      key: this.app.key,
      ...this.connectionOptions(),
      Pusher: PusherJS,
      authorizer: (channel) => ({
        authorize(socketId, callback) {
          let data;
          try {
            data = sdkAuthorize(sdk, socketId, channel.name, opts.presence);
          } catch (err) {
            callback(err, null);
            return;
          }
          callback(null, data);
        },
      }),
    });
    this.echos.push(echo);
    return echo;
  }

  /** Disconnect every client made so far (afterEach). */
  disconnectAll() {
    for (const echo of this.echos.splice(0)) echo.disconnect();
    for (const pusher of this.clients.splice(0)) pusher.disconnect();
  }

  async close() {
    this.disconnectAll();
    await this.server.stop();
  }

  /** GET through the SDK's signed request and return the parsed JSON body. */
  async getJSON(path, params) {
    const res = await withTimeout(this.sdk.get({ path, params }), `GET ${path}`);
    return res.json();
  }
}

/** Start a server with a fresh app and build a Harness around it. */
async function setup(serverOpts) {
  const server = await startServer(serverOpts);
  return new Harness(server);
}

/** Wait until a pusher-js client reaches `connected`. */
async function waitConnected(pusher) {
  if (pusher.connection.state === 'connected') return pusher.connection.socket_id;
  await nextEvent(pusher.connection, 'connected', 'pusher-js connection state "connected"');
  return pusher.connection.socket_id;
}

/**
 * Subscribe and wait for `pusher:subscription_succeeded`; reject early on
 * `pusher:subscription_error`. Resolves with [channel, successData].
 */
async function subscribe(pusher, name) {
  const channel = pusher.subscribe(name);
  let onError;
  const failed = new Promise((_, reject) => {
    onError = (err) => reject(new Error(`subscription_error on ${name}: ${JSON.stringify(err)}`));
    channel.bind('pusher:subscription_error', onError);
  });
  try {
    const [data] = await Promise.race([
      nextEvent(channel, 'pusher:subscription_succeeded', `pusher:subscription_succeeded on ${name}`),
      failed,
    ]);
    return [channel, data];
  } finally {
    channel.unbind('pusher:subscription_error', onError);
  }
}

/** A unique channel name suffix per test. */
function uniq(prefix) {
  return `${prefix}${crypto.randomBytes(6).toString('hex')}`;
}

/**
 * Record every event (including internal pusher: ones) a pusher-js channel emits, via
 * bind_global. Returns the live array of {event, data} (global callbacks get no metadata).
 */
function recordChannel(channel) {
  const seen = [];
  channel.bind_global((event, data) => {
    seen.push({ event, data });
  });
  return seen;
}

/**
 * Record every decoded frame the server sends to a pusher-js client (connection 'message'),
 * whatever the client does with it afterwards. Returns the live array of
 * {event, channel, data, user_id}. Used to prove that something was NOT sent: pusher-js itself
 * silently drops events for channels it is not subscribed to.
 */
function recordWire(pusher) {
  const seen = [];
  pusher.connection.bind('message', (msg) => {
    seen.push({ event: msg.event, channel: msg.channel, data: msg.data, user_id: msg.user_id });
  });
  return seen;
}

module.exports = { setup, Harness, waitConnected, subscribe, uniq, recordChannel, recordWire, sdkAuthorize, PusherJS, loadEcho };
