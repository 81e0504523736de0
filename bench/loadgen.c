/*
 * loadgen: a single-threaded epoll load generator for Clarion (Pusher Channels protocol v7).
 *
 * It opens S WebSocket subscribers on one public channel and K keep-alive HTTP/1.1 connections to
 * the HTTP API, then triggers events (POST /apps/{id}/events, signed as in reference 5.2) either
 * closed-loop (each HTTP connection keeps --depth requests in flight) or at a fixed rate. Every
 * event's data is a fixed-size string "S<seq:10>T<send CLOCK_MONOTONIC ns:20>xxx..." so each
 * subscriber can measure latency and the generator can count lost and duplicated deliveries
 * exactly (one bit per (event, subscriber)).
 *
 * --scenario client|presence|churn selects the other workloads (client events on private
 * channels, presence join/leave churn, connection churn); see the "Scenarios" section below.
 *
 * Cluster runs: --src-ips spreads the connections over several loopback source addresses
 * (127.0.0.2, 127.0.1.1+4, ...), so that one generator can exceed the ~28k source ports of one
 * (source, destination) pair and several generators never share a source address; --ports
 * spreads the subscribers over several destination ports and --pub-port sends the HTTP API
 * requests to another one (subscribers on one node, triggers through another). SETUP reports
 * CLOCK_MONOTONIC stamps of its start and last subscription, for a setup rate over several
 * generator processes.
 *
 * Everything is hand-rolled (WebSocket client framing, HTTP/1.1 response parsing, MD5,
 * HMAC-SHA256) so it builds with a bare `gcc -O2`. Output: one line per phase on stdout,
 * "SETUP {json}" then "RESULT {json}". With --interactive it waits for a line on stdin after each
 * of those lines (the driver samples the server's CPU and memory meanwhile).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------------------ */
/* MD5 (RFC 1321) and SHA-256 / HMAC-SHA256 (FIPS 180-4, RFC 2104)                            */

typedef struct {
    uint32_t h[4];
    uint64_t len;
    uint8_t buf[64];
    size_t n;
} md5_ctx;

static uint32_t md5_k[64];
static const uint8_t md5_r[64] = {7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
                                  5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20, 5, 9,  14, 20,
                                  4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
                                  6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21};

static void md5_init_table(void) {
    for (int i = 0; i < 64; i++) md5_k[i] = (uint32_t)(fabs(sin((double)(i + 1))) * 4294967296.0);
}

#define ROL(x, c) (((x) << (c)) | ((x) >> (32 - (c))))
#define ROR(x, c) (((x) >> (c)) | ((x) << (32 - (c))))

static void md5_block(md5_ctx *c, const uint8_t *p) {
    uint32_t w[16];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[i * 4] | (uint32_t)p[i * 4 + 1] << 8 | (uint32_t)p[i * 4 + 2] << 16 |
               (uint32_t)p[i * 4 + 3] << 24;
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
    for (int i = 0; i < 64; i++) {
        uint32_t f;
        int g;
        if (i < 16) {
            f = (b & cc) | (~b & d);
            g = i;
        } else if (i < 32) {
            f = (d & b) | (~d & cc);
            g = (5 * i + 1) & 15;
        } else if (i < 48) {
            f = b ^ cc ^ d;
            g = (3 * i + 5) & 15;
        } else {
            f = cc ^ (b | ~d);
            g = (7 * i) & 15;
        }
        uint32_t t = d;
        d = cc;
        cc = b;
        b = b + ROL(a + f + md5_k[i] + w[g], md5_r[i]);
        a = t;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
}

static void md5(const void *data, size_t len, uint8_t out[16]) {
    md5_ctx c = {{0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476}, 0, {0}, 0};
    const uint8_t *p = data;
    size_t i = 0;
    for (; i + 64 <= len; i += 64) md5_block(&c, p + i);
    uint8_t tail[128] = {0};
    size_t rem = len - i;
    memcpy(tail, p + i, rem);
    tail[rem] = 0x80;
    size_t tl = rem + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = (uint64_t)len * 8;
    for (int j = 0; j < 8; j++) tail[tl - 8 + j] = (uint8_t)(bits >> (8 * j));
    md5_block(&c, tail);
    if (tl == 128) md5_block(&c, tail + 64);
    for (int j = 0; j < 4; j++)
        for (int k = 0; k < 4; k++) out[j * 4 + k] = (uint8_t)(c.h[j] >> (8 * k));
}

static const uint32_t sha_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

typedef struct {
    uint32_t h[8];
    uint64_t len; /* bytes hashed so far */
    uint8_t buf[64];
    size_t n;
} sha256_ctx;

static void sha256_block(uint32_t h[8], const uint8_t *p) {
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[i * 4] << 24 | (uint32_t)p[i * 4 + 1] << 16 |
               (uint32_t)p[i * 4 + 2] << 8 | (uint32_t)p[i * 4 + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4], f = h[5], g = h[6], hh = h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = hh + S1 + ch + sha_k[i] + w[i];
        uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
        uint32_t mj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = S0 + mj;
        hh = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
}

static void sha256_init(sha256_ctx *c) {
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    memcpy(c->h, iv, sizeof iv);
    c->len = 0;
    c->n = 0;
}

static void sha256_update(sha256_ctx *c, const void *data, size_t len) {
    const uint8_t *p = data;
    c->len += len;
    while (len) {
        if (c->n == 0 && len >= 64) {
            sha256_block(c->h, p);
            p += 64;
            len -= 64;
            continue;
        }
        size_t take = 64 - c->n < len ? 64 - c->n : len;
        memcpy(c->buf + c->n, p, take);
        c->n += take;
        p += take;
        len -= take;
        if (c->n == 64) {
            sha256_block(c->h, c->buf);
            c->n = 0;
        }
    }
}

static void sha256_final(sha256_ctx *c, uint8_t out[32]) {
    uint64_t bits = c->len * 8;
    uint8_t pad = 0x80;
    sha256_update(c, &pad, 1);
    uint8_t z = 0;
    while (c->n != 56) sha256_update(c, &z, 1);
    uint8_t lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha256_update(c, lb, 8);
    for (int i = 0; i < 8; i++) {
        out[i * 4] = (uint8_t)(c->h[i] >> 24);
        out[i * 4 + 1] = (uint8_t)(c->h[i] >> 16);
        out[i * 4 + 2] = (uint8_t)(c->h[i] >> 8);
        out[i * 4 + 3] = (uint8_t)c->h[i];
    }
}

/* HMAC with the key's inner and outer states computed once. */
static sha256_ctx hmac_inner, hmac_outer;

static void hmac_set_key(const char *key) {
    uint8_t k[64] = {0}, ip[64], op[64];
    size_t kl = strlen(key);
    if (kl > 64) {
        sha256_ctx c;
        sha256_init(&c);
        sha256_update(&c, key, kl);
        sha256_final(&c, k);
    } else {
        memcpy(k, key, kl);
    }
    for (int i = 0; i < 64; i++) {
        ip[i] = k[i] ^ 0x36;
        op[i] = k[i] ^ 0x5c;
    }
    sha256_init(&hmac_inner);
    sha256_update(&hmac_inner, ip, 64);
    sha256_init(&hmac_outer);
    sha256_update(&hmac_outer, op, 64);
}

static void hmac_sha256(const void *msg, size_t len, uint8_t out[32]) {
    sha256_ctx c = hmac_inner;
    uint8_t inner[32];
    sha256_update(&c, msg, len);
    sha256_final(&c, inner);
    c = hmac_outer;
    sha256_update(&c, inner, 32);
    sha256_final(&c, out);
}

static void to_hex(const uint8_t *p, size_t n, char *out) {
    static const char hx[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hx[p[i] >> 4];
        out[2 * i + 1] = hx[p[i] & 15];
    }
    out[2 * n] = 0;
}

/* ------------------------------------------------------------------------------------------ */
/* Configuration and statistics                                                              */

static struct {
    const char *host;
    int port;
    const char *app_id, *key, *secret, *channel;
    int subs, pubs, depth, concurrency, payload, interactive;
    double rate, duration, warmup, drain, setup_timeout;
    enum { MODE_NONE, MODE_CLOSED, MODE_RATE } mode;
    long max_events;
    /* Scenarios other than fan-out (see the "Scenarios" section below). */
    int channels, senders, window, pool, leave_mode, close_mode, data_object;
    double cycle_timeout, verify_timeout;
    /* Fan-out with stalled subscribers (--stalled, see "Slow consumers" below). */
    int stalled, stall_rcvbuf, stall_mss, flood_bytes;
    double stall_at, stall_wake, stall_wait, flood_rate;
} cfg = {"127.0.0.1", 0, "123456", "bench-key", "bench-secret", "bench", 0, 0, 1, 200, 64, 0,
         0, 5, 1, 15, 120, MODE_NONE, 0, 4, 0, 1, 0, 2, 2, 1, 5, 10, 0, 4096, 0, 0, -1, -1, 10, 0};

/* fanout: S subscribers on one public channel, HTTP API triggers (the original scenario).
 * client: S subscribers on --channels private channels; some send client events.
 * presence: a presence channel with stable members and a pool that leaves and joins.
 * churn: connect, subscribe, get subscription_succeeded, disconnect, over and over. */
enum { SC_FANOUT, SC_CLIENT, SC_PRESENCE, SC_CHURN };
static int scenario = SC_FANOUT;
enum { LEAVE_UNSUB, LEAVE_CLOSE, LEAVE_MIXED };
enum { CLOSE_RST, CLOSE_WS, CLOSE_MIXED };

enum { K_SUB = 1, K_PUB = 2, K_CHURN = 3 };
enum {
    ST_CONNECTING = 1, ST_HANDSHAKE, ST_OPEN, ST_SUBSCRIBING, ST_SUBSCRIBED, ST_READY, ST_CLOSING,
    ST_CLOSED
};
/* Roles (client/presence scenarios). */
enum { R_NONE, R_STABLE, R_POOL, R_CHECKER, R_VERIFY };
/* Presence pool members. */
enum { P_NONE, P_IDLE, P_JOINING, P_JOINED, P_RECONNECTING };

typedef struct conn {
    int fd;
    uint8_t kind, state, want_out;
    uint32_t idx;
    char *in;
    uint32_t in_len, in_cap;
    char *out;
    uint32_t out_len, out_off, out_cap;
    uint32_t *fifo; /* publishers: sequence numbers of requests in flight, oldest first */
    uint32_t fifo_head, fifo_n, fifo_cap;
    /* Scenarios other than fan-out. */
    uint8_t ok;     /* reached subscription_succeeded during setup */
    uint8_t role, pstate, sender;
    uint16_t chan;  /* client events: channel index */
    int32_t user;   /* presence: current user id */
    uint32_t inflight;
    uint64_t t0, t1; /* churn: cycle start, close start (or "not before" for a closed slot) */
    char sid[32];   /* socket_id from pusher:connection_established */
    uint8_t stall;  /* fan-out: 0 healthy, else a STALL_* state (see "Slow consumers") */
    int16_t stall_k; /* index into stalls[] */
} conn;

#define MAX_CODES 16
static struct {
    /* setup */
    long sub_started, sub_ok, sub_failed, pub_ok, pub_failed;
    uint64_t t_setup0, t_last_sub;
    long connect_errors[8]; /* indexed by a small errno class */
    /* load */
    long triggers_sent, responses, responses_window, status_200, status_other, pipelined;
    long seq_exhausted;
    uint64_t deliveries, deliveries_window, deliveries_after_end, dups, unexpected, unparsed,
        fragmented;
    uint64_t max_lag_ns, last_delivery_ns;
    long pusher_errors, pings_answered, other_internal;
    long sub_closed_during_load, pub_closed;
    int codes[MAX_CODES][2];
    int ncodes;
    char first_error[256];
    char first_bad_status[256];
    /* client events */
    long err_4301, sub_errors, self_echo, wrong_channel, events_sent, events_window;
    uint64_t outstanding; /* deliveries still expected */
    /* presence */
    long joins_issued, joins_ok, join_failed, leaves_issued, leaves_unsub, leaves_close;
    long ops_outstanding, ops_done, ops_done_window, starved, reconnect_fail, seq_stable;
    uint64_t member_events_setup, last_setup_event_ns;
    /* connection churn */
    long cycles, cycles_window, churn_fail, fail_connect, fail_handshake, fail_subscribe,
        fail_timeout, close_frame, close_no_frame, close_timeout, closes_rst;
    /* verification through the HTTP API and a checker socket */
    int verify_status, verify_tries, verify_timed_out, checker_done;
    char verify_body[512];
    long api_count, roster_count, roster_expected, roster_missing, roster_extra;
} st;

/* Event data bytes at most: the server's message limit in the bench is 100 KB
 * (CLARION_APP_MAX_MESSAGE_SIZE_KB=100). */
#define MAX_PAYLOAD 65536

static conn *subs_arr, *pubs_arr;
static int epfd;
static uint64_t *bitmap; /* max_seq rows of row_words uint64 */
static size_t row_words;
static uint64_t *send_ns;
static uint16_t *status_of;
static long max_seq, next_seq;
static uint32_t *lat_us;
static size_t lat_n, lat_cap;
/* --latency-log FILE (fan-out): one "seq subscriber latency_us" line per counted delivery, to
 * see how a fan-out's latency grows along its subscribers and from one trigger to the next. */
static FILE *latency_log;
static uint64_t t_load0, t_warm, t_end;
static int phase;
enum { PH_SETUP, PH_WAIT_GO, PH_LOAD, PH_DRAIN, PH_VERIFY, PH_WAIT_QUIT, PH_EXIT };
static int stdin_line, stdin_eof;
static char req_host_hdr[64];
static struct sockaddr_in srv_addr;
static uint32_t rng_state = 2463534242u;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static void note_code(int code) {
    for (int i = 0; i < st.ncodes; i++)
        if (st.codes[i][0] == code) {
            st.codes[i][1]++;
            return;
        }
    if (st.ncodes < MAX_CODES) {
        st.codes[st.ncodes][0] = code;
        st.codes[st.ncodes][1] = 1;
        st.ncodes++;
    }
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------------------------------ */
/* Socket plumbing                                                                            */

static void ep_mod(conn *c, int want_out) {
    if (c->want_out == want_out) return;
    c->want_out = (uint8_t)want_out;
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void out_reserve(conn *c, size_t extra) {
    if (c->out_off && c->out_off == c->out_len) c->out_off = c->out_len = 0;
    if (c->out_len + extra <= c->out_cap) return;
    if (c->out_off) {
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_len + extra <= c->out_cap) return;
    }
    size_t cap = c->out_cap ? c->out_cap : 512;
    while (cap < c->out_len + extra) cap *= 2;
    c->out = realloc(c->out, cap);
    if (!c->out) die("out of memory");
    c->out_cap = (uint32_t)cap;
}

static void conn_close(conn *c, int code);

static void conn_flush(conn *c) {
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c->out_off += (uint32_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            ep_mod(c, 1);
            return;
        }
        conn_close(c, 1006);
        return;
    }
    c->out_off = c->out_len = 0;
    ep_mod(c, 0);
}

static void ws_send_text(conn *c, const char *s, size_t len) {
    out_reserve(c, len + 14);
    uint8_t *p = (uint8_t *)c->out + c->out_len;
    size_t h = 0;
    p[h++] = 0x81;
    if (len < 126) {
        p[h++] = (uint8_t)(0x80 | len);
    } else if (len < 65536) {
        p[h++] = 0x80 | 126;
        p[h++] = (uint8_t)(len >> 8);
        p[h++] = (uint8_t)len;
    } else {
        p[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) p[h++] = (uint8_t)((uint64_t)len >> (8 * i));
    }
    uint32_t m = rnd();
    uint8_t mk[4] = {(uint8_t)m, (uint8_t)(m >> 8), (uint8_t)(m >> 16), (uint8_t)(m >> 24)};
    memcpy(p + h, mk, 4);
    h += 4;
    for (size_t i = 0; i < len; i++) p[h + i] = (uint8_t)s[i] ^ mk[i & 3];
    c->out_len += (uint32_t)(h + len);
}

static void ws_send_control(conn *c, uint8_t opcode, const uint8_t *payload, size_t len) {
    if (len > 125) len = 125;
    out_reserve(c, len + 6);
    uint8_t *p = (uint8_t *)c->out + c->out_len;
    p[0] = 0x80 | opcode;
    p[1] = (uint8_t)(0x80 | len);
    uint32_t m = rnd();
    uint8_t mk[4] = {(uint8_t)m, (uint8_t)(m >> 8), (uint8_t)(m >> 16), (uint8_t)(m >> 24)};
    memcpy(p + 2, mk, 4);
    for (size_t i = 0; i < len; i++) p[6 + i] = payload[i] ^ mk[i & 3];
    c->out_len += (uint32_t)(6 + len);
}

static int errno_class(int e) {
    switch (e) {
    case ECONNREFUSED: return 1;
    case EADDRNOTAVAIL: return 2;
    case ETIMEDOUT: return 3;
    case ECONNRESET: return 4;
    case EMFILE: case ENFILE: return 5;
    case EPIPE: return 6;
    default: return 7;
    }
}

/* Source ports are bound explicitly, walking the ephemeral range: with ~19k connections to one
 * address the kernel's own search for a free port (__inet_hash_connect) costs the generator
 * ~150 us per connect. */
static int port_lo = 32768, port_hi = 60999, port_cursor, bind_ports = 1;
static long bind_fallbacks;

/* Several source addresses (--src-ips, all in 127/8: loopback accepts every one of them) and
 * destination ports (--ports for the subscribers, --pub-port for the HTTP API connections).
 * One (source address, destination) pair has only the ~28k ports of ip_local_port_range, so
 * more connections than that to one port need more source addresses; and several generator
 * processes loading one server must not share a source address, or their independently
 * walked source ports collide (connect: EADDRNOTAVAIL). Connections take the source addresses
 * round robin, each address with its own port cursor. */
#define MAX_SRC 64
#define MAX_DPORTS 64
static struct in_addr src_ips[MAX_SRC];
static int nsrc, src_cursor[MAX_SRC];
static long src_rr, src_used[MAX_SRC];
static int sub_ports[MAX_DPORTS], nsub_ports, pub_port;
/* --bind-range LO-HI: the source ports to walk instead of ip_local_port_range. A port this
 * process bind()s explicitly is skipped by the kernel when it picks a port for anybody's
 * unbound connect() (its bind bucket is not connect-reusable), whatever the address: tens of
 * thousands of explicitly bound ports inside ip_local_port_range leave every other process on
 * the machine with EADDRNOTAVAIL. Below the range, the ports are out of the kernel's way. */
static int bind_lo, bind_hi;
static long sub_port_ok[MAX_DPORTS];
static uint32_t *lat_port[MAX_DPORTS]; /* fan-out latency samples per --ports entry */
static size_t lat_port_n[MAX_DPORTS], lat_port_cap[MAX_DPORTS];
static void lat_push(uint32_t **a, size_t *n, size_t *cap, uint64_t ns);
static void print_lat(const char *prefix, uint32_t *a, size_t n);

static void bind_source_port(int fd) {
    struct in_addr ip = srv_addr.sin_addr;
    int *cursor = &port_cursor, k = 0;
    if (nsrc) {
        k = (int)(src_rr++ % nsrc);
        ip = src_ips[k];
        cursor = &src_cursor[k];
    }
    if (!bind_ports) {
        if (nsrc) { /* the address only; the kernel picks the port */
            struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0, .sin_addr = ip};
            if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0) {
                src_used[k]++;
                return;
            }
            bind_fallbacks++;
        }
        return;
    }
    int span = port_hi - port_lo + 1;
    for (int tries = 0; tries < 256; tries++) {
        int port = port_lo + ((*cursor)++ % span);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        a.sin_addr = ip;
        if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0) {
            if (nsrc) src_used[k]++;
            return;
        }
        if (errno != EADDRINUSE) break;
    }
    bind_fallbacks++; /* let connect() pick */
}

