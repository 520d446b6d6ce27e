/* sdk/src/body.c — immutable, reference-counted msgpack bodies.
 *
 * A body is encoded once by its sender and shared by every receiver (a
 * publication fanned out to a thousand watchers holds one buffer). The
 * decoded form is made on first use, under a mutex, and shared too.
 *
 * Decoding makes the tree msgpack_unpack makes (the same object types and
 * values; strings, binaries and extensions pointing into the bytes) and
 * refuses what it refuses (a malformed or cut-short value, bytes after it,
 * more than 32 containers open at once), but in one block sized by a first
 * pass over the bytes rather than in a zone's chunks (a zone starts with a
 * 2 KiB chunk and grows by more for a 1 KiB pod).
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

/* msgpack_unpack's stack (MSGPACK_EMBED_STACK_SIZE) */
#define MP_DEPTH 32

/* A map's entries are key, value, key, value… objects in a row. */
static_assert(sizeof(msgpack_object_kv) == 2 * sizeof(msgpack_object),
    "msgpack_object_kv is two objects");

static inline uint64_t be_n(const uint8_t *p, unsigned n)
{
	uint64_t v = 0;
	for (unsigned i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* One value's header at p (`have` bytes readable, at least 1): its size
 * (*hdr), the bytes of payload after it (*pay), for a container the
 * objects it holds (*items, a map's keys and values both) and *cont set.
 * false for 0xc1 or a header cut short. */
static inline bool mp_hdr(const uint8_t *p, size_t have, size_t *hdr,
    uint64_t *pay, uint64_t *items, bool *cont)
{
	uint8_t c = p[0];
	*hdr = 1;
	*pay = 0;
	*items = 0;
	*cont = false;
	if (c <= 0x7f || c >= 0xe0)
		return true;
	if (c <= 0x8f) {
		*items = 2u * (c & 0x0fu);
		*cont = true;
		return true;
	}
	if (c <= 0x9f) {
		*items = c & 0x0fu;
		*cont = true;
		return true;
	}
	if (c <= 0xbf) {
		*pay = c & 0x1fu;
		return true;
	}
	unsigned lb; /* bytes of length after the type byte */
	switch (c) {
	case 0xc0:
	case 0xc2:
	case 0xc3:
		return true;
	case 0xc1:
		return false;
	case 0xca:
		*hdr = 5;
		break;
	case 0xcb:
		*hdr = 9;
		break;
	case 0xcc:
	case 0xd0:
		*hdr = 2;
		break;
	case 0xcd:
	case 0xd1:
		*hdr = 3;
		break;
	case 0xce:
	case 0xd2:
		*hdr = 5;
		break;
	case 0xcf:
	case 0xd3:
		*hdr = 9;
		break;
	case 0xd4: /* fixext 1, 2, 4, 8, 16: a type byte, then the data */
	case 0xd5:
	case 0xd6:
	case 0xd7:
	case 0xd8:
		*hdr = 2;
		*pay = 1u << (c - 0xd4);
		break;
	case 0xc4:
	case 0xc7:
	case 0xd9:
		lb = 1;
		goto sized;
	case 0xc5:
	case 0xc8:
	case 0xda:
	case 0xdc:
	case 0xde:
		lb = 2;
		goto sized;
	case 0xc6:
	case 0xc9:
	case 0xdb:
	case 0xdd:
	case 0xdf:
		lb = 4;
		goto sized;
	default:
		return false;
	}
	return have >= *hdr;
sized:
	if (have < 1 + lb)
		return false;
	uint64_t n = be_n(p + 1, lb);
	*hdr = 1 + lb;
	if (c >= 0xc7 && c <= 0xc9) {
		*hdr += 1; /* the ext's type */
		*pay = n;
	} else if (c == 0xdc || c == 0xdd) {
		*items = n;
		*cont = true;
	} else if (c == 0xde || c == 0xdf) {
		*items = 2 * n;
		*cont = true;
	} else {
		*pay = n;
	}
	return have >= *hdr;
}

size_t kb_mp_scan(const void *data, size_t len, size_t *nodes)
{
	const uint8_t *p = data;
	uint64_t left[MP_DEPTH]; /* objects still to come in each open one */
	unsigned top = 0;
	size_t off = 0, n = 0;
	for (;;) {
		size_t hdr;
		uint64_t pay, items;
		bool cont;
		if (off >= len || !mp_hdr(p + off, len - off, &hdr, &pay,
				      &items, &cont))
			return 0;
		if (cont) {
			/* msgpack_unpack refuses a container, even an empty
			 * one, while MP_DEPTH are open. */
			if (top >= MP_DEPTH)
				return 0;
			off += hdr;
			if (items > 0) {
				/* each object takes a byte at least */
				if (items > len - off)
					return 0;
				n += (size_t)items;
				left[top++] = items;
				continue;
			}
		} else {
			if (pay > len - off - hdr)
				return 0;
			off += hdr + (size_t)pay;
		}
		/* a value is complete: so may be the ones holding it */
		while (top > 0 && --left[top - 1] == 0)
			top--;
		if (top == 0)
			break;
	}
	*nodes = n;
	return off;
}

/* Decode a value kb_mp_scan accepted into *root, its containers' objects
 * laid out from `pool` on. */
static void mp_fill(const uint8_t *p, msgpack_object *root,
    msgpack_object *pool)
{
	struct {
		msgpack_object *at; /* the object being filled */
		uint64_t left;
	} st[MP_DEPTH];
	unsigned top = 0;
	msgpack_object *o = root;
	size_t off = 0;
	for (;;) {
		const uint8_t *v = p + off;
		uint8_t c = v[0];
		size_t hdr;
		uint64_t pay, items;
		bool cont;
		mp_hdr(v, 16, &hdr, &pay, &items, &cont);
		off += hdr + (size_t)pay;
		if (c <= 0x7f) {
			o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
			o->via.u64 = c;
		} else if (c >= 0xe0) {
			o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
			o->via.i64 = (int8_t)c;
		} else if (cont) {
			uint32_t cnt = (uint32_t)(c <= 0x8f || c >= 0xde ?
				items / 2 :
				items);
			if (c <= 0x8f || c >= 0xde) {
				o->type = MSGPACK_OBJECT_MAP;
				o->via.map.size = cnt;
				o->via.map.ptr = (msgpack_object_kv *)(void *)pool;
			} else {
				o->type = MSGPACK_OBJECT_ARRAY;
				o->via.array.size = cnt;
				o->via.array.ptr = pool;
			}
			if (items > 0) {
				st[top].at = pool;
				st[top].left = items;
				top++;
				o = pool;
				pool += items;
				continue;
			}
		} else if (c <= 0xbf || (c >= 0xd9 && c <= 0xdb)) {
			o->type = MSGPACK_OBJECT_STR;
			o->via.str.size = (uint32_t)pay;
			o->via.str.ptr = (const char *)v + hdr;
		} else {
			switch (c) {
			case 0xc0:
				o->type = MSGPACK_OBJECT_NIL;
				break;
			case 0xc2:
			case 0xc3:
				o->type = MSGPACK_OBJECT_BOOLEAN;
				o->via.boolean = c == 0xc3;
				break;
			case 0xc4:
			case 0xc5:
			case 0xc6:
				o->type = MSGPACK_OBJECT_BIN;
				o->via.bin.size = (uint32_t)pay;
				o->via.bin.ptr = (const char *)v + hdr;
				break;
			case 0xca: {
				union {
					uint32_t i;
					float f;
				} m = { .i = (uint32_t)be_n(v + 1, 4) };
				o->type = MSGPACK_OBJECT_FLOAT32;
				o->via.f64 = m.f;
				break;
			}
			case 0xcb: {
				union {
					uint64_t i;
					double f;
				} m = { .i = be_n(v + 1, 8) };
				o->type = MSGPACK_OBJECT_FLOAT64;
				o->via.f64 = m.f;
				break;
			}
			case 0xcc:
			case 0xcd:
			case 0xce:
			case 0xcf:
				o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
				o->via.u64 = be_n(v + 1, (unsigned)hdr - 1);
				break;
			case 0xd0:
			case 0xd1:
			case 0xd2:
			case 0xd3: {
				unsigned nb = (unsigned)hdr - 1;
				uint64_t u = be_n(v + 1, nb);
				int64_t i;
				if (nb < 8 && (u >> (nb * 8 - 1)) & 1)
					u |= ~(uint64_t)0 << (nb * 8);
				memcpy(&i, &u, sizeof(i));
				if (i >= 0) {
					o->type = MSGPACK_OBJECT_POSITIVE_INTEGER;
					o->via.u64 = (uint64_t)i;
				} else {
					o->type = MSGPACK_OBJECT_NEGATIVE_INTEGER;
					o->via.i64 = i;
				}
				break;
			}
			default: /* ext: the type byte ends the header */
				o->type = MSGPACK_OBJECT_EXT;
				o->via.ext.type = (int8_t)v[hdr - 1];
				o->via.ext.size = (uint32_t)pay;
				o->via.ext.ptr = (const char *)v + hdr;
				break;
			}
		}
		/* o is complete: on to the next object to fill */
		while (top > 0 && --st[top - 1].left == 0)
			top--;
		if (top == 0)
			return;
		o = ++st[top - 1].at;
	}
}

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
kb_body *kb_body_new(const void *data, size_t len)
{
	kb_body *b = malloc(sizeof(*b) + (len ? len : 1));
	if (b == NULL)
		return NULL;
	memset(b, 0, sizeof(*b));
	atomic_init(&b->refs, 1);
	atomic_init(&b->decoded, 0);
	b->data = b + 1;
	b->len = len;
	if (len)
		memcpy(b->data, data, len);
	pthread_mutex_init(&b->mu, NULL);
	return b;
}

kb_body *kb_body_new_decoded(const void *data, size_t len, size_t nodes)
{
	/* the body, its tree, then its bytes */
	size_t tree = nodes * sizeof(msgpack_object);
	kb_body *b = malloc(sizeof(*b) + tree + (len ? len : 1));
	if (b == NULL)
		return NULL;
	memset(b, 0, sizeof(*b));
	atomic_init(&b->refs, 1);
	b->data = (char *)(b + 1) + tree;
	b->len = len;
	if (len)
		memcpy(b->data, data, len);
	pthread_mutex_init(&b->mu, NULL);
	mp_fill(b->data, &b->obj, (msgpack_object *)(void *)(b + 1));
	atomic_init(&b->decoded, 1);
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
	free(b->tree);
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
		size_t nodes = 0;
		msgpack_object *pool = NULL;
		/* Exactly one value, nothing after it. */
		d = -1;
		if (kb_mp_scan(b->data, b->len, &nodes) == b->len && b->len &&
		    (nodes == 0 ||
			(pool = malloc(nodes * sizeof(*pool))) != NULL)) {
			mp_fill(b->data, &b->obj, pool);
			b->tree = pool;
			d = 1;
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

/* A hash of all the bytes, 8 at a time in two lanes. */
static uint64_t share_hash(const uint8_t *p, size_t len)
{
	const uint64_t k = 0x9e3779b97f4a7c15ull;
	uint64_t a = len * k, b = ~len;
	size_t i = 0;
	for (; i + 16 <= len; i += 16) {
		uint64_t x, y;
		memcpy(&x, p + i, 8);
		memcpy(&y, p + i + 8, 8);
		a = (a ^ x) * k;
		b = (b ^ y) * 0xff51afd7ed558ccdull;
		a ^= a >> 29;
		b ^= b >> 31;
	}
	for (; i < len; i++)
		a = (a ^ p[i]) * k;
	uint64_t h = a ^ (b * 0xc4ceb9fe1a85ec53ull);
	return h ^ h >> 32;
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

kb_body *kb_body_shared_decoded(const void *p, size_t len, size_t nodes,
    bool *found)
{
	pthread_once(&share_once, share_init);
	uint64_t h = share_hash(p, len);
	uint32_t i = (uint32_t)(h & (SHARE_SLOTS - 1));
	pthread_mutex_t *mu = &share_mu[i % SHARE_LOCKS];
	pthread_mutex_lock(mu);
	kb_body *b = share_find(i, h, p, len);
	pthread_mutex_unlock(mu);
	if (b) {
		*found = true;
		return b;
	}
	b = kb_body_new_decoded(p, len, nodes);
	if (b == NULL)
		return NULL;
	pthread_mutex_lock(mu);
	/* Another thread may have decoded the same bytes meanwhile (two
	 * informers on one event at once): the first one in is shared. */
	kb_body *first = share_find(i, h, p, len);
	if (first == NULL) {
		b->share_slot = i + 1;
		share_tab[i].b = b;
		share_tab[i].h = h;
	}
	pthread_mutex_unlock(mu);
	*found = first != NULL;
	if (first) {
		kb_body_unref(b); /* never in the table */
		return first;
	}
	return b;
}
