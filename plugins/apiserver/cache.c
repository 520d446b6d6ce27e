/* plugins/apiserver/cache.c — the watch cache.
 *
 * One store watch per resource feeds a ring of recent events and a map of
 * current objects. Each event is encoded once per format (watch JSON line,
 * Table line), when the first watcher reads it, and the same bytes go to
 * every watcher; a watcher only keeps its place in the ring. A watcher that
 * falls further behind than the ring holds gets a 410 Expired error and its
 * stream ends: memory stays bounded whatever the client's speed.
 *
 * Objects are kept as msgpack: the store's bytes with the resourceVersion
 * spliced in, shared (counted) by the map and the ring. Bus watchers get
 * these bytes as they are, and every watcher's namespace, name and
 * selectors are evaluated on them (select.c); a delete's last state is the
 * bytes with the delete's version spliced in. The json_t of an object is
 * decoded only for what formats JSON: an HTTP watcher's line, an initial
 * event or a list served to HTTP, once per object.
 *
 * When the store drops a cache's watch (it publishes an error, or it lost
 * the watch silently, e.g. it restarted: a write of this server's has not
 * come back as an event for LOST_AFTER_NS), the keeper thread watches
 * again from the last revision applied; if the store has compacted that
 * away, it relists and turns the difference into events. Watchers keep
 * their streams either way. Events are applied once by (revision, key),
 * so the old and the new watch may overlap.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kubus/strmap.h>

#include "busapi.h"
#include "server.h"

#define DEFAULT_RING 8192
#define LOST_AFTER_NS (3 * 1000000000LL) /* our write not seen: watch lost */
#define KEEPER_TICK_MS 200
#define RETRY_NS (1000000000LL)          /* after a failed re-watch */

/* One state of an object, shared by the map and the ring's events: its
 * msgpack with the resourceVersion (what bus watchers get, selectors
 * read), and its json_t only once an HTTP watcher or a list needs it.
 * Counted and decoded under the cache's lock. */
struct cobj {
	unsigned refs;
	size_t len;
	char *mp;
	json_t *j;            /* decoded on first need, or NULL */
	struct api_mp_memo *memo; /* for watchers' filters, on first need */
	/* mp is the store's value at mod_rev `rev` with the resourceVersion
	 * api_mp_with_rv splices in (last in metadata), nothing else: what a
	 * writer of the raw bytes may edit (api_cache_stored). False for the
	 * objects encoded from a json_t (lists, relists, odd values). */
	bool stored;
	int64_t rev;
	/* an Event's last write, ms since the epoch, when its cache's
	 * objects expire (stamped(), evttl.c); else 0 */
	int64_t written;
};

/* The map's entry for a key: objects in the order their keys came in (a
 * modified object keeps its place), as the initial events list them. */
struct slot {
	char *key;
	struct cobj *o;
	struct slot *prev, *next;
};

struct ev {
	uint64_t seq;
	int64_t rev;
	char type;            /* 'A'dded, 'M'odified, 'D'eleted */
	struct cobj *obj;     /* new state (deleted: last state at the delete) */
	struct cobj *old;     /* previous state or NULL */
	char *line;           /* {"type":…,"object":…}\n, on first need */
	size_t len;
	char *tline;          /* the same as a one-row Table, on first need */
	size_t tlen;
};

/* The keys applied at one revision: one as a rule (a write is a revision),
 * a transaction's few; indexed by hash only past KEYSET_SCAN of them. It
 * owns its keys. Every event used to set and clear a json_t object. */
#define KEYSET_SCAN 8

struct keyset {
	char **v;
	size_t n, cap;
	struct kb_strmap ix;  /* every key, once n > KEYSET_SCAN */
};

static bool keyset_has(const struct keyset *k, const char *key)
{
	if (k->n > KEYSET_SCAN)
		return kb_strmap_get(&k->ix, key) != NULL;
	for (size_t i = 0; i < k->n; i++)
		if (strcmp(k->v[i], key) == 0)
			return true;
	return false;
}

/* Keeps `key`, which the set frees. False when out of memory: not kept. */
static bool keyset_add(struct keyset *k, char *key)
{
	if (k->n == k->cap) {
		size_t cap = k->cap ? 2 * k->cap : 4;
		char **v = realloc(k->v, cap * sizeof(*v));
		if (v == NULL)
			return false;
		k->v = v;
		k->cap = cap;
	}
	/* the index starts with the keys so far */
	for (size_t i = 0; k->n == KEYSET_SCAN && i < k->n; i++) {
		if (kb_strmap_put(&k->ix, k->v[i], k->v[i], NULL) != 0) {
			kb_strmap_clear(&k->ix, NULL);
			return false;
		}
	}
	if (k->n >= KEYSET_SCAN && kb_strmap_put(&k->ix, key, key, NULL) != 0) {
		if (k->n == KEYSET_SCAN)
			kb_strmap_clear(&k->ix, NULL);
		return false;
	}
	k->v[k->n++] = key;
	return true;
}

static void keyset_clear(struct keyset *k)
{
	for (size_t i = 0; i < k->n; i++)
		free(k->v[i]);
	if (k->n > KEYSET_SCAN)
		kb_strmap_clear(&k->ix, NULL);
	k->n = 0;
}

static void keyset_fini(struct keyset *k)
{
	keyset_clear(k);
	free(k->v);
	k->v = NULL;
	k->cap = 0;
}

struct api_cache {
	struct api_server *s;
	const struct api_resource *r;
	char *prefix;
	char topic[160];
	pthread_mutex_t mu;
	pthread_cond_t cv;
	struct kb_strmap objs; /* key -> struct slot: the current objects */
	struct slot *first, *last;
	/* rev, wrote_rev and lag_since_ns are written under mu, but also read
	 * (and wrote_rev raised) without it by api_cache_wrote */
	_Atomic int64_t rev;  /* the last revision applied */
	int64_t floor_rev;    /* events after this revision are all in the ring */
	struct ev *ring;
	size_t cap, head, count;
	uint64_t next_seq;    /* seq of the next event */
	int64_t watch_id;
	struct api_watcher *fns; /* callback watchers, but for: */
	struct kb_strmap by_node; /* spec.nodeName=… watchers by value (inext) */
	struct api_watcher *armed; /* streams an event loop waits on */
	atomic_int streams;   /* HTTP watchers open: decode before the lock */
	_Atomic int64_t wrote_rev; /* this server's newest write under prefix */
	struct keyset rev_keys; /* keys applied at revision `rev` */
	bool lost;            /* the store dropped the watch: watch again */
	int64_t lag_target;   /* a write of ours not yet seen as an event, */
	_Atomic int64_t lag_since_ns; /* since then (0: none) */
	int64_t retry_ns;     /* no re-watch before this */
	uint64_t resyncs;     /* watches re-established */
	bool resyncing;       /* the keeper is asking for a new watch */
	int64_t stale_id;     /* an old watch still publishing to us: end it */
	bool expires;         /* Events with a TTL: objects are stamped */
};

