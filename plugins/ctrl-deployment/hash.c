/* plugins/ctrl-deployment/hash.c — the pod-template-hash: FNV-32a over a
 * canonical form of the template (map keys sorted, so the order fields
 * arrive in does not matter), rendered with Kubernetes' SafeEncodeString
 * alphabet (no vowels, no 0/1/3: never a word, never ambiguous). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dc.h"

static void fnv(uint32_t *h, const void *p, size_t n)
{
	const unsigned char *c = p;
	for (size_t i = 0; i < n; i++) {
		*h ^= c[i];
		*h *= 16777619u;
	}
}

static int key_cmp(const void *a, const void *b)
{
	const msgpack_object_kv *x = *(const msgpack_object_kv *const *)a;
	const msgpack_object_kv *y = *(const msgpack_object_kv *const *)b;
	if (x->key.type != MSGPACK_OBJECT_STR ||
	    y->key.type != MSGPACK_OBJECT_STR)
		return (int)x->key.type - (int)y->key.type;
	size_t n = x->key.via.str.size < y->key.via.str.size ?
	    x->key.via.str.size :
	    y->key.via.str.size;
	int c = memcmp(x->key.via.str.ptr, y->key.via.str.ptr, n);
	if (c)
		return c;
	return x->key.via.str.size < y->key.via.str.size ? -1 :
	    x->key.via.str.size > y->key.via.str.size    ? 1 :
							   0;
}

static void hash_obj(uint32_t *h, const msgpack_object *o)
{
	char buf[32];
	int n;
	switch (o->type) {
	case MSGPACK_OBJECT_MAP: {
		uint32_t sz = o->via.map.size;
		const msgpack_object_kv **kv =
		    malloc((sz ? sz : 1) * sizeof(*kv));
		if (kv == NULL)
			return;
		for (uint32_t i = 0; i < sz; i++)
			kv[i] = &o->via.map.ptr[i];
		qsort(kv, sz, sizeof(*kv), key_cmp);
		fnv(h, "{", 1);
		for (uint32_t i = 0; i < sz; i++) {
			hash_obj(h, &kv[i]->key);
			fnv(h, ":", 1);
			hash_obj(h, &kv[i]->val);
			fnv(h, ",", 1);
		}
		fnv(h, "}", 1);
		free(kv);
		return;
	}
	case MSGPACK_OBJECT_ARRAY:
		fnv(h, "[", 1);
		for (uint32_t i = 0; i < o->via.array.size; i++) {
			hash_obj(h, &o->via.array.ptr[i]);
			fnv(h, ",", 1);
		}
		fnv(h, "]", 1);
		return;
	case MSGPACK_OBJECT_STR:
		n = snprintf(buf, sizeof(buf), "s%u:", o->via.str.size);
		fnv(h, buf, (size_t)n);
		fnv(h, o->via.str.ptr, o->via.str.size);
		return;
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		n = snprintf(buf, sizeof(buf), "i%llu",
		    (unsigned long long)o->via.u64);
		break;
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		n = snprintf(buf, sizeof(buf), "i%lld", (long long)o->via.i64);
		break;
	case MSGPACK_OBJECT_BOOLEAN:
		n = snprintf(buf, sizeof(buf), "%s",
		    o->via.boolean ? "true" : "false");
		break;
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		n = snprintf(buf, sizeof(buf), "f%.17g", o->via.f64);
		break;
	default:
		n = snprintf(buf, sizeof(buf), "nil");
		break;
	}
	fnv(h, buf, (size_t)n);
}

void dc_template_hash(const msgpack_object *tmpl, int64_t collisions, char *buf,
    size_t len)
{
	static const char alnum[] = "bcdfghjklmnpqrstvwxz2456789";
	uint32_t h = 2166136261u;
	kb_body *clean =
	    ctrl_obj_set(tmpl, "metadata.labels." DC_HASH_LABEL, NULL, 0);
	if (clean && kb_body_obj(clean))
		hash_obj(&h, kb_body_obj(clean));
	if (clean)
		kb_body_unref(clean);
	if (collisions > 0) {
		char c[32];
		int n = snprintf(c, sizeof(c), "%lld", (long long)collisions);
		fnv(&h, c, (size_t)n);
	}
	char dec[16];
	snprintf(dec, sizeof(dec), "%u", h);
	size_t i;
	for (i = 0; dec[i] && i + 1 < len; i++)
		buf[i] = alnum[(unsigned char)dec[i] % (sizeof(alnum) - 1)];
	buf[i] = '\0';
}
