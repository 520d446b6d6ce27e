/* plugins/kubelet/events.c — core/v1 Events about the pods this kubelet
 * runs, as Kubernetes' kubelet records them (Pulled, Created, Started,
 * Killing, BackOff, Unhealthy, Failed), source {kubelet, <node>}.
 *
 * Aggregation, as client-go's EventCorrelator: an event equal to one
 * recorded before (same object, field path, type, reason and message)
 * patches that event's count and lastTimestamp instead of making another.
 * Rate limits, so a crashlooping pod cannot flood the store: a token
 * bucket per involved object (burst 25, then one per 10 s) drops what
 * goes over it, as client-go's spam filter; a repeat that is dropped
 * still counts: the next patch carries the true count. The kubelet's
 * own limit (event_burst at once, then event_qps a second: Kubernetes'
 * eventBurst 100 and eventRecordQPS 50) delays instead, as the kubelet's
 * rate-limited event client does: a request over it waits its turn in a
 * queue (at most QUEUE_MAX, client-go's maxQueuedEvents; past that it is
 * dropped), and a worker posts it when a token is back (KL_EVENTS_KEY).
 *
 * Posting is asynchronous (kb_request): the caller — a sync worker or the
 * prober — never waits for the API server. At most one request per event
 * is in flight; a repeat meanwhile marks the event dirty and the reply
 * callback sends the patch, so a patch never overtakes its create.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kubelet.h"

#define OBJ_BURST 25
#define OBJ_REFILL_MS 10000
#define QUEUE_MAX 1000
#define KEEP_MS (10 * 60 * 1000) /* forget an event untouched this long */
#define MAX_EVENTS 4096
#define MAX_BUCKETS 4096

struct kl_event {
	char *key; /* uid \x1f fieldPath \x1f type \x1f reason \x1f message */
	char *ns, *name; /* the Event's */
	unsigned count;  /* recorded */
	unsigned posted; /* count the API has (or is being sent) */
	bool created;    /* the create succeeded */
	bool inflight, dirty;
	int64_t touched_ms; /* monotonic */
	char last[32];      /* lastTimestamp of the newest repeat */
	struct kubelet *kl;
	struct kl_event *next;
};

struct bucket {
	double tokens;
	int64_t at_ms;
};

/* A request held back by the kubelet's rate limit, oldest first. */
struct held {
	struct kl_event *e;
	const char *op;
	kb_body *b;
	struct held *next;
};

struct kl_events {
	pthread_mutex_t mu;
	struct kl_event *list;
	struct kb_strmap index; /* key -> the event in list */
	size_t n;
	int64_t expired_ms; /* when expire last ran */
	struct kb_strmap buckets; /* involved object's uid -> struct bucket */
	struct kubelet *kl;
	double all_tokens;
	int64_t all_at_ms;
	struct held *held, *held_tail;
	size_t nheld;
	bool armed;   /* a flush is on the work queue */
	bool started; /* between kl_events_start and kl_events_stop */
	uint64_t seq;
	uint64_t dropped;
};

static struct kl_events *events_of(struct kubelet *kl)
{
	return kl->events;
}

int kl_events_init(struct kubelet *kl)
{
	struct kl_events *ev = calloc(1, sizeof(*ev));
	if (ev == NULL)
		return KB_ENOMEM;
	pthread_mutex_init(&ev->mu, NULL);
	ev->kl = kl;
	ev->all_tokens = (double)kl->cfg.event_burst;
	ev->all_at_ms = kl_mono_ms();
	kl->events = ev;
	return 0;
}

static void event_free(struct kl_event *e)
{
	free(e->key);
	free(e->ns);
	free(e->name);
	free(e);
}

