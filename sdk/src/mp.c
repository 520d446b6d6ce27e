/* sdk/src/mp.c — read msgpack maps by path, build them by format. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <kubus/mp.h>

const msgpack_object *kb_mp_keyn(const msgpack_object *map, const char *key,
    size_t keylen)
{
	if (map == NULL || map->type != MSGPACK_OBJECT_MAP)
		return NULL;
	const msgpack_object_kv *kv = map->via.map.ptr;
	for (uint32_t i = 0; i < map->via.map.size; i++) {
		const msgpack_object *k = &kv[i].key;
		if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == keylen &&
		    memcmp(k->via.str.ptr, key, keylen) == 0)
			return &kv[i].val;
	}
	return NULL;
}

const msgpack_object *kb_mp_key(const msgpack_object *map, const char *key)
{
	return kb_mp_keyn(map, key, strlen(key));
}

/* One step of a path: a key (unescaped into buf) or an index. */
const msgpack_object *kb_mp_get(const msgpack_object *o, const char *path)
{
	char key[256];
	const char *p = path;
	while (o && *p) {
		if (*p == '[') {
			char *end;
			unsigned long i = strtoul(p + 1, &end, 10);
			if (end == p + 1 || *end != ']' ||
			    o->type != MSGPACK_OBJECT_ARRAY || i >= o->via.array.size)
				return NULL;
			o = &o->via.array.ptr[i];
			p = end + 1;
			if (*p == '.')
				p++;
			continue;
		}
		/* A key without a backslash is read in place. */
		const char *k = p;
		while (*p && *p != '.' && *p != '[' && *p != '\\')
			p++;
		size_t n = (size_t)(p - k);
		if (n >= sizeof(key))
			return NULL; /* 255 bytes at most, as below */
		if (*p == '\\') {
			memcpy(key, k, n);
			while (*p && *p != '.' && *p != '[') {
				if (*p == '\\' && p[1])
					p++;
				if (n + 1 >= sizeof(key))
					return NULL;
				key[n++] = *p++;
			}
			k = key;
		}
		o = kb_mp_keyn(o, k, n);
		if (*p == '.')
			p++;
	}
	return o;
}

bool kb_mp_str(const msgpack_object *o, const char *path, const char **s,
    size_t *len)
{
	const msgpack_object *v = path ? kb_mp_get(o, path) : o;
	if (v == NULL || v->type != MSGPACK_OBJECT_STR)
		return false;
	*s = v->via.str.ptr;
	if (len)
		*len = v->via.str.size;
	return true;
}

bool kb_mp_int(const msgpack_object *o, const char *path, int64_t *out)
{
	const msgpack_object *v = path ? kb_mp_get(o, path) : o;
	if (v == NULL)
		return false;
	if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
		*out = v->via.i64;
		return true;
	}
	if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
	    v->via.u64 <= (uint64_t)INT64_MAX) {
		*out = (int64_t)v->via.u64;
		return true;
	}
	return false;
}

