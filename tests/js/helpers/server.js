'use strict';
// Spawns a Clarion server for one test file and stops it afterwards.
//
// The executable comes from $CLARION_BIN, else ../../.venv/bin/clarion relative to tests/js.
// Every call to startServer() makes a fresh random app (numeric id, random key/secret), so
// test files never share state.

const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const path = require('node:path');
const { TIMEOUT } = require('./timing');

const CLARION_BIN = process.env.CLARION_BIN || path.resolve(__dirname, '..', '..', '..', '.venv', 'bin', 'clarion');

const LISTEN_RE = /clarion: listening on ws:\/\/([^:\s]+):(\d+)/;

function randomApp() {
  return {
    // Server SDKs (pusher-http-python among them) insist on an all-digit app id.
    id: String(100000 + crypto.randomInt(900000)),
    key: crypto.randomBytes(10).toString('hex'),
    secret: crypto.randomBytes(16).toString('hex'),
  };
}

/**
 * Start `clarion serve` on 127.0.0.1, port 0, with one app.
 * @param {object} [opts]
 * @param {object} [opts.env] extra environment variables (e.g. CLARION_APP_* settings)
 * @returns {Promise<{host:string, port:number, app:{id,key,secret}, stop:() => Promise<void>, output:() => string}>}
 */
function startServer(opts = {}) {
  const app = randomApp();
  const env = {
    ...process.env,
    PUSHER_APP_ID: app.id,
    PUSHER_APP_KEY: app.key,
    PUSHER_APP_SECRET: app.secret,
    CLARION_APP_ENABLE_CLIENT_MESSAGES: 'true',
    PYTHONUNBUFFERED: '1',
    ...(opts.env || {}),
  };
  const child = spawn(CLARION_BIN, ['serve', '--host', '127.0.0.1', '--port', '0'], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });

  let log = '';
  let exited = false;
  const exitPromise = new Promise((resolve) => {
    child.once('exit', (code, signal) => {
      exited = true;
      resolve({ code, signal });
    });
    // A spawn failure (ENOENT, EACCES) emits 'error' and never 'exit'.
    child.once('error', (err) => {
      if (child.pid === undefined) {
        exited = true;
        resolve({ code: null, signal: null, error: err });
      }
    });
  });

  const stop = async () => {
    if (exited) return;
    child.kill('SIGTERM');
    let timer;
    const killed = await Promise.race([
      exitPromise.then(() => false),
      new Promise((resolve) => {
        timer = setTimeout(() => resolve(true), TIMEOUT);
      }),
    ]);
    clearTimeout(timer);
    if (killed) {
      child.kill('SIGKILL');
      await exitPromise;
      throw new Error(`clarion did not exit within ${TIMEOUT} ms of SIGTERM; killed.\n${log}`);
    }
  };

  return new Promise((resolve, reject) => {
    let settled = false;
    let buffered = '';
    const timer = setTimeout(() => {
      fail(new Error(`clarion did not print its listening line within ${TIMEOUT} ms. Output so far:\n${log}`));
    }, TIMEOUT);

    function fail(err) {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stop().catch(() => {}).finally(() => reject(err));
    }

    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk) => {
      log += chunk;
    });
    child.stdout.on('data', (chunk) => {
      log += chunk;
      if (settled) return;
      buffered += chunk;
      const m = LISTEN_RE.exec(buffered);
      if (m) {
        settled = true;
        clearTimeout(timer);
        resolve({
          host: m[1],
          port: Number(m[2]),
          app,
          stop,
          output: () => log,
        });
      }
    });
    exitPromise.then(({ code, signal, error }) => {
      if (error) fail(new Error(`cannot start ${CLARION_BIN}: ${error.message} (set CLARION_BIN?)`));
      else fail(new Error(`clarion exited early (code ${code}, signal ${signal}). Output:\n${log}`));
    });
  });
}

module.exports = { startServer, CLARION_BIN };