/* Where a connection goes: subscribers (and the checker socket) round robin over --ports by
 * index, HTTP API connections (publishers, flood, verify) to --pub-port. */
static int conn_dport(const conn *c) {
    if (c->kind == K_PUB) return pub_port;
    if (nsub_ports) return sub_ports[c->idx % (uint32_t)nsub_ports];
    return cfg.port;
}

static int conn_open(conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        st.connect_errors[errno_class(errno)]++;
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* Stalled subscribers (slow consumers): set before connect, the receive buffer bounds the
     * window, and the MSS (advertised in the SYN) bounds the server's send-buffer autotuning,
     * which on loopback (64 KiB MSS) grows to tcp_wmem's maximum, 4 MiB here. */
    if (c->stall && cfg.stall_rcvbuf > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &cfg.stall_rcvbuf, sizeof cfg.stall_rcvbuf);
    if (c->stall && cfg.stall_mss > 0)
        setsockopt(fd, IPPROTO_TCP, TCP_MAXSEG, &cfg.stall_mss, sizeof cfg.stall_mss);
    bind_source_port(fd);
    struct sockaddr_in dst = srv_addr;
    dst.sin_port = htons((uint16_t)conn_dport(c));
    if (connect(fd, (struct sockaddr *)&dst, sizeof dst) < 0 && errno != EINPROGRESS) {
        st.connect_errors[errno_class(errno)]++;
        close(fd);
        return -1;
    }
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->want_out = 1;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl: %s", strerror(errno));
    return 0;
}

/* Close without any accounting (RST: no TIME_WAIT left behind on either side). Also resets the
 * buffers so the conn can be opened again. */
static void conn_teardown(conn *c) {
    if (c->state == ST_CLOSED) return;
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(c->fd);
    c->fd = -1;
    c->state = ST_CLOSED;
    c->in_len = 0;
    c->out_len = c->out_off = 0;
    c->want_out = 0;
}

static void churn_lost(conn *c, int was, int code);
static void checker_lost(conn *c, int code);

static void conn_close(conn *c, int code) {
    if (c->state == ST_CLOSED) return;
    int was = c->state;
    conn_teardown(c);
    if (phase >= PH_WAIT_QUIT) return; /* our own shutdown */
    if (c->kind == K_CHURN) {
        churn_lost(c, was, code);
        return;
    }
    note_code(code);
    if (c->role == R_CHECKER) {
        checker_lost(c, code);
        return;
    }
    if (c->role == R_VERIFY) return; /* counted by the verify step */
    if (c->kind == K_SUB && c->role == R_POOL) {
        /* A pool member the server closed (or whose reconnect failed): out of the pool. */
        if (c->ok) st.sub_closed_during_load++;
        else st.sub_failed++;
        return;
    }
    if (c->kind == K_SUB) {
        if (was == ST_SUBSCRIBED || c->ok)
            st.sub_closed_during_load++;
        else
            st.sub_failed++;
    } else {
        if (was == ST_READY)
            st.pub_closed++;
        else
            st.pub_failed++;
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Subscribers                                                                                */

static void sub_start_handshake(conn *c) {
    char req[512];
    int n = snprintf(req, sizeof req,
                     "GET /app/%s?protocol=7&client=bench&version=1 HTTP/1.1\r\n"
                     "Host: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                     "Sec-WebSocket-Version: 13\r\n\r\n",
                     cfg.key, req_host_hdr);
    out_reserve(c, (size_t)n);
    memcpy(c->out + c->out_len, req, (size_t)n);
    c->out_len += (uint32_t)n;
    c->state = ST_HANDSHAKE;
}

static inline uint64_t parse_digits(const char *p, int n, int *ok) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) {
        unsigned d = (unsigned)(p[i] - '0');
        if (d > 9) {
            *ok = 0;
            return 0;
        }
        v = v * 10 + d;
    }
    return v;
}

static uint32_t *lat_t; /* slow consumers: send time of each latency sample, ms after load start */
static long stalled_rx;  /* deliveries to the stalled subscribers before they stalled */
static int nstalls;      /* slow consumers: stalled subscribers (--stalled) */
static char flood_channel[200]; /* their extra channel (--flood-bytes), "<channel>-slow" */
static long flood_subs_ok;

