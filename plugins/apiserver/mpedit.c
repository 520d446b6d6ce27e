/* plugins/apiserver/mpedit.c — edits of a msgpack object, packed again
 * with msgpack-c (see mpedit.h). */
#include <string.h>

#include <kubus/kubus.h>

#include "mpedit.h"

struct comp {
	const char *p;
	size_t n;
};

struct path {
	const struct mpe_edit *e;
	struct comp c[MPE_MAX_DEPTH];
	int depth; /* keys in the path */
};

bool mpe_str(const msgpack_object *o, const char **s, size_t *len)
{
	if (o == NULL || (o->type != MSGPACK_OBJECT_STR && o->type != MSGPACK_OBJECT_BIN))
		return false;
	*s = o->via.str.size ? o->via.str.ptr : "";
	*len = o->via.str.size;
	return true;
}

msgpack_object mpe_cstr(const char *s)
{
	msgpack_object o = { .type = MSGPACK_OBJECT_STR };
	o.via.str.ptr = s;
	o.via.str.size = (uint32_t)strlen(s);
	return o;
}

const msgpack_object *mpe_key(const msgpack_object *map, const char *key)
{
	return map && map->type == MSGPACK_OBJECT_MAP ? kb_mp_key(map, key) : NULL;
}

bool mpe_str_is(const msgpack_object *o, const char *want)
{
	const char *s;
	size_t n;
	return mpe_str(o, &s, &n) && n == strlen(want) && !memcmp(s, want, n);
}

bool mpe_int(const msgpack_object *o, int64_t *v)
{
	if (o && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= (uint64_t)INT64_MAX) {
		*v = (int64_t)o->via.u64;
		return true;
	}
	if (o && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*v = o->via.i64;
		return true;
	}
	return false;
}

bool mpe_drop_rv(msgpack_object *md)
{
	const char *k;
	size_t n;
	if (md == NULL || md->type != MSGPACK_OBJECT_MAP || md->via.map.size == 0 ||
	    !mpe_str(&md->via.map.ptr[md->via.map.size - 1].key, &k, &n) ||
	    n != 15 || memcmp(k, "resourceVersion", 15))
		return false;
	md->via.map.size--;
	return true;
}

static bool comp_is(const struct comp *c, const msgpack_object *key)
{
	const char *s;
	size_t n;
	return mpe_str(key, &s, &n) && n == c->n && !memcmp(s, c->p, n);
}

/* The map's value for a key (the first one), NULL if none. */
static const msgpack_object *map_get(const msgpack_object *map, const char *k, size_t n)
{
	struct comp c = { k, n };
	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	for (uint32_t i = 0; i < map->via.map.size; i++)
		if (comp_is(&c, &map->via.map.ptr[i].key))
			return &map->via.map.ptr[i].val;
	return NULL;
}

static bool same_key(const msgpack_object *elem, const char *match, const char *want,
    size_t wn)
{
	const char *s;
	size_t n;
	return elem->type == MSGPACK_OBJECT_MAP &&
	    mpe_str(map_get(elem, match, strlen(match)), &s, &n) && n == wn &&
	    !memcmp(s, want, n);
}

static int upsert(msgpack_packer *pk, const msgpack_object *arr, const struct mpe_edit *e)
{
	const char *want;
	size_t wn;
	if (e->match == NULL || e->value->type != MSGPACK_OBJECT_MAP ||
	    !mpe_str(map_get(e->value, e->match, strlen(e->match)), &want, &wn))
		return KB_EINVAL;
	size_t keep = 0;
	bool is_arr = arr && arr->type == MSGPACK_OBJECT_ARRAY;
	for (uint32_t i = 0; is_arr && i < arr->via.array.size; i++)
		keep += !same_key(&arr->via.array.ptr[i], e->match, want, wn);
	if (msgpack_pack_array(pk, keep + 1))
		return KB_ENOMEM;
	for (uint32_t i = 0; is_arr && i < arr->via.array.size; i++) {
		const msgpack_object *el = &arr->via.array.ptr[i];
		if (!same_key(el, e->match, want, wn) && msgpack_pack_object(pk, *el))
			return KB_ENOMEM;
	}
	return msgpack_pack_object(pk, *e->value) ? KB_ENOMEM : 0;
}

