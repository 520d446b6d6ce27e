/* plugins/scheduler/eqcache.c — the equivalence cache's store: per class
 * of equivalent pods (same namespace, labels, annotations, owner
 * references, deletion state and spec, compared as values), per node
 * row, the node generation the row was computed at, the Filter verdict
 * (the reasons, as bits of the class's reason table) and each Score
 * policy's raw score. A few classes per profile, least recently used
 * dropped first. cycle.c decides when a class may be used (every Filter
 * and Score policy node-local) and fills the rows. Scheduling thread only,
 * except the reason table (sp_eq_reason), which Filter parts share. */
#include <stdlib.h>
#include <string.h>

#include <kubus/mp.h>
#include <kubus/strmap.h>

#include "scheduler.h"

struct sp_eqcache *sp_eq_new(size_t nscore)
{
	struct sp_eqcache *q = calloc(1, sizeof(*q));
	if (q == NULL)
		return NULL;
	q->nscore = nscore;
	return q;
}

/* The class's per-row arrays (class_rows makes them). */
static void class_free_rows(struct sp_eqclass *ec)
{
	free(ec->gen);
	free(ec->verdict);
	free(ec->scored);
	free(ec->ptotal);
	free(ec->raw);
	free(ec->fnodes);
	free(ec->frows);
	free(ec->fpos);
	free(ec->ftotal);
	free(ec->pend);
}

static void class_free(struct sp_eqclass *ec)
{
	if (ec == NULL)
		return;
	kb_sched_pod_unref(ec->rep);
	class_free_rows(ec);
	pthread_mutex_destroy(&ec->mu);
	free(ec);
}

void sp_eq_free(struct sp_eqcache *q)
{
	if (q == NULL)
		return;
	for (size_t i = 0; i < q->n; i++)
		class_free(q->v[i]);
	free(q);
}

void sp_eq_drop(struct sp_eqcache *q, struct sp_eqclass *ec)
{
	for (size_t i = 0; i < q->n; i++) {
		if (q->v[i] != ec)
			continue;
		q->v[i] = q->v[--q->n];
		class_free(ec);
		return;
	}
}

/* h and a hash of the bytes, mixed. */
static uint64_t mix_bytes(uint64_t h, const void *data, size_t len)
{
	return (h ^ kb_hash64(data, len)) * 0xff51afd7ed558ccdull;
}

/* A hash of an object's type and value, walked in place (packing it
 * again to hash the bytes cost a buffer write per element). Only
 * compared with hashes made here; equal objects decide. */
static uint64_t mix_obj(uint64_t h, const msgpack_object *o)
{
	h = (h ^ (uint64_t)o->type) * 0x100000001b3ull;
	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		return mix_bytes(h, o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_BIN:
		return mix_bytes(h, o->via.bin.ptr, o->via.bin.size);
	case MSGPACK_OBJECT_EXT:
		h = mix_bytes(h, &o->via.ext.type, 1);
		return mix_bytes(h, o->via.ext.ptr, o->via.ext.size);
	case MSGPACK_OBJECT_ARRAY:
		h = (h ^ o->via.array.size) * 0xff51afd7ed558ccdull;
		for (uint32_t i = 0; i < o->via.array.size; i++)
			h = mix_obj(h, &o->via.array.ptr[i]);
		return h;
	case MSGPACK_OBJECT_MAP:
		h = (h ^ o->via.map.size) * 0xff51afd7ed558ccdull;
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			h = mix_obj(h, &o->via.map.ptr[i].key);
			h = mix_obj(h, &o->via.map.ptr[i].val);
		}
		return h;
	case MSGPACK_OBJECT_BOOLEAN:
		return (h ^ o->via.boolean) * 0xff51afd7ed558ccdull;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return mix_bytes(h, &o->via.f64, sizeof(o->via.f64));
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return mix_bytes(h, &o->via.u64, sizeof(o->via.u64));
	default:
		return h;
	}
}

/* The parts of a pod two pods of one class share (with its namespace):
 * in q->key, and their hash. */
static bool key_parts(struct sp_eqcache *q, const struct kb_sched_pod *pod,
    uint64_t *hash)
{
	if (pod->obj == NULL)
		return false;
	const msgpack_object *meta = kb_mp_key(pod->obj, "metadata");
	q->key[0] = kb_mp_key(meta, "labels");
	q->key[1] = kb_mp_key(meta, "annotations");
	q->key[2] = kb_mp_key(meta, "ownerReferences");
	q->key[3] = kb_mp_key(meta, "deletionTimestamp");
	q->key[4] = kb_mp_key(pod->obj, "spec");
	uint64_t h = mix_bytes(0x9e3779b97f4a7c15ull, pod->ns, strlen(pod->ns));
	for (size_t i = 0; i < 5; i++)
		h = q->key[i] ? mix_obj(h, q->key[i]) :
				(h ^ 0xa5) * 0x100000001b3ull;
	*hash = h ^ h >> 29;
	return true;
}

