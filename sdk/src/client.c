/* sdk/src/client.c — typed calls to the API server's `api` bus service
 * (body shapes in plugins/apiserver/busapi.c), the GVR constants, object
 * keys, and the clocks the informer, work queue and elector share. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client_int.h"

#define API_SERVICE "api"

const struct kb_gvr KB_GVR_NAMESPACES = { "", "v1", "namespaces" };
const struct kb_gvr KB_GVR_NODES = { "", "v1", "nodes" };
const struct kb_gvr KB_GVR_PODS = { "", "v1", "pods" };
const struct kb_gvr KB_GVR_SERVICES = { "", "v1", "services" };
const struct kb_gvr KB_GVR_ENDPOINTS = { "", "v1", "endpoints" };
const struct kb_gvr KB_GVR_CONFIGMAPS = { "", "v1", "configmaps" };
const struct kb_gvr KB_GVR_SECRETS = { "", "v1", "secrets" };
const struct kb_gvr KB_GVR_SERVICEACCOUNTS = { "", "v1", "serviceaccounts" };
const struct kb_gvr KB_GVR_EVENTS = { "", "v1", "events" };
const struct kb_gvr KB_GVR_DEPLOYMENTS = { "apps", "v1", "deployments" };
const struct kb_gvr KB_GVR_REPLICASETS = { "apps", "v1", "replicasets" };
const struct kb_gvr KB_GVR_ENDPOINTSLICES = { "discovery.k8s.io", "v1",
	"endpointslices" };
const struct kb_gvr KB_GVR_LEASES = { "coordination.k8s.io", "v1", "leases" };

/* --- the request body ------------------------------------------------------------ */

static void pack_kv(msgpack_packer *pk, const char *k, const char *v)
{
	kb_mp_pack_cstr(pk, k);
	kb_mp_pack_cstr(pk, v);
}

static kb_body *api_body(const struct kb_api_args *a)
{
	const char *const strs[][2] = {
		{ "group", a->r ? a->r->group : NULL },
		{ "version", a->r ? a->r->version : NULL },
		{ "resource", a->r ? a->r->resource : NULL },
		{ "namespace", a->ns },
		{ "name", a->name },
		{ "subresource", a->sub },
		{ "labelSelector", a->label_selector },
		{ "fieldSelector", a->field_selector },
		{ "resourceVersion", a->resource_version },
		{ "topic", a->topic },
		{ "patchType", a->patch_type },
	};
	const size_t nstrs = sizeof(strs) / sizeof(strs[0]);
	const void *raw = NULL;
	size_t rawlen = 0;
	if (a->body) {
		/* Checked once here: the bytes go into the request as they are. */
		if (kb_body_obj(a->body) == NULL)
			return NULL;
		raw = kb_body_data(a->body, &rawlen);
	}
	size_t n = 0;
	for (size_t i = 0; i < nstrs; i++)
		n += strs[i][1] != NULL;
	n += raw != NULL;
	n += a->watch_id > 0;

	msgpack_sbuffer sb;
	msgpack_packer pk;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, n);
	for (size_t i = 0; i < nstrs; i++)
		if (strs[i][1])
			pack_kv(&pk, strs[i][0], strs[i][1]);
	if (raw) {
		kb_mp_pack_cstr(&pk, a->body_key ? a->body_key : "object");
		msgpack_sbuffer_write(&sb, raw, rawlen);
	}
	if (a->watch_id > 0) {
		kb_mp_pack_cstr(&pk, "watch_id");
		msgpack_pack_int64(&pk, a->watch_id);
	}
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

int kb_api_call(kb_ctx *ctx, const char *op, const struct kb_api_args *a,
    int timeout_ms, kb_msg **out)
{
	if (out)
		*out = NULL;
	kb_body *b = api_body(a);
	if (b == NULL)
		return a->body ? KB_EINVAL : KB_ENOMEM;
	kb_msg *rep = NULL;
	int rc = kb_call(ctx, API_SERVICE, op, b, timeout_ms, &rep);
	if (out)
		*out = rep;
	else
		kb_msg_free(rep);
	return rc;
}

/* --- the typed calls ------------------------------------------------------------- */

/* Every call takes its body whatever happens. */
static int call(kb_ctx *ctx, const char *op, const struct kb_api_args *a,
    kb_msg **out)
{
	int rc;
	if (ctx == NULL || a->r == NULL)
		rc = KB_EINVAL;
	else
		rc = kb_api_call(ctx, op, a, 0, out);
	if (a->body)
		kb_body_unref(a->body);
	return rc;
}

int kb_api_get(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    const char *name, kb_msg **out)
{
	struct kb_api_args a = { .r = r, .ns = ns, .name = name };
	return call(ctx, "get", &a, out);
}

int kb_api_list(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    const char *label_selector, const char *field_selector, kb_msg **out)
{
	struct kb_api_args a = { .r = r,
		.ns = ns,
		.label_selector = label_selector,
		.field_selector = field_selector };
	return call(ctx, "list", &a, out);
}