/* After the bus endpoint is closed: no reply callback runs any more. */
void kl_events_free(struct kubelet *kl)
{
	struct kl_events *ev = events_of(kl);
	if (ev == NULL)
		return;
	while (ev->list) {
		struct kl_event *e = ev->list;
		ev->list = e->next;
		event_free(e);
	}
	while (ev->held) {
		struct held *h = ev->held;
		ev->held = h->next;
		kb_body_unref(h->b);
		free(h);
	}
	kb_strmap_clear(&ev->index, NULL);
	kb_strmap_clear(&ev->buckets, free);
	pthread_mutex_destroy(&ev->mu);
	free(ev);
	kl->events = NULL;
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
	struct kb_strmap *m;
	int64_t now;
	char **uids;
	size_t n;
};

static void find_refilled(void *arg, const char *uid, void *val)
{
	struct refilled *r = arg;
	const struct bucket *b = val;
	if (r->now - b->at_ms >= (int64_t)OBJ_REFILL_MS * OBJ_BURST)
		r->uids[r->n++] = (char *)uid;
}

/* Under mu: the bucket table is full. A bucket quiet long enough to be
 * full again is the same as none: those go; if none is, all go (4096
 * objects with events within minutes on one node). */
static void forget_buckets(struct kl_events *ev, int64_t now)
{
	struct refilled r = { &ev->buckets, now,
		malloc(ev->buckets.n * sizeof(char *)), 0 };
	if (r.uids)
		kb_strmap_each(&ev->buckets, find_refilled, &r);
	for (size_t i = 0; i < r.n; i++) {
		char *uid = strdup(r.uids[i]);
		if (uid)
			free(kb_strmap_del(&ev->buckets, uid));
		free(uid);
	}
	if (r.n == 0)
		kb_strmap_clear(&ev->buckets, free);
	free(r.uids);
}

/* Under mu: a token of the involved object's bucket. The buckets are
 * found by uid through a hash: a walk of an array of them, one per pod
 * this kubelet ever had an event about, was most of a hollow kubelet's
 * strcmp. */
static bool allowed(struct kl_events *ev, const char *uid, int64_t now)
{
	struct bucket *b = kb_strmap_get(&ev->buckets, uid);
	if (b == NULL) {
		if (ev->buckets.n >= MAX_BUCKETS)
			forget_buckets(ev, now);
		b = malloc(sizeof(*b));
		if (b == NULL)
			return false;
		b->tokens = OBJ_BURST;
		b->at_ms = now;
		if (kb_strmap_put(&ev->buckets, uid, b, NULL) != 0) {
			free(b);
			return false;
		}
	}
	return take(&b->tokens, &b->at_ms, OBJ_BURST, OBJ_REFILL_MS, now);
}

/* Under mu: a token of the kubelet's own limit, if one is there. */
static bool all_take(struct kl_events *ev, int64_t now)
{
	const struct kl_cfg *c = &ev->kl->cfg;
	return c->event_qps == 0 ||
	    take(&ev->all_tokens, &ev->all_at_ms, (double)c->event_burst,
		1000.0 / (double)c->event_qps, now);
}

/* Under mu: a flush on the work queue when the next token is back. */
static void arm(struct kl_events *ev, int64_t now)
{
	if (ev->armed || !ev->started || ev->held == NULL)
		return;
	const struct kl_cfg *c = &ev->kl->cfg;
	double need = 1.0 - ev->all_tokens -
	    (double)(now - ev->all_at_ms) * (double)c->event_qps / 1000.0;
	int64_t ms = need > 0 && c->event_qps > 0 ?
	    (int64_t)(need * 1000.0 / (double)c->event_qps) + 1 :
	    0;
	ev->armed = true;
	kb_workqueue_add_after(ev->kl->queue, KL_EVENTS_KEY, ms);
}

/* Under mu: b, op's request for e (prepare_locked's), may go now (true),
 * or waits its turn behind the requests held before it (false: held, or
 * dropped with a full queue). */
