/* watch.c — watchers: replay from history, then live events, no gap and
 * no duplicate.
 *
 * Every watcher lives in the hub, which only changes under the engine's
 * notify lock (mvcc_locked, and the listener the committer calls after each
 * commit). A watcher that starts in the past is registered first, marked
 * catching up: live batches for it are encoded and parked; the dispatch
 * thread then replays history up to the revision the hub had reached at
 * registration, and under the lock publishes what was parked and marks it
 * live. The events of a batch are encoded once per (prefix, prev) group and
 * only the small {watch_id, events} wrapper differs per watcher. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/mp.h>

#include "store_lmdb.h"

#define GROUPS_MAX 64
#define REPLAY_EVENTS 512
#define REPLAY_BYTES (1u << 20)

struct watcher {
	int64_t id;
	char *prefix;
	size_t plen;
	char *topic;
	bool prev;
	int64_t start; /* first revision to deliver */
	bool live;     /* false while catching up */
	bool dead;     /* publishing failed: dropped at the next chance */
	kb_body **pend;
	size_t npend, cap;
	struct watcher *next;
	int group; /* on_events: its encoding of the batch (-1: its own) */
};

struct watch_hub {
	struct slmdb *s;
	struct watcher *list;
	int64_t next_id;
	size_t n;
};

static void watcher_free(struct watcher *w)
{
	if (!w)
		return;
	for (size_t i = 0; i < w->npend; i++)
		kb_body_unref(w->pend[i]);
	free(w->pend);
	free(w->prefix);
	free(w->topic);
	free(w);
}

static void pack_event(msgpack_packer *pk, const struct mvcc_event *ev,
    bool prev)
{
	msgpack_pack_map(pk, prev ? 3 : 2);
	slmdb_pack_str(pk, "type");
	slmdb_pack_str(pk, ev->type == MVCC_PUT ? "put" : "delete");
	slmdb_pack_str(pk, "kv");
	slmdb_pack_kv(pk, &ev->kv);
	if (prev) {
		slmdb_pack_str(pk, "prev");
		slmdb_pack_kv_or_nil(pk, ev->has_prev, &ev->prev);
	}
}

/* A body is {watch_id, events: [...]}: the events are encoded behind room
 * for the wrapper (BODY_HDR bytes, every field at its widest form: uint 64
 * and array 32), so the buffer becomes the body without a copy once the
 * wrapper is written in front. */
#define BODY_HDR 31

/* cap: the bytes the body will take at most, when known (0: grow) */
static void body_start(msgpack_sbuffer *sb, size_t cap)
{
	static const char room[BODY_HDR];
	msgpack_sbuffer_init(sb);
	if (cap > BODY_HDR && (sb->data = malloc(cap)))
		sb->alloc = cap;
	msgpack_sbuffer_write(sb, room, sizeof room);
}

/* The most bytes pack_event takes for ev: a kv's fixed part (map, names,
 * str/bin headers, three int64s) is under 100 bytes. */
static size_t event_max(const struct mvcc_event *ev, bool prev)
{
	size_t n = 40 + 100 + ev->kv.key_len + ev->kv.value_len;
	if (prev && ev->has_prev)
		n += 100 + ev->prev.key_len + ev->prev.value_len;
	return n;
}

static bool event_in(const struct mvcc_event *ev, const char *prefix,
    size_t plen, int64_t from)
{
	return ev->kv.mod_rev >= from && ev->kv.key_len >= plen &&
	    !memcmp(ev->kv.key, prefix, plen);
}

static void body_hdr(char *p, int64_t id, size_t n)
{
	uint64_t v = (uint64_t)id;
	uint32_t c = (uint32_t)n;

	p[0] = (char)0x82;
	p[1] = (char)0xa8;
	memcpy(p + 2, "watch_id", 8);
	p[10] = (char)0xcf;
	for (int i = 0; i < 8; i++)
		p[11 + i] = (char)(v >> (56 - 8 * i));
	p[19] = (char)0xa6;
	memcpy(p + 20, "events", 6);
	p[26] = (char)0xdd;
	for (int i = 0; i < 4; i++)
		p[27 + i] = (char)(c >> (24 - 8 * i));
}

/* The body for watcher `id` of the n events in sb (made by body_start).
 * take: sb's buffer becomes the body (sb is left empty); else a copy. */