struct api_watcher {
	struct api_stream st;   /* first: the stream the HTTP layer reads */
	struct api_cache *c;
	uint64_t seq;           /* next event to look at */
	int64_t min_rev;        /* skip events at or below this revision */
	char *ns;
	char *name;             /* metadata.name=… fast path */
	struct api_selector *ls, *fs;
	bool table, bookmarks;
	bool filters;           /* ns, name or a selector: not every object */
	bool inc_full, inc_none; /* includeObject=Object / None on a Table */
	int64_t deadline_ns, bookmark_ns;
	/* lines to send before the ring: initial ADDED events, errors */
	char **queue;
	size_t nq, iq;
	char *part;             /* a line being copied out */
	size_t plen, poff;
	bool end_after_queue;
	/* callback mode */
	api_event_fn fn;
	void *arg;
	struct api_watcher *next;
	/* on c->by_node under ix (its field selector's spec.nodeName value)
	 * rather than on c->fns */
	const char *ix;
	struct api_watcher *inext;
	/* armed (watch_arm): on c->armed until the next event */
	void (*wake)(void *);
	void *wake_arg;
	struct api_watcher *anext, **aprev;
};

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* --- objects ------------------------------------------------------------------ */

/* Takes mp and j (may be NULL; else decoding mp gives it). */
static struct cobj *cobj_new(char *mp, size_t len, json_t *j)
{
	struct cobj *o = mp ? malloc(sizeof(*o)) : NULL;
	if (o == NULL) {
		free(mp);
		json_decref(j);
		return NULL;
	}
	*o = (struct cobj){ .refs = 1, .len = len, .mp = mp, .j = j };
	return o;
}

/* From a json_t (a list's item): takes j. */
static struct cobj *cobj_of_json(json_t *j)
{
	char *mp = NULL;
	size_t len = 0;
	if (j == NULL || api_mp_encode(j, &mp, &len) != 0) {
		json_decref(j);
		return NULL;
	}
	return cobj_new(mp, len, j);
}

static struct cobj *cobj_ref(struct cobj *o)
{
	if (o)
		o->refs++;
	return o;
}

static void cobj_unref(struct cobj *o)
{
	if (o == NULL || --o->refs)
		return;
	free(o->mp);
	json_decref(o->j);
	free(o->memo);
	free(o);
}

/* o's json_t, decoded once (NULL when out of memory). */
static const json_t *cobj_tree(struct cobj *o)
{
	if (o && o->j == NULL)
		o->j = api_mp_decode(o->mp, o->len);
	return o ? o->j : NULL;
}

/* o at revision rev (a delete's last state): the version spliced in its
 * bytes; the tree's way when they have none. */
static struct cobj *cobj_at_rev(struct cobj *o, int64_t rev)
{
	char *mp = NULL;
	size_t len = 0;
	if (api_mp_set_rv(o->mp, o->len, rev, &mp, &len) == 0)
		return cobj_new(mp, len, NULL);
	const json_t *t = cobj_tree(o);
	json_t *copy = t ? json_deep_copy(t) : NULL;
	if (copy == NULL)
		return NULL;
	char rv[24];
	api_set(copy, "metadata.resourceVersion", json_string(api_u64_text((uint64_t)rev, rv)));
	return cobj_of_json(copy);
}

/* o stamped with its Event's last write, when c's objects expire: the
 * time the store's event brings it, or for a listed one (`listed`) the
 * newest time it shows when that is earlier (evttl.c). */
static struct cobj *stamped(const struct api_cache *c, struct cobj *o,
    bool listed)
{
	if (o && c->expires) {
		int64_t now = api_wall_ms(),
			t = listed ? api_event_written_ms(c->r, o->mp, o->len) :
				     0;
		o->written = t > 0 && t < now ? t : now;
	}
	return o;
}

/* --- the map ------------------------------------------------------------------- */

static struct slot *map_get(struct api_cache *c, const char *key)
{
	return kb_strmap_get(&c->objs, key);
}

/* Set key's object (taking o); false when out of memory (o dropped). */
static bool map_set(struct api_cache *c, const char *key, struct cobj *o)
{
	struct slot *sl = map_get(c, key);
	if (sl) {
		cobj_unref(sl->o);
		sl->o = o;
		return true;
	}
	sl = calloc(1, sizeof(*sl));
	if (sl == NULL || (sl->key = strdup(key)) == NULL ||
	    kb_strmap_put(&c->objs, key, sl, NULL) != 0) {
		if (sl)
			free(sl->key);
		free(sl);
		cobj_unref(o);
		return false;
	}
	sl->o = o;
	sl->prev = c->last;
	if (c->last)
		c->last->next = sl;
	else
		c->first = sl;
	c->last = sl;
	return true;
}

static void map_del(struct api_cache *c, struct slot *sl)
{
	kb_strmap_del(&c->objs, sl->key);
	if (sl->prev)
		sl->prev->next = sl->next;
	else
		c->first = sl->next;
	if (sl->next)
		sl->next->prev = sl->prev;
	else
		c->last = sl->prev;
	cobj_unref(sl->o);
	free(sl->key);
	free(sl);
}

/* --- encoding ---------------------------------------------------------------- */

static char *event_line(const char *type, const json_t *obj, size_t *len)
{
	json_t *ev = json_pack("{s:s, s:O}", "type", type, "object", obj);
	char *text = ev ? api_json_text(ev, len) : NULL;
	json_decref(ev);
	if (text == NULL)
		return NULL;
	char *line = realloc(text, *len + 2);
	if (line == NULL) {
		free(text);
		return NULL;
	}
	line[(*len)++] = '\n';
	line[*len] = '\0';
	return line;
}

static const char *type_name(char t)
{
	return t == 'A' ? "ADDED" : t == 'M' ? "MODIFIED" : "DELETED";
}

static char *table_line_inc(struct api_cache *c, const char *type, const json_t *obj,
    bool full, bool none, size_t *len)
{
	json_t *items = json_array();
	json_array_append(items, (json_t *)obj);
	json_t *t = api_table(c->r, items, api_get_str(obj, "metadata.resourceVersion"), NULL, full);
	if (t && none) {
		size_t i;
		json_t *row;
		json_array_foreach(json_object_get(t, "rows"), i, row)
			json_object_del(row, "object");
	}
	char *line = t ? event_line(type, t, len) : NULL;
	json_decref(t);
	json_decref(items);
	return line;
}

/* The Table line with PartialObjectMetadata, as kubectl asks by default. */
static char *table_line(struct api_cache *c, const char *type, const json_t *obj, size_t *len)
{
	return table_line_inc(c, type, obj, false, false, len);
}

/* The Table line as watcher w asked for it. */
static char *w_table_line(const struct api_watcher *w, const char *type, const json_t *obj,
    size_t *len)
{
	return table_line_inc(w->c, type, obj, w->inc_full, w->inc_none, len);
}

/* --- the ring ------------------------------------------------------------------ */

static void ev_clear(struct ev *e)
{
	cobj_unref(e->obj);
	cobj_unref(e->old);
	free(e->line);
	free(e->tline);
	memset(e, 0, sizeof(*e));
}

static struct ev *ring_at(struct api_cache *c, size_t i)
{
	return &c->ring[(c->head + i) % c->cap];
}

/* Index of the first event with seq >= seq, or count. */
static size_t ring_find_seq(struct api_cache *c, uint64_t seq)
{
	if (c->count == 0)
		return 0;
	uint64_t first = ring_at(c, 0)->seq;
	if (seq <= first)
		return 0;
	size_t i = (size_t)(seq - first);
	return i > c->count ? c->count : i;
}