bool kb_mp_uint(const msgpack_object *o, const char *path, uint64_t *out)
{
	const msgpack_object *v = path ? kb_mp_get(o, path) : o;
	if (v == NULL || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
		return false;
	*out = v->via.u64;
	return true;
}

bool kb_mp_bool(const msgpack_object *o, const char *path, bool *out)
{
	const msgpack_object *v = path ? kb_mp_get(o, path) : o;
	if (v == NULL || v->type != MSGPACK_OBJECT_BOOLEAN)
		return false;
	*out = v->via.boolean;
	return true;
}

bool kb_mp_double(const msgpack_object *o, const char *path, double *out)
{
	const msgpack_object *v = path ? kb_mp_get(o, path) : o;
	int64_t i;
	if (v == NULL)
		return false;
	if (v->type == MSGPACK_OBJECT_FLOAT32 || v->type == MSGPACK_OBJECT_FLOAT64) {
		*out = v->via.f64;
		return true;
	}
	if (kb_mp_int(v, NULL, &i)) {
		*out = (double)i;
		return true;
	}
	return false;
}

bool kb_mp_is(const msgpack_object *o, const char *s)
{
	size_t n = strlen(s);
	return o && o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
	    memcmp(o->via.str.ptr, s, n) == 0;
}

bool kb_mp_streq(const msgpack_object *o, const char *path, const char *s)
{
	return kb_mp_is(path ? kb_mp_get(o, path) : o, s);
}

char *kb_mp_strdup(const msgpack_object *o, const char *path)
{
	const char *s;
	size_t n;
	if (!kb_mp_str(o, path, &s, &n))
		return NULL;
	return strndup(s, n);
}

void kb_mp_pack_cstr(msgpack_packer *pk, const char *s)
{
	if (s == NULL) {
		msgpack_pack_nil(pk);
		return;
	}
	size_t n = strlen(s);
	msgpack_pack_str(pk, n);
	msgpack_pack_str_body(pk, s, n);
}

/* --- building by format ---------------------------------------------------- */

static bool fmt_skip(char c)
{
	return c == ' ' || c == ',' || c == ':' || c == '\t' || c == '\n';
}

/* How many items the container opening at fmt[0] holds: values directly
 * inside it, nested containers counting as one. -1 if unbalanced. */
static long fmt_count(const char *fmt)
{
	int depth = 0;
	long n = 0;
	for (const char *p = fmt + 1; *p; p++) {
		if (fmt_skip(*p))
			continue;
		if (*p == '{' || *p == '[') {
			if (depth == 0)
				n++;
			depth++;
		} else if (*p == '}' || *p == ']') {
			if (depth == 0)
				return n;
			depth--;
		} else if (depth == 0) {
			n++;
		}
	}
	return -1;
}

static int pack_one(msgpack_packer *pk, const char **fmtp, va_list *ap);

static int pack_container(msgpack_packer *pk, const char **fmtp, va_list *ap)
{
	const char *p = *fmtp;
	char close = *p == '{' ? '}' : ']';
	long n = fmt_count(p);
	if (n < 0 || (close == '}' && n % 2))
		return KB_EINVAL;
	if (close == '}')
		msgpack_pack_map(pk, (size_t)n / 2);
	else
		msgpack_pack_array(pk, (size_t)n);
	p++;
	for (;;) {
		while (fmt_skip(*p))
			p++;
		if (*p == close) {
			*fmtp = p + 1;
			return 0;
		}
		int rc = pack_one(pk, &p, ap);
		if (rc)
			return rc;
	}
}

static int pack_one(msgpack_packer *pk, const char **fmtp, va_list *ap)
{
	const char *p = *fmtp;
	const char *s;
	size_t n;
	const msgpack_object *o;
	switch (*p) {
	case '{':
	case '[':
		return pack_container(pk, fmtp, ap);
	case 's':
		kb_mp_pack_cstr(pk, va_arg(*ap, const char *));
		break;
	case 'S':
		s = va_arg(*ap, const char *);
		n = va_arg(*ap, size_t);
		msgpack_pack_str(pk, n);
		msgpack_pack_str_body(pk, s, n);
		break;
	case 'i':
		msgpack_pack_int64(pk, va_arg(*ap, int));
		break;
	case 'I':
		msgpack_pack_int64(pk, va_arg(*ap, int64_t));
		break;
	case 'u':
		msgpack_pack_uint64(pk, va_arg(*ap, uint64_t));
		break;
	case 'b':
		if (va_arg(*ap, int))
			msgpack_pack_true(pk);
		else
			msgpack_pack_false(pk);
		break;
	case 'f':
		msgpack_pack_double(pk, va_arg(*ap, double));
		break;
	case 'n':
		msgpack_pack_nil(pk);
		break;
	case 'o':
		o = va_arg(*ap, const msgpack_object *);
		if (o)
			msgpack_pack_object(pk, *o);
		else
			msgpack_pack_nil(pk);
		break;
	case 'r':
		s = va_arg(*ap, const char *);
		n = va_arg(*ap, size_t);
		/* Raw bytes already encoded: written as they are. */
		pk->callback(pk->data, s, n);
		break;
	default:
		return KB_EINVAL;
	}
	*fmtp = p + 1;
	return 0;
}

int kb_mp_vpack(msgpack_packer *pk, const char *fmt, va_list ap)
{
	va_list cp;
	va_copy(cp, ap);
	const char *p = fmt;
	int rc = 0;
	while (rc == 0 && *p) {
		if (fmt_skip(*p)) {
			p++;
			continue;
		}
		rc = pack_one(pk, &p, &cp);
	}
	va_end(cp);
	return rc;
}

int kb_mp_pack(msgpack_packer *pk, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int rc = kb_mp_vpack(pk, fmt, ap);
	va_end(ap);
	return rc;
}

/* kb_mp_body's output: on the stack while it fits, then on the heap. */
struct stackbuf {
	char *data;
	size_t size, cap;
	bool heap, oom;
	char first[2048];
};

static int stackbuf_write(void *arg, const char *p, size_t n)
{
	struct stackbuf *sb = arg;
	if (sb->oom)
		return -1;
	if (n > sb->cap - sb->size) {
		size_t cap = sb->cap * 2;
		while (cap - sb->size < n)
			cap *= 2;
		char *d = sb->heap ? realloc(sb->data, cap) : malloc(cap);
		if (d == NULL) {
			sb->oom = true;
			return -1;
		}
		if (!sb->heap)
			memcpy(d, sb->data, sb->size);
		sb->data = d;
		sb->cap = cap;
		sb->heap = true;
	}
	memcpy(sb->data + sb->size, p, n);
	sb->size += n;
	return 0;
}

kb_body *kb_mp_body(const char *fmt, ...)
{
	struct stackbuf sb;
	sb.data = sb.first;
	sb.size = 0;
	sb.cap = sizeof(sb.first);
	sb.heap = sb.oom = false;
	msgpack_packer pk;
	msgpack_packer_init(&pk, &sb, stackbuf_write);
	va_list ap;
	va_start(ap, fmt);
	int rc = kb_mp_vpack(&pk, fmt, ap);
	va_end(ap);
	/* the body holds exactly the bytes, in its own block */
	kb_body *b = rc == 0 && !sb.oom ? kb_body_new(sb.data, sb.size) : NULL;
	if (sb.heap)
		free(sb.data);
	return b;
}

char *kb_mp_repr(const msgpack_object *o, char *buf, size_t cap)
{
	if (cap == 0)
		return buf;
	if (o == NULL) {
		snprintf(buf, cap, "(none)");
		return buf;
	}
	msgpack_object_print_buffer(buf, cap, *o);
	buf[cap - 1] = '\0';
	return buf;
}

void kb_mp_sbuffer_init(msgpack_sbuffer *sb, size_t size)
{
	msgpack_sbuffer_init(sb);
	if ((sb->data = malloc(size)) != NULL)
		sb->alloc = size;
}
