/* sdk/src/sched.c — what kubus/sched.h promises policy authors: pods and
 * nodes parsed once into typed structs, Kubernetes' matching rules
 * (tolerations, node selector terms, quantities), the cycle-state store and
 * filter statuses. */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <kubus/client.h>
#include <kubus/sched.h>

#include "internal.h"

/* --- statuses ----------------------------------------------------------------- */

/* kb_sched_reject keeps KB_SCHED_REASONS_MAX reasons; kb_sched_reason_bit
 * (batch filters) up to KB_SCHED_REASON_BITS. */
struct kb_sched_status {
	int code;
	size_t n;
	char reasons[KB_SCHED_REASON_BITS][KB_SCHED_REASON_MAX];
};

uint64_t kb_sched_reason_bit(struct kb_sched_status *st, int code,
    const char *fmt, ...)
{
	char buf[KB_SCHED_REASON_MAX];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (st == NULL)
		return KB_SCHED_ASK_NODE;
	for (size_t i = 0; i < st->n; i++)
		if (!strcmp(st->reasons[i], buf))
			return 1ULL << i;
	if (st->n >= KB_SCHED_REASON_BITS)
		return KB_SCHED_ASK_NODE;
	if (st->code == KB_SCHED_SUCCESS || code == KB_SCHED_UNRESOLVABLE ||
	    code == KB_SCHED_ERROR)
		st->code = code;
	memcpy(st->reasons[st->n], buf, sizeof(buf));
	return 1ULL << st->n++;
}

int kb_sched_reject(struct kb_sched_status *st, int code, const char *fmt, ...)
{
	if (st == NULL)
		return code;
	if (st->code == KB_SCHED_SUCCESS || code == KB_SCHED_UNRESOLVABLE ||
	    code == KB_SCHED_ERROR)
		st->code = code;
	if (fmt && st->n < KB_SCHED_REASONS_MAX) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(st->reasons[st->n], KB_SCHED_REASON_MAX, fmt, ap);
		va_end(ap);
		st->n++;
	}
	return code;
}

struct kb_sched_status *kb_sched_status_new(void)
{
	struct kb_sched_status *st = malloc(sizeof(*st));
	if (st) {
		st->code = KB_SCHED_SUCCESS;
		st->n = 0;
	}
	return st;
}

void kb_sched_status_reset(struct kb_sched_status *st)
{
	st->code = KB_SCHED_SUCCESS;
	st->n = 0;
}

void kb_sched_status_free(struct kb_sched_status *st)
{
	free(st);
}

int kb_sched_status_code(const struct kb_sched_status *st)
{
	return st->code;
}

size_t kb_sched_status_nreasons(const struct kb_sched_status *st)
{
	return st->n;
}

const char *kb_sched_status_reason(const struct kb_sched_status *st, size_t i)
{
	return i < st->n ? st->reasons[i] : NULL;
}

/* --- cycle state ---------------------------------------------------------------- */

struct cy_ent {
	char *key;
	void *data;
	void (*free_fn)(void *);
	struct cy_ent *next;
};

struct kb_sched_cycle {
	const struct kb_sched_snapshot *snap;
	struct cy_ent *ents;
};

struct kb_sched_cycle *kb_sched_cycle_new(const struct kb_sched_snapshot *snap)
{
	struct kb_sched_cycle *cy = calloc(1, sizeof(*cy));
	if (cy)
		cy->snap = snap;
	return cy;
}

static void ent_free(struct cy_ent *e)
{
	if (e->free_fn)
		e->free_fn(e->data);
	free(e->key);
	free(e);
}

void kb_sched_cycle_free(struct kb_sched_cycle *cy)
{
	if (cy == NULL)
		return;
	while (cy->ents) {
		struct cy_ent *e = cy->ents;
		cy->ents = e->next;
		ent_free(e);
	}
	free(cy);
}

int kb_sched_cycle_write(struct kb_sched_cycle *cy, const char *key, void *data,
    void (*free_fn)(void *))
{
	for (struct cy_ent **pp = &cy->ents; *pp; pp = &(*pp)->next) {
		if (!strcmp((*pp)->key, key)) {
			struct cy_ent *old = *pp;
			*pp = old->next;
			ent_free(old);
			break;
		}
	}
	struct cy_ent *e = calloc(1, sizeof(*e));
	char *k = strdup(key);
	if (e == NULL || k == NULL) {
		free(e);
		free(k);
		if (free_fn)
			free_fn(data);
		return KB_ENOMEM;
	}
	e->key = k;
	e->data = data;
	e->free_fn = free_fn;
	e->next = cy->ents;
	cy->ents = e;
	return 0;
}

void *kb_sched_cycle_read(const struct kb_sched_cycle *cy, const char *key)
{
	for (const struct cy_ent *e = cy ? cy->ents : NULL; e; e = e->next)
		if (!strcmp(e->key, key))
			return e->data;
	return NULL;
}

const struct kb_sched_snapshot *kb_sched_cycle_snapshot(
    const struct kb_sched_cycle *cy)
{
	return cy->snap;
}

/* --- quantities ------------------------------------------------------------------ */

/* value * 10^exp10 * 1024^exp2 (rounded up) into *out, scaled by `scale`. */
static bool quantity(const char *s, size_t len, int64_t scale, int64_t *out)
{
	size_t i = 0;
	bool neg = false;
	long double v = 0, frac = 0.1L;
	bool digits = false;
	if (s == NULL || len == 0)
		return false;
	if (s[i] == '+' || s[i] == '-')
		neg = s[i++] == '-';
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits = true)
		v = v * 10 + (s[i] - '0');
	if (i < len && s[i] == '.') {
		for (i++; i < len && s[i] >= '0' && s[i] <= '9';
		     i++, digits = true) {
			v += (s[i] - '0') * frac;
			frac /= 10;
		}
	}
	if (!digits)
		return false;
	const char *suf = s + i;
	size_t sl = len - i;
	long double mult = 1;
	static const struct {
		const char *s;
		long double m;
	} sufs[] = {
		{ "n", 1e-9L },
		{ "u", 1e-6L },
		{ "m", 1e-3L },
		{ "", 1 },
		{ "k", 1e3L },
		{ "M", 1e6L },
		{ "G", 1e9L },
		{ "T", 1e12L },
		{ "P", 1e15L },
		{ "E", 1e18L },
		{ "Ki", 1024.0L },
		{ "Mi", 1048576.0L },
		{ "Gi", 1073741824.0L },
		{ "Ti", 1099511627776.0L },
		{ "Pi", 1125899906842624.0L },
		{ "Ei", 1152921504606846976.0L },
	};
	bool found = false;
	for (size_t k = 0; k < sizeof(sufs) / sizeof(sufs[0]); k++) {
		if (strlen(sufs[k].s) == sl && !strncmp(sufs[k].s, suf, sl)) {
			mult = sufs[k].m;
			found = true;
			break;
		}
	}
	if (!found && sl >= 2 && (suf[0] == 'e' || suf[0] == 'E')) {
		int64_t e = 0;
		size_t j = 1;
		bool eneg = false;
		if (suf[j] == '+' || suf[j] == '-')
			eneg = suf[j++] == '-';
		if (j == sl)
			return false;
		for (; j < sl; j++) {
			if (suf[j] < '0' || suf[j] > '9' || e > 30)
				return false;
			e = e * 10 + (suf[j] - '0');
		}
		for (; e > 0; e--)
			mult = eneg ? mult / 10 : mult * 10;
		found = true;
	}
	if (!found)
		return false;
	long double r = v * mult * scale;
	if (r > 9.2e18L)
		r = 9.2e18L;
	int64_t n = (int64_t)r;
	if ((long double)n < r)
		n++;
	*out = neg ? -n : n;
	return true;
}

