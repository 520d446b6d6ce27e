/* sdk/src/informer.c — list+watch caches, as client-go's reflector and
 * shared informer.
 *
 * One thread per informer does everything that may block: list, watch,
 * apply events to the cache and call the handlers. The bus delivers watch
 * events to a topic handler on the plugin's dispatch thread, which only
 * queues them (it must not block) and wakes the thread.
 *
 * Each watch gets a topic of its own, "api/watch/<instance>/<n>", with n
 * unique in the process (and, being seeded from the clock and pid, very
 * likely across hosts), subscribed before the watch is asked for: the API
 * server may publish the events it replays before it answers. Events are
 * told apart by that n, so nothing from an ended watch is ever applied.
 *
 * A watch ends when the API server says so (its last publication is an
 * ERROR event with a Status), when asking for it fails, or after a
 * randomised 5-10 minutes (client-go's watch timeout: a watch lost without
 * a word, say because the API server's process died, is noticed by then).
 * The informer then watches again from the last resourceVersion it saw; on
 * 410 (Expired or Gone) it relists and delivers the difference between the
 * list and its cache as adds, updates and deletes.
 *
 * Queued publications may outlive kb_unsubscribe (the bus has already put
 * them in the dispatch thread's mailbox), so the topic handler's argument
 * is the informer's id, looked up in a process-wide registry, never a
 * pointer that may have been freed.
 */
#include <inttypes.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client_int.h"

#define WATCH_MIN_MS (5 * 60 * 1000)
#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 30000

struct pub {
	uint64_t watch; /* the n of the topic it came on */
	kb_body *body;  /* {watch_id, type, object} */
	struct pub *next;
};

struct kb_informer {
	uint64_t id;
	struct kb_informer *reg_next;
	kb_ctx *ctx;
	struct kb_gvr r;
	char *ns, *ls, *fs;
	int64_t resync_ms;
	struct kb_informer_handlers h;
	void *arg;

	pthread_mutex_t mu;     /* the queue and the flags */
	pthread_cond_t cv;      /* the thread waits here */
	pthread_cond_t sync_cv; /* kb_informer_wait_synced waits here */
	struct pub *head, *tail;
	bool stop, started, synced;
	pthread_t thread;
	/* Applied inline: while the thread waits watching (inline_ok) with
	 * nothing queued, a publication of watch inline_watch is applied by
	 * the bus dispatch thread that brought it (busy meanwhile), not
	 * handed over — a wake-up less per event. What such an apply cannot
	 * do itself (end the watch) it leaves to the thread in outcome. */
	bool inline_ok, busy;
	uint64_t inline_watch;
	int outcome; /* enum outcome */
	bool outcome_ended;

	/* Written only by the thread, under the write lock; the thread reads
	 * it without locking. */
	pthread_rwlock_t cache_mu;
	struct kb_strmap cache; /* "ns/name" -> struct entry */
	/* The index (kb_informer_set_index), kept with the cache: index key
	 * -> a struct kb_strmap of "ns/name" -> struct entry (borrowed from
	 * the cache). index_lost: memory ran out keeping it, and
	 * kb_informer_each_indexed looks at every object instead. */
	bool (*ikey)(const msgpack_object *obj, char *buf, size_t len);
	struct kb_strmap index;
	bool index_lost;
	/* The view (kb_informer_set_view): view_size bytes beside each
	 * cached body, made by view_make; 0 and NULL without one. */
	size_t view_size;
	void (*view_make)(const msgpack_object *obj, void *view);

	/* the thread's own */
	uint64_t watch_n; /* 0: not watching */
	char topic[128];
	int64_t watch_id;
	int64_t watch_started;
	char *rv; /* the last resourceVersion seen */
	uint64_t rnd;
};

/* --- the registry ------------------------------------------------------------------ */

static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
/* by id, in buckets: a process with a hundred kubelets has as many
 * informers, and each publication looks its own up */
#define REG_BUCKETS 256
static struct kb_informer *reg_b[REG_BUCKETS];
static uint64_t reg_ids;
static atomic_uint_fast64_t watch_seq;
static pthread_once_t seq_once = PTHREAD_ONCE_INIT;

static void seq_seed(void)
{
	/* Start somewhere unlikely to be shared by another process. */
	uint64_t s = (uint64_t)kb_wall_ms() * 1000003u ^
	    ((uint64_t)getpid() << 40);
	atomic_store(&watch_seq, (s & 0x0000ffffffffffffull) + 1);
}

static uint64_t next_watch_n(void)
{
	pthread_once(&seq_once, seq_seed);
	return atomic_fetch_add(&watch_seq, 1);
}

static void apply_inline(struct kb_informer *inf, kb_body *body);

/* The topic handler: dispatch thread, must not block for long. */
static void on_pub(void *arg, const kb_msg *m)
{
	uint64_t id = (uint64_t)(uintptr_t)arg;
	const char *dst = kb_msg_dst(m), *slash = strrchr(dst, '/');
	uint64_t n = slash ? strtoull(slash + 1, NULL, 10) : 0;
	pthread_mutex_lock(&reg_mu);
	struct kb_informer *inf = reg_b[id % REG_BUCKETS];
	while (inf && inf->id != id)
		inf = inf->reg_next;
	if (inf == NULL) {
		pthread_mutex_unlock(&reg_mu);
		return;
	}
	pthread_mutex_lock(&inf->mu);
	if (inf->inline_ok && !inf->busy && !inf->stop && inf->head == NULL &&
	    n == inf->inline_watch) {
		/* The thread waits on busy before it goes, and
		 * kb_informer_free waits for the thread. */
		inf->busy = true;
		pthread_mutex_unlock(&inf->mu);
		pthread_mutex_unlock(&reg_mu);
		apply_inline(inf, kb_msg_body_ref(m));
		return;
	}
	/* Out of memory: the watch goes on; a relist will repair the gap. */
	struct pub *p = malloc(sizeof(*p));
	if (p) {
		p->watch = n;
		p->body = kb_msg_body_ref(m);
		p->next = NULL;
		if (inf->tail)
			inf->tail->next = p;
		else
			inf->head = p;
		inf->tail = p;
		pthread_cond_signal(&inf->cv);
	}
	pthread_mutex_unlock(&inf->mu);
	pthread_mutex_unlock(&reg_mu);
}