/* Takes obj and old. */
/* Under c->mu: news for every watcher, waiting in a thread or armed. */
static void wake_all(struct api_cache *c)
{
	pthread_cond_broadcast(&c->cv);
	while (c->armed) {
		struct api_watcher *w = c->armed;
		c->armed = w->anext;
		w->anext = NULL;
		w->aprev = NULL;
		w->wake(w->wake_arg);
	}
}

static void disarm(struct api_watcher *w)
{
	if (w->aprev == NULL)
		return;
	*w->aprev = w->anext;
	if (w->anext)
		w->anext->aprev = w->aprev;
	w->anext = NULL;
	w->aprev = NULL;
}

static void ring_push(struct api_cache *c, char type, struct cobj *obj, struct cobj *old,
    int64_t rev)
{
	if (c->count == c->cap) {
		struct ev *e = ring_at(c, 0);
		if (e->rev > c->floor_rev)
			c->floor_rev = e->rev;
		ev_clear(e);
		c->head = (c->head + 1) % c->cap;
		c->count--;
	}
	struct ev *e = ring_at(c, c->count++);
	e->seq = c->next_seq++;
	e->rev = rev;
	e->type = type;
	e->obj = obj;
	e->old = old;
}

/* --- filtering -------------------------------------------------------------------- */

/* On the object's msgpack: no watcher needs its json_t to choose. The
 * paths watchers read are found once per object (its memo): a hundred
 * kubelets' spec.nodeName selectors skip the metadata once. */
static bool matches(const struct api_watcher *w, struct cobj *o)
{
	if (o == NULL)
		return false;
	if (!w->filters)
		return true;
	if (o->memo == NULL)
		o->memo = calloc(1, sizeof(*o->memo)); /* NULL: no memo */
	if (w->ns && !api_mp_str_is(o->mp, o->len, "metadata.namespace", w->ns, o->memo))
		return false;
	if (w->name && !api_mp_str_is(o->mp, o->len, "metadata.name", w->name, o->memo))
		return false;
	return api_selector_match_mp(w->ls, o->mp, o->len, o->memo) &&
	    api_selector_match_mp(w->fs, o->mp, o->len, o->memo);
}

/* The type this watcher sees for e ('\0': none), as Kubernetes filters:
 * leaving the selection is a delete, entering it an add. */
static char seen_type(const struct api_watcher *w, const struct ev *e)
{
	bool now = matches(w, e->obj);
	bool before = e->old && matches(w, e->old);
	switch (e->type) {
	case 'A': return now ? 'A' : 0;
	case 'D': return now ? 'D' : 0;
	default:
		if (now && before)
			return 'M';
		if (now)
			return 'A';
		return before ? 'D' : 0;
	}
}

/* --- applying store events ------------------------------------------------------- */

/* The event for a callback watcher: the object's bytes, shared by all. */
static struct api_event fn_event(const struct ev *e, char t)
{
	return (struct api_event){
		.type = type_name(t), .rev = e->rev, .obj_mp = e->obj->mp, .obj_mp_len = e->obj->len,
	};
}

/* Callback watchers that select pods by spec.nodeName=… (every kubelet)
 * are indexed by that value: an event reaches the watchers of its new and
 * old state's node, not a hundred selectors that refuse it. */
#define IX_PATH "spec.nodeName"
#define IX_MAX 256

static void notify_fn(struct api_watcher *w, const struct ev *e)
{
	if (e->rev <= w->min_rev)
		return;
	char t = seen_type(w, e);
	if (t == 0)
		return;
	struct api_event ev = fn_event(e, t);
	w->fn(w->arg, &ev);
}

/* o's IX_PATH value into buf; false when o is NULL or it is too long for
 * any indexed watcher's value. */
static bool ix_value(struct cobj *o, char buf[IX_MAX])
{
	if (o == NULL)
		return false;
	if (o->memo == NULL)
		o->memo = calloc(1, sizeof(*o->memo)); /* NULL: no memo */
	return api_mp_field(o->mp, o->len, IX_PATH, o->memo, buf, IX_MAX);
}

static void notify_fns(struct api_cache *c, const struct ev *e)
{
	for (struct api_watcher *w = c->fns; w; w = w->next)
		notify_fn(w, e);
	if (c->by_node.n == 0)
		return;
	char now[IX_MAX], was[IX_MAX];
	bool has_now = ix_value(e->obj, now);
	if (has_now)
		for (struct api_watcher *w = kb_strmap_get(&c->by_node, now); w; w = w->inext)
			notify_fn(w, e);
	if (ix_value(e->old, was) && !(has_now && !strcmp(now, was)))
		for (struct api_watcher *w = kb_strmap_get(&c->by_node, was); w; w = w->inext)
			notify_fn(w, e);
}

/* w on c->by_node if it selects by IX_PATH, else on c->fns. */
static void fns_add(struct api_cache *c, struct api_watcher *w)
{
	const char *v = api_selector_eq(w->fs, IX_PATH);
	if (v && strlen(v) < IX_MAX) {
		w->inext = kb_strmap_get(&c->by_node, v);
		if (kb_strmap_put(&c->by_node, v, w, NULL) == 0) {
			w->ix = v;
			return;
		}
	}
	w->next = c->fns;
	c->fns = w;
}

static void fns_del(struct api_cache *c, struct api_watcher *w)
{
	if (w->ix == NULL) {
		for (struct api_watcher **pp = &c->fns; *pp; pp = &(*pp)->next) {
			if (*pp == w) {
				*pp = w->next;
				break;
			}
		}
		return;
	}
	struct api_watcher *head = kb_strmap_get(&c->by_node, w->ix);
	if (head == w) {
		if (w->inext)
			kb_strmap_put(&c->by_node, w->ix, w->inext, NULL); /* replaces */
		else
			kb_strmap_del(&c->by_node, w->ix);
		return;
	}
	for (struct api_watcher *p = head; p; p = p->inext) {
		if (p->inext == w) {
			p->inext = w->inext;
			break;
		}
	}
}

/* An event's object, before the cache's lock is taken (NULL for a delete
 * or an undecodable value): the stored bytes with the resourceVersion
 * spliced in, decoded only when they are not as api_mp_encode writes or
 * when `tree` (HTTP watchers will format it: decoded here rather than by
 * the first of them under the lock). */
static struct cobj *event_object(const msgpack_object *ev, bool tree)
{
	if (kb_mp_streq(ev, "type", "delete"))
		return NULL;
	const msgpack_object *kv = kb_mp_key(ev, "kv");
	const msgpack_object *v = kb_mp_key(kv, "value");
	int64_t rev = 0;
	kb_mp_int(kv, "mod_rev", &rev);
	char *mp = NULL;
	size_t len = 0;
	if (v && (v->type == MSGPACK_OBJECT_BIN || v->type == MSGPACK_OBJECT_STR) &&
	    api_mp_with_rv(v->via.bin.ptr, v->via.bin.size, rev, &mp, &len) == 0) {
		struct cobj *o = cobj_new(mp, len, tree ? api_mp_decode(mp, len) : NULL);
		if (o) {
			o->stored = true;
			o->rev = rev;
		}
		return o;
	}
	return cobj_of_json(api_store_kv_object(kv, NULL));
}

