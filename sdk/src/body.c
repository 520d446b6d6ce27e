/* sdk/src/body.c — immutable, reference-counted msgpack bodies.
 *
 * A body is encoded once by its sender and shared by every receiver (a
 * publication fanned out to a thousand watchers holds one buffer). The
 * decoded form is made on first use, under a mutex, and shared too.
 */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

static kb_body *body_alloc(void *data, size_t len, void (*free_fn)(void *))
{
	kb_body *b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	atomic_init(&b->refs, 1);
	atomic_init(&b->decoded, 0);
	b->data = data;
	b->len = len;
	b->free_fn = free_fn;
	pthread_mutex_init(&b->mu, NULL);
	return b;
}

kb_body *kb_body_take(void *data, size_t len)
{
	kb_body *b = body_alloc(data, len, free);
	if (b == NULL)
		free(data);
	return b;
}

kb_body *kb_body_new(const void *data, size_t len)
{
	void *copy = malloc(len ? len : 1);
	if (copy == NULL)
		return NULL;
	if (len)
		memcpy(copy, data, len);
	return kb_body_take(copy, len);
}

kb_body *kb_body_from_sbuf(msgpack_sbuffer *sb)
{
	kb_body *b = body_alloc(sb->data, sb->size, free);
	if (b == NULL)
		return NULL;
	sb->data = NULL;
	sb->size = 0;
	sb->alloc = 0;
	return b;
}

kb_body *kb_body_nil(void)
{
	static const unsigned char nil = 0xc0;
	return kb_body_new(&nil, 1);
}

kb_body *kb_body_ref(kb_body *b)
{
	if (b)
		atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

void kb_body_unref(kb_body *b)
{
	if (b == NULL ||
	    atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (atomic_load(&b->decoded) == 1)
		msgpack_zone_destroy(&b->zone);
	if (b->free_fn)
		b->free_fn(b->data);
	pthread_mutex_destroy(&b->mu);
	free(b);
}

const void *kb_body_data(const kb_body *b, size_t *len)
{
	if (len)
		*len = b ? b->len : 0;
	return b ? b->data : NULL;
}

const msgpack_object *kb_body_obj(kb_body *b)
{
	if (b == NULL)
		return NULL;
	int d = atomic_load_explicit(&b->decoded, memory_order_acquire);
	if (d != 0)
		return d == 1 ? &b->obj : NULL;
	pthread_mutex_lock(&b->mu);
	d = atomic_load_explicit(&b->decoded, memory_order_relaxed);
	if (d == 0) {
		size_t off = 0;
		msgpack_zone_init(&b->zone, 2048);
		msgpack_unpack_return r = msgpack_unpack(b->data, b->len, &off,
		    &b->zone, &b->obj);
		/* Exactly one value, nothing after it. */
		if (r == MSGPACK_UNPACK_SUCCESS && off == b->len) {
			d = 1;
		} else {
			msgpack_zone_destroy(&b->zone);
			d = -1;
		}
		atomic_store_explicit(&b->decoded, d, memory_order_release);
	}
	pthread_mutex_unlock(&b->mu);
	return d == 1 ? &b->obj : NULL;
}