static bool may_send(struct kl_events *ev, struct kl_event *e, const char *op,
    kb_body *b, int64_t now)
{
	if (ev->held == NULL && all_take(ev, now))
		return true;
	struct held *h = ev->nheld < QUEUE_MAX ? malloc(sizeof(*h)) : NULL;
	if (h == NULL) {
		ev->dropped++;
		e->inflight = false;
		kb_body_unref(b);
		return false;
	}
	*h = (struct held){ .e = e, .op = op, .b = b };
	if (ev->held_tail)
		ev->held_tail->next = h;
	else
		ev->held = h;
	ev->held_tail = h;
	ev->nheld++;
	arm(ev, now);
	return false;
}

/* Under mu: drop events nobody repeated for KEEP_MS (and the oldest when
 * the table is full), never one with a request in flight. A walk of the
 * whole table, so at most once a second unless the table is full (it ran
 * at every event: most of a hollow kubelet's CPU for its events). */
static void expire(struct kl_events *ev, int64_t now)
{
	if (ev->n < MAX_EVENTS && now - ev->expired_ms < 1000)
		return;
	ev->expired_ms = now;
	for (struct kl_event **pp = &ev->list; *pp;) {
		struct kl_event *e = *pp;
		bool old = now - e->touched_ms > KEEP_MS ||
		    (ev->n >= MAX_EVENTS && e->next == NULL);
		if (old && !e->inflight) {
			*pp = e->next;
			ev->n--;
			kb_strmap_del(&ev->index, e->key);
			event_free(e);
		} else {
			pp = &e->next;
		}
	}
}

/* Under mu: take e out of the table and free it. */
static void forget(struct kl_events *ev, struct kl_event *e)
{
	for (struct kl_event **pp = &ev->list; *pp; pp = &(*pp)->next) {
		if (*pp == e) {
			*pp = e->next;
			ev->n--;
			break;
		}
	}
	kb_strmap_del(&ev->index, e->key);
	event_free(e);
}

/* Under mu: the request that creates the event (`create`, the whole
 * request, taken) or patches its count, to be posted now; marks it in
 * flight. NULL when out of memory, or when the kubelet's limit holds it
 * back (may_send). */
static kb_body *prepare_locked(struct kl_events *ev, struct kl_event *e,
    kb_body *create, const char **op, int64_t now)
{
	kb_body *b;
	if (create) {
		*op = "create";
		b = create;
	} else {
		*op = "patch";
		b = kb_mp_body("{s:s, s:s, s:s, s:s, s:s, s:s, s:{s:i, s:s}}",
		    "group", "", "version", "v1", "resource", "events",
		    "namespace", e->ns, "name", e->name, "patchType", "merge",
		    "patch", "count", (int)e->count, "lastTimestamp", e->last);
	}
	e->dirty = false;
	if (b == NULL)
		return NULL;
	e->posted = e->count;
	e->inflight = true;
	return may_send(ev, e, *op, b, now) ? b : NULL;
}

static void on_reply(void *arg, int rc, const kb_msg *rep);

/* Not under mu: the reply may come on another thread at once. */
static void post(struct kl_event *e, const char *op, kb_body *b)
{
	struct kubelet *kl = e->kl;
	if (b == NULL)
		return;
	if (kb_request(kl->ctx, "api", op, b, 10000, on_reply, e) != 0) {
		kb_body_unref(b);
		pthread_mutex_lock(&kl->events->mu);
		e->inflight = false;
		pthread_mutex_unlock(&kl->events->mu);
	}
}

static void on_reply(void *arg, int rc, const kb_msg *rep)
{
	struct kl_event *e = arg;
	struct kubelet *kl = e->kl;
	struct kl_events *ev = events_of(kl);
	if (rc) {
		const char *msg = "";
		if (rep)
			kb_msg_err(rep, &msg);
		kb_debug(kl->ctx, "cannot record an event",
		    "event=%s/%s err=\"%s\" message=\"%s\"", e->ns, e->name,
		    kb_strerror(rc), msg);
	}
	kb_body *b = NULL;
	const char *op = NULL;
	pthread_mutex_lock(&ev->mu);
	e->inflight = false;
	if (rc == 0 || rc == KB_EEXIST)
		e->created = true;
	if (e->created && e->dirty)
		b = prepare_locked(ev, e, NULL, &op, kl_mono_ms());
	pthread_mutex_unlock(&ev->mu);
	post(e, op, b);
}