int kb_api_create(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    kb_body *obj, kb_msg **out)
{
	struct kb_api_args a = { .r = r,
		.ns = ns,
		.body_key = "object",
		.body = obj };
	return call(ctx, "create", &a, out);
}

int kb_api_update(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    const char *name, const char *sub, kb_body *obj, kb_msg **out)
{
	struct kb_api_args a = { .r = r,
		.ns = ns,
		.name = name,
		.sub = sub,
		.body_key = "object",
		.body = obj };
	return call(ctx, "update", &a, out);
}

int kb_api_patch(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    const char *name, const char *sub, const char *type, kb_body *patch,
    kb_msg **out)
{
	struct kb_api_args a = { .r = r,
		.ns = ns,
		.name = name,
		.sub = sub,
		.patch_type = type ? type : "merge",
		.body_key = "patch",
		.body = patch };
	return call(ctx, "patch", &a, out);
}

int kb_api_delete(kb_ctx *ctx, const struct kb_gvr *r, const char *ns,
    const char *name, kb_body *options, kb_msg **out)
{
	struct kb_api_args a = { .r = r,
		.ns = ns,
		.name = name,
		.body_key = "options",
		.body = options };
	return call(ctx, "delete", &a, out);
}

/* --- batches: calls in flight together ---------------------------------------------- */

struct kb_api_batch {
	kb_ctx *ctx;
	int max;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int inflight;
	int senders, drainers; /* waiting for a free slot, for none out */
};

struct batch_call {
	struct kb_api_batch *b;
	kb_api_done_fn fn;
	void *arg;
};

struct kb_api_batch *kb_api_batch_new(kb_ctx *ctx, int max_inflight)
{
	if (ctx == NULL)
		return NULL;
	struct kb_api_batch *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->ctx = ctx;
	b->max = max_inflight > 0 ? max_inflight : 1;
	pthread_mutex_init(&b->mu, NULL);
	pthread_cond_init(&b->cv, NULL);
	return b;
}

/* One fewer out. Waiters are woken only when what they wait for is so (a
 * drainer woken at each of 500 answers would sleep again 499 times). */
static void batch_release(struct kb_api_batch *b)
{
	pthread_mutex_lock(&b->mu);
	b->inflight--;
	if ((b->senders && b->inflight == b->max - 1) ||
	    (b->drainers && b->inflight == 0))
		pthread_cond_broadcast(&b->cv);
	pthread_mutex_unlock(&b->mu);
}

/* A bus thread: the caller's callback, then one fewer out. The waiter may
 * free the batch as soon as the lock is released. */
static void batch_done(void *arg, int rc, const kb_msg *rep)
{
	struct batch_call *c = arg;
	struct kb_api_batch *b = c->b;
	if (c->fn)
		c->fn(c->arg, rc, rep);
	free(c);
	batch_release(b);
}

static int batch_send(struct kb_api_batch *b, const char *op,
    const struct kb_api_args *a, kb_api_done_fn fn, void *arg)
{
	int rc = 0;
	kb_body *body = NULL;
	struct batch_call *c = NULL;
	if (b == NULL || a->r == NULL) {
		rc = KB_EINVAL;
		goto out;
	}
	body = api_body(a);
	if (body == NULL) {
		rc = a->body ? KB_EINVAL : KB_ENOMEM;
		goto out;
	}
	c = malloc(sizeof(*c));
	if (c == NULL) {
		rc = KB_ENOMEM;
		goto out;
	}
	*c = (struct batch_call){ .b = b, .fn = fn, .arg = arg };
	pthread_mutex_lock(&b->mu);
	b->senders++;
	while (b->inflight >= b->max)
		pthread_cond_wait(&b->cv, &b->mu);
	b->senders--;
	b->inflight++;
	pthread_mutex_unlock(&b->mu);
	rc = kb_request(b->ctx, API_SERVICE, op, body, 0, batch_done, c);
	if (rc == 0) {
		body = NULL; /* the bus's now; batch_done frees c */
		c = NULL;
	} else {
		batch_release(b);
	}
out:
	if (body)
		kb_body_unref(body);
	free(c);
	if (a->body)
		kb_body_unref(a->body);
	return rc;
}

int kb_api_batch_create(struct kb_api_batch *b, const struct kb_gvr *r,
    const char *ns, kb_body *obj, kb_api_done_fn done, void *arg)
{
	struct kb_api_args a = { .r = r,
		.ns = ns,
		.body_key = "object",
		.body = obj };
	return batch_send(b, "create", &a, done, arg);
}

int kb_api_batch_update(struct kb_api_batch *b, const struct kb_gvr *r,
    const char *ns, const char *name, const char *sub, kb_body *obj,
    kb_api_done_fn done, void *arg)
{
	struct kb_api_args a = { .r = r,
		.ns = ns,
		.name = name,
		.sub = sub,
		.body_key = "object",
		.body = obj };
	return batch_send(b, "update", &a, done, arg);
}

