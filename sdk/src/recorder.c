/* sdk/src/recorder.c — core/v1 Events as client-go's EventRecorder and
 * EventCorrelator record them (kubus/client.h says what a caller sees).
 * It began as the kubelet's; the scheduler and the controllers record
 * theirs the same way now.
 *
 * Under the recorder's lock: the Events made (by their dedupe key, for
 * repeats), the spam filter's token buckets (by involved object), the
 * aggregator's records (by object, type and reason: the messages seen),
 * the client's own token bucket and the requests it holds back. Requests
 * are posted after the lock is let go; a reply may come on any thread.
 */
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kubus/client.h>
#include <kubus/kubus.h>
#include <kubus/mp.h>
#include <kubus/strmap.h>

#define OBJ_BURST 25
#define OBJ_REFILL_MS (300 * 1000) /* client-go's defaultSpamQPS, 1/300 */
#define QUEUE_MAX 1000             /* client-go's maxQueuedEvents */
#define KEEP_MS (10 * 60 * 1000)   /* forget an Event untouched this long */
#define MAX_EVENTS 4096
#define MAX_BUCKETS 4096
#define AGG_EVENTS 10              /* client-go's maxEvents of one reason */
#define AGG_MS (600 * 1000)        /* ... within maxIntervalInSeconds */
#define MAX_AGGS 4096
#define MSG_MAX 1024
#define AGG_PREFIX "(combined from similar events): "

/* An Event this recorder made. */
struct rev {
	char *key;       /* the dedupe key (see key_of) */
	char *ns, *name; /* the Event's */
	char *message;   /* the newest, which a patch carries */
	unsigned count;  /* recorded */
	unsigned posted; /* count the API has (or is being sent) */
	bool created;    /* the create succeeded */
	bool inflight, dirty;
	int64_t touched_ms; /* monotonic */
	char last[32];      /* lastTimestamp of the newest repeat */
	struct kb_recorder *r;
	struct rev *next;
};

struct bucket {
	double tokens;
	int64_t at_ms;
};

/* The aggregator's record of one object, type and reason. */
struct agg {
	struct kb_strmap msgs; /* the different messages (values unused) */
	int64_t last_ms;
};

/* A request held back by the client's limit, oldest first. */
struct held {
	struct rev *e;
	const char *op;
	kb_body *b;
	struct held *next;
};

struct kb_recorder {
	kb_ctx *ctx;
	char *component, *host, *instance;
	int qps, burst;
	bool aggregate, spam;
	void (*later)(void *arg, int64_t ms);
	void *later_arg;

	pthread_mutex_t mu;
	struct rev *list;
	struct kb_strmap index; /* key -> the Event in list */
	size_t n;
	int64_t expired_ms; /* when expire last ran */
	struct kb_strmap buckets; /* spam key -> struct bucket */
	struct kb_strmap aggs;    /* aggregate key -> struct agg */
	double all_tokens;
	int64_t all_at_ms;
	struct held *held, *held_tail;
	size_t nheld;
	bool armed;   /* a flush is asked for */
	bool started; /* between kb_recorder_start and kb_recorder_stop */
	uint64_t seq;
	uint64_t dropped;
	time_t stamp_sec; /* stamp's second, so most calls skip strftime */
	char stamp[32];

	/* the flusher of a recorder without `later` */
	pthread_t thr;
	bool thr_on, thr_stop;
	pthread_cond_t cv; /* on CLOCK_MONOTONIC */
	int64_t flush_at_ms; /* 0: none asked for */
};

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Under mu: now as RFC 3339 in seconds, as Kubernetes writes metav1.Time;
 * *wall_ns the wall clock in ns (for names). */