static void record_delivery(conn *c, const char *d, size_t avail) {
    int ok = 1;
    if (c->stall) { /* a stalled subscriber (before it stalls): not counted */
        stalled_rx++;
        return;
    }
    if (avail < 32 || d[0] != 'S' || d[11] != 'T') {
        st.unparsed++;
        return;
    }
    uint64_t seq = parse_digits(d + 1, 10, &ok);
    uint64_t t = parse_digits(d + 12, 20, &ok);
    if (!ok) {
        st.unparsed++;
        return;
    }
    uint64_t now = now_ns();
    st.deliveries++;
    st.last_delivery_ns = now;
    if (now >= t_warm && now < t_end) st.deliveries_window++;
    if (now >= t_end) st.deliveries_after_end++; /* the backlog left when the load stopped */
    if ((long)seq >= next_seq || send_ns[seq] != t) {
        st.unexpected++;
        return;
    }
    uint64_t *w = bitmap + seq * row_words + (c->idx >> 6);
    uint64_t bit = 1ull << (c->idx & 63);
    if (*w & bit) {
        st.dups++;
        return;
    }
    *w |= bit;
    if (t >= t_warm && t < t_end) {
        if (lat_n == lat_cap) {
            lat_cap = lat_cap ? lat_cap * 2 : (1u << 20);
            lat_us = realloc(lat_us, lat_cap * sizeof *lat_us);
            if (!lat_us) die("out of memory (latency samples)");
            if (cfg.stall_at >= 0) {
                lat_t = realloc(lat_t, lat_cap * sizeof *lat_t);
                if (!lat_t) die("out of memory (latency samples)");
            }
        }
        if (lat_t) lat_t[lat_n] = (uint32_t)((t - t_load0) / 1000000);
        uint64_t us = (now - t + 500) / 1000;
        lat_us[lat_n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
        if (latency_log)
            fprintf(latency_log, "%llu %u %llu\n", (unsigned long long)seq, c->idx,
                    (unsigned long long)us);
        if (nsub_ports > 1) { /* and per destination port (several nodes) */
            int k = (int)(c->idx % (uint32_t)nsub_ports);
            lat_push(&lat_port[k], &lat_port_n[k], &lat_port_cap[k], now - t);
        }
    }
}

#define STARTS(p, n, lit) ((n) >= sizeof(lit) - 1 && memcmp((p), (lit), sizeof(lit) - 1) == 0)

/* The string value of a top-level key ("event", "data") in a server envelope: a pointer to its
 * first character, or NULL. Not a JSON parser; enough for the server's envelopes, compact or not. */
static const char *json_str(const char *p, size_t n, const char *qkey, size_t qlen) {
    const char *end = p + n, *k = memmem(p, n, qkey, qlen);
    if (!k) return NULL;
    k += qlen;
    while (k < end && (*k == ' ' || *k == ':' || *k == '\t' || *k == '\n' || *k == '\r')) k++;
    return k < end && *k == '"' ? k + 1 : NULL;
}

static void on_established(conn *c, const char *p, size_t n);
static void on_subscribed(conn *c, const char *p, size_t n);
static void on_subscription_error(conn *c, const char *p, size_t n);
static void on_member_event(conn *c, const char *p, size_t n, int removed);
static void client_delivery(conn *c, const char *d, size_t avail);

static void sub_text(conn *c, const char *p, size_t n) {
    const char *e = STARTS(p, n, "{\"event\":\"") ? p + 10 : json_str(p, n, "\"event\"", 7);
    if (!e) {
        st.unparsed++;
        return;
    }
    size_t en = (size_t)(p + n - e);
    if (STARTS(e, en, "pusher")) {
        if (STARTS(e, en, "pusher:connection_established\"")) {
            if (c->state == ST_OPEN) on_established(c, p, n);
        } else if (STARTS(e, en, "pusher_internal:subscription_succeeded\"")) {
            if (c->stall && cfg.flood_bytes > 0 &&
                memmem(p, n, flood_channel, strlen(flood_channel)))
                flood_subs_ok++;
            else if (c->state == ST_SUBSCRIBING)
                on_subscribed(c, p, n);
        } else if (STARTS(e, en, "pusher_internal:member_added\"")) {
            on_member_event(c, p, n, 0);
        } else if (STARTS(e, en, "pusher_internal:member_removed\"")) {
            on_member_event(c, p, n, 1);
        } else if (STARTS(e, en, "pusher:ping\"")) {
            static const char pong[] = "{\"event\":\"pusher:pong\",\"data\":{}}";
            ws_send_text(c, pong, sizeof pong - 1);
            st.pings_answered++;
        } else if (STARTS(e, en, "pusher:error\"")) {
            st.pusher_errors++;
            const char *k = memmem(p, n, "\"code\":", 7);
            if (k && (size_t)(p + n - k) > 11 && memcmp(k + 7, "4301", 4) == 0) st.err_4301++;
            if (!st.first_error[0]) snprintf(st.first_error, sizeof st.first_error, "%.*s",
                                             (int)(n < 200 ? n : 200), p);
        } else if (STARTS(e, en, "pusher:subscription_error\"")) {
            st.sub_errors++;
            on_subscription_error(c, p, n);
        } else {
            st.other_internal++;
        }
        return;
    }
    const char *d = json_str(p, n, "\"data\"", 6);
    if (!d) {
        st.unparsed++;
        return;
    }
    if (scenario == SC_CLIENT)
        client_delivery(c, d, (size_t)(p + n - d));
    else
        record_delivery(c, d, (size_t)(p + n - d));
}

/* Consume complete frames from buf; returns bytes consumed, or -1 if the conn was closed. */
static long sub_frames(conn *c, char *buf, size_t len) {
    size_t off = 0;
    while (len - off >= 2) {
        uint8_t *p = (uint8_t *)buf + off;
        int fin = p[0] >> 7, op = p[0] & 15;
        uint64_t pl = p[1] & 127;
        size_t h = 2;
        if (p[1] & 0x80) { /* servers must not mask */
            conn_close(c, 1002);
            return -1;
        }
        if (pl == 126) {
            if (len - off < 4) break;
            pl = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (pl == 127) {
            if (len - off < 10) break;
            pl = 0;
            for (int i = 0; i < 8; i++) pl = pl << 8 | p[2 + i];
            h = 10;
        }
        if (pl > (1u << 20)) {
            conn_close(c, 1009);
            return -1;
        }
        if (len - off < h + pl) break;
        char *pay = (char *)p + h;
        if (!fin || op == 0) {
            st.fragmented++; /* the server sends whole messages; not expected */
        } else if (op == 1) {
            sub_text(c, pay, (size_t)pl);
            if (c->state == ST_CLOSED) return -1;
        } else if (op == 8) {
            int code = pl >= 2 ? ((uint8_t)pay[0] << 8 | (uint8_t)pay[1]) : 1005;
            if (c->kind == K_CHURN && c->state == ST_CLOSING) {
                /* The server's answer to our close frame: the clean end of a cycle. */
                st.close_frame++;
                conn_teardown(c);
                c->t1 = 0;
                return -1;
            }
            conn_close(c, code);
            return -1;
        } else if (op == 9) {
            ws_send_control(c, 10, (uint8_t *)pay, (size_t)pl);
        }
        off += h + pl;
    }
    return (long)off;
}

/* ------------------------------------------------------------------------------------------ */
/* Publishers (HTTP API)                                                                     */

static void fifo_push(conn *c, uint32_t v) {
    if (c->fifo_n == c->fifo_cap) {
        uint32_t cap = c->fifo_cap ? c->fifo_cap * 2 : 16;
        uint32_t *f = malloc(cap * sizeof *f);
        if (!f) die("out of memory");
        for (uint32_t i = 0; i < c->fifo_n; i++) f[i] = c->fifo[(c->fifo_head + i) % c->fifo_cap];
        free(c->fifo);
        c->fifo = f;
        c->fifo_head = 0;
        c->fifo_cap = cap;
    }
    c->fifo[(c->fifo_head + c->fifo_n) % c->fifo_cap] = v;
    c->fifo_n++;
}

static uint32_t fifo_pop(conn *c) {
    uint32_t v = c->fifo[c->fifo_head];
    c->fifo_head = (c->fifo_head + 1) % c->fifo_cap;
    c->fifo_n--;
    return v;
}

/* Append one signed POST /apps/{id}/events for `channel` whose data is "S<seq>T<t>" padded to
 * `payload` bytes. */
static void append_trigger(conn *c, const char *channel, uint32_t seq, uint64_t t, int payload) {
    static char data[MAX_PAYLOAD + 1], body[MAX_PAYLOAD + 512];
    char query[512], tosign[640], sig[65], md5hex[33];
    uint8_t dig[32];
    int dl = snprintf(data, sizeof data, "S%010uT%020llu", seq, (unsigned long long)t);
    while (dl < payload) data[dl++] = 'x';
    data[dl] = 0;
    int bl = snprintf(body, sizeof body, "{\"name\":\"e\",\"channels\":[\"%s\"],\"data\":\"%s\"}",
                      channel, data);
    md5(body, (size_t)bl, dig);
    to_hex(dig, 16, md5hex);
    int ql = snprintf(query, sizeof query,
                      "auth_key=%s&auth_timestamp=%ld&auth_version=1.0&body_md5=%s", cfg.key,
                      (long)time(NULL), md5hex);
    int sl = snprintf(tosign, sizeof tosign, "POST\n/apps/%s/events\n%s", cfg.app_id, query);
    hmac_sha256(tosign, (size_t)sl, dig);
    to_hex(dig, 32, sig);
    out_reserve(c, (size_t)(ql + bl) + 512);
    int rl = snprintf(c->out + c->out_len, c->out_cap - c->out_len,
                      "POST /apps/%s/events?%s&auth_signature=%s HTTP/1.1\r\nHost: %s\r\n"
                      "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                      cfg.app_id, query, sig, req_host_hdr, bl, body);
    c->out_len += (uint32_t)rl;
}

/* Append one fan-out trigger; returns 0 if the sequence space is exhausted. */
static int pub_trigger(conn *c) {
    if (next_seq >= max_seq) {
        st.seq_exhausted = 1;
        return 0;
    }
    uint32_t seq = (uint32_t)next_seq++;
    uint64_t t = now_ns();
    append_trigger(c, cfg.channel, seq, t, cfg.payload);
    send_ns[seq] = t;
    fifo_push(c, seq);
    st.triggers_sent++;
    return 1;
}

/* Slow consumers' flood channel "<channel>-slow": only the stalled subscribers join it; its
 * publisher has its own connection and its events are outside the loss/latency accounting. */
#define FLOOD_MARK 0xffffffffu
static conn flood_pub = {.fd = -1, .kind = K_PUB, .state = 0};
static int flood_ready;
static long flood_sent, flood_200, flood_other, flood_skipped;
static uint64_t flood_next_due;
static long flood_i;

static void flood_tick(uint64_t now) {
    while (flood_next_due <= now && now < t_end) {
        if (flood_pub.state == ST_READY && flood_pub.fifo_n < 4) {
            append_trigger(&flood_pub, flood_channel, (uint32_t)flood_sent, now_ns(),
                           cfg.flood_bytes);
            fifo_push(&flood_pub, FLOOD_MARK);
            flood_sent++;
        } else {
            flood_skipped++;
        }
        flood_i++;
        flood_next_due = t_load0 + (uint64_t)((double)flood_i * 1e9 / cfg.flood_rate);
    }
    if (flood_pub.out_len > flood_pub.out_off) conn_flush(&flood_pub);
}

static long pub_responses(conn *c, char *buf, size_t len, int *resend) {
    size_t off = 0;
    while (off < len) {
        char *hs = buf + off;
        char *he = memmem(hs, len - off, "\r\n\r\n", 4);
        if (!he) break;
        size_t hl = (size_t)(he - hs) + 4;
        long clen = 0;
        for (char *l = memchr(hs, '\n', hl); l && l < he; l = memchr(l + 1, '\n', (size_t)(he - l))) {
            if (strncasecmp(l + 1, "content-length:", 15) == 0) clen = strtol(l + 16, NULL, 10);
        }
        if (len - off < hl + (size_t)clen) break;
        int status = (int)strtol(hs + 9, NULL, 10);
        if (c == &flood_pub) {
            if (c->fifo_n) fifo_pop(c);
            if (status == 200) flood_200++;
            else flood_other++;
            off += hl + (size_t)clen;
            continue;
        }
        if (c->fifo_n == 0) {
            st.unparsed++;
        } else {
            uint32_t seq = fifo_pop(c);
            status_of[seq] = (uint16_t)status;
        }
        uint64_t now = now_ns();
        st.responses++;
        if (now >= t_warm && now < t_end) st.responses_window++;
        if (status == 200) {
            st.status_200++;
        } else {
            st.status_other++;
            if (!st.first_bad_status[0])
                snprintf(st.first_bad_status, sizeof st.first_bad_status, "%d %.*s", status,
                         (int)(clen < 160 ? clen : 160), hs + hl);
        }
        (*resend)++;
        off += hl + (size_t)clen;
    }
    return (long)off;
}

/* ------------------------------------------------------------------------------------------ */
/* Event dispatch                                                                            */

static char rxbuf[1 << 21];
static void verify_response(conn *c, size_t len);

static void on_writable(conn *c) {
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t sl = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &sl);
        if (err) {
            st.connect_errors[errno_class(err)]++;
            conn_close(c, 1006);
            return;
        }
        if (c->kind != K_PUB) {
            sub_start_handshake(c);
        } else {
            c->state = ST_READY;
            if (c == &flood_pub) flood_ready = 1;
            else st.pub_ok++;
        }
    }
    conn_flush(c);
}

static void on_readable(conn *c) {
    size_t have = c->in_len;
    if (have) memcpy(rxbuf, c->in, have);
    ssize_t n = recv(c->fd, rxbuf + have, sizeof rxbuf - have, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) {
        if (n < 0 && c->state == ST_CONNECTING) st.connect_errors[errno_class(errno)]++;
        conn_close(c, 1006);
        return;
    }
    if (c->role == R_VERIFY) {
        verify_response(c, (size_t)n + have);
        return;
    }
    size_t len = have + (size_t)n;
    size_t off = 0;
    if (c->kind != K_PUB) {
        if (c->state == ST_HANDSHAKE) {
            char *he = memmem(rxbuf, len, "\r\n\r\n", 4);
            if (!he) goto keep;
            if (len < 12 || memcmp(rxbuf + 9, "101", 3) != 0) {
                if (!st.first_error[0])
                    snprintf(st.first_error, sizeof st.first_error, "upgrade refused: %.*s",
                             (int)(len < 120 ? len : 120), rxbuf);
                conn_close(c, 1002);
                return;
            }
            off = (size_t)(he - rxbuf) + 4;
            c->state = ST_OPEN;
        }
        long used = sub_frames(c, rxbuf + off, len - off);
        if (used < 0) return;
        off += (size_t)used;
        if (c->out_len > c->out_off) conn_flush(c);
    } else {
        int resend = 0;
        off = (size_t)pub_responses(c, rxbuf, len, &resend);
        if (phase == PH_LOAD && cfg.mode == MODE_CLOSED && c != &flood_pub) {
            uint64_t now = now_ns();
            for (int i = 0; i < resend && now < t_end; i++)
                if (!pub_trigger(c)) break;
        }
        if (c->out_len > c->out_off) conn_flush(c);
    }
    if (c->state == ST_CLOSED) return;
keep:
    c->in_len = (uint32_t)(len - off);
    if (c->in_len) {
        if (c->in_len > c->in_cap) {
            c->in = realloc(c->in, c->in_len);
            if (!c->in) die("out of memory");
            c->in_cap = c->in_len;
        }
        memmove(c->in, rxbuf + off, c->in_len);
    }
}

/* ------------------------------------------------------------------------------------------ */
/* Scenarios: client events, presence churn, connection churn                                 */
/*
 * client (--scenario client): S subscribers on --channels private channels, contiguous blocks
 *   (subscriber i is on channel i*channels/S), each subscribed with a signed auth. --senders K of
 *   them (spread over the channels) send client events whose data holds the same
 *   "S<seq>T<stamp>" string as the fan-out events, as an object {"p":"..."} (default) or as a
 *   JSON string (--client-data string). Closed loop: each sender keeps --window events whose
 *   copies have not all arrived; rate: --rate events/s in all, round robin over the senders.
 *   Every other member of the channel that was subscribed when the load started must get each
 *   event exactly once; the sender must not get it back (self_echo).
 * presence (--scenario presence): --subs B stable members plus a --pool of C sockets on one
 *   presence channel; half of the pool joins during setup, so the channel holds B + C/2
 *   members. The load alternates leave and join operations: a leave is the oldest joined pool
 *   member unsubscribing or disconnecting (--leave unsub|close|mixed; a disconnected socket
 *   reconnects at once), a join is the oldest idle pool member subscribing as a new user
 *   (user ids are never reused). Rate: --rate operations/s; closed loop: --window operations in
 *   flight, an operation being done when every stable member has seen its member_added /
 *   member_removed (and, for a join, subscription_succeeded has arrived). Every stable member
 *   must see each event exactly once. Afterwards the roster is checked twice: HTTP API
 *   GET /apps/{id}/channels/{c}?info=subscription_count,user_count, then a checker socket that
 *   subscribes and compares the ids of its subscription_succeeded with the expected members.
 * churn (--scenario churn): --window slots, each repeating connect, upgrade,
 *   connection_established, subscribe to the public channel, subscription_succeeded, close;
 *   the close is a WebSocket close handshake (then RST) or a bare RST (--close ws|rst|mixed).
 *   Afterwards GET /apps/{id}/channels/{c}?info=subscription_count must reach 0.
 */

static uint32_t *lat2_us; /* presence: leave -> member_removed */
static size_t lat2_n, lat2_cap;
static uint32_t *seq_sender; /* client: subscriber index of each event's sender */
static uint32_t *ev_left;    /* receipts still expected per event (client) / operation (presence) */
static int *ch_lo;           /* client: first subscriber of each channel; ch_lo[channels] = subs */
static long *ch_ok;          /* client: subscribers of each channel subscribed when load starts */
static conn **senders_arr;
static int nsenders;
static uint64_t next_due;
static long rate_i, rr_i;
static long next_user, first_load_user, stable_ok, op_k, starved_op = -1;
static int pres_b, pres_c;
#define CHECKER_USER 999999999
static conn vconn = {.fd = -1, .kind = K_PUB, .role = R_VERIFY, .state = ST_CLOSED};
static conn checker = {.fd = -1, .kind = K_SUB, .role = R_CHECKER, .state = ST_CLOSED};

typedef struct {
    uint32_t *v;
    uint32_t head, n, cap;
} ring;
static ring q_idle, q_joined;

static void ring_push(ring *r, uint32_t x) {
    if (r->n == r->cap) die("presence queue overflow");
    r->v[(r->head + r->n) % r->cap] = x;
    r->n++;
}

static uint32_t ring_pop(ring *r) {
    uint32_t x = r->v[r->head];
    r->head = (r->head + 1) % r->cap;
    r->n--;
    return x;
}

static void lat_push(uint32_t **a, size_t *n, size_t *cap, uint64_t ns) {
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : (1u << 16);
        *a = realloc(*a, *cap * sizeof **a);
        if (!*a) die("out of memory (latency samples)");
    }
    uint64_t us = (ns + 500) / 1000;
    (*a)[(*n)++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int in_window(uint64_t t) { return t >= t_warm && t < t_end; }

static int channel_name(const conn *c, char *out, size_t n) {
    if (scenario == SC_CLIENT) return snprintf(out, n, "private-%s-%u", cfg.channel, c->chan);
    if (scenario == SC_PRESENCE) return snprintf(out, n, "presence-%s", cfg.channel);
    return snprintf(out, n, "%s", cfg.channel);
}

static void parse_socket_id(conn *c, const char *p, size_t n) {
    const char *k = memmem(p, n, "socket_id", 9), *end = p + n;
    size_t i = 0;
    if (k) {
        k += 9;
        while (k < end && (*k < '0' || *k > '9')) k++;
        while (k < end && i < sizeof c->sid - 1 && ((*k >= '0' && *k <= '9') || *k == '.'))
            c->sid[i++] = *k++;
    }
    c->sid[i] = 0;
}

/* Channel auth (reference 3.1): "<key>:<hex HMAC-SHA256 of socket_id:channel[:channel_data]>". */
static void sign_auth(const char *sid, const char *ch, const char *cdata, char *out, size_t on) {
    char buf[1200], hx[65];
    uint8_t d[32];
    int n = cdata ? snprintf(buf, sizeof buf, "%s:%s:%s", sid, ch, cdata)
                  : snprintf(buf, sizeof buf, "%s:%s", sid, ch);
    hmac_sha256(buf, (size_t)n, d);
    to_hex(d, 32, hx);
    snprintf(out, on, "%s:%s", cfg.key, hx);
}

static void send_subscribe(conn *c) {
    char ch[256], auth[200], f[1024];
    int k;
    channel_name(c, ch, sizeof ch);
    if (scenario == SC_CLIENT) {
        sign_auth(c->sid, ch, NULL, auth, sizeof auth);
        k = snprintf(f, sizeof f,
                     "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\",\"auth\":\"%s\"}}",
                     ch, auth);
    } else if (scenario == SC_PRESENCE) {
        char cd[96];
        snprintf(cd, sizeof cd, "{\"user_id\":\"%d\",\"user_info\":{}}", c->user);
        sign_auth(c->sid, ch, cd, auth, sizeof auth);
        k = snprintf(f, sizeof f,
                     "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\",\"auth\":\"%s\","
                     "\"channel_data\":\"{\\\"user_id\\\":\\\"%d\\\",\\\"user_info\\\":{}}\"}}",
                     ch, auth, c->user);
    } else {
        k = snprintf(f, sizeof f,
                     "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\",\"auth\":\"\"}}",
                     ch);
    }
    ws_send_text(c, f, (size_t)k);
    c->state = ST_SUBSCRIBING;
}

static void setup_subscribed(conn *c) {
    if (c->ok) return;
    c->ok = 1;
    st.sub_ok++;
    if (nsub_ports) sub_port_ok[c->idx % (uint32_t)nsub_ports]++;
    st.t_last_sub = now_ns();
}

static void on_established(conn *c, const char *p, size_t n) {
    parse_socket_id(c, p, n);
    if (scenario == SC_PRESENCE && c->role == R_POOL) {
        if (c->pstate == P_NONE && c->idx < (uint32_t)(pres_b + pres_c / 2)) {
            c->pstate = P_JOINING; /* initial member, joins during setup */
            send_subscribe(c);
            return;
        }
        /* Idle: ready to join (after setup, after a disconnect-leave). */
        c->pstate = P_IDLE;
        ring_push(&q_idle, c->idx);
        if (phase == PH_SETUP) setup_subscribed(c);
        return;
    }
    if (c->stall && cfg.flood_bytes > 0) {
        char f[512];
        int k = snprintf(f, sizeof f,
                         "{\"event\":\"pusher:subscribe\",\"data\":{\"channel\":\"%s\","
                         "\"auth\":\"\"}}",
                         flood_channel);
        ws_send_text(c, f, (size_t)k);
    }
    send_subscribe(c);
}

static void presence_op_done(long eid, uint64_t now) {
    if (ev_left[eid] == 0) return;
    if (--ev_left[eid] == 0) {
        st.ops_outstanding--;
        st.ops_done++;
        if (in_window(now)) st.ops_done_window++;
    }
}

static void checker_roster(const char *p, size_t n);

static void churn_subscribed(conn *c, uint64_t now) {
    st.cycles++;
    if (in_window(now)) st.cycles_window++;
    if (in_window(c->t0)) lat_push(&lat_us, &lat_n, &lat_cap, now - c->t0);
    int ws = cfg.close_mode == CLOSE_WS || (cfg.close_mode == CLOSE_MIXED && (st.cycles & 1));
    if (ws) {
        static const uint8_t normal[2] = {0x03, 0xe8}; /* 1000 */
        ws_send_control(c, 8, normal, 2);
        c->state = ST_CLOSING;
        c->t1 = now;
    } else {
        st.closes_rst++;
        conn_teardown(c);
        c->t1 = 0;
    }
}

static void on_subscribed(conn *c, const char *p, size_t n) {
    uint64_t now = now_ns();
    c->state = ST_SUBSCRIBED;
    if (scenario == SC_CHURN) {
        churn_subscribed(c, now);
        return;
    }
    if (c->role == R_CHECKER) {
        checker_roster(p, n);
        return;
    }
    if (c->role == R_POOL) {
        c->pstate = P_JOINED;
        ring_push(&q_joined, c->idx);
        if (c->user >= first_load_user) {
            long eid = 2L * c->user;
            status_of[eid] = 1;
            st.joins_ok++;
            presence_op_done(eid, now);
            return;
        }
    }
    setup_subscribed(c);
}

static void on_subscription_error(conn *c, const char *p, size_t n) {
    (void)p;
    (void)n;
    if (c->state != ST_SUBSCRIBING) return;
    if (scenario == SC_CHURN) {
        conn_close(c, 4000); /* counted as a failed cycle */
        return;
    }
    if (c->role == R_CHECKER) {
        st.checker_done = -1;
        return;
    }
    c->state = ST_OPEN;
    if (c->role == R_POOL && c->user >= first_load_user) {
        long eid = 2L * c->user;
        status_of[eid] = 2;
        st.join_failed++;
        st.ops_outstanding--;
        c->pstate = P_IDLE;
        ring_push(&q_idle, c->idx);
        return;
    }
    st.sub_failed++; /* during setup */
}

/* member_added / member_removed: data is "{\"user_id\":\"<n>\"...}". One bit per
 * (event, socket): event id 2u for user u's member_added, 2u+1 for its member_removed. */
static void on_member_event(conn *c, const char *p, size_t n, int removed) {
    if (scenario != SC_PRESENCE) {
        st.other_internal++;
        return;
    }
    if (c->role == R_CHECKER) return;
    uint64_t now = now_ns();
    const char *k = memmem(p, n, "user_id", 7), *end = p + n;
    long u = 0;
    int nd = 0;
    if (k) {
        k += 7;
        while (k < end && (*k == '\\' || *k == '"' || *k == ':' || *k == ' ')) k++;
        while (k < end && *k >= '0' && *k <= '9' && nd < 10) u = u * 10 + (*k++ - '0'), nd++;
    }
    if (!nd) {
        st.unparsed++;
        return;
    }
    if (u == CHECKER_USER) return; /* the verification step's own socket */
    if (u >= next_user) {
        st.unexpected++;
        return;
    }
    long eid = 2 * u + removed;
    if (status_of[eid] == 0) { /* joins during setup */
        st.member_events_setup++;
        st.last_setup_event_ns = now;
        return;
    }
    if (status_of[eid] == 2 || (removed && status_of[eid] != 1)) {
        st.unexpected++;
        return;
    }
    if (!removed && c->role == R_POOL && c->user == u) {
        st.self_echo++;
        return;
    }
    uint64_t *w = bitmap + (size_t)eid * row_words + (c->idx >> 6);
    uint64_t bit = 1ull << (c->idx & 63);
    if (*w & bit) {
        st.dups++;
        return;
    }
    *w |= bit;
    st.deliveries++;
    st.last_delivery_ns = now;
    if (in_window(now)) st.deliveries_window++;
    if (in_window(send_ns[eid])) {
        if (removed) lat_push(&lat2_us, &lat2_n, &lat2_cap, now - send_ns[eid]);
        else lat_push(&lat_us, &lat_n, &lat_cap, now - send_ns[eid]);
    }
    if (c->role == R_STABLE && c->ok) presence_op_done(eid, now);
}

/* ---- client events ---- */

static void client_send(conn *c) {
    if (next_seq >= max_seq) {
        st.seq_exhausted = 1;
        return;
    }
    uint32_t seq = (uint32_t)next_seq++;
    static char data[MAX_PAYLOAD + 1], f[MAX_PAYLOAD + 512];
    char ch[256];
    uint64_t t = now_ns();
    int dl = snprintf(data, sizeof data, "S%010uT%020llu", seq, (unsigned long long)t);
    while (dl < cfg.payload) data[dl++] = 'x';
    data[dl] = 0;
    channel_name(c, ch, sizeof ch);
    int k = cfg.data_object
                ? snprintf(f, sizeof f,
                           "{\"event\":\"client-x\",\"channel\":\"%s\",\"data\":{\"p\":\"%s\"}}", ch,
                           data)
                : snprintf(f, sizeof f, "{\"event\":\"client-x\",\"channel\":\"%s\",\"data\":\"%s\"}",
                           ch, data);
    ws_send_text(c, f, (size_t)k);
    send_ns[seq] = t;
    seq_sender[seq] = c->idx;
    status_of[seq] = 1;
    long want = ch_ok[c->chan] - (c->ok ? 1 : 0);
    ev_left[seq] = want > 0 ? (uint32_t)want : 0;
    st.outstanding += ev_left[seq];
    st.events_sent++;
    if (in_window(t)) st.events_window++;
    if (ev_left[seq]) c->inflight++;
}

static void client_delivery(conn *c, const char *d, size_t avail) {
    /* An object {"p":"S..."} arrives as the JSON text "{\"p\":\"S...\"}". */
    if (avail > 9 && memcmp(d, "{\\\"p\\\":\\\"", 9) == 0) d += 9, avail -= 9;
    int ok = 1;
    if (avail < 32 || d[0] != 'S' || d[11] != 'T') {
        st.unparsed++;
        return;
    }
    uint64_t seq = parse_digits(d + 1, 10, &ok);
    uint64_t t = parse_digits(d + 12, 20, &ok);
    if (!ok) {
        st.unparsed++;
        return;
    }
    uint64_t now = now_ns();
    if ((long)seq >= next_seq || send_ns[seq] != t) {
        st.unexpected++;
        return;
    }
    conn *snd = &subs_arr[seq_sender[seq]];
    if (snd == c) {
        st.self_echo++;
        return;
    }
    if (snd->chan != c->chan) {
        st.wrong_channel++;
        return;
    }
    uint64_t *w = bitmap + seq * row_words + (c->idx >> 6);
    uint64_t bit = 1ull << (c->idx & 63);
    if (*w & bit) {
        st.dups++;
        return;
    }
    *w |= bit;
    st.deliveries++;
    st.last_delivery_ns = now;
    if (in_window(now)) st.deliveries_window++;
    if (in_window(t)) lat_push(&lat_us, &lat_n, &lat_cap, now - t);
    if (c->ok && ev_left[seq]) {
        st.outstanding--;
        if (--ev_left[seq] == 0) {
            snd->inflight--;
            if (cfg.mode == MODE_CLOSED && phase == PH_LOAD && now < t_end &&
                snd->state == ST_SUBSCRIBED) {
                client_send(snd);
                conn_flush(snd);
            }
        }
    }
}

static void client_load_start(void) {
    for (int ch = 0; ch < cfg.channels; ch++) {
        ch_ok[ch] = 0;
        for (int i = ch_lo[ch]; i < ch_lo[ch + 1]; i++) ch_ok[ch] += subs_arr[i].ok;
    }
    if (cfg.mode != MODE_CLOSED) return;
    for (int j = 0; j < nsenders; j++) {
        conn *c = senders_arr[j];
        if (c->state != ST_SUBSCRIBED) continue;
        for (int w = 0; w < cfg.window; w++) client_send(c);
        conn_flush(c);
    }
}

static void client_tick(uint64_t now) {
    if (cfg.mode != MODE_RATE) return;
    while (next_due <= now && now < t_end) {
        conn *s = NULL;
        for (int j = 0; j < nsenders; j++) {
            conn *cand = senders_arr[(rr_i + j) % nsenders];
            if (cand->state == ST_SUBSCRIBED) {
                s = cand;
                rr_i += j + 1;
                break;
            }
        }
        if (!s || next_seq >= max_seq) break;
        if (now - next_due > st.max_lag_ns) st.max_lag_ns = now - next_due;
        client_send(s);
        conn_flush(s);
        rate_i++;
        next_due = t_load0 + (uint64_t)((double)rate_i * 1e9 / cfg.rate);
        now = now_ns();
    }
}

/* ---- presence churn ---- */

static conn *ring_take(ring *r, int pstate) {
    while (r->n) {
        conn *c = &subs_arr[ring_pop(r)];
        if (c->state != ST_CLOSED && c->pstate == pstate) return c;
    }
    return NULL;
}

static void presence_join(conn *c, uint64_t now) {
    long u = next_user++;
    long eid = 2 * u;
    c->user = (int32_t)u;
    send_ns[eid] = now;
    status_of[eid] = 3; /* issued; 1 once subscription_succeeded arrives */
    ev_left[eid] = (uint32_t)stable_ok + 1;
    c->pstate = P_JOINING;
    st.joins_issued++;
    st.ops_outstanding++;
    send_subscribe(c);
    conn_flush(c);
}

static void presence_leave(conn *c, uint64_t now) {
    long eid = 2L * c->user + 1;
    send_ns[eid] = now;
    status_of[eid] = 1;
    ev_left[eid] = (uint32_t)stable_ok;
    st.leaves_issued++;
    st.ops_outstanding++;
    if (!stable_ok) presence_op_done(eid, now);
    int by_close = cfg.leave_mode == LEAVE_CLOSE ||
                   (cfg.leave_mode == LEAVE_MIXED && (st.leaves_issued & 1) == 0);
    if (!by_close) {
        char f[320], ch[256];
        channel_name(c, ch, sizeof ch);
        int k = snprintf(f, sizeof f,
                         "{\"event\":\"pusher:unsubscribe\",\"data\":{\"channel\":\"%s\"}}", ch);
        ws_send_text(c, f, (size_t)k);
        c->state = ST_OPEN;
        c->pstate = P_IDLE;
        ring_push(&q_idle, c->idx);
        st.leaves_unsub++;
        conn_flush(c);
    } else {
        conn_teardown(c);
        st.leaves_close++;
        c->pstate = P_RECONNECTING;
        if (conn_open(c) < 0) {
            st.reconnect_fail++;
            c->pstate = P_NONE;
        }
    }
}

/* One operation: leaves and joins alternate. 0 if none could be issued now. */
static int presence_issue(uint64_t now) {
    if (op_k % 2 == 0) {
        conn *c = ring_take(&q_joined, P_JOINED);
        if (!c) goto starved;
        presence_leave(c, now);
    } else {
        if (2 * next_user + 2 > max_seq) {
            st.seq_exhausted = 1;
            return 0;
        }
        conn *c = ring_take(&q_idle, P_IDLE);
        if (!c) goto starved;
        presence_join(c, now);
    }
    op_k++;
    return 1;
starved:
    if (starved_op != op_k) st.starved++;
    starved_op = op_k;
    return 0;
}

static void presence_load_start(void) {
    stable_ok = 0;
    for (int i = 0; i < pres_b; i++) stable_ok += subs_arr[i].ok;
}

static void presence_tick(uint64_t now) {
    if (phase != PH_LOAD) return;
    if (cfg.mode == MODE_RATE) {
        while (next_due <= now && now < t_end) {
            if (!presence_issue(now)) break;
            if (now - next_due > st.max_lag_ns) st.max_lag_ns = now - next_due;
            rate_i++;
            next_due = t_load0 + (uint64_t)((double)rate_i * 1e9 / cfg.rate);
        }
    } else {
        while (now < t_end && st.ops_outstanding < cfg.window && presence_issue(now)) {
        }
    }
}

static void checker_roster(const char *p, size_t n) {
    const char *end = p + n, *k = memmem(p, n, "ids", 3);
    uint8_t *seen = calloc((size_t)next_user + 1, 1);
    if (!seen) die("out of memory");
    long extra = 0, count = -1;
    if (k) {
        while (k < end && *k != '[') k++;
        while (k < end && *k != ']') {
            if (*k >= '0' && *k <= '9') {
                long v = 0;
                while (k < end && *k >= '0' && *k <= '9') v = v * 10 + (*k++ - '0');
                if (v == CHECKER_USER) continue;
                if (v < next_user && !seen[v]) seen[v] = 1;
                else extra++;
            } else {
                k++;
            }
        }
        const char *cn = k ? memmem(k, (size_t)(end - k), "count", 5) : NULL;
        if (cn) {
            cn += 5;
            while (cn < end && (*cn < '0' || *cn > '9')) cn++;
            count = 0;
            while (cn < end && *cn >= '0' && *cn <= '9') count = count * 10 + (*cn++ - '0');
        }
    }
    long expected = 0, missing = 0;
    for (int i = 0; i < pres_b + pres_c; i++) {
        conn *c = &subs_arr[i];
        int member = c->role == R_STABLE ? (c->ok && c->state == ST_SUBSCRIBED)
                                         : (c->pstate == P_JOINED && c->state == ST_SUBSCRIBED);
        if (!member) continue;
        expected++;
        if (seen[c->user] == 1) seen[c->user] = 2;
        else missing++;
    }
    for (long u = 0; u < next_user; u++) extra += seen[u] == 1;
    free(seen);
    st.roster_count = count;
    st.roster_expected = expected + 1; /* the checker counts itself */
    st.roster_missing = missing;
    st.roster_extra = extra;
    st.checker_done = 1;
}

static void checker_lost(conn *c, int code) {
    (void)c;
    (void)code;
    if (!st.checker_done) st.checker_done = -1;
}

/* ---- connection churn ---- */

static void churn_start(conn *c, uint64_t now) {
    c->t0 = now;
    c->t1 = 0;
    if (conn_open(c) < 0) {
        st.churn_fail++;
        st.fail_connect++;
        c->state = ST_CLOSED;
        c->t1 = now + 10000000ull; /* retry in 10 ms */
    }
}

static void churn_lost(conn *c, int was, int code) {
    if (was == ST_CLOSING) {
        /* The server ended the TCP connection without answering our close frame. */
        st.close_no_frame++;
        note_code(code);
        c->t1 = 0;
        return;
    }
    st.churn_fail++;
    note_code(code);
    if (was == ST_CONNECTING) st.fail_connect++;
    else if (was == ST_HANDSHAKE) st.fail_handshake++;
    else st.fail_subscribe++;
    c->t1 = now_ns() + 10000000ull;
}

static void churn_tick(uint64_t now) {
    uint64_t limit = (uint64_t)(cfg.cycle_timeout * 1e9);
    for (int i = 0; i < cfg.subs; i++) {
        conn *c = &subs_arr[i];
        if (c->state == ST_CLOSED) {
            if (phase == PH_LOAD && now < t_end && now >= c->t1) churn_start(c, now);
        } else if (c->state == ST_CLOSING) {
            if (now - c->t1 > 2000000000ull) {
                st.close_timeout++;
                st.churn_fail++;
                conn_teardown(c);
                c->t1 = 0;
            }
        } else if (now - c->t0 > limit) {
            st.fail_timeout++;
            st.churn_fail++;
            conn_teardown(c);
            c->t1 = 0;
        }
    }
}

static int churn_active(void) {
    int n = 0;
    for (int i = 0; i < cfg.subs; i++) n += subs_arr[i].state != ST_CLOSED;
    return n;
}

/* ---- verification through the HTTP API (and the presence checker socket) ---- */

static void http_get_signed(conn *c, const char *path, const char *params) {
    char query[512], tosign[1024], sig[65];
    uint8_t dig[32];
    int ql = snprintf(query, sizeof query, "auth_key=%s&auth_timestamp=%ld&auth_version=1.0&%s",
                      cfg.key, (long)time(NULL), params);
    int sl = snprintf(tosign, sizeof tosign, "GET\n%s\n%s", path, query);
    hmac_sha256(tosign, (size_t)sl, dig);
    to_hex(dig, 32, sig);
    out_reserve(c, (size_t)ql + 512);
    int rl = snprintf(c->out + c->out_len, c->out_cap - c->out_len,
                      "GET %s?%s&auth_signature=%s HTTP/1.1\r\nHost: %s\r\n\r\n", path, query, sig,
                      req_host_hdr);
    c->out_len += (uint32_t)rl;
    st.verify_status = 0;
    st.verify_body[0] = 0;
    st.verify_tries++;
    conn_flush(c);
}

static void verify_response(conn *c, size_t len) {
    char *he = memmem(rxbuf, len, "\r\n\r\n", 4);
    long clen = 0;
    if (he) {
        for (char *l = memchr(rxbuf, '\n', (size_t)(he - rxbuf)); l && l < he;
             l = memchr(l + 1, '\n', (size_t)(he - l)))
            if (strncasecmp(l + 1, "content-length:", 15) == 0) clen = strtol(l + 16, NULL, 10);
    }
    size_t hl = he ? (size_t)(he - rxbuf) + 4 : 0;
    if (!he || len < hl + (size_t)clen) { /* incomplete: keep it */
        if (len > c->in_cap) {
            c->in = realloc(c->in, len);
            if (!c->in) die("out of memory");
            c->in_cap = (uint32_t)len;
        }
        memcpy(c->in, rxbuf, len);
        c->in_len = (uint32_t)len;
        return;
    }
    c->in_len = 0;
    int status = len > 12 ? (int)strtol(rxbuf + 9, NULL, 10) : -1;
    snprintf(st.verify_body, sizeof st.verify_body, "%.*s", (int)(clen < 500 ? clen : 500),
             rxbuf + hl);
    st.verify_status = status > 0 ? status : -1;
}

static long json_number(const char *body, const char *key) {
    const char *k = strstr(body, key);
    if (!k) return -1;
    k += strlen(key);
    while (*k && (*k < '0' || *k > '9')) k++;
    return *k ? strtol(k, NULL, 10) : -1;
}

static int vstage;
static uint64_t v_deadline, v_next;
static long api_subs_count = -1;

static void verify_start(uint64_t now) {
    vstage = 0;
    v_deadline = now + (uint64_t)(cfg.verify_timeout * 1e9);
    st.api_count = -1;
}

/* Returns 1 when verification is over. */
static int verify_step(uint64_t now) {
    char path[512], params[128];
    if (now > v_deadline) {
        st.verify_timed_out = 1;
        return 1;
    }
    snprintf(path, sizeof path, "/apps/%s/channels/%s%s", cfg.app_id,
             scenario == SC_PRESENCE ? "presence-" : "", cfg.channel);
    snprintf(params, sizeof params, "info=%s",
             scenario == SC_PRESENCE ? "subscription_count,user_count" : "subscription_count");
    switch (vstage) {
    case 0: /* connect */
        if (vconn.state == ST_CLOSED && conn_open(&vconn) < 0) return 0;
        vstage = 1;
        return 0;
    case 1: /* connected: ask */
        if (vconn.state == ST_CLOSED) {
            vstage = 0;
            return 0;
        }
        if (vconn.state != ST_READY) return 0;
        http_get_signed(&vconn, path, params);
        vstage = 2;
        return 0;
    case 2: /* answered */
        if (vconn.state == ST_CLOSED && !st.verify_status) {
            vstage = 0;
            return 0;
        }
        if (!st.verify_status) return 0;
        api_subs_count = st.verify_status == 200 ? json_number(st.verify_body, "\"subscription_count\"") : -1;
        if (scenario == SC_CHURN) {
            st.api_count = api_subs_count;
            if (api_subs_count == 0) return 1;
            v_next = now + 200000000ull; /* the server may still be closing: ask again */
            vstage = 3;
            return 0;
        }
        st.api_count = st.verify_status == 200 ? json_number(st.verify_body, "\"user_count\"") : -1;
        checker.idx = (uint32_t)(pres_b + pres_c);
        checker.user = CHECKER_USER;
        if (conn_open(&checker) < 0) return 1;
        vstage = 4;
        return 0;
    case 3:
        if (now >= v_next) vstage = 1;
        return 0;
    case 4: /* presence checker */
        return st.checker_done != 0;
    }
    return 1;
}

/* ------------------------------------------------------------------------------------------ */
/* Reporting                                                                                 */

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double q) {
    if (!lat_n) return -1;
    size_t i = (size_t)(q * (double)(lat_n - 1) + 0.5);
    return lat_us[i] / 1000.0;
}

static void print_errors_json(void) {
    printf("\"connect_errors\":{\"refused\":%ld,\"addrnotavail\":%ld,\"timedout\":%ld,"
           "\"reset\":%ld,\"emfile\":%ld,\"epipe\":%ld,\"other\":%ld},",
           st.connect_errors[1], st.connect_errors[2], st.connect_errors[3], st.connect_errors[4],
           st.connect_errors[5], st.connect_errors[6], st.connect_errors[7]);
    printf("\"close_codes\":{");
    for (int i = 0; i < st.ncodes; i++)
        printf("%s\"%d\":%d", i ? "," : "", st.codes[i][0], st.codes[i][1]);
    printf("},\"pusher_errors\":%ld,\"first_error\":\"", st.pusher_errors);
    for (const char *p = st.first_error; *p; p++)
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if ((unsigned char)*p >= 32) putchar(*p);
    printf("\",");
}

static double setup_cpu0, setup_cpu1, load_cpu0;

static void print_setup(void) {
    uint64_t now = now_ns();
    double el = (double)((st.t_last_sub ? st.t_last_sub : now) - st.t_setup0) / 1e9;
    printf("SETUP {\"subs\":%d,\"subs_ok\":%ld,\"subs_failed\":%ld,\"pubs_ok\":%ld,"
           "\"pubs_failed\":%ld,\"setup_s\":%.4f,\"setup_rate\":%.1f,\"gen_cpu_s\":%.4f,",
           cfg.subs, st.sub_ok, st.sub_failed, st.pub_ok, st.pub_failed, el,
           el > 0 ? st.sub_ok / el : 0.0, setup_cpu1 - setup_cpu0);
    print_errors_json();
    /* CLOCK_MONOTONIC stamps (the same clock as Python's time.monotonic_ns()), so that a driver
     * running several generators can compute one setup rate over all of them. */
    printf("\"t0_mono_ns\":%llu,\"t_last_mono_ns\":%llu,", (unsigned long long)st.t_setup0,
           (unsigned long long)(st.t_last_sub ? st.t_last_sub : now));
    printf("\"src_ips\":{");
    for (int i = 0; i < nsrc; i++)
        printf("%s\"%s\":%ld", i ? "," : "", inet_ntoa(src_ips[i]), src_used[i]);
    printf("},\"subs_ok_by_port\":{");
    for (int i = 0; i < nsub_ports; i++)
        printf("%s\"%d\":%ld", i ? "," : "", sub_ports[i], sub_port_ok[i]);
    printf("},\"pub_port\":%d,", pub_port);
    printf("\"bind_fallbacks\":%ld,\"timed_out\":%d}\n", bind_fallbacks,
           scenario != SC_CHURN && st.sub_ok + st.sub_failed < cfg.subs);
    fflush(stdout);
}

static void print_stall_json(FILE *out);
static long healthy_ok = -1; /* subscribers that count for loss: all but the stalled ones */

static long healthy_subs(void) {
    long n = st.sub_ok;
    for (int i = 0; i < cfg.subs; i++) n -= subs_arr[i].stall && subs_arr[i].ok;
    return n;
}

static void print_result(double load_cpu1, uint64_t t_done) {
    /* Loss: every subscriber subscribed when the load started must hold every event whose
     * trigger was answered 200 (the stalled subscribers of the slow-consumer scenario
     * excepted). */
    uint64_t expected = 0, received = 0;
    long accepted = 0, unanswered = 0;
    for (long s = 0; s < next_seq; s++) {
        if (status_of[s] == 0) unanswered++;
        if (status_of[s] != 200) continue;
        accepted++;
        uint64_t *row = bitmap + (size_t)s * row_words;
        for (size_t w = 0; w < row_words; w++) received += (uint64_t)__builtin_popcountll(row[w]);
    }
    if (healthy_ok < 0) healthy_ok = healthy_subs();
    expected = (uint64_t)accepted * (uint64_t)healthy_ok;
    /* The slow-consumer figures need the samples in arrival order (paired with lat_t). */
    char *stall_json = NULL;
    size_t stall_json_len = 0;
    if (nstalls || cfg.stall_at >= 0) {
        FILE *ms = open_memstream(&stall_json, &stall_json_len);
        if (!ms) die("open_memstream");
        print_stall_json(ms);
        fclose(ms);
    }
    qsort(lat_us, lat_n, sizeof *lat_us, cmp_u32);
    double window = (double)(t_end - t_warm) / 1e9;
    double wall = (double)(t_done - t_load0) / 1e9;
    if (latency_log && fflush(latency_log) != 0) die("--latency-log: %s", strerror(errno));
    printf("RESULT {\"mode\":\"%s\",\"subs\":%ld,\"pubs\":%ld,\"depth\":%d,\"target_rate\":%.1f,"
           "\"window_s\":%.3f,\"load_wall_s\":%.3f,",
           cfg.mode == MODE_CLOSED ? "closed" : cfg.mode == MODE_RATE ? "rate" : "none", st.sub_ok,
           st.pub_ok, cfg.depth, cfg.rate, window, wall);
    printf("\"triggers_sent\":%ld,\"responses\":%ld,\"status_200\":%ld,\"status_other\":%ld,"
           "\"unanswered\":%ld,\"first_bad_status\":\"",
           st.triggers_sent, st.responses, st.status_200, st.status_other, unanswered);
    for (const char *p = st.first_bad_status; *p; p++)
        if (*p == '"' || *p == '\\') printf("\\%c", *p);
        else if ((unsigned char)*p >= 32) putchar(*p);
    printf("\",\"triggers_per_s\":%.1f,\"deliveries\":%llu,\"deliveries_window\":%llu,"
           "\"deliveries_per_s\":%.1f,",
           window > 0 ? st.responses_window / window : 0.0, (unsigned long long)st.deliveries,
           (unsigned long long)st.deliveries_window,
           window > 0 ? st.deliveries_window / window : 0.0);
    printf("\"expected\":%llu,\"lost\":%llu,\"dup\":%llu,\"unexpected\":%llu,\"unparsed\":%llu,"
           "\"fragmented\":%llu,",
           (unsigned long long)expected,
           (unsigned long long)(expected > received ? expected - received : 0),
           (unsigned long long)st.dups, (unsigned long long)st.unexpected,
           (unsigned long long)st.unparsed, (unsigned long long)st.fragmented);
    printf("\"lat_samples\":%zu,\"lat_p50_ms\":%.3f,\"lat_p90_ms\":%.3f,\"lat_p99_ms\":%.3f,"
           "\"lat_p999_ms\":%.3f,\"lat_max_ms\":%.3f,\"max_send_lag_ms\":%.3f,\"pipelined\":%ld,"
           "\"seq_exhausted\":%ld,",
           lat_n, pct(0.5), pct(0.9), pct(0.99), pct(0.999), lat_n ? lat_us[lat_n - 1] / 1000.0 : -1,
           st.max_lag_ns / 1e6, st.pipelined, st.seq_exhausted);
    printf("\"sub_closed\":%ld,\"pub_closed\":%ld,\"pings_answered\":%ld,\"other_internal\":%ld,",
           st.sub_closed_during_load, st.pub_closed, st.pings_answered, st.other_internal);
    if (nsub_ports > 1) {
        printf("\"lat_by_port\":{");
        for (int k = 0; k < nsub_ports; k++) {
            printf("%s\"%d\":{", k ? "," : "", sub_ports[k]);
            print_lat("", lat_port[k], lat_port_n[k]);
            printf("\"subs_ok\":%ld}", sub_port_ok[k]);
        }
        printf("},");
    }
    /* Deliveries after the end of the load and the time to the last one: a rate the server
     * sustains leaves about one latency's worth; a growing backlog leaves much more. */
    printf("\"deliveries_after_end\":%llu,\"last_delivery_after_end_ms\":%.3f,",
           (unsigned long long)st.deliveries_after_end,
           st.last_delivery_ns > t_end ? (double)(st.last_delivery_ns - t_end) / 1e6 : 0.0);
    print_errors_json();
    if (stall_json) {
        fputs(stall_json, stdout);
        free(stall_json);
    }
    printf("\"gen_cpu_s\":%.4f}\n", load_cpu1 - load_cpu0);
    fflush(stdout);
}


static double pct_of(const uint32_t *a, size_t n, double q) {
    if (!n) return -1;
    size_t i = (size_t)(q * (double)(n - 1) + 0.5);
    return a[i] / 1000.0;
}

static void print_lat(const char *prefix, uint32_t *a, size_t n) {
    qsort(a, n, sizeof *a, cmp_u32);
    printf("\"%ssamples\":%zu,\"%sp50_ms\":%.3f,\"%sp90_ms\":%.3f,\"%sp99_ms\":%.3f,"
           "\"%sp999_ms\":%.3f,\"%smax_ms\":%.3f,",
           prefix, n, prefix, pct_of(a, n, 0.5), prefix, pct_of(a, n, 0.9), prefix,
           pct_of(a, n, 0.99), prefix, pct_of(a, n, 0.999), prefix, n ? a[n - 1] / 1000.0 : -1);
}

/* ------------------------------------------------------------------------------------------ */
/* Slow consumers (fan-out with --stalled M --stall-at SEC)                                   */
/*
 * M of the S subscribers (spread evenly: k*S/M) connect with a small SO_RCVBUF (--stall-rcvbuf,
 * set before connect so the window stays small; optionally --stall-mss) and behave normally
 * until --stall-at seconds into the load. Then they stop reading: their epoll registration
 * drops EPOLLIN (EPOLLRDHUP, EPOLLHUP and EPOLLERR are still reported) and nothing is recv'd,
 * so the kernel buffers fill and the server's output for them piles up until it passes its
 * max_pending limit. The fd stays open. Their deliveries are never part of the loss or latency
 * figures: those are the healthy subscribers' only.
 *
 * On loopback the server's send buffer autotunes up to tcp_wmem's maximum (4 MiB here, ~2.8 MB
 * of payload), which the client cannot prevent, so at fan-out rates the limit is reached only
 * after tens of seconds. --flood-bytes B --flood-rate N adds a second channel,
 * "<channel>-slow", that only the stalled subscribers join, and an extra HTTP connection that
 * triggers B-byte events on it N times a second (outside the sequence/loss accounting).
 *
 * Two groups, alternating (k even / k odd):
 *   A "wake": read again at --stall-wake seconds after the load start (default: the end of the
 *     load). If the server has closed them by then (4101, close frame written behind the
 *     backlog, socket aborted 5 s later) they read the backlog, the close frame, then EOF. The
 *     send stamp of the last event before the close frame tells when the server gave up.
 *   B "wait": do not read until the server's side of the socket is gone (its fd closed, i.e.
 *     the abort: seen through NETLINK_SOCK_DIAG as the server's socket losing its inode or
 *     leaving ESTABLISHED), or until --stall-wait seconds after the end of the load. Then they
 *     read what the kernel still holds: the backlog, then EOF without a close frame (it was
 *     dropped with the server's buffer) or a reset.
 * An EPOLLRDHUP/HUP/ERR while not reading wakes a subscriber at once (recorded as early).
 * While any stalled subscriber is unresolved, its server-side socket is looked up every 100 ms
 * (sock_diag, by exact 4-tuple): when the server's side went away and the largest kernel queues
 * seen while stalled (the server's send queue, our receive queue).
 *
 * RESULT then has "stall": the healthy latency for events sent before the stall, from the stall
 * until group A reads again, after that, and per 500 ms; and one record per stalled subscriber.
 */
enum { STALL_NONE, STALL_READING, STALL_STOPPED, STALL_WOKEN, STALL_DONE };

typedef struct {
    int idx, group; /* group 0: A (wake at --stall-wake), 1: B (wait for the server) */
    int cport;
    int close_code; /* -1: no close frame seen */
    int reset, eof, early, open_at_end, not_ready;
    uint64_t t_srv_gone, t_hup, t_wake, t_close_frame, t_done;
    uint64_t last_stamp; /* send stamp of the last event read before the close frame / EOF */
    long events_read, bytes_read, srv_txq_max, cli_rxq_max;
    uint64_t t_last_rx;
    uint64_t read_ns; /* generator time spent reading it after the wake */
} stall_info;

static stall_info *stalls;
static int stall_begun, stall_unresolved;
static uint64_t t_stall, t_wake_a, t_stall_deadline, t_proc_next;

static void stall_resolve(conn *c, uint64_t now) {
    stall_info *si = &stalls[c->stall_k];
    si->t_done = now;
    c->stall = STALL_DONE;
    conn_teardown(c);
    stall_unresolved--;
}

/* Frame scan for a woken stalled subscriber: count events, remember the last stamp, catch the
 * close frame. Returns bytes consumed. */
static size_t stall_frames(stall_info *si, const char *buf, size_t len, uint64_t now) {
    size_t off = 0;
    while (len - off >= 2) {
        const uint8_t *p = (const uint8_t *)buf + off;
        int op = p[0] & 15;
        uint64_t pl = p[1] & 127;
        size_t h = 2;
        if (pl == 126) {
            if (len - off < 4) break;
            pl = (uint64_t)p[2] << 8 | p[3];
            h = 4;
        } else if (pl == 127) {
            if (len - off < 10) break;
            pl = 0;
            for (int i = 0; i < 8; i++) pl = pl << 8 | p[2 + i];
            h = 10;
        }
        if (len - off < h + pl) break;
        const char *pay = (const char *)p + h;
        if (op == 1 && si->close_code < 0) {
            const char *d = json_str(pay, (size_t)pl, "\"data\"", 6);
            size_t avail = d ? (size_t)(pay + pl - d) : 0;
            int ok = 1;
            if (d && avail >= 32 && d[0] == 'S' && d[11] == 'T') {
                uint64_t t = parse_digits(d + 12, 20, &ok);
                if (ok) {
                    si->events_read++;
                    si->last_stamp = t;
                }
            }
        } else if (op == 8 && si->close_code < 0) {
            si->close_code = pl >= 2 ? ((uint8_t)pay[0] << 8 | (uint8_t)pay[1]) : 1005;
            si->t_close_frame = now;
        }
        off += h + pl;
    }
    return off;
}

static void stall_read_once(conn *c, uint64_t now);

static void stall_read(conn *c, uint64_t now) {
    stall_info *si = &stalls[c->stall_k];
    uint64_t t0 = now_ns();
    stall_read_once(c, now);
    si->read_ns += now_ns() - t0;
}

/* At most two recv()s per call (level-triggered epoll calls again): a woken subscriber's backlog
 * is megabytes, and reading it in one go would hold up the healthy subscribers' reads. */
static void stall_read_once(conn *c, uint64_t now) {
    stall_info *si = &stalls[c->stall_k];
    for (int rounds = 0; rounds < 2; rounds++) {
        size_t have = c->in_len;
        if (have) memcpy(rxbuf, c->in, have);
        ssize_t n = recv(c->fd, rxbuf + have, sizeof rxbuf - have, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        if (n <= 0) {
            if (n == 0) si->eof = 1;
            else si->reset = errno == ECONNRESET ? 1 : 2;
            stall_resolve(c, now);
            return;
        }
        si->bytes_read += n;
        si->t_last_rx = now;
        size_t len = have + (size_t)n;
        size_t off = stall_frames(si, rxbuf, len, now);
        c->in_len = (uint32_t)(len - off);
        if (c->in_len) {
            if (c->in_len > c->in_cap) {
                c->in = realloc(c->in, c->in_len);
                if (!c->in) die("out of memory");
                c->in_cap = c->in_len;
            }
            memmove(c->in, rxbuf + off, c->in_len);
        }
    }
}

static void stall_wake(conn *c, uint64_t now) {
    stall_info *si = &stalls[c->stall_k];
    si->t_wake = now;
    si->t_last_rx = now;
    c->stall = STALL_WOKEN;
    /* Drain the backlog in large windows rather than --stall-rcvbuf ones (the generator's time
     * spent reading it delays the healthy subscribers). */
    int big = 1 << 20;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    stall_read(c, now);
}

/* An epoll event on a stalled subscriber's socket. */
static void stall_event(conn *c, uint32_t e, uint64_t now) {
    if (c->stall == STALL_STOPPED) {
        stall_info *si = &stalls[c->stall_k];
        si->early = 1;
        si->t_hup = now;
        (void)e;
        stall_wake(c, now);
    } else if (c->stall == STALL_WOKEN) {
        stall_read(c, now);
    }
}

static void stall_begin(uint64_t now) {
    stall_begun = 1;
    t_stall = now;
    for (int k = 0; k < nstalls; k++) {
        stall_info *si = &stalls[k];
        conn *c = &subs_arr[si->idx];
        if (c->state != ST_SUBSCRIBED) { /* never got there: nothing to stall */
            si->not_ready = 1;
            si->t_done = now;
            c->stall = STALL_DONE;
            continue;
        }
        struct sockaddr_in a;
        socklen_t al = sizeof a;
        if (getsockname(c->fd, (struct sockaddr *)&a, &al) == 0) {
            si->cport = ntohs(a.sin_port);
        }
        struct epoll_event ev = {.events = EPOLLRDHUP, .data.ptr = c};
        epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
        c->stall = STALL_STOPPED;
        stall_unresolved++;
    }
}

/* The server's side of each stalled connection, looked up by its exact 4-tuple through
 * NETLINK_SOCK_DIAG (what `ss` uses; unprivileged). Reading /proc/net/tcp instead costs ~13 ms
 * with 2,000 sockets, long enough to delay the healthy subscribers' reads and so their
 * measured latency. An exact lookup is a few microseconds. */
static int diag_fd = -2;

/* 1: found (state, send queue, inode filled in), 0: no such socket, -1: cannot tell. */
static int diag_lookup(int sport, int dport, unsigned *state, unsigned long *wq,
                       unsigned long *inode) {
    if (diag_fd == -2) diag_fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
    if (diag_fd < 0) return -1;
    struct {
        struct nlmsghdr nlh;
        struct inet_diag_req_v2 r;
    } req;
    memset(&req, 0, sizeof req);
    req.nlh.nlmsg_len = sizeof req;
    req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
    req.nlh.nlmsg_flags = NLM_F_REQUEST;
    req.r.sdiag_family = AF_INET;
    req.r.sdiag_protocol = IPPROTO_TCP;
    req.r.idiag_states = ~0u;
    req.r.id.idiag_sport = htons((uint16_t)sport);
    req.r.id.idiag_dport = htons((uint16_t)dport);
    req.r.id.idiag_src[0] = srv_addr.sin_addr.s_addr;
    req.r.id.idiag_dst[0] = srv_addr.sin_addr.s_addr;
    req.r.id.idiag_cookie[0] = req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
    if (send(diag_fd, &req, sizeof req, 0) < 0) return -1;
    char buf[8192];
    ssize_t n = recv(diag_fd, buf, sizeof buf, 0);
    if (n < (ssize_t)sizeof(struct nlmsghdr)) return -1;
    struct nlmsghdr *h = (struct nlmsghdr *)buf;
    if (h->nlmsg_type == NLMSG_ERROR) {
        struct nlmsgerr *e = NLMSG_DATA(h);
        return e->error == -ENOENT ? 0 : -1;
    }
    if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY) return -1;
    struct inet_diag_msg *m = NLMSG_DATA(h);
    *state = m->idiag_state;
    *wq = m->idiag_wqueue;
    *inode = m->idiag_inode;
    return 1;
}

/* Every 100 ms while stalled subscribers are unresolved: the server's side (gone = no longer
 * ESTABLISHED, or orphaned: inode 0, i.e. the server closed its fd), its send queue, and our
 * receive queue (FIONREAD). */
static void stall_diag_poll(uint64_t now) {
    for (int k = 0; k < nstalls; k++) {
        stall_info *si = &stalls[k];
        conn *c = &subs_arr[si->idx];
        if (!si->cport || si->t_done || c->state == ST_CLOSED) continue;
        if (!si->t_wake) {
            int q = 0;
            if (ioctl(c->fd, FIONREAD, &q) == 0 && q > si->cli_rxq_max) si->cli_rxq_max = q;
        }
        unsigned state = 0;
        unsigned long wq = 0, inode = 0;
        int found = diag_lookup(cfg.port, si->cport, &state, &wq, &inode);
        if (found < 0) continue;
        if (found && !si->t_wake && (long)wq > si->srv_txq_max) si->srv_txq_max = (long)wq;
        if (!si->t_srv_gone && (!found || state != 1 /* TCP_ESTABLISHED */ || inode == 0))
            si->t_srv_gone = now;
    }
}

static void stall_tick(uint64_t now) {
    if (!nstalls) return;
    if (!stall_begun) {
        if (phase == PH_LOAD && now >= t_stall) stall_begin(now);
        return;
    }
    if (stall_unresolved <= 0) return;
    if (now >= t_proc_next) {
        stall_diag_poll(now);
        t_proc_next = now + 100000000ull;
    }
    for (int k = 0; k < nstalls; k++) {
        stall_info *si = &stalls[k];
        conn *c = &subs_arr[si->idx];
        if (c->stall == STALL_STOPPED) {
            int wake = si->group == 0 ? now >= t_wake_a
                                      : (si->t_srv_gone != 0 || now >= t_stall_deadline);
            if (wake) stall_wake(c, now);
        } else if (c->stall == STALL_WOKEN) {
            /* Still open: a close frame is followed by EOF at once; with none, 1 s of silence
             * after the load means the server kept it (it had not passed the limit). */
            int quiet = now - si->t_last_rx > 1000000000ull && now > t_end + 1000000000ull;
            if ((quiet && si->close_code < 0) || now >= t_stall_deadline + 2000000000ull) {
                si->open_at_end = 1;
                stall_resolve(c, now);
            }
        }
    }
}

static double rel_ms(uint64_t t, uint64_t base) {
    return t ? ((double)t - (double)base) / 1e6 : -1;
}

/* Latency of the healthy subscribers for events sent in [from, to) ms after the load start. */
static void print_window(FILE *out, const char *name, uint32_t from, uint32_t to) {
    size_t n = 0;
    uint32_t *a = malloc((lat_n + 1) * sizeof *a);
    if (!a) die("out of memory");
    for (size_t i = 0; i < lat_n; i++)
        if (lat_t[i] >= from && lat_t[i] < to) a[n++] = lat_us[i];
    qsort(a, n, sizeof *a, cmp_u32);
    fprintf(out, "\"%s\":{\"from_s\":%.3f,\"to_s\":%.3f,\"samples\":%zu,\"p50_ms\":%.3f,"
           "\"p90_ms\":%.3f,\"p99_ms\":%.3f,\"p999_ms\":%.3f,\"max_ms\":%.3f},",
           name, from / 1000.0, to / 1000.0, n, pct_of(a, n, 0.5), pct_of(a, n, 0.9),
           pct_of(a, n, 0.99), pct_of(a, n, 0.999), n ? a[n - 1] / 1000.0 : -1);
    free(a);
}

static void print_stall_json(FILE *out) {
    uint32_t warm_ms = (uint32_t)((t_warm - t_load0) / 1000000);
    uint32_t stall_ms = (uint32_t)(cfg.stall_at * 1000);
    uint32_t end_ms = (uint32_t)((t_end - t_load0) / 1000000);
    uint32_t wake_ms = (uint32_t)((t_wake_a - t_load0) / 1000000);
    if (wake_ms > end_ms || !nstalls) wake_ms = end_ms;
    fprintf(out, "\"flood\":{\"channel\":\"%s\",\"bytes\":%d,\"rate\":%.1f,\"subs_ok\":%ld,"
                 "\"sent\":%ld,\"status_200\":%ld,\"status_other\":%ld,\"skipped\":%ld},",
            cfg.flood_bytes > 0 ? flood_channel : "", cfg.flood_bytes, cfg.flood_rate,
            flood_subs_ok, flood_sent, flood_200, flood_other, flood_skipped);
    fprintf(out, "\"stall\":{\"stalled\":%d,\"rcvbuf\":%d,\"mss\":%d,\"stall_at_s\":%.3f,"
                 "\"wake_a_s\":%.3f,"
           "\"t_stall_s\":%.3f,\"stalled_rx_before\":%ld,",
           nstalls, cfg.stall_rcvbuf, cfg.stall_mss, cfg.stall_at,
           (double)(t_wake_a - t_load0) / 1e9,
           stall_begun ? (double)(t_stall - t_load0) / 1e9 : -1.0, stalled_rx);
    print_window(out, "baseline", warm_ms, stall_ms);
    print_window(out, "during", stall_ms, wake_ms); /* until group A reads again */
    print_window(out, "after_wake", wake_ms, end_ms);
    print_window(out, "stall_to_end", stall_ms, end_ms);
    fprintf(out, "\"timeline\":[");
    /* Per 500 ms of send time: [start s, samples, p50, p99, max]. */
    for (uint32_t s0 = 0; s0 < end_ms; s0 += 500) {
        size_t n = 0;
        uint32_t *a = malloc((lat_n + 1) * sizeof *a);
        if (!a) die("out of memory");
        for (size_t i = 0; i < lat_n; i++)
            if (lat_t[i] >= s0 && lat_t[i] < s0 + 500) a[n++] = lat_us[i];
        qsort(a, n, sizeof *a, cmp_u32);
        fprintf(out, "%s[%.1f,%zu,%.3f,%.3f,%.3f]", s0 ? "," : "", s0 / 1000.0, n,
                pct_of(a, n, 0.5),
               pct_of(a, n, 0.99), n ? a[n - 1] / 1000.0 : -1);
        free(a);
    }
    fprintf(out, "],\"subs\":[");
    int n4101 = 0, nclose = 0, neof = 0, nreset = 0, nopen = 0, ngone = 0, nready = 0;
    for (int k = 0; k < nstalls; k++) {
        stall_info *si = &stalls[k];
        if (si->not_ready) continue;
        nready++;
        n4101 += si->close_code == 4101;
        nclose += si->close_code >= 0;
        neof += si->eof && si->close_code < 0;
        nreset += si->reset != 0;
        nopen += si->open_at_end;
        ngone += si->t_srv_gone != 0;
        fprintf(out, "%s{\"idx\":%d,\"group\":\"%s\",\"port\":%d,\"close_code\":%d,\"eof\":%d,"
               "\"reset\":%d,\"early\":%d,\"open_at_end\":%d,\"srv_gone_ms\":%.1f,"
               "\"hup_ms\":%.1f,\"wake_ms\":%.1f,\"close_frame_ms\":%.1f,\"done_ms\":%.1f,"
               "\"last_event_sent_ms\":%.1f,\"events_read\":%ld,\"bytes_read\":%ld,"
               "\"srv_sendq_max\":%ld,\"our_recvq_max\":%ld,\"read_ms\":%.2f}",
               k ? "," : "", si->idx, si->group ? "B" : "A", si->cport, si->close_code, si->eof,
               si->reset, si->early, si->open_at_end, rel_ms(si->t_srv_gone, t_stall),
               rel_ms(si->t_hup, t_stall), rel_ms(si->t_wake, t_stall),
               rel_ms(si->t_close_frame, t_stall), rel_ms(si->t_done, t_stall),
               rel_ms(si->last_stamp, t_stall), si->events_read, si->bytes_read,
               si->srv_txq_max, si->cli_rxq_max, si->read_ns / 1e6);
    }
    fprintf(out, "],\"ready\":%d,\"close_4101\":%d,\"close_any\":%d,\"eof_no_close\":%d,"
                 "\"reset\":%d,"
           "\"not_dropped\":%d,\"srv_gone\":%d,\"unresolved\":%d},",
           nready, n4101, nclose, neof, nreset, nopen, ngone, stall_unresolved);
}

static void print_common(double load_cpu1, uint64_t t_done) {
    double window = (double)(t_end - t_warm) / 1e9;
    double wall = (double)(t_done - t_load0) / 1e9;
    printf("RESULT {\"scenario\":\"%s\",\"mode\":\"%s\",\"subs\":%ld,\"window_s\":%.3f,"
           "\"warmup_s\":%.3f,\"duration_s\":%.3f,\"load_wall_s\":%.3f,\"gen_cpu_s\":%.4f,\"deliveries\":%llu,\"deliveries_window\":%llu,"
           "\"deliveries_per_s\":%.1f,\"dup\":%llu,\"unexpected\":%llu,\"unparsed\":%llu,"
           "\"fragmented\":%llu,\"sub_closed\":%ld,\"pub_closed\":%ld,\"pings_answered\":%ld,"
           "\"other_internal\":%ld,\"subscription_errors\":%ld,\"self_echo\":%ld,"
           "\"seq_exhausted\":%ld,\"max_send_lag_ms\":%.3f,",
           scenario == SC_CLIENT ? "client" : scenario == SC_PRESENCE ? "presence" : "churn",
           cfg.mode == MODE_CLOSED ? "closed" : cfg.mode == MODE_RATE ? "rate" : "none", st.sub_ok,
           window, cfg.warmup, cfg.duration, wall, load_cpu1 - load_cpu0, (unsigned long long)st.deliveries,
           (unsigned long long)st.deliveries_window,
           window > 0 ? st.deliveries_window / window : 0.0, (unsigned long long)st.dups,
           (unsigned long long)st.unexpected, (unsigned long long)st.unparsed,
           (unsigned long long)st.fragmented, st.sub_closed_during_load, st.pub_closed,
           st.pings_answered, st.other_internal, st.sub_errors, st.self_echo, st.seq_exhausted,
           st.max_lag_ns / 1e6);
}

static void print_result_client(double load_cpu1, uint64_t t_done) {
    uint64_t expected = 0, received = 0;
    for (long s = 0; s < next_seq; s++) {
        if (status_of[s] != 1) continue;
        conn *snd = &subs_arr[seq_sender[s]];
        uint64_t *row = bitmap + (size_t)s * row_words;
        for (int m = ch_lo[snd->chan]; m < ch_lo[snd->chan + 1]; m++) {
            if (m == (int)snd->idx || !subs_arr[m].ok) continue;
            expected++;
            received += (row[m >> 6] >> (m & 63)) & 1;
        }
    }
    double window = (double)(t_end - t_warm) / 1e9;
    print_common(load_cpu1, t_done);
    printf("\"channels\":%d,\"senders\":%d,\"window\":%d,\"target_rate\":%.1f,\"data\":\"%s\","
           "\"events_sent\":%ld,\"events_window\":%ld,\"events_per_s\":%.1f,\"expected\":%llu,"
           "\"lost\":%llu,\"wrong_channel\":%ld,\"err_4301\":%ld,",
           cfg.channels, nsenders, cfg.window, cfg.rate, cfg.data_object ? "object" : "string",
           st.events_sent, st.events_window, window > 0 ? st.events_window / window : 0.0,
           (unsigned long long)expected, (unsigned long long)(expected - received),
           st.wrong_channel, st.err_4301);
    print_lat("lat_", lat_us, lat_n);
    print_errors_json();
    printf("\"end\":1}\n");
    fflush(stdout);
}

static void print_result_presence(double load_cpu1, uint64_t t_done) {
    uint64_t expected = 0, received = 0;
    long unfinished = 0;
    for (long e = 0; e < 2 * next_user; e++) {
        if (status_of[e] == 3) unfinished++;
        if (status_of[e] != 1) continue;
        uint64_t *row = bitmap + (size_t)e * row_words;
        for (int m = 0; m < pres_b; m++) {
            if (!subs_arr[m].ok) continue;
            expected++;
            received += (row[m >> 6] >> (m & 63)) & 1;
        }
    }
    long members = 0;
    for (int i = 0; i < pres_b + pres_c; i++) {
        conn *c = &subs_arr[i];
        members += c->role == R_STABLE ? (c->ok && c->state == ST_SUBSCRIBED)
                                       : (c->pstate == P_JOINED && c->state == ST_SUBSCRIBED);
    }
    double window = (double)(t_end - t_warm) / 1e9;
    print_common(load_cpu1, t_done);
    printf("\"stable\":%d,\"pool\":%d,\"stable_ok\":%ld,\"window\":%d,\"target_rate\":%.1f,"
           "\"joins_issued\":%ld,\"joins_ok\":%ld,\"join_failed\":%ld,\"leaves_issued\":%ld,"
           "\"leaves_unsub\":%ld,\"leaves_close\":%ld,\"ops_done\":%ld,\"ops_done_window\":%ld,"
           "\"ops_per_s\":%.1f,\"ops_unfinished\":%ld,\"ops_outstanding\":%ld,\"starved\":%ld,"
           "\"reconnect_fail\":%ld,\"member_events_setup\":%llu,\"expected\":%llu,\"lost\":%llu,",
           pres_b, pres_c, stable_ok, cfg.window, cfg.rate, st.joins_issued, st.joins_ok,
           st.join_failed, st.leaves_issued, st.leaves_unsub, st.leaves_close, st.ops_done,
           st.ops_done_window, window > 0 ? st.ops_done_window / window : 0.0, unfinished,
           st.ops_outstanding, st.starved, st.reconnect_fail,
           (unsigned long long)st.member_events_setup, (unsigned long long)expected,
           (unsigned long long)(expected - received));
    printf("\"members_expected\":%ld,\"api_status\":%d,\"api_user_count\":%ld,"
           "\"api_subscription_count\":%ld,\"roster_count\":%ld,\"roster_expected\":%ld,"
           "\"roster_missing\":%ld,\"roster_extra\":%ld,\"checker\":%d,\"verify_timed_out\":%d,",
           members, st.verify_status, st.api_count, api_subs_count, st.roster_count,
           st.roster_expected, st.roster_missing, st.roster_extra, st.checker_done,
           st.verify_timed_out);
    print_lat("join_", lat_us, lat_n);
    print_lat("leave_", lat2_us, lat2_n);
    print_errors_json();
    printf("\"end\":1}\n");
    fflush(stdout);
}

static void print_result_churn(double load_cpu1, uint64_t t_done) {
    double window = (double)(t_end - t_warm) / 1e9;
    print_common(load_cpu1, t_done);
    printf("\"window\":%d,\"close\":\"%s\",\"cycles\":%ld,\"cycles_window\":%ld,"
           "\"cycles_per_s\":%.1f,\"failures\":%ld,\"fail_connect\":%ld,\"fail_handshake\":%ld,"
           "\"fail_subscribe\":%ld,\"fail_timeout\":%ld,\"close_frame\":%ld,\"close_rst\":%ld,"
           "\"close_no_frame\":%ld,\"close_timeout\":%ld,\"still_open\":%d,\"api_status\":%d,"
           "\"api_subscription_count\":%ld,\"verify_tries\":%d,\"verify_timed_out\":%d,",
           cfg.subs,
           cfg.close_mode == CLOSE_WS ? "ws" : cfg.close_mode == CLOSE_RST ? "rst" : "mixed",
           st.cycles, st.cycles_window, window > 0 ? st.cycles_window / window : 0.0,
           st.churn_fail, st.fail_connect, st.fail_handshake, st.fail_subscribe, st.fail_timeout,
           st.close_frame, st.closes_rst, st.close_no_frame, st.close_timeout, churn_active(),
           st.verify_status, st.api_count, st.verify_tries, st.verify_timed_out);
    print_lat("cycle_", lat_us, lat_n);
    print_errors_json();
    printf("\"bind_fallbacks\":%ld,\"end\":1}\n", bind_fallbacks);
    fflush(stdout);
}

/* ------------------------------------------------------------------------------------------ */

/* --src-ips: "127.0.0.2", "127.0.1.1+4" (four consecutive addresses), comma-separated. */
static void parse_src_ips(const char *arg) {
    char *save = NULL, *copy = strdup(arg);
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        int count = 1;
        char *plus = strchr(t, '+');
        if (plus) {
            *plus = 0;
            count = atoi(plus + 1);
        }
        struct in_addr a;
        if (inet_pton(AF_INET, t, &a) != 1 || count < 1) die("--src-ips: bad item %s", t);
        for (int i = 0; i < count; i++) {
            uint32_t h = ntohl(a.s_addr) + (uint32_t)i;
            if ((h >> 24) != 127 || (h & 0xff) == 0 || (h & 0xff) == 255)
                die("--src-ips: only loopback addresses 127.x.y.1-254");
            if (nsrc == MAX_SRC) die("--src-ips: at most %d addresses", MAX_SRC);
            src_ips[nsrc].s_addr = htonl(h);
            nsrc++;
        }
    }
    free(copy);
}

