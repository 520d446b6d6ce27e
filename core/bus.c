/* core/bus.c — routing requests, replies and publications between endpoints.
 *
 * In-process delivery is a mailbox push: no encoding, no socket, one
 * condition-variable wake when the receiver sleeps. Replies complete the
 * requester's callback on the replier's thread, so a round trip costs two
 * queue hops at most. Remote endpoints plug in through kb_ep_ops.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "bus.h"
#include "log.h"

#define PEND_SHARDS 64
#define PEND_BUCKETS 4096 /* per shard */

struct pend {
	uint64_t id;
	struct pend *next;
	kb_reply_fn fn;
	void *arg;
	struct kb_endpoint *origin; /* whose callback this is */
	struct kb_endpoint *target; /* who must answer */
	struct kb_ident *replier;   /* target's identity, referenced */
	int64_t deadline_ns;
};

static void pend_free(struct pend *p)
{
	kb_ident_unref(p->replier);
	free(p);
}

struct pend_shard {
	pthread_mutex_t mu;
	struct pend *buckets[PEND_BUCKETS];
};

struct service {
	struct service *next;  /* every service */
	struct service *hnext; /* its bucket's */
	bool inline_ok;        /* kb_bus_serve_inline */
	char *name;
	struct kb_endpoint *ep;
	kb_serve_fn fn;
	void *arg;
};

struct sub {
	struct sub *next;  /* every subscription, in the order made */
	struct sub *hnext; /* its bucket's (exact) or the wildcard list */
	uint64_t seq;      /* the order made */
	bool wild;         /* pattern ends in '*' */
	char *pattern;
	struct kb_endpoint *ep;
	kb_sub_fn fn;
	void *arg;
};

/* Services and exact patterns by hash: a request finds its service and a
 * publication the subscriptions to its topic (and the wildcard ones)
 * without a look at every kubelet's service and every watch's topic. */
#define NAME_BUCKETS 1024

struct timer_ent {
	int64_t deadline_ns;
	uint64_t id;
};

struct kb_endpoint {
	struct kb_hctx h;
	struct kb_bus *bus;
	struct kb_ident *who;
	struct kb_endpoint *next_ep;
	/* remote */
	const struct kb_ep_ops *ops;
	void *peer;
	bool trusted;
	/* local mailbox */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	kb_msg *head, *tail;
	bool sleeping;
	bool closed;
	bool has_thread;
	pthread_t thread;
	atomic_int cb_active; /* callbacks running for this endpoint */
	atomic_int owed;      /* wakes other threads owe it (wakes_flush) */
	atomic_int served;    /* its inline handlers running on other threads */
};

struct kb_bus {
	const struct kb_host_api *api;
	struct kb_auth *auth;
	int default_timeout_ms;
	atomic_ullong next_id;
	struct pend_shard shards[PEND_SHARDS];

	pthread_rwlock_t rt;        /* services, subs, endpoints, uplink */
	struct service *services;
	struct service *svc_hash[NAME_BUCKETS];
	struct sub *subs;
	struct sub *exact[NAME_BUCKETS];
	struct sub *wild;
	uint64_t sub_seq;
	struct kb_endpoint *eps;
	struct kb_endpoint *uplink;

	pthread_mutex_t tmu;        /* timer heap */
	pthread_cond_t tcv;
	struct timer_ent *heap;
	size_t nheap, capheap;
	bool tstop;
	pthread_t timer;

	struct kb_bus_stats stats;
};

static inline bool is_remote(const struct kb_endpoint *ep)
{
	return ep->ops != NULL;
}

/* A service's or an exact pattern's bucket (FNV-1a of the name). */
static size_t name_bucket(const char *name)
{
	uint64_t h = 1469598103934665603ull;
	for (const unsigned char *s = (const unsigned char *)name; *s; s++)
		h = (h ^ *s) * 1099511628211ull;
	return (size_t)(h % NAME_BUCKETS);
}

/* Inline handlers (kb_bus_serve_inline) this thread is running. */
static _Thread_local int inline_depth;

static struct sub **sub_chain(struct kb_bus *bus, const struct sub *s)
{
	return s->wild ? &bus->wild : &bus->exact[name_bucket(s->pattern)];
}

static struct service **svc_chain(struct kb_bus *bus, const char *name)
{
	return &bus->svc_hash[name_bucket(name)];
}

/* Under the write lock: into the lists, last. */
static void sub_link(struct kb_bus *bus, struct sub *s)
{
	size_t n = strlen(s->pattern);
	s->wild = n && s->pattern[n - 1] == '*';
	s->seq = ++bus->sub_seq;
	struct sub **pp = &bus->subs;
	while (*pp)
		pp = &(*pp)->next;
	*pp = s;
	for (pp = sub_chain(bus, s); *pp; pp = &(*pp)->hnext)
		;
	*pp = s;
}