/* --- the cache and the handlers -------------------------------------------------------- */

static const char *res(const struct kb_informer *inf)
{
	return inf->r.resource;
}

/* Keep the resourceVersion `v` (a string; else nothing changes). */
static void keep_rv(struct kb_informer *inf, const msgpack_object *v)
{
	if (v == NULL || v->type != MSGPACK_OBJECT_STR)
		return;
	const char *s = v->via.str.ptr;
	size_t n = strnlen(s, v->via.str.size);
	if (n == 0)
		return;
	/* Most versions are as long as the last one: write over it. */
	if (inf->rv == NULL || strlen(inf->rv) != n) {
		char *rv = malloc(n + 1);
		if (rv == NULL)
			return;
		free(inf->rv);
		inf->rv = rv;
	}
	memcpy(inf->rv, s, n);
	inf->rv[n] = '\0';
}

static void set_rv(struct kb_informer *inf, const msgpack_object *obj,
    const char *path)
{
	keep_rv(inf, kb_mp_get(obj, path));
}

/* The bodies whose objects the handler running on this thread was given
 * (kb_informer_body_of): the scheduler's views hold a reference to the
 * cached body instead of copying its object. */
static _Thread_local kb_body *cur_body[2];

kb_body *kb_informer_body_of(const msgpack_object *obj)
{
	for (int i = 0; i < 2; i++)
		if (obj != NULL && cur_body[i] != NULL &&
		    obj == &cur_body[i]->obj &&
		    atomic_load_explicit(&cur_body[i]->decoded,
			memory_order_acquire) == 1)
			return kb_body_ref(cur_body[i]);
	return NULL;
}

static void call_add(struct kb_informer *inf, kb_body *b)
{
	if (inf->h.add == NULL)
		return;
	cur_body[0] = b;
	inf->h.add(inf->arg, kb_body_obj(b));
	cur_body[0] = NULL;
}

static void call_update(struct kb_informer *inf, kb_body *old, kb_body *b)
{
	if (inf->h.update == NULL)
		return;
	cur_body[0] = b;
	cur_body[1] = old;
	inf->h.update(inf->arg, kb_body_obj(old), kb_body_obj(b));
	cur_body[0] = cur_body[1] = NULL;
}

/* --- cached objects ---------------------------------------------------------------------
 * A cached version: its body, and what is made of it once, as it enters
 * the cache: its decoded root, its index key and its view. One per
 * version, never changed once cached: an update puts a new entry in the
 * old one's place, so a reader under the read lock always finds a view
 * that belongs to the body beside it. Bodies are shared between the
 * informers of a process (kb_body_shared_decoded), views are not: each
 * informer has its own, hence the entry. */
struct entry {
	kb_body *b;
	const msgpack_object *obj; /* kb_body_obj(b) */
	const char *ikey;          /* its index key (in this block), or NULL */
	max_align_t view[];        /* view_size bytes, then the index key */
};

/* A new entry for b (taken only on success), made by the thread applying
 * the change before it takes the cache's lock, so that readers never wait
 * for a view or an index key. NULL when out of memory. */
static struct entry *entry_new(const struct kb_informer *inf, kb_body *b)
{
	const msgpack_object *obj = kb_body_obj(b);
	char ik[KB_INDEX_KEY_MAX];
	size_t iklen = 0;
	if (inf->ikey && obj != NULL && inf->ikey(obj, ik, sizeof(ik)) &&
	    ik[0] != '\0')
		iklen = strnlen(ik, sizeof(ik) - 1) + 1;
	struct entry *e =
	    malloc(offsetof(struct entry, view) + inf->view_size + iklen);
	if (e == NULL)
		return NULL;
	e->b = b;
	e->obj = obj;
	e->ikey = NULL;
	if (iklen > 0) {
		char *k = (char *)e->view + inf->view_size;
		memcpy(k, ik, iklen - 1);
		k[iklen - 1] = '\0';
		e->ikey = k;
	}
	if (inf->view_size > 0) {
		memset(e->view, 0, inf->view_size);
		if (obj != NULL)
			inf->view_make(obj, e->view);
	}
	return e;
}

/* The view to hand out with e: NULL without one. */
static const void *entry_view(const struct kb_informer *inf,
    const struct entry *e)
{
	return inf->view_size > 0 ? e->view : NULL;
}

static void entry_free(void *p)
{
	struct entry *e = p;
	if (e == NULL)
		return;
	kb_body_unref(e->b);
	free(e);
}

/* The cached body under key, or NULL (the thread's own read: no lock). */
static kb_body *cached_body(const struct kb_informer *inf, const char *key)
{
	const struct entry *e = kb_strmap_get(&inf->cache, key);
	return e ? e->b : NULL;
}

/* --- the index ------------------------------------------------------------------------
 * Under the cache's write lock, after the cache itself changed: key moves
 * from old's index key (old NULL: none) to e's (e NULL: none). */
static void index_drop(struct kb_informer *inf, const char *ik,
    const char *key)
{
	struct kb_strmap *set = kb_strmap_get(&inf->index, ik);
	if (set == NULL)
		return;
	kb_strmap_del(set, key);
	if (set->n == 0) {
		kb_strmap_del(&inf->index, ik);
		kb_strmap_clear(set, NULL);
		free(set);
	}
}

