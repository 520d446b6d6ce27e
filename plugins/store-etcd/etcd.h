/* plugins/store-etcd/etcd.h — what the files of store-etcd share.
 *
 * The plugin is split so that everything that talks to etcd (client.c,
 * kv.c, watch.c) depends only on libcurl, jansson and msgpack-c: the glue
 * to the bus (plugin.c) hands each request over as a msgpack object and
 * gets an `ec_out` back. That keeps the etcd logic testable without a host.
 *
 *   plugin.c   descriptor, config table, dispatch -> worker pool, replies
 *   pool.c     worker threads, each with its own curl handle (keep-alive)
 *   client.c   one JSON call to etcd's v3 gateway, endpoint failover, TLS
 *   kv.c       get, range, put, delete, txn, compact, revision
 *   watch.c    the watch thread: one etcd watch stream per store watch on a
 *              curl multi, resumed after a broken stream
 *   codec.c    base64 and KV conversions between etcd JSON and msgpack
 */
#ifndef STORE_ETCD_H
#define STORE_ETCD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <curl/curl.h>
#include <jansson.h>
#include <msgpack.h>

#include <kubus/err.h>

/* --- configuration --------------------------------------------------------- */

struct ec_conf {
	char **endpoints;           /* NULL-terminated URLs */
	int64_t dial_timeout_ms;    /* TCP/TLS connect, per attempt */
	int64_t request_timeout_ms; /* one HTTP exchange */
	int64_t retry_timeout_ms;   /* all attempts of one op together */
	char *cacert, *cert, *key;  /* TLS files, optional */
	int64_t value_max;          /* bytes */
	int64_t workers;            /* worker threads */
};

/* --- results ----------------------------------------------------------------- */

/* What an op answers: code 0 and a body, or an error code, a message and
 * possibly a body (Conflict carries the current value). */
struct ec_out {
	int code;
	bool has_body;
	msgpack_sbuffer sb;
	msgpack_packer pk; /* writes into sb */
	char msg[320];
};