/* Under the write lock: *pp (in bus->subs) out of the lists, freed. */
static void sub_unlink(struct kb_bus *bus, struct sub **pp)
{
	struct sub *s = *pp;
	*pp = s->next;
	struct sub **hp = sub_chain(bus, s);
	while (*hp != s) /* it is in its chain */
		hp = &(*hp)->hnext;
	*hp = s->hnext;
	free(s->pattern);
	free(s);
}

static struct sub *next_exact(struct sub *s, const char *topic)
{
	while (s && strcmp(s->pattern, topic))
		s = s->hnext;
	return s;
}

static struct sub *next_wild(struct sub *s, const char *topic)
{
	while (s && !kb_topic_match(s->pattern, topic))
		s = s->hnext;
	return s;
}

bool kb_topic_match(const char *pattern, const char *topic)
{
	size_t n = strlen(pattern);
	if (n && pattern[n - 1] == '*')
		return strncmp(pattern, topic, n - 1) == 0;
	return strcmp(pattern, topic) == 0;
}

/* --- pending requests ------------------------------------------------------ */

static struct pend_shard *shard_of(struct kb_bus *bus, uint64_t id)
{
	return &bus->shards[id % PEND_SHARDS];
}

static void pend_insert(struct kb_bus *bus, struct pend *p)
{
	struct pend_shard *s = shard_of(bus, p->id);
	size_t b = (p->id / PEND_SHARDS) % PEND_BUCKETS;
	pthread_mutex_lock(&s->mu);
	p->next = s->buckets[b];
	s->buckets[b] = p;
	pthread_mutex_unlock(&s->mu);
}

/* Remove and return the pending request `id` if it is waiting on `target`
 * (NULL: any). The origin's callback count is raised under the shard lock
 * so kb_bus_close() can wait for the callback to finish. */
static struct pend *pend_take(struct kb_bus *bus, uint64_t id,
    struct kb_endpoint *target)
{
	struct pend_shard *s = shard_of(bus, id);
	size_t b = (id / PEND_SHARDS) % PEND_BUCKETS;
	pthread_mutex_lock(&s->mu);
	struct pend **pp = &s->buckets[b], *p;
	while ((p = *pp) != NULL) {
		if (p->id == id) {
			if (target && p->target != target) {
				p = NULL;
				break;
			}
			*pp = p->next;
			if (p->origin)
				atomic_fetch_add(&p->origin->cb_active, 1);
			break;
		}
		pp = &p->next;
	}
	pthread_mutex_unlock(&s->mu);
	return p;
}

/* Run the requester's callback for a taken pending request, then free it. */
static void pend_finish(struct kb_bus *bus, struct pend *p, int rc,
    struct kb_ident *replier, kb_body *body, const char *message)
{
	struct kb_msg rep = {
		.type = rc ? KB_T_ERR : KB_T_REP,
		.id = p->id,
		.who = replier,
		.dst = (char *)"",
		.op = (char *)"",
		.body = body,
		.err = rc,
		.err_msg = (char *)message,
	};
	if (rc == KB_ETIMEOUT)
		atomic_fetch_add(&bus->stats.timeouts, 1);
	else if (rc == KB_EUNAVAILABLE)
		atomic_fetch_add(&bus->stats.unavailable, 1);
	atomic_fetch_add(&bus->stats.replies, 1);
	/* A local failure (timeout, service gone) has no reply message. */
	bool local = replier == NULL;
	p->fn(p->arg, rc, local ? NULL : &rep);
	if (p->origin)
		atomic_fetch_sub(&p->origin->cb_active, 1);
	pend_free(p);
}

/* Fail every request pending on `target`, and forget (without calling) every
 * request sent by `origin`. */
static void pend_sweep_endpoint(struct kb_bus *bus, struct kb_endpoint *ep)
{
	for (int i = 0; i < PEND_SHARDS; i++) {
		struct pend_shard *s = &bus->shards[i];
		struct pend *failed = NULL;
		pthread_mutex_lock(&s->mu);
		for (int b = 0; b < PEND_BUCKETS; b++) {
			struct pend **pp = &s->buckets[b], *p;
			while ((p = *pp) != NULL) {
				if (p->origin == ep && !is_remote(ep)) {
					/* A stopped plugin's callbacks must not run. */
					*pp = p->next;
					pend_free(p);
				} else if (p->target == ep || p->origin == ep) {
					/* Waiting on it, or a connection's own request
					 * whose callback frees what the connection
					 * allocated for it. */
					*pp = p->next;
					if (p->origin)
						atomic_fetch_add(&p->origin->cb_active, 1);
					p->next = failed;
					failed = p;
				} else {
					pp = &p->next;
				}
			}
		}
		pthread_mutex_unlock(&s->mu);
		while (failed) {
			struct pend *p = failed;
			failed = p->next;
			pend_finish(bus, p, KB_EUNAVAILABLE, NULL, NULL, NULL);
		}
	}
}

