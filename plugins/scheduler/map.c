/* plugins/scheduler/map.c — a chained string-keyed hash map, doubling. */
#include <stdlib.h>
#include <string.h>

#include "scheduler.h"

static uint64_t hash(const char *s)
{
	uint64_t h = 1469598103934665603ULL;
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

static struct sp_ent **find(const struct sp_map *m, const char *key, uint64_t h)
{
	if (m->nb == 0)
		return NULL;
	struct sp_ent **pp = &m->b[h & (m->nb - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && !strcmp((*pp)->key, key))
			return pp;
	return pp;
}

void *sp_map_get(const struct sp_map *m, const char *key)
{
	struct sp_ent **pp = find(m, key, hash(key));
	return pp && *pp ? (*pp)->val : NULL;
}

static int grow(struct sp_map *m)
{
	size_t nb = m->nb ? m->nb * 2 : 64;
	struct sp_ent **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return KB_ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		while (m->b[i]) {
			struct sp_ent *e = m->b[i];
			m->b[i] = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

int sp_map_put(struct sp_map *m, const char *key, void *val, void **old)
{
	uint64_t h = hash(key);
	if (old)
		*old = NULL;
	if ((m->n + 1) * 4 > m->nb * 3 && grow(m))
		return KB_ENOMEM;
	struct sp_ent **pp = find(m, key, h);
	if (*pp) {
		if (old)
			*old = (*pp)->val;
		(*pp)->val = val;
		return 0;
	}
	struct sp_ent *e = calloc(1, sizeof(*e));
	if (e == NULL || (e->key = strdup(key)) == NULL) {
		free(e);
		return KB_ENOMEM;
	}
	e->val = val;
	e->hash = h;
	*pp = e;
	m->n++;
	return 0;
}

void *sp_map_del(struct sp_map *m, const char *key)
{
	struct sp_ent **pp = find(m, key, hash(key));
	if (pp == NULL || *pp == NULL)
		return NULL;
	struct sp_ent *e = *pp;
	void *v = e->val;
	*pp = e->next;
	free(e->key);
	free(e);
	m->n--;
	return v;
}

void sp_map_each(const struct sp_map *m,
    void (*fn)(void *arg, const char *key, void *val), void *arg)
{
	for (size_t i = 0; i < m->nb; i++)
		for (struct sp_ent *e = m->b[i], *next; e; e = next) {
			next = e->next;
			fn(arg, e->key, e->val);
		}
}

void sp_map_clear(struct sp_map *m, void (*free_val)(void *))
{
	for (size_t i = 0; i < m->nb; i++) {
		while (m->b[i]) {
			struct sp_ent *e = m->b[i];
			m->b[i] = e->next;
			if (free_val)
				free_val(e->val);
			free(e->key);
			free(e);
		}
	}
	free(m->b);
	m->b = NULL;
	m->nb = m->n = 0;
}
