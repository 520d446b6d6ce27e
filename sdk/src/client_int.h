/* sdk/src/client_int.h — what the client's files (client.c, informer.c,
 * workqueue.c, leader.c) share and plugins never see: the `api` request
 * builder and a small string-keyed hash map. */
#ifndef KUBUS_SDK_CLIENT_INT_H
#define KUBUS_SDK_CLIENT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <kubus/client.h>
#include <kubus/strmap.h>

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

/* The string map is public now: kubus/strmap.h. */


#endif