bool kb_sched_quantity_milli(const char *s, size_t len, int64_t *out)
{
	return quantity(s, len, 1000, out);
}

bool kb_sched_quantity(const char *s, size_t len, int64_t *out)
{
	return quantity(s, len, 1, out);
}

/* --- matching ---------------------------------------------------------------------- */

const char *kb_sched_label(const struct kb_sched_label *labels, size_t n,
    const char *key)
{
	for (size_t i = 0; i < n; i++)
		if (!strcmp(labels[i].key, key))
			return labels[i].value;
	return NULL;
}

bool kb_sched_tolerates(const struct kb_sched_toleration *t,
    const struct kb_sched_taint *taint)
{
	if (t->effect != KB_EFFECT_ALL && t->effect != taint->effect)
		return false;
	if (t->key[0] && strcmp(t->key, taint->key))
		return false;
	if (t->exists)
		return true;
	/* Equal with an empty key tolerates nothing (validation forbids it). */
	return t->key[0] && !strcmp(t->value, taint->value);
}

bool kb_sched_pod_tolerates(const struct kb_sched_pod *pod,
    const struct kb_sched_taint *taint)
{
	for (size_t i = 0; i < pod->ntolerations; i++)
		if (kb_sched_tolerates(&pod->tolerations[i], taint))
			return true;
	return false;
}

static bool parse_i64(const char *s, int64_t *out)
{
	char *end;
	if (s == NULL || !*s)
		return false;
	long long v = strtoll(s, &end, 10);
	if (*end)
		return false;
	*out = v;
	return true;
}

bool kb_sched_requirement_matches(const struct kb_sched_requirement *r,
    const struct kb_sched_node *node, bool field)
{
	const char *v;
	if (field)
		v = !strcmp(r->key, "metadata.name") ? node->name : NULL;
	else
		v = kb_sched_label(node->labels, node->nlabels, r->key);
	bool in = false;
	for (size_t i = 0; v && i < r->nvalues; i++)
		in |= !strcmp(r->values[i], v);
	int64_t a, b;
	switch (r->op) {
	case KB_OP_IN:
		return in;
	case KB_OP_NOT_IN:
		return !in;
	case KB_OP_EXISTS:
		return !field && v != NULL;
	case KB_OP_DOES_NOT_EXIST:
		return !field && v == NULL;
	case KB_OP_GT:
	case KB_OP_LT:
		if (field || v == NULL || r->nvalues != 1 ||
		    !parse_i64(v, &a) || !parse_i64(r->values[0], &b))
			return false;
		return r->op == KB_OP_GT ? a > b : a < b;
	}
	return false;
}

bool kb_sched_term_matches(const struct kb_sched_term *t,
    const struct kb_sched_node *node)
{
	if (t->nexprs == 0 && t->nfields == 0)
		return false;
	for (size_t i = 0; i < t->nexprs; i++)
		if (!kb_sched_requirement_matches(&t->exprs[i], node, false))
			return false;
	for (size_t i = 0; i < t->nfields; i++)
		if (!kb_sched_requirement_matches(&t->fields[i], node, true))
			return false;
	return true;
}

static bool label_req_matches(const struct kb_sched_requirement *r,
    const struct kb_sched_label *labels, size_t n)
{
	const char *v = kb_sched_label(labels, n, r->key);
	bool in = false;
	for (size_t i = 0; v && i < r->nvalues; i++)
		in |= !strcmp(r->values[i], v);
	switch (r->op) {
	case KB_OP_IN:
		return in;
	case KB_OP_NOT_IN:
		return !in;
	case KB_OP_EXISTS:
		return v != NULL;
	case KB_OP_DOES_NOT_EXIST:
		return v == NULL;
	}
	return false;
}

bool kb_sched_selector_matches(const struct kb_sched_selector *s,
    const struct kb_sched_label *labels, size_t n)
{
	if (!s->present)
		return false;
	for (size_t i = 0; i < s->nlabels; i++) {
		const char *v = kb_sched_label(labels, n, s->labels[i].key);
		if (v == NULL || strcmp(v, s->labels[i].value))
			return false;
	}
	for (size_t i = 0; i < s->nexprs; i++)
		if (!label_req_matches(&s->exprs[i], labels, n))
			return false;
	return true;
}

bool kb_sched_term_selects(const struct kb_sched_pod_term *t, const char *ns,
    const struct kb_sched_pod *other)
{
	bool ns_ok = false;
	if (t->nnamespaces == 0 && !t->ns_selector.present) {
		ns_ok = !strcmp(ns, other->ns);
	} else {
		for (size_t i = 0; !ns_ok && i < t->nnamespaces; i++)
			ns_ok = !strcmp(t->namespaces[i], other->ns);
		if (!ns_ok && t->ns_selector.present) {
			const struct kb_sched_label l = {
				"kubernetes.io/metadata.name", other->ns
			};
			ns_ok =
			    kb_sched_selector_matches(&t->ns_selector, &l, 1);
		}
	}
	return ns_ok &&
	    kb_sched_selector_matches(&t->selector, other->labels,
		other->nlabels);
}

bool kb_sched_node_affinity_matches(const struct kb_sched_pod *pod,
    const struct kb_sched_node *node)
{
	for (size_t i = 0; i < pod->nnode_selector; i++) {
		const char *v = kb_sched_label(node->labels, node->nlabels,
		    pod->node_selector[i].key);
		if (v == NULL || strcmp(v, pod->node_selector[i].value))
			return false;
	}
	if (!pod->has_required)
		return true;
	for (size_t i = 0; i < pod->nrequired; i++)
		if (kb_sched_term_matches(&pod->required[i], node))
			return true;
	return false;
}

/* --- an arena for parsed objects ------------------------------------------------------- */

struct arena_blk {
	struct arena_blk *next;
	size_t used, cap;
	_Alignas(16) unsigned char data[];
};

struct arena {
	struct arena_blk *head;
	bool failed;
	/* The object's copy: its strings, each followed by a NUL, are used
	 * in place (see clone_obj). */
	const char *lo, *hi;
};

/* n bytes aligned to `align` (a power of 2), not cleared: strings are
 * written whole. */
