/* plugins/apiserver/metrics.c — /metrics in Prometheus' text format.
 *
 * Requests by verb, resource and code; request latency and store latency
 * as histograms with kube-apiserver's buckets; the watchers open now. The
 * label values come from the resource table and fixed verb names, never
 * from raw request input, so the number of series stays bounded; a hard
 * cap folds anything beyond it into resource="other" all the same.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"

#define SLOTS 1024      /* hash slots per family; power of two */
#define MAX_SERIES 2048 /* per family */
#define LABEL_MAX 64

static const double buckets[] = { 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
	0.2, 0.4, 0.6, 0.8, 1, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 45,
	60 };
#define NBUCKETS (sizeof(buckets) / sizeof(buckets[0]))

struct series {
	struct series *next;
	char a[LABEL_MAX]; /* verb, or the store operation */
	char b[LABEL_MAX]; /* resource, or "" */
	int code;          /* requests_total only */
	uint64_t count;
	double sum;
	uint64_t hist[NBUCKETS];
};

struct family {
	struct series *slot[SLOTS];
	size_t n;
};

struct api_metrics {
	pthread_mutex_t mu;
	struct family requests; /* counters by verb, resource, code */
	struct family latency;  /* histograms by verb, resource */
	struct family store;    /* histograms by operation */
	int64_t watchers;
};