static kb_body *make_body(int64_t id, size_t n, msgpack_sbuffer *sb, bool take)
{
	char *buf;

	if (!sb->data)
		return NULL; /* body_start could not allocate */
	if (take) {
		buf = sb->data;
		sb->data = NULL;
	} else if ((buf = malloc(sb->size))) {
		memcpy(buf, sb->data, sb->size);
	} else {
		return NULL;
	}
	body_hdr(buf, id, n);
	return kb_body_take(buf, sb->size); /* frees buf when it fails */
}

static void publish(struct watch_hub *h, struct watcher *w, kb_body *b)
{
	int rc;

	if (!b || w->dead) {
		if (b)
			kb_body_unref(b);
		else
			w->dead = true;
		return;
	}
	if ((rc = kb_publish(h->s->ctx, w->topic, b))) {
		kb_body_unref(b);
		w->dead = true;
		kb_warn(h->s->ctx,
		    "dropping a watcher whose topic refuses "
		    "events",
		    "watch_id=%lld topic=%s err=%s", (long long)w->id, w->topic,
		    kb_strerror(rc));
	}
}

static void deliver(struct watch_hub *h, struct watcher *w, kb_body *b)
{
	if (w->live) {
		publish(h, w, b);
		return;
	}
	if (!b)
		return;
	if (w->npend == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 8;
		kb_body **n = realloc(w->pend, cap * sizeof *n);
		if (!n) {
			kb_body_unref(b);
			w->dead = true;
			return;
		}
		w->pend = n;
		w->cap = cap;
	}
	w->pend[w->npend++] = b;
}

static void drop_dead(struct watch_hub *h)
{
	for (struct watcher **pp = &h->list; *pp;) {
		struct watcher *w = *pp;
		if (w->dead && w->live) {
			*pp = w->next;
			h->n--;
			watcher_free(w);
		} else {
			pp = &w->next;
		}
	}
}

struct group {
	const char *prefix;
	size_t plen;
	bool prev;
	size_t n;     /* events encoded */
	size_t users; /* watchers still to be given this group's body */
	msgpack_sbuffer sb;
};

static void encode(struct group *g, const struct mvcc_event *ev, size_t n,
    int64_t from)
{
	msgpack_packer pk;
	size_t cap = BODY_HDR;

	/* sized first: one allocation, no copies as it grows */
	for (size_t i = 0; i < n; i++)
		if (event_in(&ev[i], g->prefix, g->plen, from))
			cap += event_max(&ev[i], g->prev);
	body_start(&g->sb, cap);
	msgpack_packer_init(&pk, &g->sb, msgpack_sbuffer_write);
	g->n = 0;
	g->users = 0;
	for (size_t i = 0; i < n; i++) {
		if (!event_in(&ev[i], g->prefix, g->plen, from))
			continue;
		pack_event(&pk, &ev[i], g->prev);
		g->n++;
	}
}

/* The listener: committer thread, notify lock held. Watchers that share
 * a prefix and prev share one encoding of the batch; the last of them is
 * given its buffer, the others a copy. */
static void on_events(void *arg, const struct mvcc_event *ev, size_t n,
    int64_t rev)
{
	struct watch_hub *h = arg;
	struct group groups[GROUPS_MAX];
	size_t ng = 0;

	if (!h->list || !n)
		return;
	for (struct watcher *w = h->list; w; w = w->next) {
		w->group = -1;
		if (w->dead || w->start > ev[0].kv.mod_rev)
			continue;
		for (size_t i = 0; i < ng && w->group < 0; i++)
			if (groups[i].prev == w->prev &&
			    groups[i].plen == w->plen &&
			    !memcmp(groups[i].prefix, w->prefix, w->plen))
				w->group = (int)i;
		if (w->group < 0 && ng < GROUPS_MAX) {
			struct group *g = &groups[ng];
			g->prefix = w->prefix;
			g->plen = w->plen;
			g->prev = w->prev;
			encode(g, ev, n, 0);
			w->group = (int)ng++;
		}
		if (w->group >= 0)
			groups[w->group].users++;
	}
	for (struct watcher *w = h->list; w; w = w->next) {
		struct group *g, one;

		if (w->dead)
			continue;
		if (w->group >= 0) {
			g = &groups[w->group];
			g->users--;
		} else {
			/* a start in the future, or too many prefixes */
			g = &one;
			one.prefix = w->prefix;
			one.plen = w->plen;
			one.prev = w->prev;
			encode(&one, ev, n, w->start);
		}
		if (g->n)
			deliver(h, w,
			    make_body(w->id, g->n, &g->sb, g->users == 0));
		if (g == &one)
			msgpack_sbuffer_destroy(&one.sb);
	}
	for (size_t i = 0; i < ng; i++)
		msgpack_sbuffer_destroy(&groups[i].sb);
	drop_dead(h);
	(void)rev;
}

