/* sdk/src/api.c — the SDK's calls, each one slot of the host's table.
 *
 * Plugins call these; they go through ctx->api so the same plugin runs on
 * any host (or fake host) that fills the table in.
 */
#include <pthread.h>
#include <semaphore.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"
#include <kubus/client.h>
#include <kubus/strmap.h>

const char *kb_instance(kb_ctx *ctx) { return ctx->api->instance(ctx); }
const char *kb_host_name(kb_ctx *ctx) { return ctx->api->host_name(ctx); }
const char *kb_data_dir(kb_ctx *ctx) { return ctx->api->data_dir(ctx); }

int kb_serve(kb_ctx *ctx, const char *service, kb_serve_fn fn, void *arg)
{
	return ctx->api->serve(ctx, service, fn, arg);
}

int kb_serve_inline(kb_ctx *ctx, const char *service, kb_serve_fn fn,
    void *arg)
{
	if (KB_HOST_HAS(ctx, serve_inline))
		return ctx->api->serve_inline(ctx, service, fn, arg);
	return kb_serve(ctx, service, fn, arg);
}

/* --- counters (kb_count_*, kubus/client.h) ---------------------------------------- */

static atomic_bool count_on;
static pthread_mutex_t count_mu = PTHREAD_MUTEX_INITIALIZER;
static struct kb_strmap counts; /* key -> uint64_t * */

void kb_count_enable(bool on)
{
	atomic_store(&count_on, on);
}

bool kb_counting(void)
{
	return atomic_load_explicit(&count_on, memory_order_relaxed);
}

void kb_count_add(const char *key, uint64_t n)
{
	if (!atomic_load_explicit(&count_on, memory_order_relaxed))
		return;
	pthread_mutex_lock(&count_mu);
	uint64_t *v = kb_strmap_get(&counts, key);
	if (v == NULL && (v = calloc(1, sizeof(*v))) != NULL &&
	    kb_strmap_put(&counts, key, v, NULL) != 0) {
		free(v);
		v = NULL;
	}
	if (v)
		*v += n;
	pthread_mutex_unlock(&count_mu);
}

struct dump {
	char *buf;
	size_t len, cap;
	bool oom, reset;
};

static void dump_one(void *arg, const char *key, void *val)
{
	struct dump *d = arg;
	uint64_t *v = val;
	size_t need = strlen(key) + 24;
	if (d->len + need >= d->cap) {
		size_t cap = (d->cap + need) * 2;
		char *b = realloc(d->buf, cap);
		if (b == NULL) {
			d->oom = true;
			return;
		}
		d->buf = b;
		d->cap = cap;
	}
	d->len += (size_t)snprintf(d->buf + d->len, d->cap - d->len,
	    "%s\t%llu\n", key, (unsigned long long)*v);
	if (d->reset)
		*v = 0;
}

char *kb_count_dump(bool reset)
{
	struct dump d = { .buf = malloc(1), .cap = 1, .reset = reset };
	if (d.buf == NULL)
		return NULL;
	d.buf[0] = '\0';
	pthread_mutex_lock(&count_mu);
	kb_strmap_each(&counts, dump_one, &d);
	pthread_mutex_unlock(&count_mu);
	if (d.oom) {
		free(d.buf);
		return NULL;
	}
	return d.buf;
}

/* "call <instance> <op> <resource>[/<sub>]": the body decoded apart (the
 * body's own decoded copy is left for the receiver to make, as without
 * counting). */
static void count_call(kb_ctx *ctx, const char *op, kb_body *body)
{
	size_t len = 0;
	const void *data = kb_body_data(body, &len);
	msgpack_zone zone;
	msgpack_object o;
	size_t off = 0;
	const char *r = "?", *sub = NULL;
	size_t rlen = 1, sublen = 0;
	msgpack_zone_init(&zone, 1024);
	if (data && msgpack_unpack(data, len, &off, &zone, &o) ==
		MSGPACK_UNPACK_SUCCESS) {
		kb_mp_str(&o, "resource", &r, &rlen);
		kb_mp_str(&o, "subresource", &sub, &sublen);
	}
	char key[300];
	snprintf(key, sizeof(key), "call %s %s %.*s%s%.*s", kb_instance(ctx),
	    op, (int)rlen, r, sub ? "/" : "", (int)sublen, sub ? sub : "");
	msgpack_zone_destroy(&zone);
	kb_count_add(key, 1);
	key[0] = 'C'; /* "Call …": the bytes */
	kb_count_add(key, len);
}

int kb_request(kb_ctx *ctx, const char *service, const char *op,
    kb_body *body, int timeout_ms, kb_reply_fn fn, void *arg)
{
	if (atomic_load_explicit(&count_on, memory_order_relaxed) &&
	    !strcmp(service, "api") && op)
		count_call(ctx, op, body);
	return ctx->api->request(ctx, service, op, body, timeout_ms, fn, arg);
}

