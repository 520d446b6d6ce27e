/* plugins/store-etcd/plugin.c — the `store` service on a real etcd cluster.
 *
 * The glue between the bus and the etcd client: the option table, the
 * plugin's lifecycle, and the dispatch handler that queues each request to
 * the worker pool (pool.c). Replies and watch publications go out from
 * worker threads and the watch thread (kb_reply and kb_publish may be
 * called from any thread).
 *
 * Config (plugins[].config):
 *
 *   endpoints: [http://10.0.0.1:2379, http://10.0.0.2:2379]   # client URLs
 *   dial_timeout: 2s        # connect, per attempt
 *   request_timeout: 5s     # one HTTP exchange with one member
 *   retry_timeout: 15s      # all attempts of one op (failover included)
 *   cacert: /etc/kubus/etcd-ca.pem   # https endpoints: CA to verify with
 *   cert: /etc/kubus/etcd-client.pem # client certificate (mutual TLS)
 *   key: /etc/kubus/etcd-client-key.pem
 *   value_max: 1.5Mi        # etcd's --max-request-bytes must exceed this
 *   workers: 32             # concurrent etcd calls
 *
 * Each watch holds one HTTP stream (one socket): size the process's open
 * files limit for the number of watches expected.
 */
#include <stdlib.h>
#include <string.h>

#include <kubus/kubus.h>

#include "etcd.h"

struct store {
	struct ec_store es; /* first: the hooks get &es */
	kb_ctx *ctx;
	struct ec_pool *pool;
	bool started;
};

static const struct kb_opt opts[] = {
	KB_OPT_STRLIST("endpoints", struct ec_conf, endpoints,
	    "etcd client URLs (default http://127.0.0.1:2379)"),
	KB_OPT_DURATION("dial_timeout", struct ec_conf, dial_timeout_ms, "2s",
	    "connect timeout per attempt"),
	KB_OPT_DURATION("request_timeout", struct ec_conf, request_timeout_ms,
	    "5s", "timeout of one HTTP exchange with one member"),
	KB_OPT_DURATION("retry_timeout", struct ec_conf, retry_timeout_ms,
	    "15s", "time budget of one op across retries and members"),
	KB_OPT_STR("cacert", struct ec_conf, cacert, NULL,
	    "CA bundle to verify https endpoints"),
	KB_OPT_STR("cert", struct ec_conf, cert, NULL,
	    "client certificate for mutual TLS"),
	KB_OPT_STR("key", struct ec_conf, key, NULL,
	    "client certificate's private key"),
	KB_OPT_SIZE("value_max", struct ec_conf, value_max, "1.5Mi",
	    "largest value accepted"),
	KB_OPT_INT("workers", struct ec_conf, workers, "32", 1, 1024,
	    "worker threads (concurrent etcd calls)"),
	KB_OPT_END,
};

/* --- hooks for kv.c and watch.c ------------------------------------------ */

/* token is the kb_msg of the request being answered. */
static void hook_reply(void *token, struct ec_out *o)
{
	kb_msg *req = token;
	if (o->code == 0 || o->has_body) {
		kb_body *b = kb_body_from_sbuf(&o->sb);
		if (!b) {
			kb_reply_err(req, KB_EINTERNAL, "out of memory");
			return;
		}
		int rc = o->code == 0 ? kb_reply(req, b) :
		    kb_reply_err_body(req, o->code, b, "%s", o->msg);
		if (rc != 0)
			kb_body_unref(b);
		return;
	}
	kb_reply_err(req, o->code, "%s", o->msg);
}

static void hook_publish(void *arg, const char *topic, msgpack_sbuffer *sb)
{
	struct store *st = arg;
	kb_body *b = kb_body_from_sbuf(sb);
	if (!b) {
		kb_error(st->ctx, "cannot publish a watch event", "topic=%s "
		    "err=%s", topic, kb_strerror(KB_ENOMEM));
		return;
	}
	int rc = kb_publish(st->ctx, topic, b);
	if (rc != 0) {
		kb_body_unref(b);
		kb_warn(st->ctx, "cannot publish a watch event", "topic=%s "
		    "err=\"%s\"", topic, kb_strerror(rc));
	}
}

static void hook_log(void *arg, int level, const char *msg)
{
	struct store *st = arg;
	kb_log(st->ctx, level, msg, NULL);
}

/* --- requests ---------------------------------------------------------- */