struct watch_hub *watch_hub_new(struct slmdb *s)
{
	struct watch_hub *h = calloc(1, sizeof *h);
	if (!h)
		return NULL;
	h->s = s;
	mvcc_set_listener(s->m, on_events, h);
	return h;
}

void watch_hub_free(struct watch_hub *h)
{
	if (!h)
		return;
	while (h->list) {
		struct watcher *w = h->list;
		h->list = w->next;
		watcher_free(w);
	}
	free(h);
}

/* --- registration ------------------------------------------------------- */

struct reg {
	struct watch_hub *h;
	struct watcher *w;
	int64_t asked;   /* the rev asked for (0: from the next write) */
	int64_t reg_rev; /* what the hub had seen when it joined */
	bool found;
};

static void reg_add(void *arg, int64_t rev)
{
	struct reg *r = arg;
	struct watcher *w = r->w;

	r->reg_rev = rev;
	w->id = ++r->h->next_id;
	w->start = r->asked > 0 ? r->asked : rev + 1;
	w->live = w->start > rev;
	w->next = r->h->list;
	r->h->list = w;
	r->h->n++;
}

static void reg_remove(void *arg, int64_t rev)
{
	struct reg *r = arg;
	(void)rev;
	r->found = false;
	for (struct watcher **pp = &r->h->list; *pp; pp = &(*pp)->next) {
		if ((*pp)->id == r->asked) {
			r->w = *pp;
			*pp = r->w->next;
			r->h->n--;
			r->found = true;
			return;
		}
	}
}

static void reg_golive(void *arg, int64_t rev)
{
	struct reg *r = arg;
	struct watcher *w = r->w;
	(void)rev;
	w->live = true;
	for (size_t i = 0; i < w->npend; i++) {
		publish(r->h, w, w->pend[i]);
		w->pend[i] = NULL;
	}
	w->npend = 0;
	drop_dead(r->h);
}

struct replay {
	struct watch_hub *h;
	struct watcher *w;
	msgpack_sbuffer sb;
	msgpack_packer pk;
	size_t n;
};

static void replay_flush(struct replay *rp)
{
	if (!rp->n)
		return;
	publish(rp->h, rp->w, make_body(rp->w->id, rp->n, &rp->sb, true));
	msgpack_sbuffer_destroy(&rp->sb);
	body_start(&rp->sb, 0);
	rp->n = 0;
}

static int replay_event(void *arg, const struct mvcc_event *ev)
{
	struct replay *rp = arg;
	pack_event(&rp->pk, ev, rp->w->prev);
	if (++rp->n >= REPLAY_EVENTS || rp->sb.size >= REPLAY_BYTES)
		replay_flush(rp);
	return rp->w->dead ? KB_ECLOSED : 0;
}

static void reply_registered(kb_msg *req, int64_t id, int64_t rev)
{
	kb_body *b = kb_mp_body("{s:I, s:I}", "watch_id", id, "rev", rev);
	if (!b) {
		kb_reply_err(req, KB_ENOMEM, "out of memory");
		return;
	}
	if (kb_reply(req, b))
		kb_body_unref(b);
}