int kb_reply(kb_msg *req, kb_body *body)
{
	return req->api->reply(req, body, KB_OK, NULL);
}

static int reply_errv(kb_msg *req, int code, kb_body *body, const char *fmt,
    va_list ap)
{
	char text[1024];
	vsnprintf(text, sizeof(text), fmt, ap);
	if (code == KB_OK)
		code = KB_EINTERNAL;
	return req->api->reply(req, body, code, text);
}

int kb_reply_err(kb_msg *req, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = reply_errv(req, code, NULL, fmt, ap);
	va_end(ap);
	return rc;
}

int kb_reply_err_body(kb_msg *req, int code, kb_body *body, const char *fmt,
    ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = reply_errv(req, code, body, fmt, ap);
	va_end(ap);
	return rc;
}

int kb_subscribe(kb_ctx *ctx, const char *pattern, kb_sub_fn fn, void *arg)
{
	return ctx->api->subscribe(ctx, pattern, fn, arg);
}

int kb_unsubscribe(kb_ctx *ctx, const char *pattern)
{
	return ctx->api->unsubscribe(ctx, pattern);
}

int kb_publish(kb_ctx *ctx, const char *topic, kb_body *body)
{
	return ctx->api->publish(ctx, topic, body);
}

int kb_ext_load(kb_ctx *ctx, int kind, const char *name, const kb_conf *conf,
    struct kb_ext **out)
{
	return ctx->api->ext_load(ctx, kind, name, conf, out);
}

void kb_ext_unload(kb_ctx *ctx, struct kb_ext *ext)
{
	ctx->api->ext_unload(ctx, ext);
}

int kb_log_enabled(kb_ctx *ctx, int level)
{
	return ctx->api->log_enabled(ctx, level);
}

void kb_log(kb_ctx *ctx, int level, const char *msg, const char *kvfmt, ...)
{
	if (!ctx->api->log_enabled(ctx, level))
		return;
	char kv[2048];
	kv[0] = '\0';
	if (kvfmt && *kvfmt) {
		va_list ap;
		va_start(ap, kvfmt);
		vsnprintf(kv, sizeof(kv), kvfmt, ap);
		va_end(ap);
	}
	ctx->api->log(ctx, level, msg, kv[0] ? kv : NULL);
}

int kb_fail(kb_ctx *ctx, int code, const char *fmt, ...)
{
	char text[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	if (KB_HOST_HAS(ctx, fail))
		ctx->api->fail(ctx, text);
	return code ? code : KB_EINTERNAL;
}

/* --- kb_call: a blocking request built on the async one ------------------ */

/* The caller waits on a semaphore, not a condition variable: a reply that
 * comes before the caller sleeps costs no system call at all, and the
 * replier's thread never blocks on a mutex the woken caller holds (with a
 * mutex and condition variable, a store reply woke the API worker only for
 * it to wait again for the mutex: two more futex calls per kb_call).
 * glibc's sem_post touches nothing of the semaphore after its atomic add
 * but the futex word it wakes, so the caller may destroy it as soon as
 * sem_wait returns. */
struct waiter {
	sem_t done;
	int rc;
	kb_msg *rep;
};

static kb_msg *msg_copy(const kb_msg *m)
{
	kb_msg *c = kb_msg_new(m->type, m->who, m->dst, m->op,
	    kb_body_ref(m->body));
	if (c == NULL) {
		kb_body_unref(m->body);
		return NULL;
	}
	c->id = m->id;
	c->err = m->err;
	c->err_msg = m->err_msg ? strdup(m->err_msg) : NULL;
	return c;
}

static void call_done(void *arg, int rc, const kb_msg *rep)
{
	struct waiter *w = arg;
	w->rep = rep ? msg_copy(rep) : NULL;
	w->rc = rc;
	sem_post(&w->done); /* publishes rep and rc to the caller */
}

int kb_call(kb_ctx *ctx, const char *service, const char *op, kb_body *body,
    int timeout_ms, kb_msg **rep)
{
	struct waiter w = { .rc = 0, .rep = NULL };
	if (rep)
		*rep = NULL;
	sem_init(&w.done, 0, 0);
	int rc = kb_request(ctx, service, op, body, timeout_ms, call_done, &w);
	if (rc != 0) {
		kb_body_unref(body);
		goto out;
	}
	while (sem_wait(&w.done) != 0)
		; /* EINTR: a signal handler ran */
	rc = w.rc;
	if (rep)
		*rep = w.rep;
	else
		kb_msg_free(w.rep);
out:
	sem_destroy(&w.done);
	return rc;
}
