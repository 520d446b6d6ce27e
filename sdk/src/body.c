/* sdk/src/body.c — immutable, reference-counted msgpack bodies.
 *
 * A body is encoded once by its sender and shared by every receiver (a
 * publication fanned out to a thousand watchers holds one buffer). The
 * decoded form is made on first use, under a mutex, and shared too.
 *
 * msgpack_unpack decodes into a zone whose first chunk is sized from the
 * body's length, so that a pod's tree takes one chunk, not a fixed 2 KiB
 * one and then more.
 */
#include <stdlib.h>
#include <string.h>

#include <kubus/strmap.h>

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

/* The body and its bytes in one block (free_fn NULL). */
kb_body *kb_body_alloc(size_t len, void **data)
{
	kb_body *b = malloc(sizeof(*b) + (len ? len : 1));
	if (b == NULL)
		return NULL;
	memset(b, 0, sizeof(*b));
	atomic_init(&b->refs, 1);
	atomic_init(&b->decoded, 0);
	b->data = b + 1;
	b->len = len;
	pthread_mutex_init(&b->mu, NULL);
	*data = b->data;
	return b;
}

kb_body *kb_body_new(const void *data, size_t len)
{
	void *p;
	kb_body *b = kb_body_alloc(len, &p);
	if (b && len)
		memcpy(p, data, len);
	return b;
}

kb_body *kb_body_new_decoded(const void *data, size_t len)
{
	kb_body *b = kb_body_new(data, len);
	if (b)
		kb_body_obj(b);
	return b;
}

kb_body *kb_body_from_sbuf(msgpack_sbuffer *sb)
{
	kb_body *b;
	/* An sbuffer starts at 8 KiB and doubles: a body that would keep
	 * much more than it holds (a 1 KiB object in 8 KiB, for as long as a
	 * cache keeps it) is copied into a block of its size instead. */
	if (sb->data && sb->alloc - sb->size > 1024 + sb->size / 4) {
		b = kb_body_new(sb->data, sb->size);
		if (b == NULL)
			return NULL;
		free(sb->data);
	} else {
		b = body_alloc(sb->data, sb->size, free);
		if (b == NULL)
			return NULL;
	}
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

static void share_forget(kb_body *b);

void kb_body_unref(kb_body *b)
{
	if (b == NULL ||
	    atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) != 1)
		return;
	if (b->share_slot)
		share_forget(b);
	if (atomic_load_explicit(&b->decoded, memory_order_relaxed) == 1)
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
		/* A tree takes at most a msgpack_object (24 bytes) per byte,
		 * objects like pods about three bytes per byte. */
		msgpack_zone_init(&b->zone, 3 * b->len + 256);
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

/* --- bodies shared by their bytes ---------------------------------------------
 * Every informer of a process that watches pods gets each pod's new
 * version (the controllers', the scheduler's, a kubelet's): the same bytes,
 * which each decoded into a copy of its own. A table of the bodies made
 * here, by a hash of their bytes, lets the second one take a reference to
 * the first one's instead. The table holds no reference: a body leaves it
 * as it is freed (share_forget, under the slot's lock, before the memory
 * goes), and a lookup takes a reference only while the count is not yet
 * 0. A slot holds the latest body that hashed to it. */

#define SHARE_SLOTS 4096u
#define SHARE_LOCKS 64u

static struct {
	kb_body *b;
	uint64_t h;
} share_tab[SHARE_SLOTS];
static pthread_mutex_t share_mu[SHARE_LOCKS];
static pthread_once_t share_once = PTHREAD_ONCE_INIT;

static void share_init(void)
{
	for (unsigned i = 0; i < SHARE_LOCKS; i++)
		pthread_mutex_init(&share_mu[i], NULL);
}

static bool ref_if_live(kb_body *b)
{
	int r = atomic_load_explicit(&b->refs, memory_order_relaxed);
	while (r > 0 &&
	    !atomic_compare_exchange_weak_explicit(&b->refs, &r, r + 1,
		memory_order_acq_rel, memory_order_relaxed))
		;
	return r > 0;
}

/* Slot i's body when it holds these bytes and is not being freed: a new
 * reference. Under the slot's lock (its memory stays while the lock is
 * held: share_forget waits for it). */
static kb_body *share_find(uint32_t i, uint64_t h, const void *p, size_t len)
{
	kb_body *b = share_tab[i].b;
	if (b && share_tab[i].h == h && b->len == len &&
	    memcmp(b->data, p, len) == 0 && ref_if_live(b))
		return b;
	return NULL;
}

static void share_forget(kb_body *b)
{
	uint32_t i = b->share_slot - 1;
	pthread_mutex_t *mu = &share_mu[i % SHARE_LOCKS];
	pthread_mutex_lock(mu);
	if (share_tab[i].b == b)
		share_tab[i].b = NULL;
	pthread_mutex_unlock(mu);
}

kb_body *kb_body_shared_decoded(const void *p, size_t len, bool *found)
{
	pthread_once(&share_once, share_init);
	uint64_t h = kb_hash64(p, len);
	uint32_t i = (uint32_t)(h & (SHARE_SLOTS - 1));
	pthread_mutex_t *mu = &share_mu[i % SHARE_LOCKS];
	pthread_mutex_lock(mu);
	kb_body *b = share_find(i, h, p, len);
	pthread_mutex_unlock(mu);
	if (b == NULL) {
		/* In the table before it is decoded: informers get an event
		 * at the same moment, and one that finds it here waits in
		 * kb_body_obj for this decoding rather than making its own. */
		kb_body *mine = kb_body_new(p, len);
		if (mine == NULL)
			return NULL;
		pthread_mutex_lock(mu);
		b = share_find(i, h, p, len);
		if (b == NULL) {
			mine->share_slot = i + 1;
			share_tab[i].b = mine;
			share_tab[i].h = h;
		}
		pthread_mutex_unlock(mu);
		*found = b != NULL;
		if (b)
			kb_body_unref(mine); /* never in the table */
		else
			b = mine;
	} else {
		*found = true;
	}
	kb_body_obj(b);
	return b;
}