/* Pack obj (NULL: absent) with the edits in ps[idx[0..m)] applied; their
 * first `depth` keys led here. */
static int pack_at(msgpack_packer *pk, const msgpack_object *obj, const struct path *ps,
    const size_t *idx, size_t m, int depth)
{
	for (size_t i = 0; i < m; i++) {
		const struct path *p = &ps[idx[i]];
		if (p->depth != depth)
			continue;
		if (m != 1)
			return KB_EINVAL; /* one edit's path is a prefix of another's */
		if (p->e->op == MPE_UPSERT)
			return upsert(pk, obj, p->e);
		return msgpack_pack_object(pk, *p->e->value) ? KB_ENOMEM : 0;
	}
	if (obj && obj->type != MSGPACK_OBJECT_MAP)
		return KB_EINVAL;
	uint32_t size = obj ? obj->via.map.size : 0;
	/* The keys the edits add: the first edit naming each. */
	size_t add[MPE_MAX_EDITS], nadd = 0;
	for (size_t i = 0; i < m; i++) {
		const struct comp *c = &ps[idx[i]].c[depth];
		bool seen = map_get(obj, c->p, c->n) != NULL;
		for (size_t j = 0; j < nadd && !seen; j++) {
			const struct comp *o = &ps[add[j]].c[depth];
			seen = o->n == c->n && !memcmp(o->p, c->p, c->n);
		}
		if (!seen)
			add[nadd++] = idx[i];
	}
	if (msgpack_pack_map(pk, size + nadd))
		return KB_ENOMEM;
	size_t sub[MPE_MAX_EDITS], ns;
	int rc;
	for (uint32_t k = 0; k < size; k++) {
		const msgpack_object_kv *kv = &obj->via.map.ptr[k];
		ns = 0;
		for (size_t i = 0; i < m; i++)
			if (comp_is(&ps[idx[i]].c[depth], &kv->key))
				sub[ns++] = idx[i];
		if (msgpack_pack_object(pk, kv->key))
			return KB_ENOMEM;
		if (ns == 0)
			rc = msgpack_pack_object(pk, kv->val) ? KB_ENOMEM : 0;
		else
			rc = pack_at(pk, &kv->val, ps, sub, ns, depth + 1);
		if (rc)
			return rc;
	}
	for (size_t j = 0; j < nadd; j++) {
		const struct comp *c = &ps[add[j]].c[depth];
		ns = 0;
		for (size_t i = 0; i < m; i++) {
			const struct comp *o = &ps[idx[i]].c[depth];
			if (o->n == c->n && !memcmp(o->p, c->p, c->n))
				sub[ns++] = idx[i];
		}
		if (msgpack_pack_str_with_body(pk, c->p, c->n))
			return KB_ENOMEM;
		if ((rc = pack_at(pk, NULL, ps, sub, ns, depth + 1)) != 0)
			return rc;
	}
	return 0;
}

int mpe_pack(msgpack_packer *pk, const msgpack_object *obj,
    const struct mpe_edit *edits, size_t n)
{
	struct path ps[MPE_MAX_EDITS];
	size_t idx[MPE_MAX_EDITS];
	if (obj == NULL || obj->type != MSGPACK_OBJECT_MAP || n > MPE_MAX_EDITS)
		return KB_EINVAL;
	for (size_t i = 0; i < n; i++) {
		const char *s = edits[i].path;
		ps[i].e = &edits[i];
		ps[i].depth = 0;
		if (s == NULL || *s == '\0' || edits[i].value == NULL)
			return KB_EINVAL;
		for (;;) {
			size_t len = strcspn(s, ".");
			if (len == 0 || ps[i].depth == MPE_MAX_DEPTH)
				return KB_EINVAL;
			ps[i].c[ps[i].depth++] = (struct comp){ s, len };
			if (s[len] == '\0')
				break;
			s += len + 1;
		}
		idx[i] = i;
	}
	return pack_at(pk, obj, ps, idx, n, 0);
}