static int self_test(void) {
    /* Print digests for the driver to compare with Python's hashlib/hmac. */
    uint8_t d[32];
    char hx[65];
    const char *msgs[] = {"", "abc", "The quick brown fox jumps over the lazy dog",
                          "0123456789012345678901234567890123456789012345678901234567890123456789"};
    for (int i = 0; i < 4; i++) {
        md5(msgs[i], strlen(msgs[i]), d);
        to_hex(d, 16, hx);
        printf("md5 %s\n", hx);
        hmac_sha256(msgs[i], strlen(msgs[i]), d);
        to_hex(d, 32, hx);
        printf("hmac %s\n", hx);
    }
    return 0;
}

static void usage(void) {
    fprintf(stderr,
            "usage: loadgen --port P [--host 127.0.0.1] [--subs S] [--pubs K]\n"
            "  [--mode none|closed|rate] [--rate TRIGGERS_PER_S] [--depth D] [--duration SEC]\n"
            "  [--warmup SEC] [--drain SEC] [--payload BYTES] [--concurrency C]\n"
            "  [--setup-timeout SEC] [--max-events N] [--app-id ID] [--key KEY] [--secret SECRET]\n"
            "  [--channel NAME] [--interactive] [--no-bind] [--self-test]\n"
            "  [--src-ips IP[+N][,IP[+N]...]] [--ports P1,P2,...] [--pub-port P]\n"
            "  [--bind-range LO-HI] (source ports to bind [ip_local_port_range])\n"
            "   (source addresses in 127/8, round robin; subscribers round robin over --ports;\n"
            "    HTTP API connections to --pub-port [--port])\n"
            "  [--scenario fanout|client|presence|churn] [--channels N] [--senders K]\n"
            "  [--window W] [--client-data object|string] [--pool C] [--leave unsub|close|mixed]\n"
            "  [--close ws|rst|mixed] [--cycle-timeout SEC] [--verify-timeout SEC]\n"
            "  [--stalled M --stall-at SEC [--stall-wake SEC] [--stall-wait SEC]\n"
            "   [--stall-rcvbuf BYTES] [--stall-mss BYTES] [--flood-bytes B --flood-rate N]]\n"
            "  [--latency-log FILE] (fan-out: \"seq subscriber latency_us\" per counted delivery)\n"
            "   (fan-out: M subscribers stop reading at SEC; see the Slow consumers comment)\n"
            "client: --rate is client events/s in all; presence: --rate is leave+join ops/s;\n"
            "churn: --subs is unused, --window is the number of cycles in flight.\n");
    exit(2);
}

