/* sdk/src/strmap.c — a small string-keyed hash map for the client's caches
 * and queues (kb_hash64, chained buckets, doubling at load 1). Not
 * thread-safe: its owners lock. */
#include <stdlib.h>
#include <string.h>

#include "client_int.h"

/* 16 bytes a step in two lanes, the tail as one word, then a final mix
 * so that the low bits a table indexes by depend on every byte. FNV-1a,
 * a multiply per byte, was 2-3 % of a busy control plane's instructions
 * (cache keys, queue keys, the decoded-body table). */
uint64_t kb_hash64(const void *data, size_t n)
{
	const unsigned char *p = data;
	const uint64_t k1 = 0x9e3779b97f4a7c15ull, k2 = 0xff51afd7ed558ccdull;
	uint64_t a = n * k1, b = ~n, x, y;
	size_t i = 0;
	for (; i + 16 <= n; i += 16) {
		memcpy(&x, p + i, 8);
		memcpy(&y, p + i + 8, 8);
		a = (a ^ x) * k1;
		b = (b ^ y) * k2;
		a ^= a >> 29;
		b ^= b >> 31;
	}
	if (i + 8 <= n) {
		memcpy(&x, p + i, 8);
		a = (a ^ x) * k1;
		a ^= a >> 29;
		i += 8;
	}
	if (i < n) {
		y = 0;
		memcpy(&y, p + i, n - i);
		b = (b ^ y) * k2;
		b ^= b >> 31;
	}
	uint64_t h = a ^ (b * 0xc4ceb9fe1a85ec53ull);
	h ^= h >> 32;
	h *= k1;
	return h ^ h >> 29;
}

static uint64_t str_hash(const char *s)
{
	return kb_hash64(s, strlen(s));
}

static struct kb_strent **slot(const struct kb_strmap *m, const char *key,
    uint64_t h)
{
	struct kb_strent **pp = &m->b[h & (m->nb - 1)];
	for (; *pp; pp = &(*pp)->next)
		if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
			break;
	return pp;
}

void *kb_strmap_get(const struct kb_strmap *m, const char *key)
{
	if (m->n == 0)
		return NULL;
	struct kb_strent *e = *slot(m, key, str_hash(key));
	return e ? e->val : NULL;
}

static int grow(struct kb_strmap *m)
{
	size_t nb = m->nb ? m->nb * 2 : 16;
	struct kb_strent **b = calloc(nb, sizeof(*b));
	if (b == NULL)
		return KB_ENOMEM;
	for (size_t i = 0; i < m->nb; i++) {
		for (struct kb_strent *e = m->b[i], *next; e; e = next) {
			next = e->next;
			e->next = b[e->hash & (nb - 1)];
			b[e->hash & (nb - 1)] = e;
		}
	}
	free(m->b);
	m->b = b;
	m->nb = nb;
	return 0;
}

int kb_strmap_put(struct kb_strmap *m, const char *key, void *val, void **old)
{
	uint64_t h = str_hash(key);
	if (old)
		*old = NULL;
	if (m->nb) {
		struct kb_strent *e = *slot(m, key, h);
		if (e) {
			if (old)
				*old = e->val;
			e->val = val;
			return 0;
		}
	}
	if (m->n >= m->nb && grow(m) != 0 && m->nb == 0)
		return KB_ENOMEM;
	struct kb_strent *e = malloc(sizeof(*e));
	if (e == NULL || (e->key = strdup(key)) == NULL) {
		free(e);
		return KB_ENOMEM;
	}
	e->val = val;
	e->hash = h;
	struct kb_strent **head = &m->b[h & (m->nb - 1)];
	e->next = *head;
	*head = e;
	m->n++;
	return 0;
}

void *kb_strmap_del(struct kb_strmap *m, const char *key)
{
	if (m->n == 0)
		return NULL;
	struct kb_strent **pp = slot(m, key, str_hash(key));
	struct kb_strent *e = *pp;
	if (e == NULL)
		return NULL;
	void *val = e->val;
	*pp = e->next;
	free(e->key);
	free(e);
	m->n--;
	return val;
}

void kb_strmap_each(const struct kb_strmap *m,
    void (*fn)(void *arg, const char *key, void *val), void *arg)
{
	for (size_t i = 0; i < m->nb; i++)
		for (struct kb_strent *e = m->b[i]; e; e = e->next)
			fn(arg, e->key, e->val);
}

void kb_strmap_clear(struct kb_strmap *m, void (*free_val)(void *))
{
	for (size_t i = 0; i < m->nb; i++) {
		for (struct kb_strent *e = m->b[i], *next; e; e = next) {
			next = e->next;
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