static void *arena_take(struct arena *a, size_t n, size_t align)
{
	if (n == 0)
		n = 1;
	struct arena_blk *b = a->head;
	size_t off = b ? (b->used + align - 1) & ~(align - 1) : 0;
	if (b == NULL || off > b->cap || b->cap - off < n) {
		/* Most objects need a few hundred bytes besides their
		 * strings. */
		size_t blk = b ? 2048 : 512;
		size_t cap = n > blk ? n : blk;
		b = malloc(sizeof(*b) + cap);
		if (b == NULL) {
			a->failed = true;
			return NULL;
		}
		b->cap = cap;
		b->next = a->head;
		a->head = b;
		off = 0;
	}
	b->used = off + n;
	return b->data + off;
}

static void *arena_alloc(struct arena *a, size_t n)
{
	void *p = arena_take(a, n, 16);
	if (p)
		memset(p, 0, n);
	return p;
}

static void arena_free(struct arena *a)
{
	while (a->head) {
		struct arena_blk *b = a->head;
		a->head = b->next;
		free(b);
	}
}

static const char *arena_str(struct arena *a, const msgpack_object *o)
{
	if (o == NULL || o->type != MSGPACK_OBJECT_STR)
		return "";
	if ((uintptr_t)o->via.str.ptr >= (uintptr_t)a->lo &&
	    (uintptr_t)o->via.str.ptr < (uintptr_t)a->hi)
		return o->via.str.ptr; /* in the copy, NUL-terminated */
	char *s = arena_take(a, o->via.str.size + 1, 1);
	if (s == NULL)
		return "";
	memcpy(s, o->via.str.ptr, o->via.str.size);
	s[o->via.str.size] = '\0';
	return s;
}


static size_t arr_len(const msgpack_object *o)
{
	return o && o->type == MSGPACK_OBJECT_ARRAY ? o->via.array.size : 0;
}

static size_t map_len(const msgpack_object *o)
{
	return o && o->type == MSGPACK_OBJECT_MAP ? o->via.map.size : 0;
}

static const struct kb_sched_label *parse_labels(struct arena *a,
    const msgpack_object *m, size_t *n)
{
	size_t cnt = map_len(m);
	*n = 0;
	if (cnt == 0)
		return NULL;
	struct kb_sched_label *l = arena_alloc(a, cnt * sizeof(*l));
	if (l == NULL)
		return NULL;
	for (size_t i = 0; i < cnt; i++) {
		const msgpack_object_kv *kv = &m->via.map.ptr[i];
		if (kv->key.type != MSGPACK_OBJECT_STR)
			continue;
		l[*n].key = arena_str(a, &kv->key);
		l[*n].value = arena_str(a, &kv->val);
		(*n)++;
	}
	return l;
}

/* A deep copy of a decoded object in one block, without packing it and
 * decoding it again: what its arrays and maps take (nodes), then its
 * strings, binaries and extensions (bytes). */
struct mp_clone {
	unsigned char *nodes, *bytes;
};

static void mp_clone_size(const msgpack_object *o, size_t *nodes,
    size_t *bytes)
{
	switch (o->type) {
	case MSGPACK_OBJECT_STR:
		*bytes += o->via.str.size + 1;
		break;
	case MSGPACK_OBJECT_BIN:
		*bytes += o->via.bin.size;
		break;
	case MSGPACK_OBJECT_EXT:
		*bytes += o->via.ext.size;
		break;
	case MSGPACK_OBJECT_ARRAY:
		*nodes += o->via.array.size * sizeof(msgpack_object);
		for (uint32_t i = 0; i < o->via.array.size; i++)
			mp_clone_size(&o->via.array.ptr[i], nodes, bytes);
		break;
	case MSGPACK_OBJECT_MAP:
		*nodes += o->via.map.size * sizeof(msgpack_object_kv);
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			mp_clone_size(&o->via.map.ptr[i].key, nodes, bytes);
			mp_clone_size(&o->via.map.ptr[i].val, nodes, bytes);
		}
		break;
	default:
		break;
	}
}

static const char *mp_clone_bytes(struct mp_clone *c, const char *p,
    uint32_t n)
{
	if (n == 0)
		return p ? (const char *)c->bytes : NULL;
	memcpy(c->bytes, p, n);
	const char *r = (const char *)c->bytes;
	c->bytes += n;
	return r;
}

static void mp_clone_into(struct mp_clone *c, msgpack_object *d,
    const msgpack_object *o)
{
	*d = *o;
	switch (o->type) {
	case MSGPACK_OBJECT_STR: {
		/* With a NUL after it: parsing uses the copy's strings in
		 * place. */
		char *t = (char *)c->bytes;
		memcpy(t, o->via.str.ptr, o->via.str.size);
		t[o->via.str.size] = '\0';
		c->bytes += o->via.str.size + 1;
		d->via.str.ptr = t;
		break;
	}
	case MSGPACK_OBJECT_BIN:
		d->via.bin.ptr = mp_clone_bytes(c, o->via.bin.ptr,
		    o->via.bin.size);
		break;
	case MSGPACK_OBJECT_EXT:
		d->via.ext.ptr = mp_clone_bytes(c, o->via.ext.ptr,
		    o->via.ext.size);
		break;
	case MSGPACK_OBJECT_ARRAY: {
		msgpack_object *a = (msgpack_object *)(void *)c->nodes;
		c->nodes += o->via.array.size * sizeof(*a);
		d->via.array.ptr = o->via.array.size ? a : NULL;
		for (uint32_t i = 0; i < o->via.array.size; i++)
			mp_clone_into(c, &a[i], &o->via.array.ptr[i]);
		break;
	}
	case MSGPACK_OBJECT_MAP: {
		msgpack_object_kv *m = (msgpack_object_kv *)(void *)c->nodes;
		c->nodes += o->via.map.size * sizeof(*m);
		d->via.map.ptr = o->via.map.size ? m : NULL;
		for (uint32_t i = 0; i < o->via.map.size; i++) {
			mp_clone_into(c, &m[i].key, &o->via.map.ptr[i].key);
			mp_clone_into(c, &m[i].val, &o->via.map.ptr[i].val);
		}
		break;
	}
	default:
		break;
	}
}

/* A deep copy of obj in one malloc'd block (the root first), or NULL;
 * free() frees it. Its strings are NUL-terminated, in [a->lo, a->hi)
 * for arena_str. */
static msgpack_object *clone_obj(const msgpack_object *obj, struct arena *a)
{
	size_t nodes = 0, bytes = 0;
	mp_clone_size(obj, &nodes, &bytes);
	msgpack_object *root = malloc(sizeof(*root) + nodes + bytes);
	if (root == NULL)
		return NULL;
	struct mp_clone c = { (unsigned char *)(root + 1),
		(unsigned char *)(root + 1) + nodes };
	a->lo = (const char *)c.bytes;
	a->hi = a->lo + bytes;
	mp_clone_into(&c, root, obj);
	return root;
}