void watch_handle(struct watch_hub *h, kb_msg *req, const msgpack_object *b)
{
	struct mvcc *m = h->s->m;
	const msgpack_object *o;
	struct watcher *w;
	struct reg r = { .h = h };
	struct mvcc_reader *rd;
	struct replay rp;
	int rc;

	if (!(w = calloc(1, sizeof *w)))
		goto nomem;
	o = kb_mp_key(b, "prefix");
	if (o && o->type != MSGPACK_OBJECT_NIL &&
	    o->type != MSGPACK_OBJECT_STR) {
		kb_reply_err(req, KB_EINVAL, "watch: `prefix` must be a str");
		goto out_free;
	}
	if (o && o->type == MSGPACK_OBJECT_STR) {
		w->plen = o->via.str.size;
		if (!(w->prefix = malloc(w->plen + 1)))
			goto nomem;
		memcpy(w->prefix, o->via.str.ptr, w->plen);
		w->prefix[w->plen] = 0;
	} else if (!(w->prefix = strdup(""))) {
		goto nomem;
	}
	o = kb_mp_key(b, "rev");
	if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    o->via.u64 <= INT64_MAX) {
		r.asked = (int64_t)o->via.u64;
	} else if (o && o->type != MSGPACK_OBJECT_NIL) {
		kb_reply_err(req, KB_EINVAL,
		    "watch: `rev` must be an int >= 0");
		goto out_free;
	}
	o = kb_mp_key(b, "prev");
	if (o && o->type == MSGPACK_OBJECT_BOOLEAN)
		w->prev = o->via.boolean;
	else if (o && o->type != MSGPACK_OBJECT_NIL) {
		kb_reply_err(req, KB_EINVAL, "watch: `prev` must be a bool");
		goto out_free;
	}
	if (!(w->topic = kb_mp_strdup(b, "topic")) || !w->topic[0]) {
		kb_reply_err(req, KB_EINVAL,
		    "watch: `topic` (a non-empty str, "
		    "which the caller has subscribed to) is required");
		goto out_free;
	}

	r.w = w;
	mvcc_locked(m, reg_add, &r);
	if (w->live) {
		reply_registered(req, w->id, r.reg_rev);
		return;
	}
	if ((rc = mvcc_read_begin(m, &rd))) {
		kb_reply_err(req, rc, "watch: %s", kb_strerror(rc));
		goto out_unlink;
	}
	if (w->start <= mvcc_reader_compact_rev(rd)) {
		char msg[96];
		msgpack_sbuffer sb;
		msgpack_packer pk;
		kb_body *eb;

		msgpack_sbuffer_init(&sb);
		msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
		msgpack_pack_map(&pk, 1);
		slmdb_pack_str(&pk, "compact_rev");
		msgpack_pack_int64(&pk, mvcc_reader_compact_rev(rd));
		snprintf(msg, sizeof msg,
		    "watch from revision %lld: compacted "
		    "up to %lld",
		    (long long)w->start,
		    (long long)mvcc_reader_compact_rev(rd));
		mvcc_read_end(rd);
		eb = kb_body_from_sbuf(&sb);
		msgpack_sbuffer_destroy(&sb);
		if (!eb || kb_reply_err_body(req, KB_EEXPIRED, eb, "%s", msg)) {
			if (eb)
				kb_body_unref(eb);
		}
		goto out_unlink;
	}
	reply_registered(req, w->id, r.reg_rev);
	rp.h = h;
	rp.w = w;
	rp.n = 0;
	body_start(&rp.sb, 0);
	msgpack_packer_init(&rp.pk, &rp.sb, msgpack_sbuffer_write);
	rc = mvcc_history(rd, w->prefix, w->plen, w->start, r.reg_rev, w->prev,
	    replay_event, &rp);
	if (!rc)
		replay_flush(&rp);
	msgpack_sbuffer_destroy(&rp.sb);
	mvcc_read_end(rd);
	if (rc && !w->dead) {
		kb_body *eb = kb_mp_body("{s:I, s:{s:s, s:s}}", "watch_id",
		    w->id, "error", "code", "Expired", "message",
		    "the store could not replay history for this watch");
		publish(h, w, eb);
		w->dead = true;
	}
	mvcc_locked(m, reg_golive, &r);
	return;

out_unlink:
	r.asked = w->id;
	mvcc_locked(m, reg_remove, &r);
	watcher_free(w);
	return;
nomem:
	kb_reply_err(req, KB_ENOMEM, "out of memory");
out_free:
	watcher_free(w);
}

void unwatch_handle(struct watch_hub *h, kb_msg *req, const msgpack_object *b)
{
	struct reg r = { .h = h };
	int64_t id;

	if (!kb_mp_int(b, "watch_id", &id)) {
		kb_reply_err(req, KB_EINVAL,
		    "unwatch: `watch_id` (an int) is "
		    "required");
		return;
	}
	r.asked = id;
	mvcc_locked(h->s->m, reg_remove, &r);
	if (!r.found) {
		kb_reply_err(req, KB_ENOTFOUND, "unwatch: no watch %lld",
		    (long long)id);
		return;
	}
	watcher_free(r.w);
	kb_body *e = kb_mp_body("{}");
	if (!e || kb_reply(req, e)) {
		if (e)
			kb_body_unref(e);
	}
}