/* Worker thread: run one request. */
static void run_job(void *arg, void *job, struct ec_conn *cn, struct ec_out *o)
{
	struct store *st = arg;
	kb_msg *req = job;
	const char *op = kb_msg_op(req);
	const msgpack_object *body = kb_msg_body(req);
	int64_t left = kb_msg_remaining_ms(req);
	/* retry_timeout bounds the op even when the caller would wait
	 * longer: else a member that keeps failing (a TLS error, say) is
	 * retried until the caller's deadline, and our answer, the reason
	 * included, arrives when the caller has already given up. */
	int64_t now = ec_now_ms();
	int64_t dl = now + st->es.conf.retry_timeout_ms;
	if (left >= 0 && now + left < dl)
		dl = now + left;
	if (!cn) {
		kb_reply_err(req, KB_EINTERNAL, "cannot create a curl handle");
		return;
	}
	if (left == 0) {
		kb_reply_err(req, KB_ETIMEOUT, "deadline passed in the queue");
		return;
	}
	if (!strcmp(op, "watch")) {
		ec_watch_add(&st->es, cn, body, req, dl);
		return;
	}
	if (!strcmp(op, "unwatch")) {
		ec_watch_del(&st->es, body, req);
		return;
	}
	ec_op(&st->es, cn, op, body, dl, o);
	hook_reply(req, o);
}

/* Dispatch thread: never blocks, hands every request to the pool. */
static void on_request(void *arg, kb_msg *req)
{
	struct store *st = arg;
	if (!st->pool || ec_pool_push(st->pool, req) != 0)
		kb_reply_err(req, KB_EUNAVAILABLE, "store-etcd is not running");
}

/* --- lifecycle ------------------------------------------------------------ */

static void store_free(struct store *st)
{
	ec_pool_free(st->pool);
	ec_client_destroy(&st->es.client);
	kb_conf_opts_free(opts, &st->es.conf);
	free(st);
}

static int store_init(kb_ctx *ctx, const kb_conf *conf, void **state)
{
	struct store *st = calloc(1, sizeof *st);
	if (!st)
		return kb_fail(ctx, KB_ENOMEM, "out of memory");
	st->ctx = ctx;
	char err[512];
	int rc = kb_conf_opts(conf, opts, &st->es.conf, "store-etcd", err,
	    sizeof err);
	if (rc != 0) {
		free(st);
		return kb_fail(ctx, rc, "%s", err);
	}
	if (!st->es.conf.endpoints) {
		st->es.conf.endpoints = calloc(2, sizeof(char *));
		if (st->es.conf.endpoints)
			st->es.conf.endpoints[0] = strdup("http://127.0.0.1:2379");
		if (!st->es.conf.endpoints || !st->es.conf.endpoints[0]) {
			store_free(st);
			return kb_fail(ctx, KB_ENOMEM, "out of memory");
		}
	}
	if ((st->es.conf.cert == NULL) != (st->es.conf.key == NULL)) {
		store_free(st);
		return kb_fail(ctx, KB_EINVAL, "`cert` and `key` go together "
		    "(store-etcd)");
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		store_free(st);
		return kb_fail(ctx, KB_EINTERNAL, "curl_global_init failed");
	}
	rc = ec_client_init(&st->es.client, &st->es.conf, err, sizeof err);
	if (rc != 0) {
		curl_global_cleanup();
		store_free(st);
		return kb_fail(ctx, rc, "%s (store-etcd)", err);
	}
	st->es.client.log = hook_log;
	st->es.client.log_arg = st;
	st->es.reply = hook_reply;
	st->es.publish = hook_publish;
	st->es.hook_arg = st;
	rc = kb_serve(ctx, KB_STORE_SERVICE, on_request, st);
	if (rc != 0) {
		curl_global_cleanup();
		store_free(st);
		return kb_fail(ctx, rc, "cannot serve `%s`: %s", KB_STORE_SERVICE,
		    kb_strerror(rc));
	}
	*state = st;
	return 0;
}

static int store_start(kb_ctx *ctx, void *state)
{
	struct store *st = state;
	int rc = ec_watch_start(&st->es);
	if (rc != 0)
		return kb_fail(ctx, rc, "cannot start the watch thread");
	rc = ec_pool_start(&st->pool, &st->es.client, (int)st->es.conf.workers,
	    run_job, st);
	if (rc != 0) {
		st->pool = NULL;
		ec_watch_stop(&st->es);
		return kb_fail(ctx, rc, "cannot start %lld workers",
		    (long long)st->es.conf.workers);
	}
	st->started = true;
	kb_info(ctx, "store-etcd started", "endpoints=%d workers=%lld",
	    st->es.client.neps, (long long)st->es.conf.workers);
	return 0;
}

static void store_stop(kb_ctx *ctx, void *state)
{
	(void)ctx;
	struct store *st = state;
	/* Queued requests are still answered; later ones are refused. The
	 * pool itself is freed in fini, when no request can arrive. */
	ec_pool_stop(st->pool);
	ec_watch_stop(&st->es);
	st->started = false;
}

static void store_fini(void *state)
{
	store_free(state);
	curl_global_cleanup();
}

KB_PLUGIN_EXPORT const struct kb_plugin *kb_plugin_describe(void)
{
	static const struct kb_plugin p = {
		.hdr = KB_PLUGIN_HDR,
		.name = "store-etcd",
		.version = KUBUS_VERSION,
		.description = "the store on an etcd v3 cluster (JSON gateway)",
		.kind = KB_KIND_STORE,
		.init = store_init,
		.start = store_start,
		.stop = store_stop,
		.fini = store_fini,
	};
	return &p;
}