static const char *stamp_now(struct kb_recorder *r, uint64_t *wall_ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	*wall_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
	if (ts.tv_sec != r->stamp_sec || r->stamp[0] == '\0') {
		struct tm tm;
		gmtime_r(&ts.tv_sec, &tm);
		if (strftime(r->stamp, sizeof(r->stamp), "%Y-%m-%dT%H:%M:%SZ",
			&tm) == 0)
			r->stamp[0] = '\0';
		r->stamp_sec = ts.tv_sec;
	}
	return r->stamp;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

static void *flusher(void *arg);

struct kb_recorder *kb_recorder_new(kb_ctx *ctx, const struct kb_recorder_opts *o)
{
	struct kb_recorder *r = calloc(1, sizeof(*r));
	if (r == NULL || o == NULL || o->component == NULL)
		goto fail;
	r->ctx = ctx;
	r->component = strdup(o->component);
	r->host = dup_or_null(o->host);
	r->instance = strdup(o->instance ? o->instance :
	    o->host                      ? o->host :
					   o->component);
	if (r->component == NULL || r->instance == NULL || (o->host && r->host == NULL))
		goto fail;
	r->qps = o->qps > 0 ? o->qps : 0;
	r->burst = o->burst > 0 ? o->burst : 1;
	r->aggregate = o->aggregate;
	r->spam = !o->no_spam_filter;
	r->later = o->later;
	r->later_arg = o->later_arg;
	r->all_tokens = (double)r->burst;
	r->all_at_ms = mono_ms();
	pthread_mutex_init(&r->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&r->cv, &ca);
	pthread_condattr_destroy(&ca);
	return r;
fail:
	if (r) {
		free(r->component);
		free(r->host);
		free(r->instance);
		free(r);
	}
	return NULL;
}

static void rev_free(struct rev *e)
{
	free(e->key);
	free(e->ns);
	free(e->name);
	free(e->message);
	free(e);
}

static void agg_free(void *p)
{
	struct agg *a = p;
	kb_strmap_clear(&a->msgs, NULL);
	free(a);
}

void kb_recorder_free(struct kb_recorder *r)
{
	if (r == NULL)
		return;
	kb_recorder_stop(r);
	while (r->list) {
		struct rev *e = r->list;
		r->list = e->next;
		rev_free(e);
	}
	while (r->held) {
		struct held *h = r->held;
		r->held = h->next;
		kb_body_unref(h->b);
		free(h);
	}
	kb_strmap_clear(&r->index, NULL);
	kb_strmap_clear(&r->buckets, free);
	kb_strmap_clear(&r->aggs, agg_free);
	pthread_mutex_destroy(&r->mu);
	pthread_cond_destroy(&r->cv);
	free(r->component);
	free(r->host);
	free(r->instance);
	free(r);
}

static bool take(double *tokens, int64_t *at, double burst, double refill_ms,
    int64_t now)
{
	*tokens += (double)(now - *at) / refill_ms;
	if (*tokens > burst)
		*tokens = burst;
	*at = now;
	if (*tokens < 1.0)
		return false;
	*tokens -= 1.0;
	return true;
}

struct refilled {
	int64_t now;
	char **keys;
	size_t n;
};

static void find_refilled(void *arg, const char *key, void *val)
{
	struct refilled *f = arg;
	const struct bucket *b = val;
	if (f->now - b->at_ms >= (int64_t)OBJ_REFILL_MS * OBJ_BURST)
		f->keys[f->n++] = (char *)key;
}

/* Under mu: the bucket table is full. A bucket quiet long enough to be
 * full again is the same as none: those go; if none is, all go. */
static void forget_buckets(struct kb_recorder *r, int64_t now)
{
	struct refilled f = { now, malloc(r->buckets.n * sizeof(char *)), 0 };
	if (f.keys)
		kb_strmap_each(&r->buckets, find_refilled, &f);
	for (size_t i = 0; i < f.n; i++) {
		char *key = strdup(f.keys[i]);
		if (key)
			free(kb_strmap_del(&r->buckets, key));
		free(key);
	}
	if (f.n == 0)
		kb_strmap_clear(&r->buckets, free);
	free(f.keys);
}

/* Under mu: a token of the involved object's bucket (the spam filter).
 * The buckets are found through a hash: a walk of a list of them, one per
 * object ever named, was most of a hollow kubelet's strcmp. */
static bool allowed(struct kb_recorder *r, const char *obj, int64_t now)
{
	if (!r->spam)
		return true;
	struct bucket *b = kb_strmap_get(&r->buckets, obj);
	if (b == NULL) {
		if (r->buckets.n >= MAX_BUCKETS)
			forget_buckets(r, now);
		b = malloc(sizeof(*b));
		if (b == NULL)
			return false;
		b->tokens = OBJ_BURST;
		b->at_ms = now;
		if (kb_strmap_put(&r->buckets, obj, b, NULL) != 0) {
			free(b);
			return false;
		}
	}
	return take(&b->tokens, &b->at_ms, OBJ_BURST, OBJ_REFILL_MS, now);
}

/* Under mu: a token of the client's own limit, if it has one. */
static bool all_take(struct kb_recorder *r, int64_t now)
{
	return r->qps == 0 ||
	    take(&r->all_tokens, &r->all_at_ms, (double)r->burst,
		1000.0 / (double)r->qps, now);
}

/* Under mu: a flush asked for when the next token is back. */
static void arm(struct kb_recorder *r, int64_t now)
{
	if (r->armed || !r->started || r->held == NULL)
		return;
	double need = 1.0 - r->all_tokens -
	    (double)(now - r->all_at_ms) * (double)r->qps / 1000.0;
	int64_t ms = need > 0 && r->qps > 0 ?
	    (int64_t)(need * 1000.0 / (double)r->qps) + 1 :
	    0;
	r->armed = true;
	if (r->later) {
		r->later(r->later_arg, ms);
	} else {
		r->flush_at_ms = now + ms;
		pthread_cond_signal(&r->cv);
	}
}

/* Under mu: take e out of the table and free it. */
static void forget(struct kb_recorder *r, struct rev *e)
{
	for (struct rev **pp = &r->list; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			r->n--;
			break;
		}
	}
	kb_strmap_del(&r->index, e->key);
	rev_free(e);
}