/* Apply one store event; pre is event_object(ev), taken. */
static void apply_one(struct api_cache *c, const msgpack_object *ev, struct cobj *pre)
{
	const msgpack_object *kv = kb_mp_key(ev, "kv");
	char *key = kb_mp_strdup(kv, "key");
	int64_t rev = 0;
	if (key == NULL) {
		cobj_unref(pre);
		return;
	}
	kb_mp_int(kv, "mod_rev", &rev);
	/* Seen already (an old and a new watch overlap after a re-watch):
	 * a revision writes each key at most once. */
	if (rev < c->rev || (rev == c->rev && keyset_has(&c->rev_keys, key))) {
		cobj_unref(pre);
		free(key);
		return;
	}
	if (rev > c->rev) {
		keyset_clear(&c->rev_keys);
		c->rev = rev;
	}
	/* the set keeps the key from here on, unless out of memory */
	char *own = keyset_add(&c->rev_keys, key) ? NULL : key;
	struct slot *sl = map_get(c, key);
	struct cobj *old = sl ? cobj_ref(sl->o) : NULL;
	char type;
	struct cobj *obj;
	if (kb_mp_streq(ev, "type", "delete")) {
		cobj_unref(pre);
		if (old == NULL) {
			free(own);
			return; /* never knew it */
		}
		obj = cobj_at_rev(old, rev);
		map_del(c, sl);
		type = 'D';
	} else {
		obj = pre;
		if (obj && !map_set(c, key, cobj_ref(obj))) {
			cobj_unref(obj);
			obj = NULL;
		}
		type = old ? 'M' : 'A';
	}
	if (obj == NULL) {
		cobj_unref(old);
		free(own);
		return;
	}
	ring_push(c, type, obj, old, rev);
	notify_fns(c, ring_at(c, c->count - 1));
	free(own);
}

/* Under c->mu: the lag timer for this server's writes not seen yet, if
 * any. Cleared before wrote_rev is read, as api_cache_wrote raises
 * wrote_rev before it reads the timer: one of the two sees the other's
 * write (both seq_cst), so no write of ours is left without a timer. */
static void lag_rearm(struct api_cache *c)
{
	atomic_store(&c->lag_since_ns, 0);
	int64_t w = atomic_load(&c->wrote_rev);
	c->lag_target = w;
	if (w > c->rev)
		atomic_store(&c->lag_since_ns, mono_ns());
}

/* A store event reaches its cache through the resource's feed, never a
 * pointer to the cache: when kb_unsubscribe returns, the bus may still run
 * a publication it had queued (or be running one), so a cache is taken out
 * of its feed under the feed's lock before it is freed, and the feeds last
 * until api_cache_fini, after the plugin's endpoint has closed. */
struct api_cache_feed {
	pthread_mutex_t mu;
	struct api_cache *c;
};

static void feed_set(struct api_cache_feed *f, struct api_cache *c)
{
	pthread_mutex_lock(&f->mu);
	f->c = c;
	pthread_mutex_unlock(&f->mu);
}

static void cache_event(struct api_cache *c, const kb_msg *m);

static void on_store_event(void *arg, const kb_msg *m)
{
	struct api_cache_feed *f = arg;
	pthread_mutex_lock(&f->mu);
	if (f->c)
		cache_event(f->c, m);
	pthread_mutex_unlock(&f->mu);
}

static void cache_event(struct api_cache *c, const kb_msg *m)
{
	const msgpack_object *b = kb_msg_body(m);
	const msgpack_object *evs = kb_mp_key(b, "events");
	int64_t wid = -1;
	kb_mp_int(b, "watch_id", &wid);
	/* The objects' bytes are made before the lock, which writers
	 * (api_cache_wrote) and readers wait on. */
	uint32_t nev = evs && evs->type == MSGPACK_OBJECT_ARRAY ? evs->via.array.size : 0;
	struct cobj *one, **pre = nev > 1 ? calloc(nev, sizeof(*pre)) : &one;
	if (pre == NULL)
		nev = 0; /* out of memory: made under the lock below */
	bool trees = atomic_load(&c->streams) > 0;
	for (uint32_t i = 0; i < nev; i++)
		pre[i] = stamped(c, event_object(&evs->via.array.ptr[i], trees),
		    false);
	pthread_mutex_lock(&c->mu);
	/* A replaced watch that still publishes on our topic is ours for
	 * sure (watch ids repeat after a store restart; topics do not): the
	 * keeper ends it. */
	if (evs && wid > 0 && c->watch_id > 0 && wid != c->watch_id && !c->resyncing)
		c->stale_id = wid;
	if (kb_mp_get(b, "error") && wid == c->watch_id && !c->lost) {
		/* The store dropped our watch: the keeper watches again from
		 * c->rev; watchers keep waiting meanwhile. (An error of a
		 * watch we have replaced already is old news.) */
		c->lost = true; /* the keeper looks every KEEPER_TICK_MS */
		kb_info(c->s->ctx, "store dropped the watch; watching again", "resource=%s rev=%" PRId64,
		    c->r->plural, c->rev);
	}
	for (uint32_t i = 0; evs && evs->type == MSGPACK_OBJECT_ARRAY && i < evs->via.array.size; i++)
		apply_one(c, &evs->via.array.ptr[i],
		    i < nev ?
			pre[i] :
			stamped(c, event_object(&evs->via.array.ptr[i], false),
			    false));
	if (c->lag_since_ns && c->rev >= c->lag_target)
		lag_rearm(c);
	wake_all(c);
	pthread_mutex_unlock(&c->mu);
	if (pre != &one)
		free(pre);
}

/* --- starting a cache ------------------------------------------------------------------ */

static size_t res_index(const struct api_resource *r)
{
	return (size_t)(r - api_resources);
}

static void cache_free(struct api_cache *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; c->ring && i < c->count; i++)
		ev_clear(ring_at(c, i));
	free(c->ring);
	while (c->first)
		map_del(c, c->first);
	kb_strmap_clear(&c->objs, NULL);
	kb_strmap_clear(&c->by_node, NULL);
	keyset_fini(&c->rev_keys);
	free(c->prefix);
	pthread_mutex_destroy(&c->mu);
	pthread_cond_destroy(&c->cv);
	free(c);
}

/* Ask the store to publish c's prefix from revision `from` on c->topic. */
static int store_watch(struct api_cache *c, int64_t from, int64_t *id)
{
	kb_msg *rep = NULL;
	int rc = kb_call(c->s->ctx, KB_STORE_SERVICE, "watch",
	    kb_mp_body("{s:s, s:I, s:b, s:s}", "prefix", c->prefix, "rev", from, "prev", 1,
	        "topic", c->topic),
	    (int)c->s->request_timeout_ms, &rep);
	if (rc == 0 && !kb_mp_int(kb_msg_body(rep), "watch_id", id))
		rc = KB_EPROTO;
	kb_msg_free(rep);
	return rc;
}

