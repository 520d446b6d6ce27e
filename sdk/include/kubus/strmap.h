/* kubus/strmap.h — a small string-keyed hash map (FNV-1a, chained buckets,
 * doubling at load 1). Not thread-safe: its owner locks. Zero-initialise a
 * struct kb_strmap to get an empty map. */
#ifndef KUBUS_STRMAP_H
#define KUBUS_STRMAP_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct kb_strent {
	char *key;
	void *val;
	uint64_t hash;
	struct kb_strent *next;
};

struct kb_strmap {
	struct kb_strent **b;
	size_t nb, n;
};

/* A 64-bit hash of n bytes (not cryptographic, not stable across
 * builds or machines: for in-memory tables only): the map's own, for
 * callers that key their own tables by bytes. */
uint64_t kb_hash64(const void *p, size_t n);

void *kb_strmap_get(const struct kb_strmap *m, const char *key);
/* Insert or replace; the key is copied. *old (may be NULL) gets the value
 * replaced, or NULL. KB_ENOMEM leaves the map as it was. */
int kb_strmap_put(struct kb_strmap *m, const char *key, void *val,
    void **old);
/* Remove; the value, or NULL when absent. */
void *kb_strmap_del(struct kb_strmap *m, const char *key);
/* Visit every entry (the map must not change meanwhile). */
void kb_strmap_each(const struct kb_strmap *m,
    void (*fn)(void *arg, const char *key, void *val), void *arg);
/* Empty the map, calling free_val (may be NULL) on each value. */
void kb_strmap_clear(struct kb_strmap *m, void (*free_val)(void *));

#ifdef __cplusplus
}
#endif
#endif