/* Under mu: b, op's request for e, may go now (true), or waits its turn
 * behind the requests held before it (false: held, or dropped with a full
 * queue). */
static bool may_send(struct kb_recorder *r, struct rev *e, const char *op,
    kb_body *b, int64_t now)
{
	if (r->held == NULL && all_take(r, now))
		return true;
	struct held *h = r->nheld < QUEUE_MAX ? malloc(sizeof(*h)) : NULL;
	if (h == NULL) {
		r->dropped++;
		e->inflight = false;
		kb_body_unref(b);
		/* a create that never went: out of the table, so that it does
		 * not fill it (a repeat makes it again) */
		if (!e->created)
			forget(r, e);
		return false;
	}
	*h = (struct held){ .e = e, .op = op, .b = b };
	if (r->held_tail)
		r->held_tail->next = h;
	else
		r->held = h;
	r->held_tail = h;
	r->nheld++;
	arm(r, now);
	return false;
}

/* Under mu: drop Events nobody repeated for KEEP_MS, and when the table
 * is full the oldest made, down to three quarters of it; never one with a
 * request in flight or held. A walk of the whole table: at most once a
 * second, or once per MAX_EVENTS / 4 Events made while they come faster. */
static void expire(struct kb_recorder *r, int64_t now)
{
	bool full = r->n >= MAX_EVENTS;
	if (!full && now - r->expired_ms < 1000)
		return;
	r->expired_ms = now;
	size_t keep = full ? MAX_EVENTS * 3 / 4 : SIZE_MAX, at = 0;
	for (struct rev **pp = &r->list; *pp;) {
		struct rev *e = *pp;
		bool old = now - e->touched_ms > KEEP_MS || ++at > keep;
		if (old && !e->inflight) {
			*pp = e->next;
			r->n--;
			kb_strmap_del(&r->index, e->key);
			rev_free(e);
		} else {
			pp = &e->next;
		}
	}
}

/* Under mu: the request that creates the Event (`create`, taken) or
 * patches its count, to be posted now; marks it in flight. NULL when out
 * of memory, or when the client's limit holds it back (may_send). */