/* A view's object: the informer's own when obj is one an informer handler
 * was given (*body referenced, nothing copied), else a copy of it in a
 * (*copy). NULL without memory. */
static const msgpack_object *view_obj(const msgpack_object *obj,
    kb_body **body, msgpack_object **copy, struct arena *a)
{
	*body = kb_informer_body_of(obj);
	if (*body)
		return obj;
	*copy = clone_obj(obj, a);
	return *copy;
}

static int effect_of(const msgpack_object *o)
{
	if (kb_mp_is(o, "NoSchedule"))
		return KB_EFFECT_NO_SCHEDULE;
	if (kb_mp_is(o, "PreferNoSchedule"))
		return KB_EFFECT_PREFER_NO_SCHEDULE;
	if (kb_mp_is(o, "NoExecute"))
		return KB_EFFECT_NO_EXECUTE;
	return KB_EFFECT_ALL;
}

/* The string at key of map l (kb_mp_str without reading a path). */
static bool str_at(const msgpack_object *l, const char *key, const char **s,
    size_t *len)
{
	return kb_mp_str(kb_mp_key(l, key), NULL, s, len);
}

/* A resource list ({cpu: "1", memory: "1Gi", …}) added into r. */
static void add_resources(struct kb_sched_resources *r, const msgpack_object *l)
{
	const char *s;
	size_t len;
	int64_t v;
	if (l == NULL)
		return;
	if (str_at(l, "cpu", &s, &len) && kb_sched_quantity_milli(s, len, &v))
		r->milli_cpu += v;
	if (str_at(l, "memory", &s, &len) && kb_sched_quantity(s, len, &v))
		r->memory += v;
	if (str_at(l, "ephemeral-storage", &s, &len) &&
	    kb_sched_quantity(s, len, &v))
		r->ephemeral_storage += v;
	if (str_at(l, "pods", &s, &len) && kb_sched_quantity(s, len, &v))
		r->pods += v;
}

static void max_resources(struct kb_sched_resources *r,
    const struct kb_sched_resources *o)
{
	if (o->milli_cpu > r->milli_cpu)
		r->milli_cpu = o->milli_cpu;
	if (o->memory > r->memory)
		r->memory = o->memory;
	if (o->ephemeral_storage > r->ephemeral_storage)
		r->ephemeral_storage = o->ephemeral_storage;
}

static int op_of(const msgpack_object *o)
{
	static const char *const ops[] = { "", "In", "NotIn", "Exists",
		"DoesNotExist", "Gt", "Lt" };
	for (int i = 1; i <= KB_OP_LT; i++)
		if (kb_mp_is(o, ops[i]))
			return i;
	return 0; /* matches nothing */
}

static const struct kb_sched_requirement *parse_reqs(struct arena *a,
    const msgpack_object *arr, size_t *n)
{
	size_t cnt = arr_len(arr);
	*n = cnt;
	if (cnt == 0)
		return NULL;
	struct kb_sched_requirement *r = arena_alloc(a, cnt * sizeof(*r));
	if (r == NULL) {
		*n = 0;
		return NULL;
	}
	for (size_t i = 0; i < cnt; i++) {
		const msgpack_object *e = &arr->via.array.ptr[i];
		const msgpack_object *vals = kb_mp_key(e, "values");
		r[i].key = arena_str(a, kb_mp_key(e, "key"));
		r[i].op = op_of(kb_mp_key(e, "operator"));
		r[i].nvalues = arr_len(vals);
		if (r[i].nvalues) {
			const char **v =
			    arena_alloc(a, r[i].nvalues * sizeof(*v));
			if (v == NULL) {
				r[i].nvalues = 0;
				continue;
			}
			for (size_t j = 0; j < r[i].nvalues; j++)
				v[j] = arena_str(a, &vals->via.array.ptr[j]);
			r[i].values = v;
		}
	}
	return r;
}

static void parse_term(struct arena *a, const msgpack_object *o,
    struct kb_sched_term *t)
{
	t->exprs = parse_reqs(a, kb_mp_key(o, "matchExpressions"), &t->nexprs);
	t->fields = parse_reqs(a, kb_mp_key(o, "matchFields"), &t->nfields);
}

/* RFC 3339 to ms since the epoch; 0 when absent or not one. */
static int64_t parse_time_ms(const msgpack_object *o)
{
	int64_t ms;
	return o && o->type == MSGPACK_OBJECT_STR &&
		kb_time_parse(o->via.str.ptr, o->via.str.size, &ms) ?
	    ms :
	    0;
}

static void parse_selector(struct arena *a, const msgpack_object *o,
    struct kb_sched_selector *s)
{
	memset(s, 0, sizeof(*s));
	if (o == NULL || o->type != MSGPACK_OBJECT_MAP)
		return;
	s->present = true;
	s->labels = parse_labels(a, kb_mp_key(o, "matchLabels"), &s->nlabels);
	s->exprs = parse_reqs(a, kb_mp_key(o, "matchExpressions"), &s->nexprs);
	for (size_t i = 0; i < s->nexprs; i++)
		if (s->exprs[i].op == KB_OP_GT || s->exprs[i].op == KB_OP_LT)
			((struct kb_sched_requirement *)s->exprs)[i].op = 0;
}

/* A list of podAffinityTerms (weighted: {weight, podAffinityTerm}). */
static const struct kb_sched_pod_term *parse_pod_terms(struct arena *a,
    const msgpack_object *arr, bool weighted, size_t *n)
{
	size_t cnt = arr_len(arr);
	*n = 0;
	if (cnt == 0)
		return NULL;
	struct kb_sched_pod_term *t = arena_alloc(a, cnt * sizeof(*t));
	if (t == NULL)
		return NULL;
	for (size_t i = 0; i < cnt; i++) {
		const msgpack_object *e = &arr->via.array.ptr[i];
		if (weighted) {
			int64_t w = 0;
			kb_mp_int(e, "weight", &w);
			t[i].weight = (int32_t)w;
			e = kb_mp_key(e, "podAffinityTerm");
		}
		parse_selector(a, kb_mp_key(e, "labelSelector"),
		    &t[i].selector);
		parse_selector(a, kb_mp_key(e, "namespaceSelector"),
		    &t[i].ns_selector);
		t[i].topology_key = arena_str(a, kb_mp_key(e, "topologyKey"));
		const msgpack_object *nss = kb_mp_key(e, "namespaces");
		t[i].nnamespaces = arr_len(nss);
		if (t[i].nnamespaces) {
			const char **v =
			    arena_alloc(a, t[i].nnamespaces * sizeof(*v));
			for (size_t j = 0; v && j < t[i].nnamespaces; j++)
				v[j] = arena_str(a, &nss->via.array.ptr[j]);
			if (v == NULL)
				t[i].nnamespaces = 0;
			t[i].namespaces = v;
		}
	}
	*n = cnt;
	return t;
}