int main(int argc, char **argv) {
    static struct option opts[] = {
        {"host", 1, 0, 'h'},        {"port", 1, 0, 'p'},          {"subs", 1, 0, 's'},
        {"pubs", 1, 0, 'k'},        {"mode", 1, 0, 'm'},          {"rate", 1, 0, 'r'},
        {"depth", 1, 0, 'D'},       {"duration", 1, 0, 'd'},      {"warmup", 1, 0, 'w'},
        {"drain", 1, 0, 'W'},       {"payload", 1, 0, 'P'},       {"concurrency", 1, 0, 'c'},
        {"setup-timeout", 1, 0, 'T'}, {"max-events", 1, 0, 'M'},  {"app-id", 1, 0, 'a'},
        {"key", 1, 0, 'K'},         {"secret", 1, 0, 'S'},        {"channel", 1, 0, 'C'},
        {"interactive", 0, 0, 'i'}, {"self-test", 0, 0, 'X'},     {"help", 0, 0, '?'},
        {"no-bind", 0, 0, 'B'},
        {"scenario", 1, 0, 1000}, {"channels", 1, 0, 1001},     {"senders", 1, 0, 1002},
        {"window", 1, 0, 1003},   {"client-data", 1, 0, 1004},  {"pool", 1, 0, 1005},
        {"leave", 1, 0, 1006},    {"close", 1, 0, 1007},        {"cycle-timeout", 1, 0, 1008},
        {"verify-timeout", 1, 0, 1009},
        {"stalled", 1, 0, 1010},  {"stall-at", 1, 0, 1011},     {"stall-wake", 1, 0, 1012},
        {"stall-wait", 1, 0, 1013}, {"stall-rcvbuf", 1, 0, 1014}, {"stall-mss", 1, 0, 1015},
        {"flood-bytes", 1, 0, 1016}, {"flood-rate", 1, 0, 1017}, {"latency-log", 1, 0, 1030},
        {"src-ips", 1, 0, 1018}, {"ports", 1, 0, 1019}, {"pub-port", 1, 0, 1020},
        {"bind-range", 1, 0, 1021},
        {0, 0, 0, 0}};
    int o;
    md5_init_table();
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'h': cfg.host = optarg; break;
        case 'p': cfg.port = atoi(optarg); break;
        case 's': cfg.subs = atoi(optarg); break;
        case 'k': cfg.pubs = atoi(optarg); break;
        case 'm':
            if (!strcmp(optarg, "none")) cfg.mode = MODE_NONE;
            else if (!strcmp(optarg, "closed")) cfg.mode = MODE_CLOSED;
            else if (!strcmp(optarg, "rate")) cfg.mode = MODE_RATE;
            else usage();
            break;
        case 'r': cfg.rate = atof(optarg); break;
        case 'D': cfg.depth = atoi(optarg); break;
        case 'd': cfg.duration = atof(optarg); break;
        case 'w': cfg.warmup = atof(optarg); break;
        case 'W': cfg.drain = atof(optarg); break;
        case 'P': cfg.payload = atoi(optarg); break;
        case 'c': cfg.concurrency = atoi(optarg); break;
        case 'T': cfg.setup_timeout = atof(optarg); break;
        case 'M': cfg.max_events = atol(optarg); break;
        case 'a': cfg.app_id = optarg; break;
        case 'K': cfg.key = optarg; break;
        case 'S': cfg.secret = optarg; break;
        case 'C': cfg.channel = optarg; break;
        case 'i': cfg.interactive = 1; break;
        case 'B': bind_ports = 0; break;
        case 'X': hmac_set_key("bench-secret"); return self_test();
        case 1000:
            if (!strcmp(optarg, "fanout")) scenario = SC_FANOUT;
            else if (!strcmp(optarg, "client")) scenario = SC_CLIENT;
            else if (!strcmp(optarg, "presence")) scenario = SC_PRESENCE;
            else if (!strcmp(optarg, "churn")) scenario = SC_CHURN;
            else usage();
            break;
        case 1001: cfg.channels = atoi(optarg); break;
        case 1002: cfg.senders = atoi(optarg); break;
        case 1003: cfg.window = atoi(optarg); break;
        case 1004:
            if (!strcmp(optarg, "object")) cfg.data_object = 1;
            else if (!strcmp(optarg, "string")) cfg.data_object = 0;
            else usage();
            break;
        case 1005: cfg.pool = atoi(optarg); break;
        case 1006:
            if (!strcmp(optarg, "unsub")) cfg.leave_mode = LEAVE_UNSUB;
            else if (!strcmp(optarg, "close")) cfg.leave_mode = LEAVE_CLOSE;
            else if (!strcmp(optarg, "mixed")) cfg.leave_mode = LEAVE_MIXED;
            else usage();
            break;
        case 1007:
            if (!strcmp(optarg, "ws")) cfg.close_mode = CLOSE_WS;
            else if (!strcmp(optarg, "rst")) cfg.close_mode = CLOSE_RST;
            else if (!strcmp(optarg, "mixed")) cfg.close_mode = CLOSE_MIXED;
            else usage();
            break;
        case 1008: cfg.cycle_timeout = atof(optarg); break;
        case 1009: cfg.verify_timeout = atof(optarg); break;
        case 1010: cfg.stalled = atoi(optarg); break;
        case 1011: cfg.stall_at = atof(optarg); break;
        case 1012: cfg.stall_wake = atof(optarg); break;
        case 1013: cfg.stall_wait = atof(optarg); break;
        case 1014: cfg.stall_rcvbuf = atoi(optarg); break;
        case 1015: cfg.stall_mss = atoi(optarg); break;
        case 1016: cfg.flood_bytes = atoi(optarg); break;
        case 1017: cfg.flood_rate = atof(optarg); break;
        case 1030:
            latency_log = fopen(optarg, "w");
            if (!latency_log) die("--latency-log %s: %s", optarg, strerror(errno));
            break;
        case 1018: parse_src_ips(optarg); break;
        case 1019: {
            char *save = NULL, *copy = strdup(optarg);
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (nsub_ports == MAX_DPORTS) die("--ports: at most %d", MAX_DPORTS);
                int port = atoi(t);
                if (port < 1 || port > 65535) die("--ports: bad port %s", t);
                sub_ports[nsub_ports++] = port;
            }
            free(copy);
            break;
        }
        case 1020: pub_port = atoi(optarg); break;
        case 1021:
            if (sscanf(optarg, "%d-%d", &bind_lo, &bind_hi) != 2 || bind_lo < 1024 ||
                bind_hi > 65535 || bind_hi <= bind_lo)
                die("--bind-range: LO-HI within 1024..65535");
            break;
        default: usage();
        }
    }
    if (!cfg.port && nsub_ports) cfg.port = sub_ports[0];
    if (!cfg.port) usage();
    if (!pub_port) pub_port = cfg.port;
    if (cfg.stall_at >= 0 && (nsrc || nsub_ports > 1 || pub_port != cfg.port))
        die("--stalled/--stall-at: one source address and one port only (sock_diag lookup)");
    if (cfg.payload < 32 || cfg.payload > MAX_PAYLOAD)
        die("--payload must be 32..%d", MAX_PAYLOAD);
    if (scenario == SC_FANOUT && cfg.mode != MODE_NONE && cfg.pubs < 1)
        die("--mode closed/rate needs --pubs >= 1");
    if (scenario != SC_FANOUT) {
        cfg.pubs = 0; /* the verify connection is separate */
        if (scenario == SC_CHURN) cfg.mode = MODE_CLOSED;
        if (cfg.mode == MODE_NONE) die("--scenario %s needs --mode closed or rate",
                                       scenario == SC_CLIENT ? "client" : "presence");
        if (cfg.window < 1) die("--window must be >= 1");
    }
    if (scenario == SC_CLIENT) {
        if (cfg.channels < 1 || cfg.subs < 2 * cfg.channels)
            die("client: need --channels >= 1 and at least 2 subscribers per channel");
        if (cfg.senders < 1) cfg.senders = cfg.channels;
        if (cfg.senders > cfg.subs) die("client: --senders must be <= --subs");
    }
    if (scenario == SC_PRESENCE && (cfg.pool < 2 || cfg.subs < 1))
        die("presence: need --subs >= 1 stable members and --pool >= 2");
    if (scenario == SC_CHURN) cfg.subs = cfg.window; /* one slot per cycle in flight */
    if (cfg.stalled > 0 && cfg.stall_at < 0) die("--stalled needs --stall-at");
    if (cfg.stall_at >= 0) {
        if (scenario != SC_FANOUT || cfg.mode == MODE_NONE)
            die("--stall-at: fan-out scenario with --mode closed or rate only");
        if (cfg.stalled < 0 || cfg.stalled >= cfg.subs || cfg.stalled > 30000)
            die("--stalled must be 0..subs-1");
        if (cfg.stall_at < cfg.warmup || cfg.stall_at >= cfg.duration)
            die("--stall-at must be within [--warmup, --duration)");
        if (cfg.stall_wait < 0) die("--stall-wait must be >= 0");
    }
    if (cfg.flood_bytes > 0) {
        if (cfg.stalled < 1) die("--flood-bytes needs --stalled >= 1");
        if (cfg.flood_bytes < 32 || cfg.flood_bytes > MAX_PAYLOAD || cfg.flood_rate <= 0)
            die("--flood-bytes must be 32..%d, with --flood-rate > 0", MAX_PAYLOAD);
    }
    snprintf(flood_channel, sizeof flood_channel, "%s-slow", cfg.channel);
    if (cfg.mode == MODE_RATE && cfg.rate <= 0) die("--mode rate needs --rate > 0");
    if (cfg.warmup >= cfg.duration && cfg.mode != MODE_NONE) die("--warmup must be < --duration");
    if (strcmp(cfg.host, "127.0.0.1") != 0) die("only 127.0.0.1 is allowed");
    /* Bound every run: whatever happens, the process ends. */
    alarm((unsigned)(cfg.setup_timeout + cfg.duration + cfg.drain + 900));

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    int total_socks = cfg.subs + cfg.pubs + (scenario == SC_PRESENCE ? cfg.pool + 2 : 2);
    if ((rlim_t)(total_socks + 16) > rl.rlim_cur)
        die("%d connections need more than the open-file limit %ld", total_socks,
            (long)rl.rlim_cur);

    hmac_set_key(cfg.secret);
    rng_state ^= (uint32_t)now_ns() | 1;
    FILE *pr = fopen("/proc/sys/net/ipv4/ip_local_port_range", "r");
    if (pr) {
        if (fscanf(pr, "%d %d", &port_lo, &port_hi) != 2 || port_hi <= port_lo) bind_ports = 0;
        fclose(pr);
    }
    if (bind_lo) {
        port_lo = bind_lo;
        port_hi = bind_hi;
        bind_ports = 1;
    }
    port_cursor = (int)(rnd() % (uint32_t)(port_hi - port_lo + 1));
    for (int i = 0; i < nsrc; i++) src_cursor[i] = (int)(rnd() % (uint32_t)(port_hi - port_lo + 1));
    snprintf(req_host_hdr, sizeof req_host_hdr, "%s:%d", cfg.host, cfg.port);
    srv_addr.sin_family = AF_INET;
    srv_addr.sin_port = htons((uint16_t)cfg.port);
    inet_pton(AF_INET, cfg.host, &srv_addr.sin_addr);

    /* Presence: stable members, then the pool; the checker socket's column comes last. */
    int nsocks = cfg.subs;
    if (scenario == SC_PRESENCE) {
        pres_b = cfg.subs;
        pres_c = cfg.pool;
        nsocks = pres_b + pres_c;
        cfg.subs = nsocks; /* all of them connect during setup */
        first_load_user = next_user = nsocks;
    }
    /* One bit per (event, subscriber); calloc'd memory is only touched as events arrive. */
    row_words = ((size_t)nsocks + 1 + 63) / 64;
    max_seq = (long)((1ull << 30) / (row_words * 8)); /* <= 1 GiB of (lazily touched) bits */
    if (max_seq > (1L << 24)) max_seq = 1L << 24;
    if (scenario == SC_CHURN) max_seq = 1;
    if (cfg.max_events > 0 && cfg.max_events < max_seq) max_seq = cfg.max_events;
    bitmap = calloc((size_t)max_seq * row_words, 8);
    send_ns = calloc((size_t)max_seq, sizeof *send_ns);
    status_of = calloc((size_t)max_seq, sizeof *status_of);
    subs_arr = calloc((size_t)nsocks + 1, sizeof(conn));
    pubs_arr = calloc((size_t)cfg.pubs + 1, sizeof(conn));
    if (!bitmap || !send_ns || !status_of || !subs_arr || !pubs_arr) die("out of memory");
    if (scenario == SC_CLIENT || scenario == SC_PRESENCE) {
        seq_sender = calloc((size_t)max_seq, sizeof *seq_sender);
        ev_left = calloc((size_t)max_seq, sizeof *ev_left);
        if (!seq_sender || !ev_left) die("out of memory");
    }
    for (int i = 0; i < nsocks; i++) {
        subs_arr[i].kind = scenario == SC_CHURN ? K_CHURN : K_SUB;
        subs_arr[i].idx = (uint32_t)i;
        subs_arr[i].fd = -1;
        subs_arr[i].state = scenario == SC_CHURN ? ST_CLOSED : 0;
        if (scenario == SC_PRESENCE) {
            subs_arr[i].role = i < pres_b ? R_STABLE : R_POOL;
            subs_arr[i].user = i;
        }
    }
    if (scenario == SC_PRESENCE) {
        q_idle.cap = q_joined.cap = (uint32_t)pres_c;
        q_idle.v = calloc((size_t)pres_c, sizeof(uint32_t));
        q_joined.v = calloc((size_t)pres_c, sizeof(uint32_t));
        if (!q_idle.v || !q_joined.v) die("out of memory");
    }
    if (scenario == SC_CLIENT) {
        ch_lo = calloc((size_t)cfg.channels + 1, sizeof *ch_lo);
        ch_ok = calloc((size_t)cfg.channels, sizeof *ch_ok);
        senders_arr = calloc((size_t)cfg.senders, sizeof *senders_arr);
        if (!ch_lo || !ch_ok || !senders_arr) die("out of memory");
        for (int ch = 0; ch <= cfg.channels; ch++)
            ch_lo[ch] = (int)((long)ch * cfg.subs / cfg.channels);
        for (int ch = 0; ch < cfg.channels; ch++)
            for (int i = ch_lo[ch]; i < ch_lo[ch + 1]; i++) subs_arr[i].chan = (uint16_t)ch;
        /* Senders spread over the channels: j-th sender is member j/channels of channel
         * j%channels. */
        for (int j = 0; j < cfg.senders; j++) {
            int ch = j % cfg.channels, k = j / cfg.channels;
            if (ch_lo[ch] + k >= ch_lo[ch + 1]) continue;
            conn *c = &subs_arr[ch_lo[ch] + k];
            c->sender = 1;
            senders_arr[nsenders++] = c;
        }
    }
    if (cfg.stalled > 0) { /* spread over the subscribers: k*S/M */
        nstalls = cfg.stalled;
        stalls = calloc((size_t)nstalls, sizeof *stalls);
        if (!stalls) die("out of memory");
        for (int k = 0; k < nstalls; k++) {
            int idx = (int)((long)k * cfg.subs / nstalls);
            stalls[k].idx = idx;
            stalls[k].group = k & 1;
            stalls[k].close_code = -1;
            subs_arr[idx].stall = STALL_READING;
            subs_arr[idx].stall_k = (int16_t)k;
        }
    }
    for (int i = 0; i < cfg.pubs; i++) {
        pubs_arr[i].kind = K_PUB;
        pubs_arr[i].idx = (uint32_t)i;
        pubs_arr[i].fd = -1;
    }

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (cfg.interactive) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev);
    }
    signal(SIGPIPE, SIG_IGN);

    static struct epoll_event evs[1024];
    setup_cpu0 = cpu_seconds();
    st.t_setup0 = now_ns();
    uint64_t setup_deadline = st.t_setup0 + (uint64_t)(cfg.setup_timeout * 1e9);
    t_warm = t_end = UINT64_MAX;
    uint64_t drain_deadline = 0, drain_end = 0;
    double drain_cpu = 0;
    long rr = 0;
    phase = PH_SETUP;
    int pubs_started = 0;

    while (phase != PH_EXIT) {
        uint64_t now = now_ns();
        int timeout = 100;
        if (phase == PH_LOAD && cfg.mode == MODE_RATE) {
            timeout = next_due > now ? (int)((next_due - now + 999999) / 1000000) : 0;
            if (timeout > 100) timeout = 100;
        }
        if (scenario == SC_CHURN || phase == PH_VERIFY) timeout = timeout < 10 ? timeout : 10;
        int n = epoll_wait(epfd, evs, 1024, timeout);
        if (n < 0 && errno != EINTR) die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) {
                char b[256];
                ssize_t r = read(0, b, sizeof b);
                if (r <= 0) {
                    stdin_eof = 1;
                    epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                } else if (memchr(b, '\n', (size_t)r)) {
                    stdin_line++;
                }
                continue;
            }
            if (c->state == ST_CLOSED) continue;
            uint32_t e = evs[i].events;
            if (c->stall >= STALL_STOPPED) { /* a stalled subscriber: see "Slow consumers" */
                stall_event(c, e, now_ns());
                continue;
            }
            if (e & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                if (c->state == ST_CONNECTING && (e & EPOLLOUT)) on_writable(c);
                if (c->state != ST_CLOSED) on_readable(c);
            } else if (e & EPOLLOUT) {
                on_writable(c);
            }
        }
        now = now_ns();
        if (nstalls && (phase == PH_LOAD || phase == PH_DRAIN)) stall_tick(now);
        switch (phase) {
        case PH_SETUP: {
            if (scenario == SC_CHURN) { /* nothing to set up */
                setup_cpu1 = cpu_seconds();
                print_setup();
                phase = PH_WAIT_GO;
                stdin_line = 0;
                break;
            }
            long in_progress = st.sub_started - st.sub_ok - st.sub_failed;
            while (st.sub_started < cfg.subs && in_progress < cfg.concurrency) {
                conn *c = &subs_arr[st.sub_started++];
                if (conn_open(c) < 0) {
                    c->state = ST_CLOSED;
                    st.sub_failed++;
                } else {
                    in_progress++;
                }
            }
            int subs_done = st.sub_ok + st.sub_failed >= cfg.subs;
            if (subs_done && !pubs_started) {
                pubs_started = 1;
                for (int i = 0; i < cfg.pubs; i++)
                    if (conn_open(&pubs_arr[i]) < 0) {
                        pubs_arr[i].state = ST_CLOSED;
                        st.pub_failed++;
                    }
                if (cfg.flood_bytes > 0 && conn_open(&flood_pub) < 0) {
                    flood_pub.state = ST_CLOSED;
                    st.pub_failed++;
                }
            }
            int pubs_done = pubs_started && st.pub_ok + st.pub_failed >= cfg.pubs &&
                            (cfg.flood_bytes <= 0 || flood_ready || flood_pub.state == ST_CLOSED);
            /* Presence: let the member_added of the setup joins settle first. */
            uint64_t last = st.last_setup_event_ns > st.t_last_sub ? st.last_setup_event_ns
                                                                   : st.t_last_sub;
            int quiet = scenario != SC_PRESENCE || now - last > 300000000ull;
            if ((subs_done && pubs_done && quiet) || now > setup_deadline) {
                setup_cpu1 = cpu_seconds();
                print_setup();
                phase = PH_WAIT_GO;
                stdin_line = 0;
            }
            break;
        }
        case PH_WAIT_GO:
            if (cfg.interactive && stdin_eof) {
                phase = PH_WAIT_QUIT;
                break;
            }
            if (!cfg.interactive || stdin_line) {
                stdin_line = 0;
                load_cpu0 = cpu_seconds();
                t_load0 = now_ns();
                t_warm = t_load0 + (uint64_t)(cfg.warmup * 1e9);
                t_end = t_load0 + (uint64_t)(cfg.duration * 1e9);
                if (cfg.mode == MODE_NONE) t_warm = t_load0;
                next_due = t_load0;
                phase = PH_LOAD;
                if (cfg.stall_at >= 0) {
                    t_stall = t_load0 + (uint64_t)(cfg.stall_at * 1e9);
                    t_wake_a = cfg.stall_wake >= 0 ? t_load0 + (uint64_t)(cfg.stall_wake * 1e9)
                                                   : t_end;
                    t_stall_deadline = t_end + (uint64_t)(cfg.stall_wait * 1e9);
                    healthy_ok = healthy_subs();
                    flood_next_due = t_load0;
                }
                if (scenario == SC_CLIENT) client_load_start();
                if (scenario == SC_PRESENCE) presence_load_start();
                if (scenario == SC_FANOUT && cfg.mode == MODE_CLOSED) {
                    for (int i = 0; i < cfg.pubs; i++) {
                        conn *c = &pubs_arr[i];
                        if (c->state != ST_READY) continue;
                        for (int d = 0; d < cfg.depth; d++) pub_trigger(c);
                        conn_flush(c);
                    }
                }
            }
            break;
        case PH_LOAD:
            if (cfg.flood_bytes > 0) flood_tick(now);
            if (scenario == SC_CLIENT) client_tick(now);
            else if (scenario == SC_PRESENCE) presence_tick(now);
            else if (scenario == SC_CHURN) churn_tick(now);
            else if (cfg.mode == MODE_RATE) {
                while (next_due <= now && now < t_end) {
                    conn *best = NULL;
                    for (int j = 0; j < cfg.pubs; j++) {
                        conn *c = &pubs_arr[(rr + j) % cfg.pubs];
                        if (c->state != ST_READY) continue;
                        if (!best || c->fifo_n < best->fifo_n) best = c;
                        if (c->fifo_n == 0) break;
                    }
                    rr++;
                    if (!best) break;
                    if (best->fifo_n) st.pipelined++;
                    if (now - next_due > st.max_lag_ns) st.max_lag_ns = now - next_due;
                    if (!pub_trigger(best)) break;
                    conn_flush(best);
                    rate_i++;
                    next_due = t_load0 + (uint64_t)((double)rate_i * 1e9 / cfg.rate);
                    now = now_ns();
                }
            }
            if (now >= t_end) {
                phase = PH_DRAIN;
                drain_deadline = now + (uint64_t)(cfg.drain * 1e9);
                if (nstalls && drain_deadline < t_stall_deadline + 3000000000ull)
                    drain_deadline = t_stall_deadline + 3000000000ull;
            }
            break;
        case PH_DRAIN: {
            if (scenario != SC_FANOUT) {
                uint64_t last = st.last_delivery_ns > t_end ? st.last_delivery_ns : t_end;
                int quiet = now - last > 1000000000ull, done;
                if (scenario == SC_CHURN) churn_tick(now);
                if (scenario == SC_CLIENT) done = st.outstanding == 0 || quiet;
                else if (scenario == SC_PRESENCE) done = st.ops_outstanding <= 0 || quiet;
                else done = churn_active() == 0;
                if (done || now > drain_deadline) {
                    drain_cpu = cpu_seconds();
                    drain_end = now;
                    if (scenario == SC_CLIENT) {
                        print_result_client(drain_cpu, now);
                        phase = cfg.interactive ? PH_WAIT_QUIT : PH_EXIT;
                        stdin_line = 0;
                    } else {
                        verify_start(now);
                        phase = PH_VERIFY;
                    }
                }
                break;
            }
            int inflight = 0;
            for (int i = 0; i < cfg.pubs; i++)
                if (pubs_arr[i].state == ST_READY) inflight += (int)pubs_arr[i].fifo_n;
            uint64_t want = (uint64_t)st.status_200 *
                            (uint64_t)(healthy_ok >= 0 ? healthy_ok : st.sub_ok);
            uint64_t got = st.deliveries - st.dups - st.unexpected;
            uint64_t last = st.last_delivery_ns > t_end ? st.last_delivery_ns : t_end;
            int quiet = now - last > 1000000000ull;
            int stalls_done = !nstalls || !stall_begun || stall_unresolved <= 0;
            if ((inflight == 0 && (got >= want || quiet) && stalls_done) || now > drain_deadline ||
                (cfg.mode == MODE_NONE)) {
                print_result(cpu_seconds(), now);
                phase = cfg.interactive ? PH_WAIT_QUIT : PH_EXIT;
                stdin_line = 0;
            }
            break;
        }
        case PH_VERIFY:
            if (verify_step(now)) {
                /* CPU and wall time up to the end of the drain: verification is not load. */
                if (scenario == SC_PRESENCE) print_result_presence(drain_cpu, drain_end);
                else print_result_churn(drain_cpu, drain_end);
                phase = cfg.interactive ? PH_WAIT_QUIT : PH_EXIT;
                stdin_line = 0;
            }
            break;
        case PH_WAIT_QUIT:
            if (!cfg.interactive || stdin_line || stdin_eof) phase = PH_EXIT;
            break;
        }
    }
    phase = PH_EXIT;
    for (int i = 0; i < cfg.subs; i++) conn_close(&subs_arr[i], 1000);
    for (int i = 0; i < cfg.pubs; i++) conn_close(&pubs_arr[i], 1000);
    conn_close(&flood_pub, 1000);
    conn_close(&vconn, 1000);
    conn_close(&checker, 1000);
    return 0;
}