static kb_body *prepare_locked(struct kb_recorder *r, struct rev *e,
    kb_body *create, const char **op, int64_t now)
{
	kb_body *b;
	if (create) {
		*op = "create";
		b = create;
	} else {
		*op = "patch";
		b = kb_mp_body("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:i, s:s, s:s}}",
		    "group", "", "version", "v1", "resource", "events",
		    "namespace", e->ns, "name", e->name, "patchType", "merge",
		    "patch", "count", (int)e->count, "lastTimestamp", e->last,
		    "message", e->message);
	}
	e->dirty = false;
	if (b == NULL)
		return NULL;
	e->posted = e->count;
	e->inflight = true;
	return may_send(r, e, *op, b, now) ? b : NULL;
}

static void on_reply(void *arg, int rc, const kb_msg *rep);

/* Not under mu: the reply may come on another thread at once. Without
 * b, e may be gone already (a create dropped and forgotten). */
static void post(struct rev *e, const char *op, kb_body *b)
{
	if (b == NULL)
		return;
	struct kb_recorder *r = e->r;
	if (kb_request(r->ctx, "api", op, b, 10000, on_reply, e) != 0) {
		kb_body_unref(b);
		pthread_mutex_lock(&r->mu);
		e->inflight = false;
		pthread_mutex_unlock(&r->mu);
	}
}

static void on_reply(void *arg, int rc, const kb_msg *rep)
{
	struct rev *e = arg;
	struct kb_recorder *r = e->r;
	if (rc) {
		const char *msg = "";
		if (rep)
			kb_msg_err(rep, &msg);
		kb_debug(r->ctx, "cannot record an event",
		    "event=%s/%s err=\"%s\" message=\"%s\"", e->ns, e->name,
		    kb_strerror(rc), msg);
	}
	kb_body *b = NULL;
	const char *op = NULL;
	pthread_mutex_lock(&r->mu);
	e->inflight = false;
	if (rc == 0 || rc == KB_EEXIST)
		e->created = true;
	if (e->created && e->dirty)
		b = prepare_locked(r, e, NULL, &op, mono_ms());
	pthread_mutex_unlock(&r->mu);
	post(e, op, b);
}

void kb_recorder_flush(struct kb_recorder *r)
{
	struct held *go = NULL, **tail = &go;
	int64_t now = mono_ms();
	pthread_mutex_lock(&r->mu);
	r->armed = false;
	while (r->held && all_take(r, now)) {
		struct held *h = r->held;
		if ((r->held = h->next) == NULL)
			r->held_tail = NULL;
		r->nheld--;
		h->next = NULL;
		*tail = h;
		tail = &h->next;
	}
	arm(r, now);
	pthread_mutex_unlock(&r->mu);
	while (go) {
		struct held *h = go;
		go = h->next;
		post(h->e, h->op, h->b);
		free(h);
	}
}

static void *flusher(void *arg)
{
	struct kb_recorder *r = arg;
	pthread_setname_np(pthread_self(), "kb:events");
	pthread_mutex_lock(&r->mu);
	while (!r->thr_stop) {
		if (r->flush_at_ms == 0) {
			pthread_cond_wait(&r->cv, &r->mu);
			continue;
		}
		int64_t at = r->flush_at_ms;
		if (mono_ms() < at) {
			struct timespec ts = { (time_t)(at / 1000),
				(long)(at % 1000) * 1000000 };
			pthread_cond_timedwait(&r->cv, &r->mu, &ts);
			continue;
		}
		r->flush_at_ms = 0;
		pthread_mutex_unlock(&r->mu);
		kb_recorder_flush(r);
		pthread_mutex_lock(&r->mu);
	}
	pthread_mutex_unlock(&r->mu);
	return NULL;
}

void kb_recorder_start(struct kb_recorder *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->started = true;
	if (r->later == NULL && r->qps > 0 && !r->thr_on) {
		r->thr_stop = false;
		r->thr_on = pthread_create(&r->thr, NULL, flusher, r) == 0;
	}
	arm(r, mono_ms());
	pthread_mutex_unlock(&r->mu);
}