static void parse_spread(struct arena *a, struct kb_sched_pod *p,
    const msgpack_object *arr)
{
	size_t cnt = arr_len(arr);
	if (cnt == 0)
		return;
	struct kb_sched_spread *sp = arena_alloc(a, cnt * sizeof(*sp));
	if (sp == NULL)
		return;
	for (size_t i = 0; i < cnt; i++) {
		const msgpack_object *e = &arr->via.array.ptr[i];
		int64_t v = 1;
		kb_mp_int(e, "maxSkew", &v);
		sp[i].max_skew = (int32_t)v;
		sp[i].topology_key = arena_str(a, kb_mp_key(e, "topologyKey"));
		sp[i].do_not_schedule =
		    !kb_mp_streq(e, "whenUnsatisfiable", "ScheduleAnyway");
		v = 1;
		kb_mp_int(e, "minDomains", &v);
		sp[i].min_domains = v < 1 ? 1 : (int32_t)v;
		sp[i].honor_node_affinity =
		    !kb_mp_streq(e, "nodeAffinityPolicy", "Ignore");
		sp[i].honor_node_taints =
		    kb_mp_streq(e, "nodeTaintsPolicy", "Honor");
		parse_selector(a, kb_mp_key(e, "labelSelector"),
		    &sp[i].selector);
		/* matchLabelKeys: `key In (the pod's value)`, for keys the
		 * pod has. */
		const msgpack_object *mlk = kb_mp_key(e, "matchLabelKeys");
		size_t nk = arr_len(mlk);
		if (nk && sp[i].selector.present) {
			struct kb_sched_requirement *r = arena_alloc(a,
			    (sp[i].selector.nexprs + nk) * sizeof(*r));
			if (r == NULL)
				continue;
			memcpy(r, sp[i].selector.exprs,
			    sp[i].selector.nexprs * sizeof(*r));
			size_t m = sp[i].selector.nexprs;
			for (size_t k = 0; k < nk; k++) {
				const char *key =
				    arena_str(a, &mlk->via.array.ptr[k]);
				const char *val =
				    kb_sched_label(p->labels, p->nlabels, key);
				const char **vals =
				    arena_alloc(a, sizeof(*vals));
				if (val == NULL || vals == NULL)
					continue;
				vals[0] = val;
				r[m++] = (struct kb_sched_requirement){ key,
					KB_OP_IN, vals, 1 };
			}
			sp[i].selector.exprs = r;
			sp[i].selector.nexprs = m;
		}
	}
	p->spread = sp;
	p->nspread = cnt;
}

/* --- pods ---------------------------------------------------------------------------- */

struct pod_priv {
	struct kb_sched_pod pub; /* first: the public pointer is this */
	atomic_int refs;
	msgpack_object *copy; /* obj: a copy of the informer's, or NULL */
	kb_body *body;        /* or obj is this body's (referenced) */
	struct arena ar;
	uint64_t id; /* pod_id(ns, name): nodes find their pods by it */
};

/* A hash of a pod's namespace and name. A node keeps its pods' ids in an
 * array beside theirs, so that finding one to take off reads that array
 * rather than every pod's strings (a node holds dozens; a rollout takes
 * one off for every update of every pod). */
static uint64_t pod_id(const char *ns, const char *name)
{
	uint64_t h = 0xcbf29ce484222325ull;
	for (const unsigned char *c = (const unsigned char *)ns; *c; c++)
		h = (h ^ *c) * 0x100000001b3ull;
	h *= 0x100000001b3ull; /* the '\0' between: "a"/"bc" is not "ab"/"c" */
	for (const unsigned char *c = (const unsigned char *)name; *c; c++)
		h = (h ^ *c) * 0x100000001b3ull;
	return h;
}