static struct api_cache *cache_start(struct api_server *s, const struct api_resource *r,
    struct api_error *e)
{
	struct api_cache *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->s = s;
	c->r = r;
	c->prefix = api_key(r, NULL, NULL);
	c->cap = s->watch_buffer > 0 ? (size_t)s->watch_buffer : DEFAULT_RING;
	c->ring = calloc(c->cap, sizeof(*c->ring));
	c->next_seq = 1;
	c->expires = s->event_ttl_ms > 0 && api_event_expires(r);
	pthread_mutex_init(&c->mu, NULL);
	pthread_cond_init(&c->cv, NULL);
	snprintf(c->topic, sizeof(c->topic), "store/watch/%s/%zu", kb_instance(s->ctx), res_index(r));
	struct api_cache_feed *f = &s->cache_feeds[res_index(r)];
	feed_set(f, c);
	if (c->ring == NULL || c->prefix == NULL ||
	    kb_subscribe(s->ctx, c->topic, on_store_event, f) != 0) {
		api_err(e, 500, "InternalError", "cannot watch the store for %s", r->plural);
		feed_set(f, NULL);
		cache_free(c);
		return NULL;
	}
	json_t *items = NULL;
	int64_t rev = 0;
	if (api_store_list(s, c->prefix, 0, NULL, 0, &items, &rev, NULL, NULL, e) != 0)
		goto fail;
	/* Fill the map before the watch starts: events queue behind our lock. */
	pthread_mutex_lock(&c->mu);
	size_t i;
	json_t *o;
	json_array_foreach(items, i, o) {
		char *key = api_key(r, api_get_str(o, "metadata.namespace"), api_get_str(o, "metadata.name"));
		struct cobj *co =
		    key ? stamped(c, cobj_of_json(json_incref(o)), true) : NULL;
		if (co) {
			/* kept as bytes only: trees are made when asked for */
			json_decref(co->j);
			co->j = NULL;
			map_set(c, key, co);
		}
		free(key);
	}
	json_decref(items);
	c->rev = c->floor_rev = rev;
	pthread_mutex_unlock(&c->mu);
	int64_t id = 0;
	int rc = store_watch(c, rev + 1, &id);
	pthread_mutex_lock(&c->mu);
	c->watch_id = id;
	pthread_mutex_unlock(&c->mu);
	if (rc) {
		api_err_from_kb(e, rc, "cannot watch the store");
		goto fail;
	}
	return c;
fail:
	kb_unsubscribe(s->ctx, c->topic);
	feed_set(f, NULL);
	cache_free(c);
	return NULL;
}

static struct api_cache *cache_get(struct api_server *s, const struct api_resource *r,
    struct api_error *e)
{
	pthread_mutex_lock(&s->cache_mu);
	if (s->cache_feeds == NULL && (s->cache_feeds = calloc(api_nresources,
	                                   sizeof(*s->cache_feeds))) != NULL)
		for (size_t i = 0; i < api_nresources; i++)
			pthread_mutex_init(&s->cache_feeds[i].mu, NULL);
	if (s->caches == NULL && s->cache_feeds)
		s->caches = calloc(api_nresources, sizeof(*s->caches));
	struct api_cache *c = s->caches ? s->caches[res_index(r)] : NULL;
	if (c == NULL && s->caches) {
		c = cache_start(s, r, e);
		s->caches[res_index(r)] = c;
	}
	pthread_mutex_unlock(&s->cache_mu);
	return c;
}

/* --- keeping the store watch -------------------------------------------------------- */

/* The store has compacted past c->rev: list what is there now and turn the
 * difference to the cache's map into events at the list's revision, so
 * watchers see the state they missed as Kubernetes' relisting informer
 * would. History before that revision is gone: older watches get 410. */
static int relist(struct api_cache *c, int64_t *at)
{
	struct api_error e = { 0 };
	json_t *items = NULL;
	int64_t rev = 0;
	int rc = api_store_list(c->s, c->prefix, 0, NULL, 0, &items, &rev, NULL, NULL, &e);
	api_err_clear(&e);
	if (rc)
		return rc;
	json_t *seen = json_object();
	pthread_mutex_lock(&c->mu);
	size_t i;
	json_t *o;
	json_array_foreach(items, i, o) {
		char *key = api_key(c->r, api_get_str(o, "metadata.namespace"),
		    api_get_str(o, "metadata.name"));
		if (key == NULL)
			continue;
		json_object_set_new(seen, key, json_true());
		struct slot *sl = map_get(c, key);
		struct cobj *old = sl ? sl->o : NULL;
		size_t wl = 0;
		const char *was = old ? api_mp_str(old->mp, old->len, "metadata.resourceVersion", &wl) : NULL;
		const char *now = api_get_str(o, "metadata.resourceVersion");
		if (old == NULL || !was || !now || strlen(now) != wl || memcmp(was, now, wl)) {
			struct cobj *co =
			    stamped(c, cobj_of_json(json_incref(o)), true);
			cobj_ref(old);
			if (co && map_set(c, key, cobj_ref(co))) {
				ring_push(c, old ? 'M' : 'A', co, old, rev);
				notify_fns(c, ring_at(c, c->count - 1));
			} else {
				cobj_unref(co);
				cobj_unref(old);
			}
		}
		free(key);
	}
	for (struct slot *sl = c->first, *next; sl; sl = next) {
		next = sl->next;
		if (json_object_get(seen, sl->key))
			continue;
		struct cobj *gone = cobj_at_rev(sl->o, rev);
		struct cobj *old = cobj_ref(sl->o);
		map_del(c, sl);
		if (gone) {
			ring_push(c, 'D', gone, old, rev);
			notify_fns(c, ring_at(c, c->count - 1));
		} else {
			cobj_unref(old);
		}
	}
	if (rev > c->rev)
		c->rev = rev;
	if (rev > c->floor_rev)
		c->floor_rev = rev;
	keyset_clear(&c->rev_keys);
	wake_all(c);
	pthread_mutex_unlock(&c->mu);
	json_decref(seen);
	json_decref(items);
	*at = rev;
	return 0;
}

/* Watch again from the last revision applied (keeper thread). */
static void resync(struct api_cache *c)
{
	struct api_server *s = c->s;
	pthread_mutex_lock(&c->mu);
	int64_t from = c->rev + 1;
	bool was_lost = c->lost;
	c->resyncing = true;
	pthread_mutex_unlock(&c->mu);
	int64_t id = 0, at = 0;
	bool relisted = false;
	int rc = store_watch(c, from, &id);
	if (rc == KB_EEXPIRED) {
		rc = relist(c, &at);
		relisted = rc == 0;
		if (rc == 0)
			rc = store_watch(c, at + 1, &id);
	}
	pthread_mutex_lock(&c->mu);
	c->resyncing = false;
	if (rc) {
		c->lost = true;
		c->retry_ns = mono_ns() + RETRY_NS;
	} else {
		c->watch_id = id;
		c->lost = false;
		c->resyncs++;
		/* Re-armed by the next write of ours that does not come back. */
		lag_rearm(c);
	}
	pthread_mutex_unlock(&c->mu);
	if (rc) {
		kb_warn(s->ctx, "cannot watch the store again; retrying", "resource=%s rev=%" PRId64 " err=%s",
		    c->r->plural, from, kb_strerror(rc));
		return;
	}
	kb_info(s->ctx, "store watch re-established", "resource=%s from_rev=%" PRId64 " relisted=%s why=%s",
	    c->r->plural, relisted ? at + 1 : from, relisted ? "true" : "false",
	    was_lost ? "dropped" : "events-missing");
}

/* End a replaced watch that turned out to be alive (keeper thread). */
static void end_stale(struct api_cache *c)
{
	pthread_mutex_lock(&c->mu);
	int64_t id = c->stale_id;
	c->stale_id = 0;
	pthread_mutex_unlock(&c->mu);
	if (id == 0)
		return;
	kb_msg *rep = NULL;
	kb_call(c->s->ctx, KB_STORE_SERVICE, "unwatch", kb_mp_body("{s:I}", "watch_id", id), 1000,
	    &rep);
	kb_msg_free(rep);
	kb_info(c->s->ctx, "ended a replaced store watch", "resource=%s watch_id=%" PRId64,
	    c->r->plural, id);
}