static void index_move(struct kb_informer *inf, const char *key,
    struct entry *old, struct entry *e)
{
	if (inf->ikey == NULL || inf->index_lost)
		return;
	const char *ok = old ? old->ikey : NULL, *nk = e ? e->ikey : NULL;
	if (ok && (!nk || strcmp(ok, nk)))
		index_drop(inf, ok, key);
	if (!nk)
		return;
	struct kb_strmap *set = kb_strmap_get(&inf->index, nk);
	if (set == NULL) {
		if ((set = calloc(1, sizeof(*set))) == NULL ||
		    kb_strmap_put(&inf->index, nk, set, NULL) != 0) {
			free(set);
			inf->index_lost = true;
			return;
		}
	}
	if (kb_strmap_put(set, key, e, NULL) != 0)
		inf->index_lost = true;
}

static void index_set_free(void *set)
{
	kb_strmap_clear(set, NULL);
	free(set);
}

/* Cache obj under key and tell the handlers; `b` is taken. */
static void cache_put(struct kb_informer *inf, const char *key, kb_body *b)
{
	struct entry *old = NULL, *e = entry_new(inf, b);
	int rc = KB_ENOMEM;
	if (e != NULL) {
		pthread_rwlock_wrlock(&inf->cache_mu);
		rc = kb_strmap_put(&inf->cache, key, e, (void **)&old);
		if (rc == 0)
			index_move(inf, key, old, e);
		pthread_rwlock_unlock(&inf->cache_mu);
	}
	if (rc != 0) {
		kb_warn(inf->ctx, "informer: out of memory",
		    "resource=%s key=\"%s\"", res(inf), key);
		if (e != NULL)
			entry_free(e);
		else
			kb_body_unref(b);
		return;
	}
	if (old)
		call_update(inf, old->b, b);
	else
		call_add(inf, b);
	entry_free(old);
}

/* Forget key; `last` (borrowed, may be NULL: then the cached version) is
 * what the delete handler sees. */
static void cache_del(struct kb_informer *inf, const char *key,
    const msgpack_object *last, kb_body *last_body)
{
	pthread_rwlock_wrlock(&inf->cache_mu);
	struct entry *old = kb_strmap_del(&inf->cache, key);
	if (old)
		index_move(inf, key, old, NULL);
	pthread_rwlock_unlock(&inf->cache_mu);
	if (old == NULL)
		return;
	if (inf->h.del) {
		/* last_body: the body whose root `last` is, when it is one */
		cur_body[0] = last ? last_body : old->b;
		inf->h.del(inf->arg, last ? last : kb_body_obj(old->b));
		cur_body[0] = NULL;
	}
	entry_free(old);
}

enum outcome {
	GO_ON,
	REWATCH,
	RELIST
};

/* --- reading an event without decoding all of it ----------------------------------------
 * An event is {watch_id, type, object}. Decoding it whole and packing its
 * object again for the cache cost two passes over every object, for each
 * informer; instead the object's bytes are found by skipping over the
 * msgpack and copied as they are, and decoded once, in the cache. */

static uint64_t be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* The bytes of one value's header at p (in, its size is `have`): how many
 * bytes it takes itself (*hdr), how many more follow as its payload
 * (*body), and how many values it contains (*items). false when malformed
 * or cut short. */
static bool mp_head(const uint8_t *p, size_t have, size_t *hdr, uint64_t *body,
    uint64_t *items)
{
	/* clang-format off */
	static const uint8_t fixed[32] = {
		/* c0..df: header size, 0 where the length is read below */
		1, 0, 1, 1, 0, 0, 0, 0, 0, 0, 5, 9, 2, 3, 5, 9,
		2, 3, 5, 9, 3, 4, 6, 10, 18, 0, 0, 0, 0, 0, 0, 0,
	};
	/* clang-format on */
	if (have < 1)
		return false;
	uint8_t b = p[0];
	*body = 0;
	*items = 0;
	*hdr = 1;
	if (b <= 0x7f || b >= 0xe0)
		return true;
	if (b <= 0x8f) {
		*items = 2u * (b & 0x0f);
		return true;
	}
	if (b <= 0x9f) {
		*items = b & 0x0f;
		return true;
	}
	if (b <= 0xbf) {
		*body = b & 0x1f;
		return true;
	}
	if (b == 0xc1)
		return false;
	if (fixed[b - 0xc0]) {
		*hdr = fixed[b - 0xc0];
		return true;
	}
	size_t lenbytes;
	switch (b) {
	case 0xc4:
	case 0xd9:
		lenbytes = 1;
		break;
	case 0xc5:
	case 0xda:
	case 0xdc:
	case 0xde:
		lenbytes = 2;
		break;
	case 0xc6:
	case 0xdb:
	case 0xdd:
	case 0xdf:
		lenbytes = 4;
		break;
	case 0xc7:
		lenbytes = 1;
		break; /* ext: length, then a type byte */
	case 0xc8:
		lenbytes = 2;
		break;
	case 0xc9:
		lenbytes = 4;
		break;
	default:
		return false;
	}
	if (have < 1 + lenbytes)
		return false;
	uint64_t n = be(p + 1, lenbytes);
	*hdr = 1 + lenbytes;
	if (b >= 0xc7 && b <= 0xc9) {
		*hdr += 1;
		*body = n;
	} else if (b == 0xdc || b == 0xdd) {
		*items = n;
	} else if (b == 0xde || b == 0xdf) {
		*items = 2 * n;
	} else {
		*body = n;
	}
	return true;
}

/* The size of the value at p (with all it contains), or 0 when malformed
 * or longer than len. */
static size_t mp_size(const uint8_t *p, size_t len)
{
	size_t off = 0;
	uint64_t pending = 1;
	while (pending > 0) {
		size_t hdr;
		uint64_t body, items;
		if (!mp_head(p + off, len - off, &hdr, &body, &items) ||
		    hdr > len - off || body > len - off - hdr)
			return 0;
		off += hdr + (size_t)body;
		pending += items - 1;
		/* every value takes a byte at least */
		if (pending > len - off)
			return 0;
	}
	return off;
}