/* --- the timer: a min-heap of deadlines, entries checked lazily ------------- */

static void heap_push(struct kb_bus *bus, int64_t deadline, uint64_t id)
{
	pthread_mutex_lock(&bus->tmu);
	if (bus->nheap == bus->capheap) {
		size_t cap = bus->capheap ? bus->capheap * 2 : 1024;
		struct timer_ent *h = realloc(bus->heap, cap * sizeof(*h));
		if (h == NULL) {
			/* Without a timer entry the request can still complete;
			 * it only loses its deadline. */
			pthread_mutex_unlock(&bus->tmu);
			return;
		}
		bus->heap = h;
		bus->capheap = cap;
	}
	size_t i = bus->nheap++;
	while (i > 0) {
		size_t parent = (i - 1) / 2;
		if (bus->heap[parent].deadline_ns <= deadline)
			break;
		bus->heap[i] = bus->heap[parent];
		i = parent;
	}
	bus->heap[i] = (struct timer_ent){ deadline, id };
	if (i == 0)
		pthread_cond_signal(&bus->tcv);
	pthread_mutex_unlock(&bus->tmu);
}

static struct timer_ent heap_pop(struct kb_bus *bus)
{
	struct timer_ent top = bus->heap[0];
	struct timer_ent last = bus->heap[--bus->nheap];
	size_t i = 0, n = bus->nheap;
	for (;;) {
		size_t c = 2 * i + 1;
		if (c >= n)
			break;
		if (c + 1 < n && bus->heap[c + 1].deadline_ns < bus->heap[c].deadline_ns)
			c++;
		if (last.deadline_ns <= bus->heap[c].deadline_ns)
			break;
		bus->heap[i] = bus->heap[c];
		i = c;
	}
	if (n)
		bus->heap[i] = last;
	return top;
}

static void *timer_main(void *arg)
{
	struct kb_bus *bus = arg;
	pthread_setname_np(pthread_self(), "bus:timer");
	pthread_mutex_lock(&bus->tmu);
	while (!bus->tstop) {
		if (bus->nheap == 0) {
			pthread_cond_wait(&bus->tcv, &bus->tmu);
			continue;
		}
		int64_t now = kb_now_ns();
		if (bus->heap[0].deadline_ns > now) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			int64_t wait = bus->heap[0].deadline_ns - now;
			ts.tv_sec += wait / 1000000000;
			ts.tv_nsec += wait % 1000000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&bus->tcv, &bus->tmu, &ts);
			continue;
		}
		struct timer_ent e = heap_pop(bus);
		pthread_mutex_unlock(&bus->tmu);
		struct pend *p = pend_take(bus, e.id, NULL);
		if (p)
			pend_finish(bus, p, KB_ETIMEOUT, NULL, NULL, NULL);
		pthread_mutex_lock(&bus->tmu);
	}
	pthread_mutex_unlock(&bus->tmu);
	return NULL;
}

/* --- bus ------------------------------------------------------------------- */

struct kb_bus *kb_bus_new(const struct kb_host_api *api, struct kb_auth *auth,
    int default_timeout_ms)
{
	struct kb_bus *bus = calloc(1, sizeof(*bus));
	if (bus == NULL)
		return NULL;
	bus->api = api;
	bus->auth = auth;
	bus->default_timeout_ms = default_timeout_ms > 0 ? default_timeout_ms : 30000;
	atomic_init(&bus->next_id, 1);
	for (int i = 0; i < PEND_SHARDS; i++)
		pthread_mutex_init(&bus->shards[i].mu, NULL);
	pthread_rwlock_init(&bus->rt, NULL);
	pthread_mutex_init(&bus->tmu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&bus->tcv, &ca);
	pthread_condattr_destroy(&ca);
	if (pthread_create(&bus->timer, NULL, timer_main, bus) != 0) {
		free(bus);
		return NULL;
	}
	return bus;
}

void kb_bus_free(struct kb_bus *bus)
{
	if (bus == NULL)
		return;
	for (;;) {
		pthread_rwlock_rdlock(&bus->rt);
		struct kb_endpoint *ep = bus->eps;
		pthread_rwlock_unlock(&bus->rt);
		if (ep == NULL)
			break;
		kb_bus_close(ep);
	}
	pthread_mutex_lock(&bus->tmu);
	bus->tstop = true;
	pthread_cond_signal(&bus->tcv);
	pthread_mutex_unlock(&bus->tmu);
	pthread_join(bus->timer, NULL);
	/* Requests still pending (sent by nobody we know) are dropped. */
	for (int i = 0; i < PEND_SHARDS; i++) {
		for (int b = 0; b < PEND_BUCKETS; b++) {
			struct pend *p = bus->shards[i].buckets[b];
			while (p) {
				struct pend *n = p->next;
				pend_free(p);
				p = n;
			}
		}
		pthread_mutex_destroy(&bus->shards[i].mu);
	}
	free(bus->heap);
	pthread_rwlock_destroy(&bus->rt);
	pthread_mutex_destroy(&bus->tmu);
	pthread_cond_destroy(&bus->tcv);
	free(bus);
}