void ec_out_init(struct ec_out *o);
void ec_out_reset(struct ec_out *o);
void ec_out_destroy(struct ec_out *o);
int ec_out_err(struct ec_out *o, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* --- the client ------------------------------------------------------------- */

struct ec_client {
	char **eps;
	int neps;
	atomic_int cur; /* the endpoint new calls try first */
	const struct ec_conf *conf;
	/* Logging hook (plugin.c); may be NULL. */
	void (*log)(void *arg, int level, const char *msg);
	void *log_arg;
};

/* One thread's connection state: a curl easy handle whose connection cache
 * keeps one keep-alive connection per member. */
struct ec_conn {
	CURL *h;
	struct curl_slist *hdrs;
	char *buf;
	size_t len, cap;
	char errbuf[CURL_ERROR_SIZE]; /* curl's detail of the last failure */
	/* Connections the last request went out on: curl sends it again on
	 * a new one when a reused one broke before any reply. */
	int sends;
};

int ec_client_init(struct ec_client *c, const struct ec_conf *conf,
    char *err, size_t errlen);
void ec_client_destroy(struct ec_client *c);
int ec_conn_init(struct ec_conn *cn);
void ec_conn_destroy(struct ec_conn *cn);
/* Apply URL-independent options (timeouts, TLS) to a handle. */
void ec_client_setopts(struct ec_client *c, CURL *h);

/* How a call may be repeated on another member. */
enum ec_retry {
	EC_READ,   /* idempotent: retry on any transient failure */
	EC_GUARDED, /* a write whose compares make a repeat harmless: retry on
		     * any transient failure; *unknown tells the caller an
		     * earlier attempt may have applied */
	EC_ONCE,   /* retry only when the request surely did not apply */
};

/* POST `req` (taken) as JSON to `path` ("/v3/kv/range"). On 0, *resp is the
 * decoded reply (caller decrefs). Errors: KB_EEXPIRED (compacted),
 * KB_EINVAL (future revision, too large, bad request), KB_EUNAVAILABLE
 * (no member answered), KB_ETIMEOUT (the outcome of a write is unknown),
 * KB_EINTERNAL; `o` gets the message. `deadline_ms` (monotonic, 0 = from
 * the config) bounds the retries. */
int ec_call(struct ec_client *c, struct ec_conn *cn, const char *path,
    json_t *req, enum ec_retry retry, int64_t deadline_ms, json_t **resp,
    bool *unknown, struct ec_out *o);

int64_t ec_now_ms(void);
void ec_sleep_ms(int ms);

/* --- codec ------------------------------------------------------------------ */

char *ec_b64_enc(const void *data, size_t len);        /* malloc'd, NUL */
/* Decode into a malloc'd buffer (NUL-terminated for convenience). */
unsigned char *ec_b64_dec(const char *s, size_t *len);
/* A JSON string holding base64 of the bytes. */
json_t *ec_jb64(const void *data, size_t len);
/* etcd int64s come as strings (or numbers); absent = 0. */
int64_t ec_jint(const json_t *o, const char *key);
/* Pack an etcd KV ({key, value, create_revision, …}) as a store KV. */
void ec_pack_kv(msgpack_packer *pk, const json_t *kv, bool with_value);
/* Compare a base64 JSON value with raw bytes. */
bool ec_jb64_eq(const json_t *s, const void *data, size_t len);

/* msgpack reading helpers (no SDK needed). */
const msgpack_object *ec_mp_key(const msgpack_object *map, const char *key);
bool ec_mp_int(const msgpack_object *map, const char *key, int64_t *out);
bool ec_mp_bool(const msgpack_object *map, const char *key, bool *out);
void ec_mp_str(msgpack_packer *pk, const char *s);
void ec_mp_strn(msgpack_packer *pk, const char *s, size_t n);

/* --- the worker pool (pool.c) ---------------------------------------------- */

/* Runs `fn(arg, job, conn, out)` for each pushed job on one of n threads;
 * each thread owns a curl handle (kept-alive connections) and an ec_out. */
typedef void (*ec_job_fn)(void *arg, void *job, struct ec_conn *cn,
    struct ec_out *o);
struct ec_pool;
int ec_pool_start(struct ec_pool **out, struct ec_client *c, int n,
    ec_job_fn fn, void *arg);
/* Queue a job; KB_ECLOSED once stopping. */
int ec_pool_push(struct ec_pool *p, void *job);
/* Finish the queued jobs and join; later pushes get KB_ECLOSED. */
void ec_pool_stop(struct ec_pool *p);
/* Free a stopped pool (when nothing can push any more). */
void ec_pool_free(struct ec_pool *p);

/* --- the store ---------------------------------------------------------------- */

struct ec_watch;

struct ec_store {
	struct ec_conf conf;
	struct ec_client client;
	atomic_llong compact_lb; /* compact revision known (lower bound) */

	/* watch machinery (watch.c) */
	pthread_t watch_thr;
	bool watch_running;
	CURLM *multi;
	pthread_mutex_t wmu;
	struct ec_watch *watches;   /* owned by the watch thread */
	struct ec_wcmd *cmds;       /* queued for the watch thread */
	atomic_bool wstop;
	int64_t next_watch_id;

	/* Hooks to the bus (plugin.c or a test). */
	void (*reply)(void *token, struct ec_out *o);
	/* Publish the packed body on topic; takes nothing, copies. */
	void (*publish)(void *arg, const char *topic, msgpack_sbuffer *sb);
	void *hook_arg;
};

/* The store ops, each on a worker thread. `req` is the request body. */
void ec_op(struct ec_store *s, struct ec_conn *cn, const char *op,
    const msgpack_object *req, int64_t deadline_ms, struct ec_out *o);

/* Watch: start the thread, stop it (dropping every watch). */
int ec_watch_start(struct ec_store *s);
void ec_watch_stop(struct ec_store *s);
/* Handle "watch" (from a worker: it may block for a first read) and
 * "unwatch". Each answers through s->reply(token, …), possibly later. */
void ec_watch_add(struct ec_store *s, struct ec_conn *cn,
    const msgpack_object *req, void *token, int64_t deadline_ms);
void ec_watch_del(struct ec_store *s, const msgpack_object *req,
    void *token);

/* Is a watch from `rev` too old (rev <= the compact revision)? *comp is
 * then the compact revision, else 0. */
int ec_check_compacted(struct ec_store *s, struct ec_conn *cn, int64_t rev,
    int64_t dl, int64_t *comp, struct ec_out *o);

/* The current revision (one range round trip). */
int ec_current_rev(struct ec_store *s, struct ec_conn *cn, int64_t deadline,
    int64_t *rev, struct ec_out *o);

#endif
