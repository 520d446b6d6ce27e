/* sdk/src/api.c — the SDK's calls, each one slot of the host's table.
 *
 * Plugins call these; they go through ctx->api so the same plugin runs on
 * any host (or fake host) that fills the table in.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

const char *kb_instance(kb_ctx *ctx) { return ctx->api->instance(ctx); }
const char *kb_host_name(kb_ctx *ctx) { return ctx->api->host_name(ctx); }
const char *kb_data_dir(kb_ctx *ctx) { return ctx->api->data_dir(ctx); }

int kb_serve(kb_ctx *ctx, const char *service, kb_serve_fn fn, void *arg)
{
	return ctx->api->serve(ctx, service, fn, arg);
}

int kb_request(kb_ctx *ctx, const char *service, const char *op,
    kb_body *body, int timeout_ms, kb_reply_fn fn, void *arg)
{
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

struct waiter {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool done;
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
	kb_msg *copy = rep ? msg_copy(rep) : NULL;
	pthread_mutex_lock(&w->mu);
	w->rc = rc;
	w->rep = copy;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

int kb_call(kb_ctx *ctx, const char *service, const char *op, kb_body *body,
    int timeout_ms, kb_msg **rep)
{
	struct waiter w = { .done = false, .rc = 0, .rep = NULL };
	if (rep)
		*rep = NULL;
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cv, NULL);
	int rc = kb_request(ctx, service, op, body, timeout_ms, call_done, &w);
	if (rc != 0) {
		kb_body_unref(body);
		goto out;
	}
	pthread_mutex_lock(&w.mu);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.mu);
	pthread_mutex_unlock(&w.mu);
	rc = w.rc;
	if (rep)
		*rep = w.rep;
	else
		kb_msg_free(w.rep);
out:
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.mu);
	return rc;
}