struct kb_bus_stats *kb_bus_stats(struct kb_bus *bus) { return &bus->stats; }
struct kb_auth *kb_bus_auth(struct kb_bus *bus) { return bus->auth; }
kb_ctx *kb_ep_ctx(struct kb_endpoint *ep) { return &ep->h.ctx; }
struct kb_endpoint *kb_ctx_ep(kb_ctx *ctx)
{
	struct kb_hctx *h = (struct kb_hctx *)ctx;
	return h->parent ? h->parent->ep : h->ep;
}
struct kb_ident *kb_ep_ident(struct kb_endpoint *ep) { return ep->who; }
const char *kb_ep_name(struct kb_endpoint *ep) { return ep->h.name; }
struct kb_bus *kb_ep_bus(struct kb_endpoint *ep) { return ep->bus; }

void kb_bus_set_uplink(struct kb_bus *bus, struct kb_endpoint *ep)
{
	pthread_rwlock_wrlock(&bus->rt);
	bus->uplink = ep;
	pthread_rwlock_unlock(&bus->rt);
}

/* --- local endpoints: mailbox and dispatch thread --------------------------- */

/* Wakes a dispatch thread owes. One store event batch becomes a
 * publication per event and watcher, and each used to wake its
 * subscriber's thread on its own: the subscriber woke, took one event and
 * slept again, and on two virtual cores each wake-up costs a cross-CPU
 * interrupt. While an endpoint's thread dispatches the messages it took
 * from its mailbox at once, the publications they make queue without
 * waking anyone; the owed wakes are made once, when the last handler
 * returns (or before one sends a request, which may wait for an answer
 * that needs them). A subscriber then takes the whole batch on one
 * wake-up, and one of several store event batches that queued up. The endpoint cannot be freed while a
 * wake is owed to it (kb_bus_close waits for `owed`). Up to OWED_MAX
 * endpoints, past which one is woken at once: a batch of pod events
 * reaches a hundred hollow kubelets in bench-deploy, and at 32 the rest
 * were woken publication by publication (256: 22 % fewer futex calls and
 * 24 % fewer context switches in a whole run). */
#define OWED_MAX 256
static _Thread_local struct {
	bool on;       /* this thread is dispatching */
	size_t n;
	struct kb_endpoint *ep[OWED_MAX];
} wakes;

static void wakes_flush(void)
{
	for (size_t i = 0; i < wakes.n; i++) {
		struct kb_endpoint *ep = wakes.ep[i];
		pthread_mutex_lock(&ep->mu);
		bool sleeping = ep->sleeping;
		pthread_mutex_unlock(&ep->mu);
		/* Signalled after the unlock: a thread woken while we held
		 * ep->mu would block on it at once and cost a second futex
		 * wake at our unlock. Seen asleep under the lock, it is a
		 * waiter the signal finds (if it woke meanwhile, the signal
		 * is a spurious wake its loop absorbs), and ep outlives the
		 * signal while it owes (kb_bus_close waits for owed). */
		if (sleeping)
			pthread_cond_signal(&ep->cv);
		atomic_fetch_sub(&ep->owed, 1);
	}
	wakes.n = 0;
}

/* Under ep->mu, ep asleep with a message for it: true when this thread
 * will wake it later. */
static bool wake_later(struct kb_endpoint *ep)
{
	if (!wakes.on)
		return false;
	for (size_t i = 0; i < wakes.n; i++)
		if (wakes.ep[i] == ep)
			return true;
	if (wakes.n == OWED_MAX)
		return false;
	atomic_fetch_add(&ep->owed, 1);
	wakes.ep[wakes.n++] = ep;
	return true;
}

static void dispatch(kb_msg *m)
{
	void (*fn)(void *, kb_msg *) = m->handler;
	void *arg = m->handler_arg;
	m->next = NULL;
	if (m->type == KB_T_REQ) {
		fn(arg, m); /* the handler owns the request now */
	} else {
		fn(arg, m);
		kb_msg_free(m);
	}
}

static void *ep_main(void *arg)
{
	struct kb_endpoint *ep = arg;
	/* "ep:<endpoint>" (a thread name holds 15 bytes), so profiles and
	 * the benchmarks' CPU by thread tell the plugins' dispatch apart. */
	char tname[16];
	snprintf(tname, sizeof(tname), "ep:%s", ep->h.name);
	pthread_setname_np(pthread_self(), tname);
	pthread_mutex_lock(&ep->mu);
	for (;;) {
		while (ep->head == NULL && !ep->closed) {
			ep->sleeping = true;
			pthread_cond_wait(&ep->cv, &ep->mu);
			ep->sleeping = false;
		}
		if (ep->head == NULL)
			break;
		kb_msg *batch = ep->head;
		ep->head = ep->tail = NULL;
		pthread_mutex_unlock(&ep->mu);
		wakes.on = true;
		while (batch) {
			kb_msg *m = batch;
			batch = m->next;
			dispatch(m);
		}
		wakes.on = false;
		wakes_flush();
		pthread_mutex_lock(&ep->mu);
	}
	pthread_mutex_unlock(&ep->mu);
	return NULL;
}

