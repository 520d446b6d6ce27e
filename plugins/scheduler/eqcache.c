/* plugins/scheduler/eqcache.c — the equivalence cache's store: per class
 * of equivalent pods (same namespace, labels, annotations, owner
 * references, deletion state and spec, compared byte for byte), per node
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
	msgpack_sbuffer_init(&q->key);
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
	free(ec->key);
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
	msgpack_sbuffer_destroy(&q->key);
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

static void pack_at(msgpack_packer *pk, const msgpack_object *obj,
    const char *path)
{
	const msgpack_object *o = kb_mp_get(obj, path);
	if (o)
		msgpack_pack_object(pk, *o);
	else
		msgpack_pack_nil(pk);
}

/* A hash of a class key, 8 bytes at a time (a pod's spec is most of a
 * kilobyte: kb_hash64 goes a byte at a time). Only compared with hashes
 * made here; the key's bytes decide. */
static uint64_t key_hash(const void *data, size_t len)
{
	const unsigned char *p = data;
	uint64_t h = 0x9e3779b97f4a7c15ull ^ len;
	size_t i = 0;
	for (; i + 8 <= len; i += 8) {
		uint64_t w;
		memcpy(&w, p + i, 8);
		h = (h ^ w) * 0xff51afd7ed558ccdull;
		h ^= h >> 32;
	}
	for (; i < len; i++)
		h = (h ^ p[i]) * 0x100000001b3ull;
	return h ^ h >> 29;
}

/* The bytes two pods of one class share. */
static bool build_key(struct sp_eqcache *q, const struct kb_sched_pod *pod)
{
	if (pod->obj == NULL)
		return false;
	msgpack_sbuffer_clear(&q->key);
	msgpack_packer pk;
	msgpack_packer_init(&pk, &q->key, msgpack_sbuffer_write);
	size_t nl = strlen(pod->ns);
	msgpack_pack_str(&pk, nl);
	msgpack_pack_str_body(&pk, pod->ns, nl);
	pack_at(&pk, pod->obj, "metadata.labels");
	pack_at(&pk, pod->obj, "metadata.annotations");
	pack_at(&pk, pod->obj, "metadata.ownerReferences");
	pack_at(&pk, pod->obj, "metadata.deletionTimestamp");
	pack_at(&pk, pod->obj, "spec");
	return q->key.data != NULL;
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
	if (!build_key(q, pod))
		return NULL;
	uint64_t h = key_hash(q->key.data, q->key.size);
	struct sp_eqclass *ec = NULL;
	for (size_t i = 0; i < q->n; i++) {
		struct sp_eqclass *c = q->v[i];
		if (c->hash == h && c->keylen == q->key.size &&
		    !memcmp(c->key, q->key.data, c->keylen)) {
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
		if (ec == NULL || (ec->key = malloc(q->key.size)) == NULL) {
			free(ec);
			return NULL;
		}
		pthread_mutex_init(&ec->mu, NULL);
		memcpy(ec->key, q->key.data, q->key.size);
		ec->keylen = q->key.size;
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