static bool needs_resync(struct api_cache *c, int64_t now)
{
	pthread_mutex_lock(&c->mu);
	bool due = now >= c->retry_ns &&
	    (c->lost || (c->lag_since_ns && now - c->lag_since_ns >= LOST_AFTER_NS));
	if (due && !c->lost)
		kb_warn(c->s->ctx, "a write has not come back from the store's watch; watching again",
		    "resource=%s rev=%" PRId64 " waiting_for=%" PRId64, c->r->plural, c->rev, c->lag_target);
	pthread_mutex_unlock(&c->mu);
	return due;
}

static void *keeper_main(void *arg)
{
	struct api_server *s = arg;
	struct api_cache **snap = calloc(api_nresources, sizeof(*snap));
	pthread_mutex_lock(&s->cache_mu);
	while (!s->keeper_stop && snap) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += KEEPER_TICK_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&s->keeper_cv, &s->cache_mu, &ts);
		if (s->keeper_stop || s->caches == NULL)
			continue;
		memcpy(snap, s->caches, api_nresources * sizeof(*snap));
		pthread_mutex_unlock(&s->cache_mu);
		/* Caches are freed only after this thread is joined. */
		int64_t now = mono_ns();
		for (size_t i = 0; i < api_nresources && !s->stopping; i++) {
			if (snap[i] && needs_resync(snap[i], now))
				resync(snap[i]);
			if (snap[i])
				end_stale(snap[i]);
		}
		api_evttl_tick(s);
		pthread_mutex_lock(&s->cache_mu);
	}
	pthread_mutex_unlock(&s->cache_mu);
	api_evttl_drain(s);
	free(snap);
	return NULL;
}

uint64_t api_cache_resyncs(struct api_server *s, size_t i)
{
	pthread_mutex_lock(&s->cache_mu);
	struct api_cache *c = s->caches && i < api_nresources ? s->caches[i] : NULL;
	pthread_mutex_unlock(&s->cache_mu);
	if (c == NULL)
		return 0;
	pthread_mutex_lock(&c->mu);
	uint64_t n = c->resyncs;
	pthread_mutex_unlock(&c->mu);
	return n;
}

int api_cache_start_all(struct api_server *s, struct api_error *e)
{
	/* Warm every cache at start: a client's resourceVersion from any read
	 * after this moment can then be watched from without a 410. */
	for (size_t i = 0; i < api_nresources; i++)
		if (!api_resources[i].virtual_ && cache_get(s, &api_resources[i], e) == NULL)
			return KB_EUNAVAILABLE;
	pthread_cond_init(&s->keeper_cv, NULL);
	s->keeper_stop = false;
	if (pthread_create(&s->cache_keeper, NULL, keeper_main, s) != 0) {
		pthread_cond_destroy(&s->keeper_cv);
		api_err(e, 500, "InternalError", "cannot start the watch cache keeper");
		return KB_ESYS;
	}
	s->keeper_on = true;
	return 0;
}

void api_cache_stop_all(struct api_server *s)
{
	if (s->keeper_on) {
		pthread_mutex_lock(&s->cache_mu);
		s->keeper_stop = true;
		pthread_cond_broadcast(&s->keeper_cv);
		pthread_mutex_unlock(&s->cache_mu);
		pthread_join(s->cache_keeper, NULL);
		pthread_cond_destroy(&s->keeper_cv);
		s->keeper_on = false;
	}
	pthread_mutex_lock(&s->cache_mu);
	for (size_t i = 0; s->caches && i < api_nresources; i++) {
		struct api_cache *c = s->caches[i];
		if (c == NULL)
			continue;
		kb_unsubscribe(s->ctx, c->topic);
		kb_msg *rep = NULL;
		kb_call(s->ctx, KB_STORE_SERVICE, "unwatch",
		    kb_mp_body("{s:I}", "watch_id", c->watch_id), 1000, &rep);
		kb_msg_free(rep);
		/* Streams still open keep reading; they end at their deadline.
		 * The plugin stops HTTP first, so none are left here. */
		feed_set(&s->cache_feeds[i], NULL);
		cache_free(c);
		s->caches[i] = NULL;
	}
	free(s->caches);
	s->caches = NULL;
	pthread_mutex_unlock(&s->cache_mu);
}

void api_cache_fini(struct api_server *s)
{
	for (size_t i = 0; s->cache_feeds && i < api_nresources; i++)
		pthread_mutex_destroy(&s->cache_feeds[i].mu);
	free(s->cache_feeds);
	s->cache_feeds = NULL;
}

void api_cache_wrote(struct api_server *s, const char *key, int64_t rev)
{
	struct api_cache *hit[4];
	size_t n = 0;
	pthread_mutex_lock(&s->cache_mu);
	for (size_t i = 0; s->caches && i < api_nresources && n < 4; i++) {
		struct api_cache *c = s->caches[i];
		if (c && !strncmp(key, c->prefix, strlen(c->prefix)))
			hit[n++] = c;
	}
	pthread_mutex_unlock(&s->cache_mu);
	for (size_t i = 0; i < n; i++) {
		struct api_cache *c = hit[i];
		int64_t w = atomic_load(&c->wrote_rev);
		while (rev > w && !atomic_compare_exchange_weak(&c->wrote_rev, &w, rev))
			;
		/* Nothing to start when a timer runs (lag_rearm starts the next
		 * one from wrote_rev) or the event is in already: the usual
		 * case under load, without the lock event delivery holds. */
		if (atomic_load(&c->lag_since_ns) != 0 || rev <= atomic_load(&c->rev))
			continue;
		pthread_mutex_lock(&c->mu);
		if (rev > c->rev && c->lag_since_ns == 0) {
			c->lag_target = rev;
			c->lag_since_ns = mono_ns();
		}
		pthread_mutex_unlock(&c->mu);
	}
}

int api_cache_peek(struct api_server *s, const struct api_resource *r,
    const char *key, bool *deleting)
{
	struct api_error e = { 0 };
	struct api_cache *c = cache_get(s, r, &e);
	api_err_clear(&e);
	if (c == NULL)
		return 0;
	int found = 0;
	int64_t until = mono_ns() + 1000000000;
	pthread_mutex_lock(&c->mu);
	/* Not before the cache has seen what this server wrote: a client that
	 * deleted a namespace must not create in it a moment later. */
	bool waited = false;
	while (c->rev < c->wrote_rev && !c->lost && !s->stopping &&
	    mono_ns() < until) {
		if (!waited) {
			/* not under the cache's lock: its writers take it */
			pthread_mutex_unlock(&c->mu);
			api_bus_blocking(true);
			waited = true;
			pthread_mutex_lock(&c->mu);
			continue;
		}
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 10 * 1000000;
		if (ts.tv_nsec >= 1000000000) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000;
		}
		pthread_cond_timedwait(&c->cv, &c->mu, &ts);
	}
	struct slot *sl = c->rev >= c->wrote_rev && !c->lost ? map_get(c, key) : NULL;
	if (sl) {
		found = 1;
		*deleting = api_mp_has(sl->o->mp, sl->o->len, "metadata.deletionTimestamp");
	}
	pthread_mutex_unlock(&c->mu);
	if (waited)
		api_bus_blocking(false);
	return found;
}