struct raw_event {
	const uint8_t *type, *obj;
	size_t typelen, objlen;
};

/* Find type (a string: its bytes) and object (the packed value) in the
 * event's top-level map. */
static bool raw_event(kb_body *body, struct raw_event *ev)
{
	size_t len = 0;
	const uint8_t *p = kb_body_data(body, &len);
	size_t hdr, off;
	uint64_t blen, items;
	memset(ev, 0, sizeof(*ev));
	if (p == NULL || !mp_head(p, len, &hdr, &blen, &items) ||
	    !((p[0] & 0xf0) == 0x80 || p[0] == 0xde || p[0] == 0xdf))
		return false;
	off = hdr;
	for (uint64_t i = 0; i < items / 2; i++) {
		size_t ks = mp_size(p + off, len - off);
		if (ks == 0)
			return false;
		const uint8_t *k = p + off;
		size_t khdr;
		uint64_t klen, kitems;
		mp_head(k, ks, &khdr, &klen, &kitems);
		off += ks;
		bool is_str = (k[0] & 0xe0) == 0xa0 || k[0] == 0xd9 ||
		    k[0] == 0xda || k[0] == 0xdb;
		bool is_obj = is_str && klen == 6 &&
		    !memcmp(k + khdr, "object", 6);
		/* The object comes last (as the API server packs an event):
		 * the rest of the bytes, which its decoding checks to be one
		 * value, rather than a walk over all of it here. */
		size_t vs = is_obj && i + 1 == items / 2 && off < len ?
		    len - off :
		    mp_size(p + off, len - off);
		if (vs == 0)
			return false;
		if (is_str && klen == 4 && !memcmp(k + khdr, "type", 4)) {
			size_t thdr;
			uint64_t tlen, titems;
			const uint8_t *v = p + off;
			if ((v[0] & 0xe0) == 0xa0 || v[0] == 0xd9 ||
			    v[0] == 0xda || v[0] == 0xdb) {
				mp_head(v, vs, &thdr, &tlen, &titems);
				ev->type = v + thdr;
				ev->typelen = (size_t)tlen;
			}
		} else if (is_obj) {
			ev->obj = p + off;
			ev->objlen = vs;
		}
		off += vs;
	}
	return true;
}

static bool type_is(const struct raw_event *ev, const char *t)
{
	size_t n = strlen(t);
	return ev->type && ev->typelen == n && !memcmp(ev->type, t, n);
}

/* kb_count_add: "event <instance> <resource> <type>", "Event …" bytes. */
static void count_event(struct kb_informer *inf, const char *type,
    size_t typelen, kb_body *body)
{
	if (!kb_counting())
		return;
	char key[300];
	size_t len = 0;
	kb_body_data(body, &len);
	snprintf(key, sizeof(key), "event %s %s %.*s", kb_instance(inf->ctx),
	    res(inf), (int)typelen, type);
	kb_count_add(key, 1);
	key[0] = 'E';
	kb_count_add(key, len);
}

/* ADDED, MODIFIED and DELETED from the event's bytes; *handled false when
 * the event is of another kind (or not readable so): the caller decodes
 * it. */
static enum outcome apply_raw(struct kb_informer *inf, kb_body *body,
    bool *handled)
{
	struct raw_event ev;
	char key[512];
	*handled = false;
	if (!raw_event(body, &ev) || ev.obj == NULL ||
	    !(type_is(&ev, "ADDED") || type_is(&ev, "MODIFIED") ||
		type_is(&ev, "DELETED")))
		return GO_ON;
	*handled = true;
	count_event(inf, (const char *)ev.type, ev.typelen, body);
	/* The object's bytes, decoded at once, in one block; or the body
	 * another informer of the process made of the same bytes. */
	bool found;
	kb_body *b =
	    kb_body_shared_decoded(ev.obj, ev.objlen, &found);
	if (b == NULL)
		return RELIST; /* lost an event: only a relist repairs it */
	const msgpack_object *obj = kb_body_obj(b);
	if (obj == NULL || kb_object_key(obj, key, sizeof(key)) == NULL) {
		kb_body_unref(b);
		return GO_ON;
	}
	/* An update's old and new are never the same pointer (handlers take
	 * that for a resync): the same bytes again get a copy of their own. */
	if (found && cached_body(inf, key) == b) {
		kb_body_unref(b);
		b = kb_body_new_decoded(ev.obj, ev.objlen);
		if (b == NULL)
			return RELIST;
		obj = kb_body_obj(b);
	}
	set_rv(inf, obj, "metadata.resourceVersion");
	if (type_is(&ev, "DELETED")) {
		cache_del(inf, key, obj, b);
		kb_body_unref(b);
		return GO_ON;
	}
	cache_put(inf, key, b);
	return GO_ON;
}

/* One publication of the current watch; *ended when it was the server's
 * last word on it. */
static enum outcome apply(struct kb_informer *inf, kb_body *body, bool *ended)
{
	bool handled;
	enum outcome o = apply_raw(inf, body, &handled);
	if (handled)
		return o;
	const msgpack_object *ev = kb_body_obj(body);
	const msgpack_object *type = kb_mp_key(ev, "type");
	const msgpack_object *obj = kb_mp_key(ev, "object");
	char key[512];
	if (type && type->type == MSGPACK_OBJECT_STR)
		count_event(inf, type->via.str.ptr, type->via.str.size, body);
	if (kb_mp_is(type, "ERROR")) {
		int64_t code = 0;
		const char *msg = "";
		size_t msglen = 0;
		kb_mp_int(obj, "code", &code);
		kb_mp_str(obj, "message", &msg, &msglen);
		bool gone = code == 410 ||
		    kb_mp_streq(obj, "reason", "Expired") ||
		    kb_mp_streq(obj, "reason", "Gone");
		*ended = true;
		kb_debug(inf->ctx, "informer: the watch ended",
		    "resource=%s code=%" PRId64 " message=\"%.*s\"", res(inf),
		    code, (int)msglen, msg);
		return gone ? RELIST : REWATCH;
	}
	if (kb_mp_is(type, "BOOKMARK")) {
		set_rv(inf, obj, "metadata.resourceVersion");
		return GO_ON;
	}
	if (kb_object_key(obj, key, sizeof(key)) == NULL)
		return GO_ON;
	set_rv(inf, obj, "metadata.resourceVersion");
	if (kb_mp_is(type, "DELETED")) {
		cache_del(inf, key, obj, NULL);
		return GO_ON;
	}
	if (!kb_mp_is(type, "ADDED") && !kb_mp_is(type, "MODIFIED"))
		return GO_ON;
	kb_body *b = kb_mp_body("o", obj);
	if (b == NULL) {
		/* Lost an event: only a relist can bring the cache back. */
		return RELIST;
	}
	cache_put(inf, key, b);
	return GO_ON;
}