/* What is held stays, to be freed. */
void kb_recorder_stop(struct kb_recorder *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->started = false;
	bool join = r->thr_on;
	r->thr_stop = true;
	r->thr_on = false;
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->mu);
	if (join)
		pthread_join(r->thr, NULL);
}

uint64_t kb_recorder_dropped(struct kb_recorder *r)
{
	if (r == NULL)
		return 0;
	pthread_mutex_lock(&r->mu);
	uint64_t n = r->dropped;
	pthread_mutex_unlock(&r->mu);
	return n;
}

static void kv(msgpack_packer *pk, const char *k, const char *v)
{
	kb_mp_pack_cstr(pk, k);
	kb_mp_pack_cstr(pk, v);
}

/* {group, version, resource, namespace, object: the Event}, packed by
 * hand: a kb_mp_body format of 25 fields was a third of an event's cost
 * in a hollow kubelet. */
static kb_body *pack_create(const struct kb_recorder *r,
    const struct kb_event_ref *ref, const char *ns, const char *type,
    const char *reason, const char *message, const char *name,
    const char *stamp)
{
	const char *io[][2] = { { "kind", ref->kind }, { "namespace", ref->ns },
		{ "name", ref->name }, { "uid", ref->uid },
		{ "apiVersion", ref->api_version },
		{ "fieldPath", ref->field_path } };
	uint32_t nio = 0;
	for (size_t i = 0; i < sizeof(io) / sizeof(io[0]); i++)
		nio += io[i][1] != NULL && io[i][1][0] != '\0';
	msgpack_sbuffer sb;
	msgpack_packer pk;
	kb_mp_sbuffer_init(&sb, 1024); /* an Event is under 1 KiB */
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	msgpack_pack_map(&pk, 5);
	kv(&pk, "group", "");
	kv(&pk, "version", "v1");
	kv(&pk, "resource", "events");
	kv(&pk, "namespace", ns);
	kb_mp_pack_cstr(&pk, "object");
	msgpack_pack_map(&pk, 13);
	kv(&pk, "apiVersion", "v1");
	kv(&pk, "kind", "Event");
	kb_mp_pack_cstr(&pk, "metadata");
	msgpack_pack_map(&pk, 2);
	kv(&pk, "name", name);
	kv(&pk, "namespace", ns);
	kb_mp_pack_cstr(&pk, "involvedObject");
	msgpack_pack_map(&pk, nio);
	for (size_t i = 0; i < sizeof(io) / sizeof(io[0]); i++)
		if (io[i][1] != NULL && io[i][1][0] != '\0')
			kv(&pk, io[i][0], io[i][1]);
	kv(&pk, "reason", reason);
	kv(&pk, "message", message);
	kb_mp_pack_cstr(&pk, "source");
	msgpack_pack_map(&pk, r->host ? 2 : 1);
	kv(&pk, "component", r->component);
	if (r->host)
		kv(&pk, "host", r->host);
	kv(&pk, "firstTimestamp", stamp);
	kv(&pk, "lastTimestamp", stamp);
	kb_mp_pack_cstr(&pk, "count");
	msgpack_pack_int(&pk, 1);
	kv(&pk, "type", type);
	kv(&pk, "reportingComponent", r->component);
	kv(&pk, "reportingInstance", r->instance);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

/* a \x1f b \x1f … of the n strings (NULL as ""), malloc'd. */
static char *join(const char *const *s, size_t n)
{
	size_t len = 1;
	for (size_t i = 0; i < n; i++)
		len += (s[i] ? strlen(s[i]) : 0) + 1;
	char *out = malloc(len), *p = out;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		size_t l = s[i] ? strlen(s[i]) : 0;
		memcpy(p, s[i] ? s[i] : "", l);
		p += l;
		*p++ = '\x1f';
	}
	*p = '\0';
	return out;
}