int api_cache_stored(struct api_server *s, const struct api_resource *r,
    const char *key, char **mp, size_t *len, int64_t *rev)
{
	struct api_cache *c = NULL;
	*mp = NULL;
	/* Only a cache that runs already: not worth starting one for this. */
	pthread_mutex_lock(&s->cache_mu);
	if (s->caches)
		c = s->caches[res_index(r)];
	pthread_mutex_unlock(&s->cache_mu);
	if (c == NULL)
		return KB_ENOTFOUND;
	int rc = KB_ENOTFOUND;
	pthread_mutex_lock(&c->mu);
	struct slot *sl = c->lost ? NULL : map_get(c, key);
	if (sl && sl->o->stored) {
		rc = KB_ENOMEM;
		if ((*mp = malloc(sl->o->len)) != NULL) {
			memcpy(*mp, sl->o->mp, sl->o->len);
			*len = sl->o->len;
			*rev = sl->o->rev;
			rc = 0;
		}
	}
	pthread_mutex_unlock(&c->mu);
	return rc;
}

size_t api_cache_expired(struct api_server *s, const struct api_resource *r,
    int64_t before, struct api_expired *out, size_t max)
{
	struct api_cache *c = NULL;
	pthread_mutex_lock(&s->cache_mu);
	if (s->caches)
		c = s->caches[res_index(r)];
	pthread_mutex_unlock(&s->cache_mu);
	if (c == NULL || !c->expires)
		return 0;
	size_t n = 0;
	/* A number per object under the lock: the stamps were read before
	 * it, as the objects came. */
	pthread_mutex_lock(&c->mu);
	for (struct slot *sl = c->first; sl && n < max; sl = sl->next) {
		struct cobj *o = sl->o;
		if (o->written == 0 || o->written > before)
			continue;
		int64_t rev = o->stored ? o->rev : 0;
		size_t rl = 0;
		const char *rv = rev ?
		    NULL :
		    api_mp_str(o->mp, o->len, "metadata.resourceVersion", &rl);
		if (rv && rl < 24) {
			char buf[24];
			memcpy(buf, rv, rl);
			buf[rl] = '\0';
			rev = strtoll(buf, NULL, 10);
		}
		if (rev <= 0 || (out[n].key = strdup(sl->key)) == NULL)
			continue;
		out[n++].rev = rev;
	}
	pthread_mutex_unlock(&c->mu);
	return n;
}

static int slot_cmp(const void *a, const void *b)
{
	return strcmp((*(struct slot *const *)a)->key, (*(struct slot *const *)b)->key);
}

int api_cache_list(struct api_server *s, const struct api_resource *r, const char *ns,
    json_t **items, int64_t *rev, struct api_error *e)
{
	struct api_cache *c = cache_get(s, r, e);
	if (c == NULL)
		return KB_EUNAVAILABLE;
	json_t *arr = json_array();
	pthread_mutex_lock(&c->mu);
	/* Keys sort as the store's do: list in key order. */
	size_t n = c->objs.n, k = 0;
	struct slot **keys = calloc(n ? n : 1, sizeof(*keys));
	for (struct slot *sl = c->first; keys && sl && k < n; sl = sl->next)
		keys[k++] = sl;
	qsort(keys, k, sizeof(*keys), slot_cmp);
	for (size_t i = 0; i < k; i++) {
		struct cobj *o = keys[i]->o;
		if (ns && !api_mp_str_is(o->mp, o->len, "metadata.namespace", ns, NULL))
			continue;
		/* a tree of the caller's own, not kept: lists are rare */
		json_array_append_new(arr, o->j ? json_deep_copy(o->j) : api_mp_decode(o->mp, o->len));
	}
	free(keys);
	*rev = c->rev;
	pthread_mutex_unlock(&c->mu);
	*items = arr;
	return 0;
}

/* --- watchers ------------------------------------------------------------------------ */

static void queue_line(struct api_watcher *w, char *line)
{
	if (line == NULL)
		return;
	char **q = realloc(w->queue, (w->nq + 1) * sizeof(char *));
	if (q == NULL) {
		free(line);
		return;
	}
	w->queue = q;
	w->queue[w->nq++] = line;
}

static char *expired_line(struct api_watcher *w, int64_t asked)
{
	struct api_error e = { 0 };
	api_err(&e, 410, "Expired", "too old resource version: %" PRId64 " (%" PRId64 ")",
	    asked, w->c->floor_rev);
	json_t *st = api_status(&e);
	size_t len;
	char *line = event_line("ERROR", st, &len);
	json_decref(st);
	api_err_clear(&e);
	return line;
}

static char *bookmark_line(struct api_watcher *w)
{
	char gv[64], rv[32];
	snprintf(rv, sizeof(rv), "%" PRId64, w->c->rev);
	json_t *o = json_pack("{s:s, s:s, s:{s:s}}", "kind", w->c->r->kind, "apiVersion",
	    api_group_version(w->c->r, gv, sizeof(gv)), "metadata", "resourceVersion", rv);
	size_t len;
	char *line = event_line("BOOKMARK", o, &len);
	json_decref(o);
	return line;
}

/* The next line for this watcher from the ring (malloc'd copy), or NULL.
 * Called with the cache locked. */
static char *next_from_ring(struct api_watcher *w, bool *expired)
{
	struct api_cache *c = w->c;
	if (c->count && w->seq < ring_at(c, 0)->seq) {
		/* Events left the ring before this watcher read them. Lost
		 * only if one of them is after the revision it watches from:
		 * a watch from a revision the cache had not reached yet (a
		 * client that listed from the store while the cache caught
		 * up) needs none of them. */
		if (c->floor_rev > w->min_rev) {
			*expired = true;
			return NULL;
		}
		w->seq = ring_at(c, 0)->seq;
	}
	for (size_t i = ring_find_seq(c, w->seq); i < c->count; i++) {
		struct ev *e = ring_at(c, i);
		w->seq = e->seq + 1;
		if (e->rev <= w->min_rev)
			continue;
		char t = seen_type(w, e);
		if (t == 0)
			continue;
		size_t len;
		const json_t *obj = cobj_tree(e->obj);
		if (obj == NULL)
			return NULL;
		if (w->table) {
			if (t != e->type || w->inc_full || w->inc_none)
				return w_table_line(w, type_name(t), obj, &len);
			if (e->tline == NULL)
				e->tline = table_line(c, type_name(t), obj, &e->tlen);
			return e->tline ? strndup(e->tline, e->tlen) : NULL;
		}
		if (t != e->type)
			return event_line(type_name(t), obj, &len);
		if (e->line == NULL)
			e->line = event_line(type_name(t), obj, &e->len);
		return e->line ? strndup(e->line, e->len) : NULL;
	}
	return NULL;
}

static ssize_t copy_part(struct api_watcher *w, char *buf, size_t max)
{
	size_t n = w->plen - w->poff;
	if (n > max)
		n = max;
	memcpy(buf, w->part + w->poff, n);
	w->poff += n;
	if (w->poff == w->plen) {
		free(w->part);
		w->part = NULL;
	}
	return (ssize_t)n;
}

static void take_line(struct api_watcher *w, char *line)
{
	w->part = line;
	w->plen = strlen(line);
	w->poff = 0;
}

/* What is there now, never waiting: a watcher has arm(), so the event
 * loop reads it with timeout 0 and arms it when this returns 0. */
