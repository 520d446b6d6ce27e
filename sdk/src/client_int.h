/* sdk/src/client_int.h — what the client's files (client.c, informer.c,
 * workqueue.c, leader.c) share and plugins never see: the `api` request
 * builder and a small string-keyed hash map. */
#ifndef KUBUS_SDK_CLIENT_INT_H
#define KUBUS_SDK_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <kubus/client.h>

#include "internal.h"

/* The `api` service's body (plugins/apiserver/busapi.c): every NULL field
 * is left out. `body` is borrowed and goes under `body_key` ("object",
 * "patch", "options"). */
struct kb_api_args {
	const struct kb_gvr *r;
	const char *ns, *name, *sub;
	const char *label_selector, *field_selector;
	const char *resource_version;
	const char *topic;      /* watch */
	const char *patch_type; /* patch */
	const char *body_key;
	kb_body *body;
	int64_t watch_id; /* unwatch, when > 0 */
};

/* Send op to `api` and wait: as the public calls (`out` may be NULL; the
 * error reply lands in it). KB_EINVAL when `body` is not msgpack. */
KB_HIDDEN int kb_api_call(kb_ctx *ctx, const char *op,
    const struct kb_api_args *a, int timeout_ms, kb_msg **out);

/* Monotonic and wall clocks in milliseconds. */
KB_HIDDEN int64_t kb_mono_ms(void);
KB_HIDDEN int64_t kb_wall_ms(void);
/* pthread_cond_timedwait on a CLOCK_MONOTONIC condition until abs_ms
 * (kb_mono_ms() time); < 0 waits without a deadline. */
KB_HIDDEN void kb_cond_init_mono(pthread_cond_t *cv);
KB_HIDDEN int kb_cond_wait_until(pthread_cond_t *cv, pthread_mutex_t *mu,
    int64_t abs_ms);

/* --- a string-keyed hash map (chained, doubling) -------------------------- */

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

KB_HIDDEN void *kb_strmap_get(const struct kb_strmap *m, const char *key);
/* Insert or replace; the key is copied. *old (may be NULL) gets the value
 * replaced, or NULL. KB_ENOMEM leaves the map as it was. */
KB_HIDDEN int kb_strmap_put(struct kb_strmap *m, const char *key, void *val,
    void **old);
/* Remove; the value, or NULL when absent. */
KB_HIDDEN void *kb_strmap_del(struct kb_strmap *m, const char *key);
/* Visit every entry (the map must not change meanwhile). */
KB_HIDDEN void kb_strmap_each(const struct kb_strmap *m,
    void (*fn)(void *arg, const char *key, void *val), void *arg);
/* Empty the map, calling free_val (may be NULL) on each value. */
KB_HIDDEN void kb_strmap_clear(struct kb_strmap *m, void (*free_val)(void *));

#endif