/* Under mu: what the aggregator makes of a message about obj of this
 * type and reason: false to record it as it is, true when it is the
 * tenth different one (or later) within AGG_MS, to be counted in the
 * aggregate Event. */
static bool aggregated(struct kb_recorder *r, const char *akey,
    const char *message, int64_t now)
{
	struct agg *a = kb_strmap_get(&r->aggs, akey);
	if (a && now - a->last_ms > AGG_MS) {
		agg_free(kb_strmap_del(&r->aggs, akey));
		a = NULL;
	}
	if (a == NULL) {
		if (r->aggs.n >= MAX_AGGS)
			kb_strmap_clear(&r->aggs, agg_free);
		if ((a = calloc(1, sizeof(*a))) == NULL)
			return false;
		if (kb_strmap_put(&r->aggs, akey, a, NULL) != 0) {
			free(a);
			return false;
		}
	}
	a->last_ms = now;
	if (kb_strmap_get(&a->msgs, message) == NULL &&
	    kb_strmap_put(&a->msgs, message, a, NULL) != 0)
		return false;
	if (a->msgs.n < AGG_EVENTS)
		return false;
	/* no more than AGG_EVENTS - 1 kept, as client-go pops one */
	struct kb_strent *any = NULL;
	for (size_t i = 0; any == NULL && i < a->msgs.nb; i++)
		any = a->msgs.b[i];
	if (any) {
		char *k = strdup(any->key);
		if (k)
			kb_strmap_del(&a->msgs, k);
		free(k);
	}
	return true;
}

/* With a full queue an Event is dropped as it comes, before the
 * correlator (aggregation, dedupe, spam filter) sees it: client-go's
 * broadcaster drops at its channel of maxQueuedEvents the same way. A
 * scheduler binding thousands of pods a second under its client limit
 * drops most of its `Scheduled` Events here, for the cost of a lock.
 * True (and counted) when dropped; takes mu only when false. */
static bool dropped_full(struct kb_recorder *r)
{
	pthread_mutex_lock(&r->mu);
	if (r->nheld < QUEUE_MAX)
		return false;
	r->dropped++;
	pthread_mutex_unlock(&r->mu);
	return true;
}