/* Queue a message for a local endpoint's thread. KB_ECLOSED when closing.
 * A publication's wake may be owed (wake_later); anything else first pays
 * what this thread owes. */
static int mailbox_push(struct kb_endpoint *ep, kb_msg *m, bool publication)
{
	if (!publication && wakes.n)
		wakes_flush();
	m->next = NULL;
	pthread_mutex_lock(&ep->mu);
	if (ep->closed) {
		pthread_mutex_unlock(&ep->mu);
		return KB_ECLOSED;
	}
	if (ep->tail)
		ep->tail->next = m;
	else
		ep->head = m;
	ep->tail = m;
	if (ep->sleeping && !(publication && wake_later(ep)))
		pthread_cond_signal(&ep->cv);
	pthread_mutex_unlock(&ep->mu);
	return 0;
}

static struct kb_endpoint *ep_alloc(struct kb_bus *bus, const char *name,
    struct kb_ident *who)
{
	struct kb_endpoint *ep = calloc(1, sizeof(*ep));
	if (ep == NULL)
		return NULL;
	ep->h.ctx.api = bus->api;
	ep->h.ep = ep;
	ep->h.name = strdup(name);
	ep->bus = bus;
	ep->who = kb_ident_ref(who);
	atomic_init(&ep->cb_active, 0);
	atomic_init(&ep->owed, 0);
	atomic_init(&ep->served, 0);
	pthread_mutex_init(&ep->mu, NULL);
	pthread_cond_init(&ep->cv, NULL);
	if (ep->h.name == NULL) {
		kb_ident_unref(ep->who);
		free(ep);
		return NULL;
	}
	return ep;
}

static void ep_link(struct kb_bus *bus, struct kb_endpoint *ep)
{
	pthread_rwlock_wrlock(&bus->rt);
	ep->next_ep = bus->eps;
	bus->eps = ep;
	pthread_rwlock_unlock(&bus->rt);
}

static void ep_free(struct kb_endpoint *ep)
{
	kb_ident_unref(ep->who);
	pthread_mutex_destroy(&ep->mu);
	pthread_cond_destroy(&ep->cv);
	free(ep->h.name);
	free(ep);
}

struct kb_endpoint *kb_bus_open_local(struct kb_bus *bus, const char *name,
    struct kb_ident *who, void *owner)
{
	struct kb_endpoint *ep = ep_alloc(bus, name, who);
	if (ep == NULL)
		return NULL;
	ep->h.owner = owner;
	if (pthread_create(&ep->thread, NULL, ep_main, ep) != 0) {
		ep_free(ep);
		return NULL;
	}
	ep->has_thread = true;
	ep_link(bus, ep);
	return ep;
}

struct kb_endpoint *kb_bus_open_remote(struct kb_bus *bus, const char *name,
    struct kb_ident *who, const struct kb_ep_ops *ops, void *peer,
    bool trusted)
{
	struct kb_endpoint *ep = ep_alloc(bus, name, who);
	if (ep == NULL)
		return NULL;
	ep->ops = ops;
	ep->peer = peer;
	ep->trusted = trusted;
	ep_link(bus, ep);
	return ep;
}

/* Unlink the endpoint's services, subscriptions and itself. */
static void ep_unroute(struct kb_bus *bus, struct kb_endpoint *ep)
{
	pthread_rwlock_wrlock(&bus->rt);
	for (struct service **pp = &bus->services, *s; (s = *pp) != NULL;) {
		if (s->ep != ep) {
			pp = &s->next;
			continue;
		}
		*pp = s->next;
		struct service **hp = svc_chain(bus, s->name);
		while (*hp != s)
			hp = &(*hp)->hnext;
		*hp = s->hnext;
		free(s->name);
		free(s);
	}
	for (struct sub **pp = &bus->subs, *s; (s = *pp) != NULL;) {
		if (s->ep == ep)
			sub_unlink(bus, pp);
		else
			pp = &s->next;
	}
	for (struct kb_endpoint **pp = &bus->eps; *pp; pp = &(*pp)->next_ep) {
		if (*pp == ep) {
			*pp = ep->next_ep;
			break;
		}
	}
	if (bus->uplink == ep)
		bus->uplink = NULL;
	pthread_rwlock_unlock(&bus->rt);
}