struct stale {
	const struct kb_strmap *seen;
	char **keys;
	size_t n, cap;
	bool oom;
};

static void find_stale(void *arg, const char *key, void *val)
{
	struct stale *s = arg;
	(void)val;
	if (kb_strmap_get(s->seen, key))
		return;
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **k = realloc(s->keys, cap * sizeof(*k));
		if (k == NULL) {
			s->oom = true;
			return;
		}
		s->keys = k;
		s->cap = cap;
	}
	if ((s->keys[s->n] = strdup(key)) != NULL)
		s->n++;
	else
		s->oom = true;
}

static bool same_rv(kb_body *a, const msgpack_object *b)
{
	const char *x, *y;
	size_t xl, yl;
	return kb_mp_str(kb_body_obj(a), "metadata.resourceVersion", &x, &xl) &&
	    kb_mp_str(b, "metadata.resourceVersion", &y, &yl) && xl == yl &&
	    memcmp(x, y, xl) == 0;
}

/* List, and deliver the difference from the cache. */
static int relist(struct kb_informer *inf)
{
	kb_msg *rep = NULL;
	struct kb_api_args a = { .r = &inf->r,
		.ns = inf->ns,
		.label_selector = inf->ls,
		.field_selector = inf->fs };
	int rc = kb_api_call(inf->ctx, "list", &a, 0, &rep);
	if (rc != 0) {
		const char *why = "";
		if (rep)
			kb_msg_err(rep, &why);
		kb_warn(inf->ctx, "informer: list failed",
		    "resource=%s err=%s message=\"%s\"", res(inf),
		    kb_err_reason(rc), why);
		kb_msg_free(rep);
		return rc;
	}
	const msgpack_object *list = kb_msg_body(rep);
	const msgpack_object *items = kb_mp_key(list, "items");
	struct kb_strmap seen = { 0 };
	char key[512];
	rc = 0;
	for (uint32_t i = 0; items && items->type == MSGPACK_OBJECT_ARRAY &&
	     i < items->via.array.size;
	     i++) {
		const msgpack_object *o = &items->via.array.ptr[i];
		if (kb_object_key(o, key, sizeof(key)) == NULL)
			continue;
		if (kb_strmap_put(&seen, key, (void *)1, NULL) != 0) {
			rc = KB_ENOMEM;
			break;
		}
		kb_body *old = cached_body(inf, key);
		if (old && same_rv(old, o))
			continue;
		kb_body *b = kb_mp_body("o", o);
		if (b == NULL) {
			rc = KB_ENOMEM;
			break;
		}
		cache_put(inf, key, b);
	}
	struct stale st = { .seen = &seen };
	if (rc == 0) {
		kb_strmap_each(&inf->cache, find_stale, &st);
		if (st.oom)
			rc = KB_ENOMEM;
	}
	for (size_t i = 0; i < st.n; i++) {
		if (rc == 0)
			cache_del(inf, st.keys[i], NULL, NULL);
		free(st.keys[i]);
	}
	free(st.keys);
	kb_strmap_clear(&seen, NULL);
	if (rc == 0)
		set_rv(inf, list, "metadata.resourceVersion");
	kb_msg_free(rep);
	if (rc != 0)
		return rc;
	pthread_mutex_lock(&inf->mu);
	if (!inf->synced) {
		inf->synced = true;
		pthread_cond_broadcast(&inf->sync_cv);
	}
	pthread_mutex_unlock(&inf->mu);
	return 0;
}

static void resync(struct kb_informer *inf)
{
	if (inf->h.update == NULL || inf->cache.n == 0)
		return;
	/* The thread is the only writer: the cache holds still while the
	 * handlers run, and they may read it through the public calls. */
	size_t n = 0;
	kb_body **all = malloc(inf->cache.n * sizeof(*all));
	if (all == NULL)
		return;
	for (size_t i = 0; i < inf->cache.nb; i++)
		for (struct kb_strent *e = inf->cache.b[i]; e; e = e->next)
			all[n++] = ((struct entry *)e->val)->b;
	for (size_t i = 0; i < n; i++)
		call_update(inf, all[i], all[i]);
	free(all);
}

/* --- watching ----------------------------------------------------------------------- */