/* Called with mu held (dropped_full false); releases it. */
static void record(struct kb_recorder *r, const struct kb_event_ref *ref,
    bool warning, const char *reason, const char *msg)
{
	const char *type = warning ? "Warning" : "Normal";
	const char *ns = ref->ns && ref->ns[0] ? ref->ns : "default";
	const char *obj_parts[] = { ref->kind, ref->ns, ref->name, ref->uid,
		ref->api_version };
	char *obj = join(obj_parts, 5);
	if (obj == NULL) {
		pthread_mutex_unlock(&r->mu);
		return;
	}
	int64_t now = mono_ms();
	uint64_t wall_ns;
	const char *stamp = stamp_now(r, &wall_ns);
	expire(r, now);
	char combined[sizeof(AGG_PREFIX) + MSG_MAX];
	const char *message = msg;
	char *key = NULL;
	if (r->aggregate) {
		const char *ap[] = { obj, type, reason };
		char *akey = join(ap, 3);
		if (akey && aggregated(r, akey, msg, now)) {
			snprintf(combined, sizeof(combined), "%s%s", AGG_PREFIX, msg);
			message = combined;
			const char *kp[] = { "\x1e", akey };
			key = join(kp, 2);
		}
		free(akey);
	}
	if (message == msg) {
		const char *kp[] = { obj, ref->field_path, type, reason, msg };
		key = join(kp, 5);
	}
	if (key == NULL) {
		pthread_mutex_unlock(&r->mu);
		free(obj);
		return;
	}
	struct rev *e = kb_strmap_get(&r->index, key);
	if (e && !e->created && !e->inflight) {
		/* Its create failed: make it again. */
		forget(r, e);
		e = NULL;
	}
	bool ok = allowed(r, obj, now);
	free(obj);
	if (e) {
		free(key);
		char *m = strcmp(e->message, message) ? strdup(message) : NULL;
		if (m) {
			free(e->message);
			e->message = m;
		}
		e->count++;
		e->touched_ms = now;
		snprintf(e->last, sizeof(e->last), "%s", stamp);
		kb_body *b = NULL;
		const char *op = NULL;
		if (!ok)
			r->dropped++;
		else if (e->inflight || !e->created)
			e->dirty = true;
		else
			b = prepare_locked(r, e, NULL, &op, now);
		pthread_mutex_unlock(&r->mu);
		post(e, op, b);
		return;
	}
	if (!ok) {
		r->dropped++;
		pthread_mutex_unlock(&r->mu);
		free(key);
		return;
	}
	e = calloc(1, sizeof(*e));
	char name[320];
	/* "<object>.%llx" of the wall clock's ns, unique per recorder */
	snprintf(name, sizeof(name), "%.253s.%llx", ref->name,
	    (unsigned long long)(wall_ns + r->seq++ % 1000));
	if (e == NULL || (e->name = strdup(name)) == NULL ||
	    (e->ns = strdup(ns)) == NULL ||
	    (e->message = strdup(message)) == NULL) {
		pthread_mutex_unlock(&r->mu);
		if (e)
			rev_free(e);
		free(key);
		return;
	}
	e->key = key;
	e->r = r;
	e->count = 1;
	e->touched_ms = now;
	snprintf(e->last, sizeof(e->last), "%s", stamp);
	kb_body *body = pack_create(r, ref, ns, type, reason, message, e->name,
	    stamp);
	if (body == NULL || kb_strmap_put(&r->index, e->key, e, NULL) != 0) {
		pthread_mutex_unlock(&r->mu);
		if (body)
			kb_body_unref(body);
		rev_free(e);
		return;
	}
	e->next = r->list;
	r->list = e;
	r->n++;
	const char *op = NULL;
	kb_body *b = prepare_locked(r, e, body, &op, now);
	pthread_mutex_unlock(&r->mu);
	post(e, op, b);
}

/* record() of the message fmt makes; called and returning as it. */
static void recordv(struct kb_recorder *r, const struct kb_event_ref *ref,
    bool warning, const char *reason, const char *fmt, va_list ap)
{
	char msg[MSG_MAX];
	vsnprintf(msg, sizeof(msg), fmt, ap);
	record(r, ref, warning, reason, msg);
}

void kb_eventf(struct kb_recorder *r, const struct kb_event_ref *ref,
    bool warning, const char *reason, const char *fmt, ...)
{
	if (r == NULL || ref == NULL || ref->name == NULL || reason == NULL ||
	    dropped_full(r))
		return; /* else mu is held: the message is formatted under it */
	va_list ap;
	va_start(ap, fmt);
	recordv(r, ref, warning, reason, fmt, ap);
	va_end(ap);
}

/* obj's string at path into buf (no malloc: a controller records an
 * Event per pod it creates or deletes); NULL when absent or longer than
 * a Kubernetes name, namespace or uid can be. */
static const char *meta(const msgpack_object *obj, const char *path,
    char *buf, size_t len)
{
	const char *s;
	size_t n;
	if (!kb_mp_str(obj, path, &s, &n) || n >= len)
		return NULL;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return buf;
}

void kb_event_obj(struct kb_recorder *r, const char *api_version,
    const char *kind, const msgpack_object *obj, bool warning,
    const char *reason, const char *fmt, ...)
{
	char ns[64], name[254], uid[64];
	if (r == NULL || obj == NULL || reason == NULL ||
	    !meta(obj, "metadata.name", name, sizeof(name)) || dropped_full(r))
		return; /* else mu is held, as in kb_eventf */
	struct kb_event_ref ref = { api_version, kind,
		meta(obj, "metadata.namespace", ns, sizeof(ns)), name,
		meta(obj, "metadata.uid", uid, sizeof(uid)), NULL };
	va_list ap;
	va_start(ap, fmt);
	recordv(r, &ref, warning, reason, fmt, ap);
	va_end(ap);
}