static bool same_part(const msgpack_object *a, const msgpack_object *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return msgpack_object_equal(*a, *b);
}

/* The pod at hand (its parts in q->key) is of class ec. */
static bool of_class(const struct sp_eqcache *q, const struct sp_eqclass *ec,
    const struct kb_sched_pod *pod)
{
	const struct kb_sched_pod *r = ec->rep;
	if (strcmp(r->ns, pod->ns))
		return false;
	const msgpack_object *meta = kb_mp_key(r->obj, "metadata");
	return same_part(q->key[4], kb_mp_key(r->obj, "spec")) &&
	    same_part(q->key[0], kb_mp_key(meta, "labels")) &&
	    same_part(q->key[1], kb_mp_key(meta, "annotations")) &&
	    same_part(q->key[2], kb_mp_key(meta, "ownerReferences")) &&
	    same_part(q->key[3], kb_mp_key(meta, "deletionTimestamp"));
}

/* Fresh rows: every one to compute. */
static bool class_rows(struct sp_eqclass *ec, size_t n, size_t nscore)
{
	size_t m = n ? n : 1;
	class_free_rows(ec);
	ec->fnodes = calloc(m, sizeof(*ec->fnodes));
	ec->frows = calloc(m, sizeof(*ec->frows));
	ec->fpos = calloc(m, sizeof(*ec->fpos));
	ec->ftotal = calloc(m, sizeof(*ec->ftotal));
	ec->pend = calloc(m, sizeof(*ec->pend));
	ec->lvalid = ec->tvalid = ec->svalid = false;
	ec->npend = 0;
	ec->gen = calloc(m, sizeof(*ec->gen));
	ec->verdict = calloc(m, sizeof(*ec->verdict));
	ec->scored = calloc(m, sizeof(*ec->scored));
	ec->ptotal = calloc(m, sizeof(*ec->ptotal));
	ec->raw = calloc(m * (nscore ? nscore : 1), sizeof(*ec->raw));
	ec->n = n;
	return ec->gen && ec->verdict && ec->scored && ec->ptotal && ec->raw &&
	    ec->fnodes && ec->frows && ec->fpos && ec->ftotal && ec->pend;
}

struct sp_eqclass *sp_eq_class(struct sp_eqcache *q,
    const struct kb_sched_pod *pod, size_t nnodes)
{
	uint64_t h;
	if (!key_parts(q, pod, &h))
		return NULL;
	struct sp_eqclass *ec = NULL;
	for (size_t i = 0; i < q->n; i++) {
		struct sp_eqclass *c = q->v[i];
		if (c->hash == h && of_class(q, c, pod)) {
			ec = c;
			break;
		}
	}
	q->tick++;
	if (ec == NULL) {
		bool seen = false;
		for (size_t i = 0; i < SP_EQ_GHOSTS && !seen; i++)
			seen = q->ghosts[i] == h;
		if (!seen) {
			q->ghosts[q->nghost++ % SP_EQ_GHOSTS] = h;
			return NULL;
		}
		if (q->n == SP_EQ_CLASSES) {
			size_t lru = 0;
			for (size_t i = 1; i < q->n; i++)
				if (q->v[i]->used < q->v[lru]->used)
					lru = i;
			sp_eq_drop(q, q->v[lru]);
			q->evictions++;
		}
		ec = calloc(1, sizeof(*ec));
		if (ec == NULL)
			return NULL;
		pthread_mutex_init(&ec->mu, NULL);
		ec->rep = kb_sched_pod_ref(pod);
		ec->hash = h;
		ec->n = SIZE_MAX;
		q->v[q->n++] = ec;
		q->classes++;
	}
	ec->used = q->tick;
	/* Another snapshot shape: start over. */
	if (ec->n != nnodes && !class_rows(ec, nnodes, q->nscore)) {
		sp_eq_drop(q, ec);
		return NULL;
	}
	return ec;
}

void sp_eq_reset(struct sp_eqclass *ec)
{
	memset(ec->gen, 0, (ec->n ? ec->n : 1) * sizeof(*ec->gen));
	memset(ec->scored, 0, ec->n ? ec->n : 1);
	ec->npend = 0;
	ec->lvalid = ec->tvalid = false;
}

int sp_eq_reason(struct sp_eqclass *ec, const char *text)
{
	int bit = -1;
	pthread_mutex_lock(&ec->mu);
	for (size_t i = 0; i < ec->nreasons; i++) {
		if (!strcmp(ec->reasons[i], text)) {
			bit = (int)i;
			break;
		}
	}
	if (bit < 0 && ec->nreasons < SP_EQ_REASONS) {
		snprintf(ec->reasons[ec->nreasons], KB_SCHED_REASON_MAX, "%s",
		    text);
		bit = (int)ec->nreasons++;
	}
	pthread_mutex_unlock(&ec->mu);
	return bit;
}