/* On a worker (KL_EVENTS_KEY): post the held requests there are tokens
 * for, oldest first, and come back for the rest. */
void kl_events_flush(struct kubelet *kl)
{
	struct kl_events *ev = events_of(kl);
	struct held *go = NULL, **tail = &go;
	int64_t now = kl_mono_ms();
	pthread_mutex_lock(&ev->mu);
	ev->armed = false;
	while (ev->held && all_take(ev, now)) {
		struct held *h = ev->held;
		if ((ev->held = h->next) == NULL)
			ev->held_tail = NULL;
		ev->nheld--;
		h->next = NULL;
		*tail = h;
		tail = &h->next;
	}
	arm(ev, now);
	pthread_mutex_unlock(&ev->mu);
	while (go) {
		struct held *h = go;
		go = h->next;
		post(h->e, h->op, h->b);
		free(h);
	}
}

void kl_events_start(struct kubelet *kl)
{
	struct kl_events *ev = events_of(kl);
	pthread_mutex_lock(&ev->mu);
	ev->started = true;
	arm(ev, kl_mono_ms());
	pthread_mutex_unlock(&ev->mu);
}

/* Before the work queue goes: what is held stays, to be freed. */
void kl_events_stop(struct kubelet *kl)
{
	struct kl_events *ev = events_of(kl);
	if (ev == NULL)
		return;
	pthread_mutex_lock(&ev->mu);
	ev->started = false;
	pthread_mutex_unlock(&ev->mu);
}

static void kv(msgpack_packer *pk, const char *k, const char *v)
{
	kb_mp_pack_cstr(pk, k);
	kb_mp_pack_cstr(pk, v);
}

/* {group, version, resource, namespace, object: the Event}, as
 * kb_mp_body("{s:s, s:s, s:s, s:s, s:{…}}") packs it. */
static kb_body *pack_create(struct kubelet *kl, const char *ns,
    const char *pod, const char *uid, const char *field_path,
    const char *type, const char *reason, const char *message,
    const char *name, const char *stamp)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	kl_sbuf_init(&sb, 1024);
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
	msgpack_pack_map(&pk, 6);
	kv(&pk, "kind", "Pod");
	kv(&pk, "apiVersion", "v1");
	kv(&pk, "namespace", ns);
	kv(&pk, "name", pod);
	kv(&pk, "uid", uid);
	kv(&pk, "fieldPath", field_path ? field_path : "");
	kv(&pk, "reason", reason);
	kv(&pk, "message", message);
	kb_mp_pack_cstr(&pk, "source");
	msgpack_pack_map(&pk, 2);
	kv(&pk, "component", "kubelet");
	kv(&pk, "host", kl->node);
	kv(&pk, "firstTimestamp", stamp);
	kv(&pk, "lastTimestamp", stamp);
	kb_mp_pack_cstr(&pk, "count");
	msgpack_pack_int(&pk, 1);
	kv(&pk, "type", type);
	kv(&pk, "reportingComponent", "kubelet");
	kv(&pk, "reportingInstance", kl->node);
	kb_body *b = kb_body_from_sbuf(&sb);
	msgpack_sbuffer_destroy(&sb);
	return b;
}