static void parse_pod(struct pod_priv *pp)
{
	struct kb_sched_pod *p = &pp->pub;
	struct arena *a = &pp->ar;
	const msgpack_object *o = p->obj;
	/* Keys looked up step by step (as kb_mp_get would, without
	 * reading a path each time). */
	const msgpack_object *meta = kb_mp_key(o, "metadata");
	const msgpack_object *spec = kb_mp_key(o, "spec");
	const msgpack_object *aff = kb_mp_key(spec, "affinity");
	int64_t i64;

	p->ns = arena_str(a, kb_mp_key(meta, "namespace"));
	p->name = arena_str(a, kb_mp_key(meta, "name"));
	p->uid = arena_str(a, kb_mp_key(meta, "uid"));
	p->node_name = arena_str(a, kb_mp_key(spec, "nodeName"));
	p->scheduler_name = kb_mp_key(spec, "schedulerName") ?
	    arena_str(a, kb_mp_key(spec, "schedulerName")) :
	    "default-scheduler";
	if (kb_mp_int(spec, "priority", &i64))
		p->priority = (int32_t)i64;
	p->created_ms =
	    parse_time_ms(kb_mp_key(meta, "creationTimestamp"));
	p->labels =
	    parse_labels(a, kb_mp_key(meta, "labels"), &p->nlabels);

	/* Requests: sum of containers, at least each init container, plus
	 * overhead; host ports from the containers. */
	struct kb_sched_resources sum = { 0 }, nz = { 0 };
	const msgpack_object *cs = kb_mp_key(spec, "containers");
	size_t nports = 0;
	for (size_t i = 0; i < arr_len(cs); i++) {
		const msgpack_object *c = &cs->via.array.ptr[i];
		struct kb_sched_resources one = { 0 };
		add_resources(&one,
		    kb_mp_key(kb_mp_key(c, "resources"), "requests"));
		sum.milli_cpu += one.milli_cpu;
		sum.memory += one.memory;
		sum.ephemeral_storage += one.ephemeral_storage;
		nz.milli_cpu += one.milli_cpu ? one.milli_cpu :
						KB_SCHED_DEFAULT_MILLI_CPU;
		nz.memory += one.memory ? one.memory : KB_SCHED_DEFAULT_MEMORY;
		const msgpack_object *ports = kb_mp_key(c, "ports");
		for (size_t j = 0; j < arr_len(ports); j++) {
			int64_t hp = 0;
			if (kb_mp_int(&ports->via.array.ptr[j], "hostPort",
				&hp) &&
			    hp > 0)
				nports++;
		}
	}
	const msgpack_object *ics = kb_mp_key(spec, "initContainers");
	for (size_t i = 0; i < arr_len(ics); i++) {
		struct kb_sched_resources one = { 0 };
		add_resources(&one,
		    kb_mp_key(kb_mp_key(&ics->via.array.ptr[i], "resources"),
			"requests"));
		max_resources(&sum, &one);
		max_resources(&nz, &one);
	}
	struct kb_sched_resources ovh = { 0 };
	add_resources(&ovh, kb_mp_key(spec, "overhead"));
	sum.milli_cpu += ovh.milli_cpu;
	sum.memory += ovh.memory;
	sum.ephemeral_storage += ovh.ephemeral_storage;
	nz.milli_cpu += ovh.milli_cpu;
	nz.memory += ovh.memory;
	sum.pods = nz.pods = 1;
	nz.ephemeral_storage = sum.ephemeral_storage;
	p->requests = sum;
	p->nonzero_requests = nz;

	if (nports) {
		struct kb_sched_host_port *hp =
		    arena_alloc(a, nports * sizeof(*hp));
		for (size_t i = 0; hp && i < arr_len(cs); i++) {
			const msgpack_object *ports =
			    kb_mp_key(&cs->via.array.ptr[i], "ports");
			for (size_t j = 0; j < arr_len(ports); j++) {
				const msgpack_object *po =
				    &ports->via.array.ptr[j];
				int64_t port = 0;
				if (!kb_mp_int(po, "hostPort", &port) ||
				    port <= 0)
					continue;
				struct kb_sched_host_port *h =
				    &hp[p->nhost_ports++];
				h->port = (int32_t)port;
				h->protocol = kb_mp_key(po, "protocol") ?
				    arena_str(a, kb_mp_key(po, "protocol")) :
				    "TCP";
				h->host_ip =
				    arena_str(a, kb_mp_key(po, "hostIP"));
				if (!strcmp(h->host_ip, "0.0.0.0"))
					h->host_ip = "";
			}
		}
		p->host_ports = hp;
	}

	p->node_selector = parse_labels(a, kb_mp_key(spec, "nodeSelector"),
	    &p->nnode_selector);

	const msgpack_object *na = kb_mp_key(aff, "nodeAffinity");
	const msgpack_object *req =
	    kb_mp_key(na, "requiredDuringSchedulingIgnoredDuringExecution");
	if (req && req->type == MSGPACK_OBJECT_MAP) {
		const msgpack_object *terms =
		    kb_mp_key(req, "nodeSelectorTerms");
		p->has_required = true;
		p->nrequired = arr_len(terms);
		struct kb_sched_term *t = p->nrequired ?
		    arena_alloc(a, p->nrequired * sizeof(*t)) :
		    NULL;
		for (size_t i = 0; t && i < p->nrequired; i++)
			parse_term(a, &terms->via.array.ptr[i], &t[i]);
		if (t == NULL)
			p->nrequired = 0;
		p->required = t;
	}
	const msgpack_object *pref =
	    kb_mp_key(na, "preferredDuringSchedulingIgnoredDuringExecution");
	if (arr_len(pref)) {
		struct kb_sched_preferred *pr =
		    arena_alloc(a, arr_len(pref) * sizeof(*pr));
		for (size_t i = 0; pr && i < arr_len(pref); i++) {
			const msgpack_object *e = &pref->via.array.ptr[i];
			int64_t w = 0;
			kb_mp_int(e, "weight", &w);
			pr[i].weight = (int32_t)w;
			parse_term(a, kb_mp_key(e, "preference"), &pr[i].term);
		}
		if (pr) {
			p->preferred = pr;
			p->npreferred = arr_len(pref);
		}
	}

	const msgpack_object *pa = kb_mp_key(aff, "podAffinity");
	const msgpack_object *paa = kb_mp_key(aff, "podAntiAffinity");
	p->affinity = parse_pod_terms(a,
	    kb_mp_key(pa, "requiredDuringSchedulingIgnoredDuringExecution"),
	    false, &p->naffinity);
	p->pref_affinity = parse_pod_terms(a,
	    kb_mp_key(pa, "preferredDuringSchedulingIgnoredDuringExecution"),
	    true, &p->npref_affinity);
	p->anti_affinity = parse_pod_terms(a,
	    kb_mp_key(paa, "requiredDuringSchedulingIgnoredDuringExecution"),
	    false, &p->nanti_affinity);
	p->pref_anti_affinity = parse_pod_terms(a,
	    kb_mp_key(paa, "preferredDuringSchedulingIgnoredDuringExecution"),
	    true, &p->npref_anti_affinity);
	parse_spread(a, p, kb_mp_key(spec, "topologySpreadConstraints"));
	p->terminating = kb_mp_key(meta, "deletionTimestamp") != NULL;
	p->owner_kind = "";
	const msgpack_object *owners = kb_mp_key(meta, "ownerReferences");
	for (size_t i = 0; i < arr_len(owners); i++) {
		bool ctl = false;
		kb_mp_bool(&owners->via.array.ptr[i], "controller", &ctl);
		if (ctl) {
			p->owner_kind = arena_str(a,
			    kb_mp_key(&owners->via.array.ptr[i], "kind"));
			break;
		}
	}

	const msgpack_object *tols = kb_mp_key(spec, "tolerations");
	if (arr_len(tols)) {
		struct kb_sched_toleration *t =
		    arena_alloc(a, arr_len(tols) * sizeof(*t));
		for (size_t i = 0; t && i < arr_len(tols); i++) {
			const msgpack_object *e = &tols->via.array.ptr[i];
			t[i].key = arena_str(a, kb_mp_key(e, "key"));
			t[i].value = arena_str(a, kb_mp_key(e, "value"));
			t[i].exists = kb_mp_streq(e, "operator", "Exists");
			t[i].effect = effect_of(kb_mp_key(e, "effect"));
			t[i].seconds = -1;
			kb_mp_int(e, "tolerationSeconds", &t[i].seconds);
		}
		if (t) {
			p->tolerations = t;
			p->ntolerations = arr_len(tols);
		}
	}
}

struct kb_sched_pod *kb_sched_pod_new(const msgpack_object *obj)
{
	if (obj == NULL || obj->type != MSGPACK_OBJECT_MAP)
		return NULL;
	struct pod_priv *pp = calloc(1, sizeof(*pp));
	if (pp == NULL)
		return NULL;
	atomic_init(&pp->refs, 1);
	pp->pub.size = sizeof(struct kb_sched_pod);
	/* An informer's object (immutable, counted) is shared, not copied:
	 * then the strings kept are copied into the arena. */
	pp->pub.obj = view_obj(obj, &pp->body, &pp->copy, &pp->ar);
	if (pp->pub.obj == NULL) {
		free(pp);
		return NULL;
	}
	parse_pod(pp);
	pp->id = pod_id(pp->pub.ns, pp->pub.name);
	if (pp->ar.failed) {
		arena_free(&pp->ar);
		free(pp->copy);
		kb_body_unref(pp->body);
		free(pp);
		return NULL;
	}
	return &pp->pub;
}

struct kb_sched_pod *kb_sched_pod_ref(const struct kb_sched_pod *pod)
{
	struct pod_priv *pp = (struct pod_priv *)pod;
	atomic_fetch_add(&pp->refs, 1);
	return &pp->pub;
}

void kb_sched_pod_unref(const struct kb_sched_pod *pod)
{
	struct pod_priv *pp = (struct pod_priv *)pod;
	if (pp == NULL || atomic_fetch_sub(&pp->refs, 1) != 1)
		return;
	arena_free(&pp->ar);
	free(pp->copy);
	kb_body_unref(pp->body);
	free(pp);
}

/* --- nodes ------------------------------------------------------------------------ */