static ssize_t watch_read(struct api_stream *st, char *buf, size_t max,
    int timeout_ms)
{
	(void)timeout_ms;
	struct api_watcher *w = (struct api_watcher *)st;
	struct api_cache *c = w->c;
	if (w->part)
		return copy_part(w, buf, max);
	if (w->iq < w->nq) {
		take_line(w, w->queue[w->iq]);
		w->queue[w->iq++] = NULL;
		return copy_part(w, buf, max);
	}
	if (w->end_after_queue)
		return -1;
	int64_t now = mono_ns();
	if (w->deadline_ns && now >= w->deadline_ns)
		return -1;
	pthread_mutex_lock(&c->mu);
	bool expired = false;
	char *line = c->s->stopping ? NULL : next_from_ring(w, &expired);
	if (line == NULL && !expired && w->bookmarks && now >= w->bookmark_ns) {
		line = bookmark_line(w);
		w->bookmark_ns = now + c->s->bookmark_ms * 1000000;
	}
	if (expired)
		line = expired_line(w, w->min_rev);
	pthread_mutex_unlock(&c->mu);
	if (expired)
		w->end_after_queue = true;
	if (line == NULL)
		return c->s->stopping ? -1 : 0;
	take_line(w, line);
	return copy_part(w, buf, max);
}

/* Nothing to read now: wake(arg) at the next event (or resync). False,
 * and nothing armed, when a read would find something already. The
 * deadline and bookmarks are the caller's to look at (a read with
 * timeout 0 sends them). */
static bool watch_arm(struct api_stream *st, void (*wake)(void *), void *arg)
{
	struct api_watcher *w = (struct api_watcher *)st;
	struct api_cache *c = w->c;
	if (w->part || w->iq < w->nq || w->end_after_queue)
		return false;
	pthread_mutex_lock(&c->mu);
	bool expired = false;
	char *line = c->s->stopping ? NULL : next_from_ring(w, &expired);
	bool ready = line || expired || c->s->stopping;
	if (line)
		take_line(w, line);
	if (!ready && w->aprev == NULL) {
		w->wake = wake;
		w->wake_arg = arg;
		w->anext = c->armed;
		if (c->armed)
			c->armed->aprev = &w->anext;
		w->aprev = &c->armed;
		c->armed = w;
	}
	pthread_mutex_unlock(&c->mu);
	return !ready;
}

static void watcher_free(struct api_watcher *w)
{
	for (size_t i = 0; i < w->nq; i++)
		free(w->queue[i]);
	free(w->queue);
	free(w->part);
	free(w->ns);
	free(w->name);
	api_selector_free(w->ls);
	api_selector_free(w->fs);
	free(w);
}

static void watch_close(struct api_stream *st)
{
	struct api_watcher *w = (struct api_watcher *)st;
	pthread_mutex_lock(&w->c->mu);
	disarm(w);
	pthread_mutex_unlock(&w->c->mu);
	atomic_fetch_sub(&w->c->streams, 1);
	watcher_free(w);
}

/* A watcher positioned for req: selectors parsed, initial events queued
 * (under the cache lock, so nothing falls between them and the ring). */
static struct api_watcher *watcher_new(struct api_server *s, const struct api_req *req,
    api_event_fn fn, void *arg, struct api_error *e)
{
	bool initial_to_queue = fn == NULL;
	struct api_cache *c = cache_get(s, req->res, e);
	if (c == NULL)
		return NULL;
	struct api_watcher *w = calloc(1, sizeof(*w));
	if (w == NULL)
		return NULL;
	w->c = c;
	w->fn = fn;
	w->arg = arg;
	w->st.read = watch_read;
	w->st.arm = watch_arm;
	w->st.close = watch_close;
	w->st.content_type = "application/json";
	w->ns = req->ns ? strdup(req->ns) : NULL;
	w->name = req->name ? strdup(req->name) : NULL;
	w->table = req->want_table;
	w->inc_full = req->include_object_full;
	w->inc_none = req->include_object_none;
	w->bookmarks = req->allow_bookmarks;
	w->ls = api_label_selector(req->label_selector, e);
	w->fs = w->ls ? api_field_selector(req->res, req->field_selector, e) : NULL;
	if (w->ls == NULL || w->fs == NULL) {
		watcher_free(w);
		return NULL;
	}
	w->filters = w->ns || w->name || !api_selector_empty(w->ls) || !api_selector_empty(w->fs);
	int64_t t = req->timeout_s > 0 ? req->timeout_s : 1800;
	w->deadline_ns = mono_ns() + t * 1000000000;
	w->bookmark_ns = mono_ns() + s->bookmark_ms * 1000000;
	const char *rv = req->resource_version;
	int64_t asked = rv && *rv ? strtoll(rv, NULL, 10) : 0;
	pthread_mutex_lock(&c->mu);
	w->seq = c->next_seq;
	if (asked == 0) {
		/* No revision: the current state as ADDED events first. */
		for (struct slot *sl = c->first; sl; sl = sl->next) {
			struct cobj *o = sl->o;
			if (!matches(w, o))
				continue;
			if (initial_to_queue) {
				size_t len;
				const json_t *j = cobj_tree(o);
				if (j)
					queue_line(w, w->table ? w_table_line(w, "ADDED", j, &len)
					                       : event_line("ADDED", j, &len));
			} else {
				struct api_event ev = { .type = "ADDED", .rev = c->rev,
					.obj_mp = o->mp, .obj_mp_len = o->len };
				w->fn(w->arg, &ev);
			}
		}
		w->min_rev = c->rev;
	} else if (asked < c->floor_rev) {
		if (initial_to_queue) {
			queue_line(w, expired_line(w, asked));
			w->end_after_queue = true;
		} else {
			pthread_mutex_unlock(&c->mu);
			api_err(e, 410, "Expired", "too old resource version: %" PRId64 " (%" PRId64 ")",
			    asked, c->floor_rev);
			watcher_free(w);
			return NULL;
		}
	} else {
		/* Replay what came after the asked revision. */
		w->min_rev = asked;
		w->seq = c->count ? ring_at(c, 0)->seq : c->next_seq;
	}
	if (initial_to_queue)
		atomic_fetch_add(&c->streams, 1);
	if (!initial_to_queue) {
		fns_add(c, w);
		/* Replay for callback watchers happens right here too. */
		for (size_t i = ring_find_seq(c, w->seq); i < c->count; i++) {
			struct ev *ev = ring_at(c, i);
			char t2 = ev->rev > w->min_rev ? seen_type(w, ev) : 0;
			if (t2) {
				struct api_event x = fn_event(ev, t2);
				w->fn(w->arg, &x);
			}
		}
		if (c->rev > w->min_rev)
			w->min_rev = c->rev;
	}
	pthread_mutex_unlock(&c->mu);
	return w;
}

struct api_stream *api_watch(struct api_server *s, const struct api_req *req,
    struct api_error *e)
{
	struct api_watcher *w = watcher_new(s, req, NULL, NULL, e);
	return w ? &w->st : NULL;
}

struct api_watcher *api_watch_fn(struct api_server *s, const struct api_req *req,
    api_event_fn fn, void *arg, struct api_error *e)
{
	return fn ? watcher_new(s, req, fn, arg, e) : NULL;
}

void api_unwatch(struct api_watcher *w)
{
	if (w == NULL)
		return;
	struct api_cache *c = w->c;
	pthread_mutex_lock(&c->mu);
	fns_del(c, w);
	pthread_mutex_unlock(&c->mu);
	watcher_free(w);
}