void kb_bus_close(struct kb_endpoint *ep)
{
	struct kb_bus *bus = ep->bus;
	ep_unroute(bus, ep);
	pthread_mutex_lock(&ep->mu);
	ep->closed = true;
	kb_msg *left = ep->head;
	ep->head = ep->tail = NULL;
	pthread_cond_signal(&ep->cv);
	pthread_mutex_unlock(&ep->mu);
	if (ep->has_thread && !pthread_equal(ep->thread, pthread_self()))
		pthread_join(ep->thread, NULL);
	else if (ep->has_thread)
		pthread_detach(ep->thread);
	/* Requests that were queued but never handled: the service is gone. */
	while (left) {
		kb_msg *m = left;
		left = m->next;
		if (m->type == KB_T_REQ)
			kb_bus_reply(m, NULL, KB_EUNAVAILABLE, "service stopped");
		else
			kb_msg_free(m);
	}
	pend_sweep_endpoint(bus, ep);
	wakes_flush(); /* what this thread owes, to ep or any */
	while (atomic_load(&ep->cb_active) > 0 || atomic_load(&ep->owed) > 0 ||
	    atomic_load(&ep->served) > 0)
		usleep(100);
	ep_free(ep);
}

/* --- services and topics ----------------------------------------------------- */

/* 1 to 127 of [A-Za-z0-9._/:-], and '*' when `star`; one pass, as every
 * publication checks its topic. */
static bool name_ok(const char *s, bool star)
{
	size_t n = 0;
	for (; s[n]; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		        (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		        c == '/' || c == '-' || c == ':' || (star && c == '*')))
			return false;
		if (n == 127)
			return false;
	}
	return n > 0;
}

static bool valid_name(const char *s)
{
	return name_ok(s, true);
}

static struct service *service_find(struct kb_bus *bus, const char *name)
{
	for (struct service *s = *svc_chain(bus, name); s; s = s->hnext)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

bool kb_bus_has_service(struct kb_bus *bus, const char *service)
{
	pthread_rwlock_rdlock(&bus->rt);
	bool has = service_find(bus, service) != NULL;
	pthread_rwlock_unlock(&bus->rt);
	return has;
}

static int serve(struct kb_endpoint *ep, const char *service, kb_serve_fn fn,
    void *arg, bool inline_ok)
{
	struct kb_bus *bus = ep->bus;
	if (service == NULL || !valid_name(service) || strchr(service, '*'))
		return KB_EINVAL;
	if (!is_remote(ep) && fn == NULL)
		return KB_EINVAL;
	struct service *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->name = strdup(service)) == NULL) {
		free(s);
		return KB_ENOMEM;
	}
	s->ep = ep;
	s->fn = fn;
	s->arg = arg;
	s->inline_ok = inline_ok && !is_remote(ep);
	pthread_rwlock_wrlock(&bus->rt);
	if (service_find(bus, service)) {
		pthread_rwlock_unlock(&bus->rt);
		free(s->name);
		free(s);
		return KB_EEXIST;
	}
	s->next = bus->services;
	bus->services = s;
	struct service **hp = svc_chain(bus, service);
	s->hnext = *hp;
	*hp = s;
	pthread_rwlock_unlock(&bus->rt);
	return 0;
}

int kb_bus_serve(struct kb_endpoint *ep, const char *service, kb_serve_fn fn,
    void *arg)
{
	return serve(ep, service, fn, arg, false);
}

int kb_bus_serve_inline(struct kb_endpoint *ep, const char *service,
    kb_serve_fn fn, void *arg)
{
	return serve(ep, service, fn, arg, true);
}

int kb_bus_subscribe(struct kb_endpoint *ep, const char *pattern,
    kb_sub_fn fn, void *arg)
{
	struct kb_bus *bus = ep->bus;
	if (pattern == NULL || !valid_name(pattern))
		return KB_EINVAL;
	if (!ep->trusted && bus->auth &&
	    !kb_auth_may_subscribe(bus->auth, ep->who, pattern)) {
		atomic_fetch_add(&bus->stats.denied, 1);
		return KB_EFORBIDDEN;
	}
	struct sub *s = calloc(1, sizeof(*s));
	if (s == NULL || (s->pattern = strdup(pattern)) == NULL) {
		free(s);
		return KB_ENOMEM;
	}
	s->ep = ep;
	s->fn = fn;
	s->arg = arg;
	pthread_rwlock_wrlock(&bus->rt);
	/* Subscriptions made first are served first. */
	sub_link(bus, s);
	pthread_rwlock_unlock(&bus->rt);
	return 0;
}

int kb_bus_unsubscribe(struct kb_endpoint *ep, const char *pattern)
{
	struct kb_bus *bus = ep->bus;
	int rc = KB_ENOTFOUND;
	pthread_rwlock_wrlock(&bus->rt);
	for (struct sub **pp = &bus->subs, *s; (s = *pp) != NULL;) {
		if (s->ep == ep && strcmp(s->pattern, pattern) == 0) {
			sub_unlink(bus, pp);
			rc = 0;
		} else {
			pp = &s->next;
		}
	}
	pthread_rwlock_unlock(&bus->rt);
	return rc;
}