struct node_priv {
	struct kb_sched_node pub;
	msgpack_object *copy; /* obj: a copy of the informer's, or NULL */
	kb_body *body;        /* or obj is this body's (referenced) */
	struct arena ar;
	const struct kb_sched_pod **pods;
	uint64_t *ids; /* ids[i]: pods[i]'s pod_id, cap of them too */
	size_t cap;
	struct kb_sched_columns *cols; /* attached to, or NULL */
	size_t row;
};

/* Node generations: one counter for the process (see struct
 * kb_sched_node's generation). */
static _Atomic uint64_t node_gens;

static uint64_t next_gen(void)
{
	return atomic_fetch_add_explicit(&node_gens, 1, memory_order_relaxed) +
	    1;
}

/* --- columns: the nodes' numbers as arrays ------------------------------------- */

static uint32_t node_flags(const struct kb_sched_node *n)
{
	uint32_t f = n->unschedulable ? KB_SCHED_NODE_UNSCHEDULABLE : 0;
	for (size_t i = 0; i < n->ntaints; i++) {
		int e = n->taints[i].effect;
		if (e == KB_EFFECT_NO_SCHEDULE || e == KB_EFFECT_NO_EXECUTE)
			f |= KB_SCHED_NODE_HARD_TAINTS;
		else if (e == KB_EFFECT_PREFER_NO_SCHEDULE)
			f |= KB_SCHED_NODE_PREFER_TAINTS;
	}
	return f;
}

static void row_flags(struct kb_sched_columns *c, size_t row, uint32_t f)
{
	uint32_t old = c->flags[row];
	for (int b = 0; b < 8; b++) {
		c->nflag[b] -= (old >> b) & 1u;
		c->nflag[b] += (f >> b) & 1u;
	}
	c->flags[row] = f;
}

/* Copy the node's numbers into its row. */
static void row_refresh(const struct node_priv *np)
{
	struct kb_sched_columns *c = np->cols;
	if (c == NULL)
		return;
	const struct kb_sched_node *n = &np->pub;
	size_t r = np->row;
	c->alloc_cpu[r] = n->allocatable.milli_cpu;
	c->alloc_mem[r] = n->allocatable.memory;
	c->alloc_eph[r] = n->allocatable.ephemeral_storage;
	c->alloc_pods[r] = n->allocatable.pods;
	c->req_cpu[r] = n->requested.milli_cpu;
	c->req_mem[r] = n->requested.memory;
	c->req_eph[r] = n->requested.ephemeral_storage;
	c->npods[r] = (int64_t)n->npods;
	c->nz_cpu[r] = n->nonzero_requested.milli_cpu;
	c->nz_mem[r] = n->nonzero_requested.memory;
	c->gen[r] = n->generation;
}

static void row_detach(struct kb_sched_columns *c, size_t row)
{
	const struct kb_sched_node *n = c->nodes[row];
	if (n) {
		struct node_priv *np = (struct node_priv *)n;
		if (np->cols == c)
			np->cols = NULL;
	}
	c->nodes[row] = NULL;
	row_flags(c, row, 0);
}

void kb_sched_columns_set(struct kb_sched_columns *c, size_t row,
    const struct kb_sched_node *node)
{
	if (c == NULL || row >= c->n)
		return;
	row_detach(c, row);
	if (node == NULL)
		return;
	struct node_priv *np = (struct node_priv *)node;
	if (np->cols)
		row_detach(np->cols, np->row);
	np->cols = c;
	np->row = row;
	c->nodes[row] = node;
	row_flags(c, row, node_flags(node));
	row_refresh(np);
}

struct kb_sched_columns *
kb_sched_columns_new(const struct kb_sched_node *const *nodes, size_t n)
{
	struct kb_sched_columns *c = calloc(1, sizeof(*c));
	if (c == NULL)
		return NULL;
	c->size = sizeof(*c);
	size_t m = n ? n : 1;
	int64_t **cols[] = { &c->alloc_cpu, &c->alloc_mem, &c->alloc_eph,
		&c->alloc_pods, &c->req_cpu, &c->req_mem, &c->req_eph,
		&c->npods, &c->nz_cpu, &c->nz_mem };
	bool ok = (c->nodes = calloc(m, sizeof(*c->nodes))) != NULL &&
	    (c->flags = calloc(m, sizeof(*c->flags))) != NULL &&
	    (c->gen = calloc(m, sizeof(*c->gen))) != NULL;
	for (size_t i = 0; ok && i < sizeof(cols) / sizeof(cols[0]); i++)
		ok = (*cols[i] = calloc(m, sizeof(int64_t))) != NULL;
	c->n = ok ? n : 0;
	if (!ok) {
		kb_sched_columns_free(c);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		kb_sched_columns_set(c, i, nodes[i]);
	return c;
}

void kb_sched_columns_free(struct kb_sched_columns *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; c->nodes && i < c->n; i++)
		row_detach(c, i);
	free(c->nodes);
	free(c->flags);
	free(c->gen);
	int64_t *cols[] = { c->alloc_cpu, c->alloc_mem, c->alloc_eph,
		c->alloc_pods, c->req_cpu, c->req_mem, c->req_eph, c->npods,
		c->nz_cpu, c->nz_mem };
	for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
		free(cols[i]);
	free(c);
}

/* Node structs come from slabs of NODE_SLAB: the scheduler's Filter and
 * Score walk thousands of them per pod, and neighbours in memory (and in
 * pages) make that walk cheap where scattered allocations miss the TLB
 * at every node. Freed ones are reused; slabs are never returned. */
#define NODE_SLAB 128

union node_slot {
	struct node_priv np;
	union node_slot *next;
};

static pthread_mutex_t slab_mu = PTHREAD_MUTEX_INITIALIZER;
static union node_slot *slab_free;

static struct node_priv *node_alloc(void)
{
	pthread_mutex_lock(&slab_mu);
	if (slab_free == NULL) {
		union node_slot *v = calloc(NODE_SLAB, sizeof(*v));
		for (size_t i = 0; v && i < NODE_SLAB; i++) {
			v[NODE_SLAB - 1 - i].next = slab_free;
			slab_free = &v[NODE_SLAB - 1 - i];
		}
	}
	union node_slot *sl = slab_free;
	if (sl)
		slab_free = sl->next;
	pthread_mutex_unlock(&slab_mu);
	if (sl)
		memset(sl, 0, sizeof(*sl));
	return sl ? &sl->np : NULL;
}

static void node_release(struct node_priv *np)
{
	union node_slot *sl = (union node_slot *)np;
	pthread_mutex_lock(&slab_mu);
	sl->next = slab_free;
	slab_free = sl;
	pthread_mutex_unlock(&slab_mu);
}