static struct api_metrics *metrics_of(struct api_server *s)
{
	struct api_metrics *m = __atomic_load_n(&s->metrics, __ATOMIC_ACQUIRE);
	if (m)
		return m;
	struct api_metrics *fresh = calloc(1, sizeof(*fresh));
	if (fresh == NULL)
		return NULL;
	pthread_mutex_init(&fresh->mu, NULL);
	void *expected = NULL;
	if (__atomic_compare_exchange_n(&s->metrics, &expected, fresh, false,
		__ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
		return fresh;
	pthread_mutex_destroy(&fresh->mu);
	free(fresh);
	return expected;
}

static unsigned hash(const char *a, const char *b, int code)
{
	unsigned h = 2166136261u;
	for (; *a; a++)
		h = (h ^ (unsigned char)*a) * 16777619u;
	h = (h ^ '/') * 16777619u;
	for (; *b; b++)
		h = (h ^ (unsigned char)*b) * 16777619u;
	return (h ^ (unsigned)code) * 16777619u;
}

/* The series for these labels, made on first use (caller holds mu). */
static struct series *series_get(struct family *f, const char *a, const char *b,
    int code)
{
	a = a ? a : "";
	b = b ? b : "";
	if (f->n >= MAX_SERIES)
		b = "other";
	unsigned i = hash(a, b, code) & (SLOTS - 1);
	for (struct series *x = f->slot[i]; x; x = x->next)
		if (x->code == code && !strcmp(x->a, a) && !strcmp(x->b, b))
			return x;
	struct series *x = calloc(1, sizeof(*x));
	if (x == NULL)
		return NULL;
	snprintf(x->a, sizeof(x->a), "%s", a);
	snprintf(x->b, sizeof(x->b), "%s", b);
	x->code = code;
	x->next = f->slot[i];
	f->slot[i] = x;
	f->n++;
	return x;
}

static void observe(struct series *x, double seconds)
{
	if (x == NULL)
		return;
	x->count++;
	x->sum += seconds;
	for (size_t i = 0; i < NBUCKETS; i++)
		if (seconds <= buckets[i])
			x->hist[i]++;
}

void api_metrics_request(struct api_server *s, const char *verb,
    const char *resource, int code, double seconds)
{
	struct api_metrics *m = metrics_of(s);
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	struct series *c = series_get(&m->requests, verb, resource, code);
	if (c)
		c->count++;
	observe(series_get(&m->latency, verb, resource, 0), seconds);
	pthread_mutex_unlock(&m->mu);
}

void api_metrics_watchers(struct api_server *s, int delta)
{
	struct api_metrics *m = metrics_of(s);
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	m->watchers += delta;
	pthread_mutex_unlock(&m->mu);
}

void api_metrics_store(struct api_server *s, const char *op, double seconds)
{
	struct api_metrics *m = metrics_of(s);
	if (m == NULL)
		return;
	pthread_mutex_lock(&m->mu);
	observe(series_get(&m->store, op, "", 0), seconds);
	pthread_mutex_unlock(&m->mu);
}

/* --- the text ---------------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void emit(struct out *o, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void emit(struct out *o, const char *fmt, ...)
{
	for (;;) {
		if (o->failed)
			return;
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			o->failed = true;
			return;
		}
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		size_t cap = o->cap * 2 + (size_t)n;
		char *b = realloc(o->buf, cap);
		if (b == NULL) {
			o->failed = true;
			return;
		}
		o->buf = b;
		o->cap = cap;
	}
}

static void emit_requests(struct out *o, const struct family *f)
{
	emit(o,
	    "# HELP apiserver_request_total Counter of apiserver requests "
	    "broken out for each verb, resource and HTTP response code.\n"
	    "# TYPE apiserver_request_total counter\n");
	for (size_t i = 0; i < SLOTS; i++)
		for (const struct series *x = f->slot[i]; x; x = x->next)
			emit(o,
			    "apiserver_request_total{code=\"%d\",resource=\"%s\","
			    "verb=\"%s\"} %" PRIu64 "\n",
			    x->code, x->b, x->a, x->count);
}

/* One histogram series; `labels` is the label set without braces. */
static void emit_hist(struct out *o, const char *name, const char *labels,
    const struct series *x)
{
	const char *sep = labels[0] ? "," : "";
	for (size_t i = 0; i < NBUCKETS; i++)
		emit(o, "%s_bucket{%s%sle=\"%g\"} %" PRIu64 "\n", name, labels,
		    sep, buckets[i], x->hist[i]);
	emit(o, "%s_bucket{%s%sle=\"+Inf\"} %" PRIu64 "\n", name, labels, sep,
	    x->count);
	emit(o, "%s_sum{%s} %.6f\n", name, labels, x->sum);
	emit(o, "%s_count{%s} %" PRIu64 "\n", name, labels, x->count);
}

static void emit_latency(struct out *o, const struct family *f)
{
	const char *name = "apiserver_request_duration_seconds";
	emit(o,
	    "# HELP %s Response latency distribution in seconds for each "
	    "verb and resource.\n# TYPE %s histogram\n",
	    name, name);
	char labels[2 * LABEL_MAX + 32];
	for (size_t i = 0; i < SLOTS; i++)
		for (const struct series *x = f->slot[i]; x; x = x->next) {
			snprintf(labels, sizeof(labels),
			    "resource=\"%s\",verb=\"%s\"", x->b, x->a);
			emit_hist(o, name, labels, x);
		}
}

static void emit_store(struct out *o, const struct family *f)
{
	const char *name = "apiserver_storage_request_duration_seconds";
	emit(o,
	    "# HELP %s Latency of calls to the store service in seconds, "
	    "by operation.\n# TYPE %s histogram\n",
	    name, name);
	char labels[LABEL_MAX + 32];
	for (size_t i = 0; i < SLOTS; i++)
		for (const struct series *x = f->slot[i]; x; x = x->next) {
			snprintf(labels, sizeof(labels), "operation=\"%s\"",
			    x->a);
			emit_hist(o, name, labels, x);
		}
}

char *api_metrics_text(struct api_server *s, size_t *len)
{
	struct api_metrics *m = metrics_of(s);
	struct out o = { .buf = malloc(16384), .cap = 16384 };
	if (o.buf == NULL || m == NULL) {
		free(o.buf);
		return NULL;
	}
	o.buf[0] = '\0';
	pthread_mutex_lock(&m->mu);
	emit_requests(&o, &m->requests);
	emit_latency(&o, &m->latency);
	emit_store(&o, &m->store);
	emit(&o,
	    "# HELP apiserver_registered_watchers Number of currently "
	    "registered watchers.\n# TYPE apiserver_registered_watchers "
	    "gauge\napiserver_registered_watchers %" PRId64 "\n",
	    m->watchers);
	pthread_mutex_unlock(&m->mu);
	emit(&o,
	    "# HELP apiserver_watch_cache_resyncs_total Store watches the "
	    "watch cache re-established after the store dropped them.\n"
	    "# TYPE apiserver_watch_cache_resyncs_total counter\n");
	for (size_t i = 0; i < api_nresources; i++)
		if (!api_resources[i].virtual_)
			emit(&o,
			    "apiserver_watch_cache_resyncs_total{group=\"%s\",resource=\"%s\"} %" PRIu64
			    "\n",
			    api_resources[i].group, api_resources[i].plural, api_cache_resyncs(s, i));
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
}

static void family_free(struct family *f)
{
	for (size_t i = 0; i < SLOTS; i++)
		while (f->slot[i]) {
			struct series *x = f->slot[i];
			f->slot[i] = x->next;
			free(x);
		}
	f->n = 0;
}

void api_metrics_free(struct api_server *s)
{
	struct api_metrics *m = s->metrics;
	if (m == NULL)
		return;
	family_free(&m->requests);
	family_free(&m->latency);
	family_free(&m->store);
	pthread_mutex_destroy(&m->mu);
	free(m);
	s->metrics = NULL;
}