void kb_bus_each_service(struct kb_bus *bus, struct kb_endpoint *ep,
    void (*fn)(void *arg, const char *name), void *arg)
{
	pthread_rwlock_rdlock(&bus->rt);
	for (struct service *s = bus->services; s; s = s->next)
		if (ep == NULL ? !is_remote(s->ep) : s->ep == ep)
			fn(arg, s->name);
	pthread_rwlock_unlock(&bus->rt);
}

void kb_bus_each_local_pattern(struct kb_bus *bus,
    void (*fn)(void *arg, const char *pattern), void *arg)
{
	pthread_rwlock_rdlock(&bus->rt);
	for (struct sub *s = bus->subs; s; s = s->next)
		if (!is_remote(s->ep))
			fn(arg, s->pattern);
	pthread_rwlock_unlock(&bus->rt);
}

/* --- requests ---------------------------------------------------------------- */

int kb_bus_request(struct kb_endpoint *ep, struct kb_ident *who,
    const char *service, const char *op, kb_body *body, int timeout_ms,
    kb_reply_fn fn, void *arg)
{
	struct kb_bus *bus = ep->bus;
	if (who == NULL)
		who = ep->who;
	if (service == NULL || fn == NULL || !valid_name(service))
		return KB_EINVAL;
	if (op == NULL)
		op = "";
	if (!ep->trusted && bus->auth &&
	    !kb_auth_may_call(bus->auth, who, service, op)) {
		atomic_fetch_add(&bus->stats.denied, 1);
		return KB_EFORBIDDEN;
	}
	pthread_rwlock_rdlock(&bus->rt);
	struct service *s = service_find(bus, service);
	struct kb_endpoint *target = s ? s->ep : NULL;
	kb_serve_fn sfn = s ? s->fn : NULL;
	void *sarg = s ? s->arg : NULL;
	/* A local caller runs an inline service's handler itself; until it
	 * returns the target is not freed (kb_bus_close waits for served).
	 * Not from within one: a reply callback that sends the next request
	 * (a closed-loop client) would recurse once per request. */
	bool direct = s && s->inline_ok && !is_remote(ep) && ep != target &&
	    inline_depth == 0;
	if (direct)
		atomic_fetch_add(&target->served, 1);
	/* Unknown here: the uplink may know it (never back where it came). */
	if (target == NULL && bus->uplink && bus->uplink != ep)
		target = bus->uplink;
	pthread_rwlock_unlock(&bus->rt);
	if (target == NULL) {
		atomic_fetch_add(&bus->stats.unavailable, 1);
		return KB_EUNAVAILABLE;
	}

	/* A nil body made here is ours to drop on every error path. */
	kb_body *nil = NULL;
	struct pend *p = NULL;
	kb_msg *m = NULL;
	if (body == NULL && (body = nil = kb_body_nil()) == NULL)
		goto nomem;
	p = calloc(1, sizeof(*p));
	m = kb_msg_new(KB_T_REQ, who, service, op, body);
	if (p == NULL || m == NULL) {
nomem:
		free(p);
		if (m) {
			m->body = NULL;
			kb_msg_free(m);
		}
		kb_body_unref(nil);
		if (direct)
			atomic_fetch_sub(&target->served, 1);
		return KB_ENOMEM;
	}
	if (timeout_ms <= 0)
		timeout_ms = bus->default_timeout_ms;
	p->id = atomic_fetch_add(&bus->next_id, 1);
	p->fn = fn;
	p->arg = arg;
	p->origin = ep;
	p->target = target;
	p->replier = kb_ident_ref(target->who);
	p->deadline_ns = kb_now_ns() + (int64_t)timeout_ms * 1000000;
	m->id = p->id;
	m->deadline_ns = p->deadline_ns;
	m->api = bus->api;
	m->route = bus;
	m->handler = (void (*)(void *, kb_msg *))sfn;
	m->handler_arg = sarg;
	pend_insert(bus, p);
	heap_push(bus, p->deadline_ns, p->id);
	atomic_fetch_add(&bus->stats.requests, 1);

	uint64_t id = p->id;
	if (direct) {
		/* as a hand-over would: what this thread owes goes first */
		if (wakes.n)
			wakes_flush();
		inline_depth++;
		sfn(sarg, m); /* the handler owns the request now */
		inline_depth--;
		atomic_fetch_sub(&target->served, 1);
		return 0;
	}
	int rc = is_remote(target) ? target->ops->deliver(target->peer, m)
	                           : mailbox_push(target, m, false);
	if (rc != 0) {
		/* Nobody took m: give the body back to the caller. */
		m->body = NULL;
		kb_msg_free(m);
		struct pend *q = pend_take(bus, id, NULL);
		if (q == NULL) {
			/* It timed out meanwhile and its callback ran: the
			 * request is over, so the body is ours to drop. */
			kb_body_unref(body);
			return 0;
		}
		if (q->origin)
			atomic_fetch_sub(&q->origin->cb_active, 1);
		pend_free(q);
		kb_body_unref(nil);
		atomic_fetch_add(&bus->stats.unavailable, 1);
		return KB_EUNAVAILABLE;
	}
	return 0;
}