static int start_watch(struct kb_informer *inf)
{
	uint64_t n = next_watch_n();
	const char *inst = kb_instance(inf->ctx);
	int len = snprintf(inf->topic, sizeof(inf->topic),
	    "api/watch/%s/%" PRIu64, inst ? inst : "_", n);
	if (len < 0 || (size_t)len >= sizeof(inf->topic))
		snprintf(inf->topic, sizeof(inf->topic), "api/watch/_/%" PRIu64,
		    n);
	int rc = kb_subscribe(inf->ctx, inf->topic, on_pub,
	    (void *)(uintptr_t)inf->id);
	if (rc != 0) {
		kb_warn(inf->ctx, "informer: cannot subscribe",
		    "topic=%s err=%s", inf->topic, kb_err_reason(rc));
		return rc;
	}
	inf->watch_n = n;
	kb_msg *rep = NULL;
	struct kb_api_args a = { .r = &inf->r,
		.ns = inf->ns,
		.label_selector = inf->ls,
		.field_selector = inf->fs,
		.resource_version = inf->rv,
		.topic = inf->topic };
	rc = kb_api_call(inf->ctx, "watch", &a, 0, &rep);
	if (rc == 0 && !kb_mp_int(kb_msg_body(rep), "watch_id", &inf->watch_id))
		rc = KB_EPROTO;
	if (rc != 0) {
		const char *why = "";
		if (rep)
			kb_msg_err(rep, &why);
		kb_debug(inf->ctx, "informer: watch failed",
		    "resource=%s rv=%s err=%s message=\"%s\"", res(inf),
		    inf->rv ? inf->rv : "", kb_err_reason(rc), why);
		kb_unsubscribe(inf->ctx, inf->topic);
		inf->watch_n = 0;
		inf->watch_id = 0;
	}
	kb_msg_free(rep);
	inf->watch_started = kb_mono_ms();
	return rc;
}

/* Leave the current watch; `unwatch`: it may still be running server-side. */
static void end_watch(struct kb_informer *inf, bool unwatch)
{
	if (inf->watch_n == 0)
		return;
	if (unwatch && inf->watch_id > 0) {
		struct kb_api_args a = { .watch_id = inf->watch_id };
		kb_api_call(inf->ctx, "unwatch", &a, 5000, NULL);
	}
	kb_unsubscribe(inf->ctx, inf->topic);
	inf->watch_n = 0;
	inf->watch_id = 0;
}

static int64_t next_backoff(int64_t b)
{
	if (b < BACKOFF_MIN_MS)
		return BACKOFF_MIN_MS;
	return b * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : b * 2;
}

static int64_t watch_lifetime(struct kb_informer *inf)
{
	/* xorshift: spreads the rewatches of many informers apart */
	inf->rnd ^= inf->rnd << 13;
	inf->rnd ^= inf->rnd >> 7;
	inf->rnd ^= inf->rnd << 17;
	return WATCH_MIN_MS + (int64_t)(inf->rnd % WATCH_MIN_MS);
}

/* on_pub's apply, busy set; body taken. */
static void apply_inline(struct kb_informer *inf, kb_body *body)
{
	bool ended = false;
	enum outcome o = body ? apply(inf, body, &ended) : RELIST;
	kb_body_unref(body);
	pthread_mutex_lock(&inf->mu);
	inf->busy = false;
	if (o != GO_ON) {
		inf->outcome = o;
		inf->outcome_ended = ended;
		inf->inline_ok = false;
	}
	/* Not waiting to be handed events: waiting for busy, or to be told
	 * of what came meanwhile or of the outcome. */
	if (!inf->inline_ok || inf->head)
		pthread_cond_signal(&inf->cv);
	pthread_mutex_unlock(&inf->mu);
}

static void free_pubs(struct pub *p)
{
	while (p) {
		struct pub *next = p->next;
		kb_body_unref(p->body);
		free(p);
		p = next;
	}
}

enum state {
	S_LIST,
	S_WATCH,
	S_WATCHING
};

/* The watch ended (o: REWATCH or RELIST): leave it, and say when to try
 * again. */
static void watch_over(struct kb_informer *inf, enum outcome o, bool ended,
    enum state *st, int64_t *backoff, int64_t *retry_at)
{
	int64_t now = kb_mono_ms();
	/* A watch that ends at once is a failure to back off from, not a
	 * hot loop. */
	end_watch(inf, !ended);
	*backoff = now - inf->watch_started < 1000 ? next_backoff(*backoff) : 0;
	*retry_at = now + *backoff;
	*st = o == RELIST ? S_LIST : S_WATCH;
}

static void *run(void *arg)
{
	struct kb_informer *inf = arg;
	char tname[16];
	/* "inf:pods": per-thread CPU (top -H, /proc/PID/task) by component */
	snprintf(tname, sizeof(tname), "inf:%s", res(inf));
	pthread_setname_np(pthread_self(), tname);
	enum state st = S_LIST;
	int64_t backoff = 0, retry_at = 0, watch_end = 0, next_resync = -1;
	/* Backoff grows with each failure in a row and is forgotten once a
	 * watch has run for a while. */
	bool just_listed = false;
	for (;;) {
		pthread_mutex_lock(&inf->mu);
		int64_t wake = st == S_WATCHING ? watch_end : retry_at;
		if (next_resync >= 0 && next_resync < wake)
			wake = next_resync;
		inf->inline_ok = st == S_WATCHING && inf->outcome == GO_ON;
		inf->inline_watch = inf->watch_n;
		while (!inf->stop && inf->head == NULL && inf->outcome == GO_ON &&
		    kb_mono_ms() < wake)
			kb_cond_wait_until(&inf->cv, &inf->mu, wake);
		inf->inline_ok = false;
		while (inf->busy) /* an inline apply, finishing */
			pthread_cond_wait(&inf->cv, &inf->mu);
		struct pub *batch = inf->head;
		inf->head = inf->tail = NULL;
		enum outcome o = inf->outcome;
		bool ended = inf->outcome_ended;
		inf->outcome = GO_ON;
		bool stop = inf->stop;
		pthread_mutex_unlock(&inf->mu);
		if (stop) {
			free_pubs(batch);
			break;
		}

		/* An inline apply's outcome first: what came after it is from
		 * the watch it ended. */
		if (o != GO_ON)
			watch_over(inf, o, ended, &st, &backoff, &retry_at);
		for (struct pub *p = batch; p; p = p->next) {
			if (st != S_WATCHING || p->watch != inf->watch_n)
				continue; /* from a watch that is over */
			ended = false;
			o = apply(inf, p->body, &ended);
			if (o != GO_ON)
				watch_over(inf, o, ended, &st, &backoff, &retry_at);
		}
		free_pubs(batch);

		int64_t now = kb_mono_ms();
		if (st == S_WATCHING && now >= watch_end) {
			end_watch(inf, true);
			st = S_WATCH;
			retry_at = now;
		}
		if (st == S_LIST && now >= retry_at) {
			if (relist(inf) == 0) {
				st = S_WATCH;
				retry_at = now;
				just_listed = true;
				if (next_resync < 0 && inf->resync_ms > 0)
					next_resync =
					    kb_mono_ms() + inf->resync_ms;
			} else {
				backoff = next_backoff(backoff);
				retry_at = kb_mono_ms() + backoff;
			}
		}
		if (st == S_WATCH && now >= retry_at) {
			int rc = start_watch(inf);
			bool fresh = just_listed;
			just_listed = false;
			if (rc == 0) {
				st = S_WATCHING;
				watch_end = kb_mono_ms() + watch_lifetime(inf);
			} else if (rc == KB_EEXPIRED || rc == KB_EGONE) {
				kb_info(inf->ctx,
				    "informer: resourceVersion too old; relisting",
				    "resource=%s rv=%s", res(inf),
				    inf->rv ? inf->rv : "");
				st = S_LIST;
				/* Too old straight after a list: the server
				 * is not keeping up; do not spin on it. */
				if (fresh)
					backoff = next_backoff(backoff);
				retry_at = kb_mono_ms() + (fresh ? backoff : 0);
			} else {
				backoff = next_backoff(backoff);
				retry_at = kb_mono_ms() + backoff;
			}
		}
		if (next_resync >= 0 && kb_mono_ms() >= next_resync) {
			resync(inf);
			next_resync = kb_mono_ms() + inf->resync_ms;
		}
	}
	end_watch(inf, true);
	return NULL;
}