static void parse_node(struct node_priv *np)
{
	struct kb_sched_node *n = &np->pub;
	struct arena *a = &np->ar;
	const msgpack_object *o = n->obj;
	n->name = arena_str(a, kb_mp_get(o, "metadata.name"));
	n->labels =
	    parse_labels(a, kb_mp_get(o, "metadata.labels"), &n->nlabels);
	kb_mp_bool(o, "spec.unschedulable", &n->unschedulable);
	const msgpack_object *taints = kb_mp_get(o, "spec.taints");
	if (arr_len(taints)) {
		struct kb_sched_taint *t =
		    arena_alloc(a, arr_len(taints) * sizeof(*t));
		for (size_t i = 0; t && i < arr_len(taints); i++) {
			const msgpack_object *e = &taints->via.array.ptr[i];
			t[i].key = arena_str(a, kb_mp_key(e, "key"));
			t[i].value = arena_str(a, kb_mp_key(e, "value"));
			t[i].effect = effect_of(kb_mp_key(e, "effect"));
		}
		if (t) {
			n->taints = t;
			n->ntaints = arr_len(taints);
		}
	}
	/* Each resource from allocatable, else from capacity. */
	const msgpack_object *al = kb_mp_get(o, "status.allocatable");
	const msgpack_object *cap = kb_mp_get(o, "status.capacity");
	struct kb_sched_resources ra = { 0 }, rc = { 0 };
	add_resources(&ra, al);
	add_resources(&rc, cap);
	n->allocatable.milli_cpu = kb_mp_key(al, "cpu") ? ra.milli_cpu :
							  rc.milli_cpu;
	n->allocatable.memory = kb_mp_key(al, "memory") ? ra.memory : rc.memory;
	n->allocatable.ephemeral_storage = kb_mp_key(al, "ephemeral-storage") ?
	    ra.ephemeral_storage :
	    rc.ephemeral_storage;
	n->allocatable.pods = kb_mp_key(al, "pods") ? ra.pods : rc.pods;
}

struct kb_sched_node *kb_sched_node_new(const msgpack_object *obj)
{
	if (obj == NULL || obj->type != MSGPACK_OBJECT_MAP)
		return NULL;
	struct node_priv *np = node_alloc();
	if (np == NULL)
		return NULL;
	np->pub.size = sizeof(struct kb_sched_node);
	/* shared, as a pod's (kb_sched_pod_new) */
	np->pub.obj = view_obj(obj, &np->body, &np->copy, &np->ar);
	if (np->pub.obj == NULL) {
		node_release(np);
		return NULL;
	}
	parse_node(np);
	np->pub.generation = next_gen();
	if (np->ar.failed) {
		arena_free(&np->ar);
		free(np->copy);
		kb_body_unref(np->body);
		node_release(np);
		return NULL;
	}
	return &np->pub;
}

void kb_sched_node_free(struct kb_sched_node *node)
{
	struct node_priv *np = (struct node_priv *)node;
	if (np == NULL)
		return;
	if (np->cols)
		row_detach(np->cols, np->row);
	for (size_t i = 0; i < node->npods; i++)
		kb_sched_pod_unref(np->pods[i]);
	free(np->pods);
	free(np->ids);
	arena_free(&np->ar);
	free(np->copy);
	kb_body_unref(np->body);
	node_release(np);
}

static void account(struct kb_sched_node *n, const struct kb_sched_pod *p,
    int sign)
{
	n->requested.milli_cpu += sign * p->requests.milli_cpu;
	n->requested.memory += sign * p->requests.memory;
	n->requested.ephemeral_storage += sign * p->requests.ephemeral_storage;
	n->nonzero_requested.milli_cpu += sign * p->nonzero_requests.milli_cpu;
	n->nonzero_requested.memory += sign * p->nonzero_requests.memory;
	n->nonzero_requested.ephemeral_storage +=
	    sign * p->nonzero_requests.ephemeral_storage;
	n->requested.pods = n->nonzero_requested.pods = (int64_t)n->npods;
	if (p->naffinity || p->npref_affinity || p->nanti_affinity ||
	    p->npref_anti_affinity)
		n->naffinity_pods += (size_t)sign;
	if (p->nanti_affinity)
		n->nanti_pods += (size_t)sign;
	n->generation = next_gen();
	row_refresh((const struct node_priv *)n);
}

int kb_sched_node_add_pod(struct kb_sched_node *node,
    const struct kb_sched_pod *pod)
{
	struct node_priv *np = (struct node_priv *)node;
	if (node->npods == np->cap) {
		size_t cap = np->cap ? np->cap * 2 : 8;
		const struct kb_sched_pod **v =
		    realloc(np->pods, cap * sizeof(*v));
		if (v == NULL)
			return KB_ENOMEM;
		np->pods = v;
		node->pods = (const struct kb_sched_pod *const *)np->pods;
		uint64_t *ids = realloc(np->ids, cap * sizeof(*ids));
		if (ids == NULL)
			return KB_ENOMEM;
		np->ids = ids;
		np->cap = cap;
	}
	np->ids[node->npods] = ((const struct pod_priv *)pod)->id;
	np->pods[node->npods++] = kb_sched_pod_ref(pod);
	node->pods = (const struct kb_sched_pod *const *)np->pods;
	account(node, pod, 1);
	return 0;
}

int kb_sched_node_remove_pod(struct kb_sched_node *node, const char *ns,
    const char *name)
{
	struct node_priv *np = (struct node_priv *)node;
	uint64_t id = pod_id(ns, name);
	for (size_t i = 0; i < node->npods; i++) {
		if (np->ids[i] != id)
			continue;
		const struct kb_sched_pod *p = np->pods[i];
		if (strcmp(p->name, name) || strcmp(p->ns, ns))
			continue;
		node->npods--;
		np->pods[i] = np->pods[node->npods];
		np->ids[i] = np->ids[node->npods];
		account(node, p, -1);
		kb_sched_pod_unref(p);
		return 0;
	}
	return KB_ENOTFOUND;
}

void kb_sched_node_move_pods(struct kb_sched_node *to,
    struct kb_sched_node *from)
{
	struct node_priv *t = (struct node_priv *)to,
			 *f = (struct node_priv *)from;
	for (size_t i = 0; i < to->npods; i++)
		kb_sched_pod_unref(t->pods[i]);
	free(t->pods);
	free(t->ids);
	t->pods = f->pods;
	t->ids = f->ids;
	t->cap = f->cap;
	to->pods = (const struct kb_sched_pod *const *)t->pods;
	to->npods = from->npods;
	to->requested = from->requested;
	to->nonzero_requested = from->nonzero_requested;
	to->naffinity_pods = from->naffinity_pods;
	to->nanti_pods = from->nanti_pods;
	from->naffinity_pods = from->nanti_pods = 0;
	f->pods = NULL;
	f->ids = NULL;
	f->cap = 0;
	from->pods = NULL;
	from->npods = 0;
	memset(&from->requested, 0, sizeof(from->requested));
	memset(&from->nonzero_requested, 0, sizeof(from->nonzero_requested));
	to->generation = next_gen();
	from->generation = next_gen();
	row_refresh(t);
	row_refresh(f);
}