void kl_event_raw(struct kubelet *kl, const char *ns, const char *pod,
    const char *uid, const char *field_path, bool warning, const char *reason,
    const char *message)
{
	struct kl_events *ev = events_of(kl);
	if (ev == NULL || ns == NULL || pod == NULL || uid == NULL)
		return;
	const char *type = warning ? "Warning" : "Normal";
	char *key = kl_cat(uid, "\x1f", field_path ? field_path : "", "\x1f",
	    type, "\x1f", reason, "\x1f", message, (char *)NULL);
	if (key == NULL)
		return;
	int64_t now = kl_mono_ms();
	char stamp[32];
	kl_rfc3339(kl_wall_ms(), stamp, sizeof(stamp));
	pthread_mutex_lock(&ev->mu);
	expire(ev, now);
	struct kl_event *e = kb_strmap_get(&ev->index, key);
	if (e && !e->created && !e->inflight) {
		/* Its create failed: make it again. */
		forget(ev, e);
		e = NULL;
	}
	bool ok = allowed(ev, uid, now);
	if (e) {
		free(key);
		e->count++;
		e->touched_ms = now;
		memcpy(e->last, stamp, sizeof(e->last));
		kb_body *b = NULL;
		const char *op = NULL;
		if (!ok)
			ev->dropped++;
		else if (e->inflight || !e->created)
			e->dirty = true;
		else
			b = prepare_locked(ev, e, NULL, &op, now);
		pthread_mutex_unlock(&ev->mu);
		post(e, op, b);
		return;
	}
	if (!ok) {
		ev->dropped++;
		pthread_mutex_unlock(&ev->mu);
		free(key);
		return;
	}
	e = calloc(1, sizeof(*e));
	char *name = NULL;
	if (e) {
		/* "<pod>.%llx" of nanoseconds-ish, unique per kubelet */
		char hex[KL_NUM_MAX];
		kl_xtoa((uint64_t)kl_wall_ms() * 1000000ull +
			ev->seq++ % 1000000,
		    hex);
		name = kl_cat(pod, ".", hex, (char *)NULL);
	}
	if (name == NULL) {
		pthread_mutex_unlock(&ev->mu);
		free(e);
		free(key);
		return;
	}
	e->key = key;
	e->name = name;
	e->ns = strdup(ns);
	e->kl = kl;
	e->count = 1;
	e->touched_ms = now;
	memcpy(e->last, stamp, sizeof(e->last));
	/* The create request and its Event, packed at once (by hand: a
	 * kb_mp_body format of 25 fields was a third of an event's cost). */
	kb_body *obj = pack_create(kl, ns, pod, uid, field_path, type, reason,
	    message, name, stamp);
	if (e->ns == NULL || obj == NULL ||
	    kb_strmap_put(&ev->index, e->key, e, NULL) != 0) {
		pthread_mutex_unlock(&ev->mu);
		if (obj)
			kb_body_unref(obj);
		event_free(e);
		return;
	}
	e->next = ev->list;
	ev->list = e;
	ev->n++;
	const char *op = NULL;
	kb_body *b = prepare_locked(ev, e, obj, &op, now);
	pthread_mutex_unlock(&ev->mu);
	post(e, op, b);
}

void kl_event(struct kubelet *kl, const struct kl_pod *p,
    const struct kl_ctr *c, bool warning, const char *reason, const char *fmt,
    ...)
{
	char msg[1024], fp[300] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (c) {
		/* "spec.containers{NAME}" */
		size_t n = 0;
		kl_append(fp, sizeof(fp), &n, "spec.");
		kl_append(fp, sizeof(fp), &n,
		    c->init ? "initContainers" : "containers");
		kl_append(fp, sizeof(fp), &n, "{");
		kl_append(fp, sizeof(fp), &n, c->name);
		kl_append(fp, sizeof(fp), &n, "}");
	}
	kl_event_raw(kl, p->ns, p->name, p->uid, c ? fp : NULL, warning, reason,
	    msg);
}

uint64_t kl_events_dropped(struct kubelet *kl)
{
	struct kl_events *ev = events_of(kl);
	if (ev == NULL)
		return 0;
	pthread_mutex_lock(&ev->mu);
	uint64_t n = ev->dropped;
	pthread_mutex_unlock(&ev->mu);
	return n;
}