/* --- the API ---------------------------------------------------------------------------- */

static char *dup_or_null(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

static void informer_free_fields(struct kb_informer *inf)
{
	free((char *)inf->r.group);
	free((char *)inf->r.version);
	free((char *)inf->r.resource);
	free(inf->ns);
	free(inf->ls);
	free(inf->fs);
	free(inf->rv);
}

struct kb_informer *kb_informer_new(kb_ctx *ctx, const struct kb_gvr *r,
    const struct kb_informer_opts *opts, const struct kb_informer_handlers *h,
    void *arg)
{
	if (ctx == NULL || r == NULL || r->resource == NULL)
		return NULL;
	struct kb_informer *inf = calloc(1, sizeof(*inf));
	if (inf == NULL)
		return NULL;
	inf->ctx = ctx;
	inf->r.group = strdup(r->group ? r->group : "");
	inf->r.version = strdup(r->version ? r->version : "v1");
	inf->r.resource = strdup(r->resource);
	if (opts) {
		inf->ns = dup_or_null(opts->ns);
		inf->ls = dup_or_null(opts->label_selector);
		inf->fs = dup_or_null(opts->field_selector);
		inf->resync_ms = opts->resync_ms > 0 ? opts->resync_ms : 0;
	}
	if (h)
		inf->h = *h;
	inf->arg = arg;
	if (inf->r.group == NULL || inf->r.version == NULL ||
	    inf->r.resource == NULL ||
	    (opts &&
		((opts->ns && *opts->ns && !inf->ns) ||
		    (opts->label_selector && *opts->label_selector &&
			!inf->ls) ||
		    (opts->field_selector && *opts->field_selector &&
			!inf->fs)))) {
		informer_free_fields(inf);
		free(inf);
		return NULL;
	}
	pthread_mutex_init(&inf->mu, NULL);
	kb_cond_init_mono(&inf->cv);
	kb_cond_init_mono(&inf->sync_cv);
	pthread_rwlock_init(&inf->cache_mu, NULL);
	pthread_mutex_lock(&reg_mu);
	inf->id = ++reg_ids;
	inf->reg_next = reg_b[inf->id % REG_BUCKETS];
	reg_b[inf->id % REG_BUCKETS] = inf;
	pthread_mutex_unlock(&reg_mu);
	inf->rnd = inf->id * 0x9e3779b97f4a7c15ull ^ (uint64_t)kb_mono_ms();
	if (inf->rnd == 0)
		inf->rnd = 1;
	return inf;
}

int kb_informer_start(struct kb_informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	int rc = 0;
	if (inf->started || inf->stop)
		rc = KB_ESTATE;
	else if (pthread_create(&inf->thread, NULL, run, inf) != 0)
		rc = KB_ESYS;
	else
		inf->started = true;
	pthread_mutex_unlock(&inf->mu);
	return rc;
}

bool kb_informer_wait_synced(struct kb_informer *inf, int timeout_ms)
{
	int64_t deadline = timeout_ms < 0 ? -1 : kb_mono_ms() + timeout_ms;
	pthread_mutex_lock(&inf->mu);
	while (!inf->synced && (deadline < 0 || kb_mono_ms() < deadline))
		kb_cond_wait_until(&inf->sync_cv, &inf->mu, deadline);
	bool ok = inf->synced;
	pthread_mutex_unlock(&inf->mu);
	return ok;
}

bool kb_informer_synced(struct kb_informer *inf)
{
	pthread_mutex_lock(&inf->mu);
	bool ok = inf->synced;
	pthread_mutex_unlock(&inf->mu);
	return ok;
}

kb_body *kb_informer_get_view(struct kb_informer *inf, const char *ns,
    const char *name, void *view)
{
	char key[512];
	if (name == NULL)
		return NULL;
	int n = ns && *ns ? snprintf(key, sizeof(key), "%s/%s", ns, name) :
			    snprintf(key, sizeof(key), "%s", name);
	if (n < 0 || (size_t)n >= sizeof(key))
		return NULL;
	pthread_rwlock_rdlock(&inf->cache_mu);
	const struct entry *e = kb_strmap_get(&inf->cache, key);
	kb_body *b = e ? kb_body_ref(e->b) : NULL;
	if (e && view && inf->view_size > 0)
		memcpy(view, e->view, inf->view_size);
	pthread_rwlock_unlock(&inf->cache_mu);
	return b;
}

kb_body *kb_informer_get(struct kb_informer *inf, const char *ns,
    const char *name)
{
	return kb_informer_get_view(inf, ns, name, NULL);
}

int kb_informer_set_view(struct kb_informer *inf, size_t size,
    void (*make)(const msgpack_object *obj, void *view))
{
	if (make == NULL || size == 0 || size > KB_INFORMER_VIEW_MAX)
		return KB_EINVAL;
	pthread_mutex_lock(&inf->mu);
	int rc = inf->started || inf->view_make ? KB_ESTATE : 0;
	if (rc == 0) {
		inf->view_size = size;
		inf->view_make = make;
	}
	pthread_mutex_unlock(&inf->mu);
	return rc;
}

/* What kb_informer_each* call for each object: fn, or vfn with the view. */
struct each_arg {
	const struct kb_informer *inf;
	void (*fn)(void *arg, const msgpack_object *obj);
	void (*vfn)(void *arg, const msgpack_object *obj, const void *view);
	void *arg;
};

static void each_one(void *arg, const char *key, void *val)
{
	struct each_arg *a = arg;
	const struct entry *e = val;
	(void)key;
	if (a->vfn)
		a->vfn(a->arg, e->obj, entry_view(a->inf, e));
	else
		a->fn(a->arg, e->obj);
}

static void each(struct kb_informer *inf, struct each_arg *a)
{
	pthread_rwlock_rdlock(&inf->cache_mu);
	kb_strmap_each(&inf->cache, each_one, a);
	pthread_rwlock_unlock(&inf->cache_mu);
}

void kb_informer_each(struct kb_informer *inf,
    void (*fn)(void *arg, const msgpack_object *obj), void *arg)
{
	struct each_arg a = { .inf = inf, .fn = fn, .arg = arg };
	each(inf, &a);
}

void kb_informer_each_view(struct kb_informer *inf,
    void (*fn)(void *arg, const msgpack_object *obj, const void *view),
    void *arg)
{
	struct each_arg a = { .inf = inf, .vfn = fn, .arg = arg };
	each(inf, &a);
}

int kb_informer_set_index(struct kb_informer *inf,
    bool (*key)(const msgpack_object *obj, char *buf, size_t len))
{
	if (key == NULL)
		return KB_EINVAL;
	pthread_mutex_lock(&inf->mu);
	int rc = inf->started || inf->ikey ? KB_ESTATE : 0;
	if (rc == 0)
		inf->ikey = key;
	pthread_mutex_unlock(&inf->mu);
	return rc;
}

struct indexed_arg {
	const char *ikey;
	struct each_arg *e;
};

/* The index was lost: every object whose key is ikey. */
static void indexed_scan_one(void *arg, const char *key, void *val)
{
	struct indexed_arg *a = arg;
	const struct entry *e = val;
	if (e->ikey && !strcmp(e->ikey, a->ikey))
		each_one(a->e, key, val);
}

static void each_indexed(struct kb_informer *inf, const char *ikey,
    struct each_arg *e)
{
	struct indexed_arg a = { ikey, e };
	if (inf->ikey == NULL || ikey == NULL)
		return;
	pthread_rwlock_rdlock(&inf->cache_mu);
	if (inf->index_lost) {
		kb_strmap_each(&inf->cache, indexed_scan_one, &a);
	} else {
		struct kb_strmap *set = kb_strmap_get(&inf->index, ikey);
		if (set)
			kb_strmap_each(set, each_one, e);
	}
	pthread_rwlock_unlock(&inf->cache_mu);
}

void kb_informer_each_indexed(struct kb_informer *inf, const char *ikey,
    void (*fn)(void *arg, const msgpack_object *obj), void *arg)
{
	struct each_arg e = { .inf = inf, .fn = fn, .arg = arg };
	each_indexed(inf, ikey, &e);
}

void kb_informer_each_indexed_view(struct kb_informer *inf, const char *ikey,
    void (*fn)(void *arg, const msgpack_object *obj, const void *view),
    void *arg)
{
	struct each_arg e = { .inf = inf, .vfn = fn, .arg = arg };
	each_indexed(inf, ikey, &e);
}

size_t kb_informer_len(struct kb_informer *inf)
{
	pthread_rwlock_rdlock(&inf->cache_mu);
	size_t n = inf->cache.n;
	pthread_rwlock_unlock(&inf->cache_mu);
	return n;
}

void kb_informer_free(struct kb_informer *inf)
{
	if (inf == NULL)
		return;
	pthread_mutex_lock(&inf->mu);
	inf->stop = true;
	bool started = inf->started;
	pthread_cond_broadcast(&inf->cv);
	pthread_cond_broadcast(&inf->sync_cv);
	pthread_mutex_unlock(&inf->mu);
	if (started)
		pthread_join(inf->thread, NULL);
	/* After this no topic handler can reach it. */
	pthread_mutex_lock(&reg_mu);
	for (struct kb_informer **pp = &reg_b[inf->id % REG_BUCKETS]; *pp;
	     pp = &(*pp)->reg_next) {
		if (*pp == inf) {
			*pp = inf->reg_next;
			break;
		}
	}
	pthread_mutex_unlock(&reg_mu);
	free_pubs(inf->head);
	kb_strmap_clear(&inf->index, index_set_free);
	kb_strmap_clear(&inf->cache, entry_free);
	pthread_rwlock_destroy(&inf->cache_mu);
	pthread_cond_destroy(&inf->cv);
	pthread_cond_destroy(&inf->sync_cv);
	pthread_mutex_destroy(&inf->mu);
	informer_free_fields(inf);
	free(inf);
}