int kb_api_batch_patch(struct kb_api_batch *b, const struct kb_gvr *r,
    const char *ns, const char *name, const char *sub, const char *type,
    kb_body *patch, kb_api_done_fn done, void *arg)
{
	struct kb_api_args a = { .r = r,
		.ns = ns,
		.name = name,
		.sub = sub,
		.patch_type = type ? type : "merge",
		.body_key = "patch",
		.body = patch };
	return batch_send(b, "patch", &a, done, arg);
}

int kb_api_batch_delete(struct kb_api_batch *b, const struct kb_gvr *r,
    const char *ns, const char *name, kb_body *options, kb_api_done_fn done,
    void *arg)
{
	struct kb_api_args a = { .r = r,
		.ns = ns,
		.name = name,
		.body_key = "options",
		.body = options };
	return batch_send(b, "delete", &a, done, arg);
}

void kb_api_batch_wait(struct kb_api_batch *b)
{
	if (b == NULL)
		return;
	pthread_mutex_lock(&b->mu);
	b->drainers++;
	while (b->inflight > 0)
		pthread_cond_wait(&b->cv, &b->mu);
	b->drainers--;
	pthread_mutex_unlock(&b->mu);
}

void kb_api_batch_free(struct kb_api_batch *b)
{
	if (b == NULL)
		return;
	kb_api_batch_wait(b);
	pthread_cond_destroy(&b->cv);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

/* --- times ----------------------------------------------------------------------- */

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), as timegm counts
 * them, without its locale and time zone work. */
static int64_t days_from_civil(int64_t y, int64_t m, int64_t d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

/* n decimal digits at p, or -1 */
static int digits(const char *p, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return -1;
		v = v * 10 + (p[i] - '0');
	}
	return v;
}

bool kb_time_parse(const char *s, size_t len, int64_t *ms)
{
	if (s == NULL || len < 20 || s[4] != '-' || s[7] != '-' ||
	    (s[10] != 'T' && s[10] != 't') || s[13] != ':' || s[16] != ':')
		return false;
	int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2),
	    h = digits(s + 11, 2), mi = digits(s + 14, 2),
	    sec = digits(s + 17, 2);
	if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 ||
	    mi < 0 || mi > 59 || sec < 0 || sec > 60)
		return false;
	int64_t t = ((days_from_civil(y, mo, d) * 24 + h) * 60 + mi) * 60000 +
	    (int64_t)sec * 1000;
	size_t i = 19;
	if (s[i] == '.') {
		int64_t scale = 100;
		size_t from = ++i;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, scale /= 10)
			t += (s[i] - '0') * scale;
		if (i == from)
			return false;
	}
	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i + 6 <= len && (s[i] == '+' || s[i] == '-') &&
	    s[i + 3] == ':') {
		int oh = digits(s + i + 1, 2), om = digits(s + i + 4, 2);
		if (oh < 0 || oh > 23 || om < 0 || om > 59)
			return false;
		t -= (s[i] == '+' ? 1 : -1) * ((int64_t)oh * 60 + om) * 60000;
		i += 6;
	} else {
		return false;
	}
	if (i != len)
		return false;
	*ms = t;
	return true;
}

/* --- keys ------------------------------------------------------------------------ */

const char *kb_object_key(const msgpack_object *obj, char *buf, size_t len)
{
	const char *ns = NULL, *name = NULL;
	size_t nslen = 0, namelen = 0;
	if (buf == NULL || len == 0)
		return NULL;
	buf[0] = '\0';
	const msgpack_object *md = kb_mp_key(obj, "metadata");
	if (!kb_mp_str(md, "name", &name, &namelen))
		return NULL;
	kb_mp_str(md, "namespace", &ns, &nslen);
	/* as "%.*s/%.*s" would print them: each up to a NUL */
	nslen = ns && nslen ? strnlen(ns, nslen) : 0;
	namelen = name && namelen ? strnlen(name, namelen) : 0;
	size_t n = (nslen ? nslen + 1 : 0) + namelen;
	if (n >= len)
		return NULL;
	if (nslen) {
		memcpy(buf, ns, nslen);
		buf[nslen] = '/';
	}
	if (namelen)
		memcpy(buf + (nslen ? nslen + 1 : 0), name, namelen);
	buf[n] = '\0';
	return buf;
}

/* --- clocks ------------------------------------------------------------------------ */

int64_t kb_mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t kb_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void kb_cond_init_mono(pthread_cond_t *cv)
{
	pthread_condattr_t a;
	pthread_condattr_init(&a);
	pthread_condattr_setclock(&a, CLOCK_MONOTONIC);
	pthread_cond_init(cv, &a);
	pthread_condattr_destroy(&a);
}

int kb_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu, int64_t abs_ms)
{
	if (abs_ms < 0)
		return pthread_cond_wait(cv, mu);
	struct timespec ts = { .tv_sec = abs_ms / 1000,
		.tv_nsec = (abs_ms % 1000) * 1000000 };
	return pthread_cond_timedwait(cv, mu, &ts) == ETIMEDOUT ? KB_ETIMEOUT :
								  0;
}