int kb_bus_reply(kb_msg *req, kb_body *body, int code, const char *message)
{
	struct kb_bus *bus = req->route;
	if (req->type != KB_T_REQ || bus == NULL) {
		kb_msg_free(req);
		return KB_EINVAL;
	}
	struct pend *p = pend_take(bus, req->id, NULL);
	kb_msg_free(req);
	if (p == NULL) {
		/* Timed out or its requester left: the answer has nowhere to
		 * go, which is not the replier's error. */
		kb_body_unref(body);
		return 0;
	}
	if (body == NULL)
		body = kb_body_nil();
	pend_finish(bus, p, code, p->replier, body, message ? message : "");
	kb_body_unref(body);
	return 0;
}

void kb_bus_complete(struct kb_endpoint *from, uint64_t id, int code,
    const char *message, kb_body *body)
{
	struct kb_bus *bus = from->bus;
	struct pend *p = pend_take(bus, id, from);
	if (p == NULL) {
		/* Late, or not this peer's to answer: dropped and counted. */
		atomic_fetch_add(&bus->stats.malformed, 1);
		kb_body_unref(body);
		return;
	}
	if (body == NULL)
		body = kb_body_nil();
	pend_finish(bus, p, code, p->replier, body, message ? message : "");
	kb_body_unref(body);
}

/* --- publish ------------------------------------------------------------------ */

static bool ep_in(struct kb_endpoint **v, size_t n, struct kb_endpoint *ep)
{
	for (size_t i = 0; i < n; i++)
		if (v[i] == ep)
			return true;
	return false;
}

int kb_bus_publish(struct kb_endpoint *ep, struct kb_ident *who,
    const char *topic, kb_body *body)
{
	struct kb_bus *bus = ep->bus;
	if (who == NULL)
		who = ep->who;
	if (topic == NULL || !name_ok(topic, false))
		return KB_EINVAL;
	if (!ep->trusted && bus->auth &&
	    !kb_auth_may_publish(bus->auth, who, topic)) {
		atomic_fetch_add(&bus->stats.denied, 1);
		return KB_EFORBIDDEN;
	}
	if (body == NULL && (body = kb_body_nil()) == NULL)
		return KB_ENOMEM;
	atomic_fetch_add(&bus->stats.published, 1);

	pthread_rwlock_rdlock(&bus->rt);
	struct kb_endpoint *sent[64];
	size_t nsent = 0, ndelivered = 0;
	/* Those to the topic and the wildcards that match it, merged back
	 * into the order they were made. */
	struct sub *x = next_exact(bus->exact[name_bucket(topic)], topic);
	struct sub *w = next_wild(bus->wild, topic);
	while (x || w) {
		struct sub *s;
		if (x && (w == NULL || x->seq < w->seq)) {
			s = x;
			x = next_exact(x->hnext, topic);
		} else {
			s = w;
			w = next_wild(w->hnext, topic);
		}
		if (s->ep == ep)
			continue;
		/* One copy per remote peer, however many of its patterns match. */
		if (is_remote(s->ep) && ep_in(sent, nsent, s->ep))
			continue;
		kb_msg *m = kb_msg_new(KB_T_PUB, who, topic, "", kb_body_ref(body));
		if (m == NULL) {
			kb_body_unref(body);
			continue;
		}
		m->api = bus->api;
		m->handler = (void (*)(void *, kb_msg *))s->fn;
		m->handler_arg = s->arg;
		int rc;
		if (is_remote(s->ep)) {
			if (nsent < sizeof(sent) / sizeof(sent[0]))
				sent[nsent++] = s->ep;
			rc = s->ep->ops->deliver(s->ep->peer, m);
		} else {
			rc = mailbox_push(s->ep, m, true);
		}
		if (rc != 0)
			kb_msg_free(m);
		else
			ndelivered++;
	}
	/* counted once: the counters' line is shared by every publisher */
	if (ndelivered)
		atomic_fetch_add(&bus->stats.delivered, ndelivered);
	/* Up the tree too, unless that is where it came from. */
	struct kb_endpoint *up = bus->uplink;
	if (up && up != ep) {
		kb_msg *m = kb_msg_new(KB_T_PUB, who, topic, "", kb_body_ref(body));
		if (m && up->ops->deliver(up->peer, m) != 0)
			kb_msg_free(m);
	}
	pthread_rwlock_unlock(&bus->rt);
	kb_body_unref(body);
	return 0;
}
