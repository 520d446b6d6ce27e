/* plugins/ctrl-gc/index.c — owner uid -> dependent keys, kept by the
 * informers' handlers, so that an owner's dependents are found without
 * scanning every cache. Chained buckets that double past 3/4 load. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>

#include <kubus/strmap.h>

#include "gc.h"

struct dep {
	char *key;
	uint64_t hash;
	struct dep *next;
};

/* An owner's dependents: a set of keys in chained buckets of their own,
 * so that adding the 3,000th pod of a ReplicaSet does not compare it with
 * the 2,999 before it. */
struct owner {
	char *uid;
	uint64_t hash;
	struct dep **deps;
	size_t ndeps, nb;
	struct owner *next;
};

struct gc_index {
	pthread_mutex_t mu;
	struct owner **b;
	size_t nb, n;
};

static void owner_free(struct owner *o)
{
	for (size_t i = 0; i < o->nb; i++) {
		while (o->deps[i]) {
			struct dep *d = o->deps[i];
			o->deps[i] = d->next;
			free(d->key);
			free(d);
		}
	}
	free(o->deps);
	free(o->uid);
	free(o);
}

struct gc_index *gc_index_new(void)
{
	struct gc_index *x = calloc(1, sizeof(*x));
	if (x == NULL)
		return NULL;
	x->nb = 256;
	x->b = calloc(x->nb, sizeof(*x->b));
	if (x->b == NULL) {
		free(x);
		return NULL;
	}
	pthread_mutex_init(&x->mu, NULL);
	return x;
}

void gc_index_free(struct gc_index *x)
{
	if (x == NULL)
		return;
	for (size_t i = 0; i < x->nb; i++) {
		struct owner *o = x->b[i];
		while (o) {
			struct owner *next = o->next;
			owner_free(o);
			o = next;
		}
	}
	free(x->b);
	pthread_mutex_destroy(&x->mu);
	free(x);
}

static void grow(struct gc_index *x)
{
	size_t nb = x->nb * 2;
	struct owner **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < x->nb; i++) {
		while (x->b[i]) {
			struct owner *o = x->b[i];
			x->b[i] = o->next;
			o->next = b[o->hash % nb];
			b[o->hash % nb] = o;
		}
	}
	free(x->b);
	x->b = b;
	x->nb = nb;
}

static struct owner **find(struct gc_index *x, const char *uid, size_t len,
    uint64_t h)
{
	struct owner **pp = &x->b[h % x->nb];
	while (*pp &&
	    !((*pp)->hash == h && strlen((*pp)->uid) == len &&
		!memcmp((*pp)->uid, uid, len)))
		pp = &(*pp)->next;
	return pp;
}

/* Doubles the owner's buckets past one key per bucket; left as they are
 * when memory is short (the chains just get longer). */
static void deps_grow(struct owner *o)
{
	size_t nb = o->nb ? o->nb * 2 : 8;
	struct dep **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return;
	for (size_t i = 0; i < o->nb; i++) {
		while (o->deps[i]) {
			struct dep *d = o->deps[i];
			o->deps[i] = d->next;
			d->next = b[d->hash % nb];
			b[d->hash % nb] = d;
		}
	}
	free(o->deps);
	o->deps = b;
	o->nb = nb;
}

static struct dep **dep_find(struct owner *o, const char *key, uint64_t h)
{
	if (o->nb == 0)
		return NULL;
	struct dep **dp = &o->deps[h % o->nb];
	while (*dp && !((*dp)->hash == h && !strcmp((*dp)->key, key)))
		dp = &(*dp)->next;
	return dp;
}

static void add_dep(struct gc_index *x, const char *uid, size_t len,
    const char *key)
{
	uint64_t h = kb_hash64(uid, len);
	struct owner **pp = find(x, uid, len, h);
	if (*pp == NULL) {
		struct owner *o = calloc(1, sizeof(*o));
		if (o == NULL || (o->uid = strndup(uid, len)) == NULL) {
			free(o);
			return;
		}
		o->hash = h;
		*pp = o;
		if (++x->n > x->nb * 3 / 4) {
			grow(x);
			pp = find(x, uid, len, h);
		}
	}
	struct owner *o = *pp;
	uint64_t kh = kb_hash64(key, strlen(key));
	struct dep **dp = dep_find(o, key, kh);
	if (dp && *dp)
		return;
	if (o->ndeps + 1 > o->nb)
		deps_grow(o);
	if (o->nb == 0)
		return; /* no memory for the first buckets */
	struct dep *d = malloc(sizeof(*d));
	if (d == NULL || (d->key = strdup(key)) == NULL) {
		free(d);
		return;
	}
	d->hash = kh;
	d->next = o->deps[kh % o->nb];
	o->deps[kh % o->nb] = d;
	o->ndeps++;
}

static void del_dep(struct gc_index *x, const char *uid, size_t len,
    const char *key)
{
	struct owner **pp = find(x, uid, len, kb_hash64(uid, len));
	if (*pp == NULL)
		return;
	struct owner *o = *pp;
	struct dep **dp = dep_find(o, key, kb_hash64(key, strlen(key)));
	if (dp && *dp) {
		struct dep *d = *dp;
		*dp = d->next;
		free(d->key);
		free(d);
		o->ndeps--;
	}
	if (o->ndeps == 0) {
		*pp = o->next;
		owner_free(o);
		x->n--;
	}
}

void gc_index_update(struct gc_index *x, const char *key,
    const msgpack_object *obj, bool add)
{
	const msgpack_object *refs = kb_mp_get(obj, "metadata.ownerReferences");
	if (refs == NULL || refs->type != MSGPACK_OBJECT_ARRAY)
		return;
	pthread_mutex_lock(&x->mu);
	for (uint32_t i = 0; i < refs->via.array.size; i++) {
		const char *uid;
		size_t len;
		if (!kb_mp_str(&refs->via.array.ptr[i], "uid", &uid, &len))
			continue;
		if (add)
			add_dep(x, uid, len, key);
		else
			del_dep(x, uid, len, key);
	}
	pthread_mutex_unlock(&x->mu);
}

char **gc_index_dependents(struct gc_index *x, const char *uid, size_t uidlen,
    size_t *n)
{
	*n = 0;
	pthread_mutex_lock(&x->mu);
	struct owner *o = *find(x, uid, uidlen, kb_hash64(uid, uidlen));
	size_t cnt = o ? o->ndeps : 0;
	char **keys = cnt ? calloc(cnt, sizeof(*keys)) : NULL;
	for (size_t i = 0; keys && i < o->nb; i++)
		for (struct dep *d = o->deps[i]; d; d = d->next)
			if ((keys[*n] = strdup(d->key)) != NULL)
				(*n)++;
	pthread_mutex_unlock(&x->mu);
	return keys;
}

void gc_keys_free(char **keys, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(keys[i]);
	free(keys);
}
