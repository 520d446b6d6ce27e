/* plugins/apiserver/codec.c — request bodies to json_t by Content-Type,
 * and json_t to and from msgpack (the store's and the bus's form).
 *
 * JSON goes through jansson, YAML through yaml.c, Kubernetes protobuf
 * through proto.c. Every decoder here is bounded: depth by API_MAX_DEPTH,
 * size by the HTTP layer's body limit, and each refuses invalid UTF-8, so
 * the rest of the API server may trust a json_t it is handed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "codec.h"

/* Deepest msgpack accepted from the store or the bus: our own encodings
 * stay within API_MAX_DEPTH; the slack is for envelopes around them. */
#define MP_MAX_DEPTH (API_MAX_DEPTH + 28)

/* --- JSON --------------------------------------------------------------------- */

/* True when the JSON text nests objects and arrays deeper than max. A cheap
 * scan before parsing, so that jansson's recursion never goes deep; it
 * need not understand invalid JSON, which the parser then refuses. */
static bool json_too_deep(const char *s, size_t n, int max)
{
	int depth = 0;
	bool in_str = false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = false;
		} else if (c == '"') {
			in_str = true;
		} else if (c == '{' || c == '[') {
			if (++depth > max)
				return true;
		} else if (c == '}' || c == ']') {
			depth--;
		}
	}
	return false;
}

json_t *api_json_decode(const char *data, size_t len, const char *ctx,
    struct api_error *e)
{
	json_error_t jerr;
	json_t *j;
	if (len == 0) {
		api_err(e, 400, "BadRequest",
		    "%s: unexpected end of JSON input", ctx);
		return NULL;
	}
	if (json_too_deep(data, len, API_MAX_DEPTH)) {
		api_err(e, 400, "BadRequest",
		    "%s: the object nests deeper than %d levels", ctx,
		    API_MAX_DEPTH);
		return NULL;
	}
	/* Without JSON_DECODE_ANY jansson wants an object or an array at the
	 * top, which is what every body (and a JSON patch) is. */
	j = json_loadb(data, len, 0, &jerr);
	if (j == NULL)
		api_err(e, 400, "BadRequest", "%s: %s (line %d, column %d)",
		    ctx, jerr.text, jerr.line, jerr.column);
	return j;
}

/* --- Content-Type ---------------------------------------------------------------- */

enum body_format {
	BODY_JSON,
	BODY_PATCH,
	BODY_YAML,
	BODY_PROTO,
	BODY_UNKNOWN
};

static const struct {
	const char *type;
	enum body_format fmt;
} media_types[] = {
	{ "application/json", BODY_JSON },
	{ "application/json-patch+json", BODY_PATCH },
	{ "application/merge-patch+json", BODY_PATCH },
	{ "application/strategic-merge-patch+json", BODY_PATCH },
	{ "application/yaml", BODY_YAML },
	{ "application/apply-patch+yaml", BODY_YAML },
	{ "application/vnd.kubernetes.protobuf", BODY_PROTO },
};

/* The media type without parameters (";charset=utf-8") or blanks. As in
 * Kubernetes, no Content-Type at all means JSON. */
static enum body_format body_format(const char *ct)
{
	size_t n;
	if (ct == NULL)
		return BODY_JSON;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if (n == 0)
		return BODY_JSON;
	for (size_t i = 0; i < sizeof media_types / sizeof media_types[0]; i++)
		if (strlen(media_types[i].type) == n &&
		    strncasecmp(media_types[i].type, ct, n) == 0)
			return media_types[i].fmt;
	return BODY_UNKNOWN;
}

static bool looks_like_json(const char *s, size_t n)
{
	size_t i = 0;
	while (i < n &&
	    (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n'))
		i++;
	return i < n && (s[i] == '{' || s[i] == '[');
}

/* apply-patch+yaml from kubectl is JSON; parse it as such when it is,
 * and as YAML (of which JSON is nearly a subset) when it is not. */
static json_t *parse_yaml_body(const char *data, size_t len,
    struct api_error *e)
{
	if (looks_like_json(data, len)) {
		struct api_error scratch = { 0 };
		json_t *j = api_json_decode(data, len, "", &scratch);
		api_err_clear(&scratch);
		if (j)
			return j;
	}
	return api_yaml_decode(data, len, e);
}

json_t *api_parse_body(const char *content_type, const void *data, size_t len,
    struct api_error *e)
{
	if (data == NULL) {
		data = "";
		len = 0;
	}
	switch (body_format(content_type)) {
	case BODY_JSON:
		return api_json_decode(data, len,
		    "couldn't get version/kind; json parse error", e);
	case BODY_PATCH:
		return api_json_decode(data, len,
		    "error decoding patch: json parse error", e);
	case BODY_YAML:
		return parse_yaml_body(data, len, e);
	case BODY_PROTO:
		return api_proto_decode(data, len, e);
	default:
		api_err(e, 415, "UnsupportedMediaType",
		    "the body of the request was in an unknown format - "
		    "accepted media types include: application/json, "
		    "application/yaml, application/vnd.kubernetes.protobuf");
		return NULL;
	}
}

/* --- msgpack object -> json_t ----------------------------------------------------- */

/* A str (or a bin, which only ever holds text we stored) as a JSON string:
 * UTF-8 without NUL, as every string the JSON and YAML parsers let in, so
 * that C code reading json_string_value() sees all of it. */
static bool text_ok(const char *p, size_t n)
{
	/* msgpack-c gives an empty string a NULL pointer */
	return n == 0 || memchr(p, 0, n) == NULL;
}

static json_t *text(const char *p, size_t n)
{
	if (n == 0)
		return json_string("");
	return text_ok(p, n) ? json_stringn(p, n) : NULL;
}

static json_t *from_mp(const msgpack_object *o, int depth);

static json_t *from_mp_map(const msgpack_object_map *m, int depth)
{
	json_t *obj = json_object();
	for (uint32_t i = 0; obj && i < m->size; i++) {
		const msgpack_object *k = &m->ptr[i].key;
		const msgpack_object_str *ks = &k->via.str;
		json_t *v = NULL;
		/* Objects have string keys; a bin key is a string that
		 * travelled through a packer without the str8 type. */
		if ((k->type == MSGPACK_OBJECT_STR ||
		    k->type == MSGPACK_OBJECT_BIN) && text_ok(ks->ptr, ks->size))
			v = from_mp(&m->ptr[i].val, depth + 1);
		if (v == NULL || json_object_setn_new(obj,
		    ks->size ? ks->ptr : "", ks->size, v)) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

static json_t *from_mp_array(const msgpack_object_array *a, int depth)
{
	json_t *arr = json_array();
	for (uint32_t i = 0; arr && i < a->size; i++) {
		json_t *v = from_mp(&a->ptr[i], depth + 1);
		if (v == NULL || json_array_append_new(arr, v)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

static json_t *from_mp(const msgpack_object *o, int depth)
{
	if (depth > MP_MAX_DEPTH)
		return NULL;
	switch (o->type) {
	case MSGPACK_OBJECT_NIL:
		return json_null();
	case MSGPACK_OBJECT_BOOLEAN:
		return json_boolean(o->via.boolean);
	case MSGPACK_OBJECT_POSITIVE_INTEGER:
		if (o->via.u64 > (uint64_t)INT64_MAX)
			return json_real((double)o->via.u64);
		return json_integer((json_int_t)o->via.u64);
	case MSGPACK_OBJECT_NEGATIVE_INTEGER:
		return json_integer(o->via.i64);
	case MSGPACK_OBJECT_FLOAT32:
	case MSGPACK_OBJECT_FLOAT64:
		return json_real(o->via.f64);
	case MSGPACK_OBJECT_STR:
	case MSGPACK_OBJECT_BIN:
		return text(o->via.str.ptr, o->via.str.size);
	case MSGPACK_OBJECT_ARRAY:
		return from_mp_array(&o->via.array, depth);
	case MSGPACK_OBJECT_MAP:
		return from_mp_map(&o->via.map, depth);
	default:
		return NULL;
	}
}

json_t *api_json_from_mp(const msgpack_object *o)
{
	return o ? from_mp(o, 0) : NULL;
}

/* --- msgpack bytes -> json_t ---------------------------------------------------------
 *
 * Decoded straight from the bytes rather than through msgpack_unpack: that
 * one allocates a zone per value and refuses anything nested deeper than
 * 32 levels (MSGPACK_EMBED_STACK_SIZE), which a valid object may exceed. */

static bool mpc_take(struct api_mpc *c, size_t n, const unsigned char **b)
{
	if ((size_t)(c->end - c->p) < n)
		return false;
	*b = c->p;
	c->p += n;
	return true;
}

static bool mpc_uint(struct api_mpc *c, size_t n, uint64_t *v)
{
	const unsigned char *b;
	if (!mpc_take(c, n, &b))
		return false;
	*v = 0;
	for (size_t i = 0; i < n; i++)
		*v = *v << 8 | b[i];
	return true;
}

/* A str, bin, array, map or ext with a lenbytes-long length. */
static bool mpc_sized(struct api_mpc *c, size_t lenbytes, int kind, struct api_mval *v)
{
	const unsigned char *b;
	if (!mpc_uint(c, lenbytes, &v->n))
		return false;
	v->kind = kind;
	if (kind == API_MV_STR || kind == API_MV_EXT) {
		if (!mpc_take(c, (size_t)v->n + (kind == API_MV_EXT), &b))
			return false;
		v->s = (const char *)b + (kind == API_MV_EXT);
	}
	return true;
}

static bool mpc_int(struct api_mpc *c, size_t n, bool sign, struct api_mval *v)
{
	uint64_t u;
	if (!mpc_uint(c, n, &u))
		return false;
	v->kind = API_MV_INT;
	if (!sign) {
		if (u > (uint64_t)INT64_MAX) {
			v->kind = API_MV_REAL;
			v->d = (double)u;
		}
		v->i = (int64_t)u;
		return true;
	}
	v->i = n == 1 ? (int8_t)u : n == 2 ? (int16_t)u : n == 4 ? (int32_t)u : (int64_t)u;
	return true;
}

static bool mpc_float(struct api_mpc *c, bool is64, struct api_mval *v)
{
	uint64_t bits;
	if (!mpc_uint(c, is64 ? 8 : 4, &bits))
		return false;
	v->kind = API_MV_REAL;
	if (is64) {
		memcpy(&v->d, &bits, sizeof(v->d));
	} else {
		uint32_t b32 = (uint32_t)bits;
		float f;
		memcpy(&f, &b32, sizeof(f));
		v->d = f;
	}
	return true;
}

bool api_mpc_read(struct api_mpc *c, struct api_mval *v)
{
	const unsigned char *b;
	memset(v, 0, sizeof(*v));
	if (!mpc_take(c, 1, &b))
		return false;
	unsigned t = *b;
	if (t <= 0x7f || t >= 0xe0) {
		v->kind = API_MV_INT;
		v->i = t <= 0x7f ? (int64_t)t : (int64_t)(int8_t)t;
		return true;
	}
	if (t <= 0x8f) {
		v->kind = API_MV_MAP;
		v->n = t & 0x0f;
		return true;
	}
	if (t <= 0x9f) {
		v->kind = API_MV_ARR;
		v->n = t & 0x0f;
		return true;
	}
	if (t <= 0xbf) {
		v->kind = API_MV_STR;
		v->n = t & 0x1f;
		if (!mpc_take(c, (size_t)v->n, &b))
			return false;
		v->s = (const char *)b;
		return true;
	}
	switch (t) {
	case 0xc0: v->kind = API_MV_NIL; return true;
	case 0xc2: case 0xc3: v->kind = API_MV_BOOL; v->b = t == 0xc3; return true;
	case 0xca: return mpc_float(c, false, v);
	case 0xcb: return mpc_float(c, true, v);
	case 0xcc: return mpc_int(c, 1, false, v);
	case 0xcd: return mpc_int(c, 2, false, v);
	case 0xce: return mpc_int(c, 4, false, v);
	case 0xcf: return mpc_int(c, 8, false, v);
	case 0xd0: return mpc_int(c, 1, true, v);
	case 0xd1: return mpc_int(c, 2, true, v);
	case 0xd2: return mpc_int(c, 4, true, v);
	case 0xd3: return mpc_int(c, 8, true, v);
	case 0xc4: case 0xd9: return mpc_sized(c, 1, API_MV_STR, v);
	case 0xc5: case 0xda: return mpc_sized(c, 2, API_MV_STR, v);
	case 0xc6: case 0xdb: return mpc_sized(c, 4, API_MV_STR, v);
	case 0xdc: return mpc_sized(c, 2, API_MV_ARR, v);
	case 0xdd: return mpc_sized(c, 4, API_MV_ARR, v);
	case 0xde: return mpc_sized(c, 2, API_MV_MAP, v);
	case 0xdf: return mpc_sized(c, 4, API_MV_MAP, v);
	case 0xd4: v->kind = API_MV_EXT; return mpc_take(c, 2, &b);
	case 0xd5: v->kind = API_MV_EXT; return mpc_take(c, 3, &b);
	case 0xd6: v->kind = API_MV_EXT; return mpc_take(c, 5, &b);
	case 0xd7: v->kind = API_MV_EXT; return mpc_take(c, 9, &b);
	case 0xd8: v->kind = API_MV_EXT; return mpc_take(c, 17, &b);
	case 0xc7: return mpc_sized(c, 1, API_MV_EXT, v);
	case 0xc8: return mpc_sized(c, 2, API_MV_EXT, v);
	case 0xc9: return mpc_sized(c, 4, API_MV_EXT, v);
	default: return false;
	}
}

bool api_mpc_skip(struct api_mpc *c, int depth)
{
	struct api_mval v;
	if (depth > MP_MAX_DEPTH || !api_mpc_read(c, &v) || v.kind == API_MV_EXT)
		return false;
	uint64_t items = v.kind == API_MV_MAP ? 2 * v.n : v.kind == API_MV_ARR ? v.n : 0;
	for (uint64_t i = 0; i < items; i++)
		if (!api_mpc_skip(c, depth + 1))
			return false;
	return true;
}

bool api_mpc_find(struct api_mpc *c, const char *key, size_t kl)
{
	struct api_mval m, k;
	if (!api_mpc_read(c, &m) || m.kind != API_MV_MAP)
		return false;
	for (uint64_t i = 0; i < m.n; i++) {
		if (!api_mpc_read(c, &k) || k.kind != API_MV_STR)
			return false;
		if (k.n == kl && !memcmp(k.s, key, kl))
			return true;
		if (!api_mpc_skip(c, 1))
			return false;
	}
	return false;
}

static json_t *mp_value(struct api_mpc *in, int depth);

static json_t *mp_array(struct api_mpc *in, uint64_t n, int depth)
{
	json_t *arr = json_array();
	for (uint64_t i = 0; arr && i < n; i++) {
		json_t *v = mp_value(in, depth + 1);
		if (v == NULL || json_array_append_new(arr, v)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* A map key: str or bin, the bytes borrowed from the input. */
static bool mp_key(struct api_mpc *in, const unsigned char **k, size_t *n)
{
	struct api_mval v;
	if (!api_mpc_read(in, &v) || v.kind != API_MV_STR)
		return false;
	*k = (const unsigned char *)v.s;
	*n = (size_t)v.n;
	return text_ok(v.s, *n);
}

static json_t *mp_map(struct api_mpc *in, uint64_t n, int depth)
{
	json_t *obj = json_object();
	for (uint64_t i = 0; obj && i < n; i++) {
		const unsigned char *k;
		size_t klen;
		json_t *v;
		if (!mp_key(in, &k, &klen) ||
		    (v = mp_value(in, depth + 1)) == NULL ||
		    json_object_setn_new(obj, (const char *)k, klen, v)) {
			json_decref(obj);
			return NULL;
		}
	}
	return obj;
}

static json_t *mp_value(struct api_mpc *in, int depth)
{
	struct api_mval v;
	if (depth > MP_MAX_DEPTH || !api_mpc_read(in, &v))
		return NULL;
	switch (v.kind) {
	case API_MV_NIL: return json_null();
	case API_MV_BOOL: return json_boolean(v.b);
	case API_MV_INT: return json_integer(v.i);
	case API_MV_REAL: return json_real(v.d);
	case API_MV_STR: return text(v.s, (size_t)v.n);
	case API_MV_MAP: return mp_map(in, v.n, depth);
	case API_MV_ARR: return mp_array(in, v.n, depth);
	default: return NULL; /* ext */
	}
}

json_t *api_mp_decode(const void *data, size_t len)
{
	struct api_mpc in = { data, (const unsigned char *)data + len };
	json_t *j;
	if (data == NULL || len == 0)
		return NULL;
	j = mp_value(&in, 0);
	if (j && in.p != in.end) {
		/* one value, exactly: trailing bytes mean a framing bug */
		json_decref(j);
		return NULL;
	}
	return j;
}

/* --- msgpack to JSON text, as api_json_text(api_mp_decode()) writes it ---------------- */

/* The text grows in a msgpack_sbuffer (its storage is malloc'd: handed
 * over as the result); bad: no memory, or the input has no such text. */
struct jbuf {
	msgpack_sbuffer sb;
	bool bad;
};

static void jb_put(struct jbuf *b, const char *s, size_t n)
{
	if (!b->bad && n && msgpack_sbuffer_write(&b->sb, s, n) != 0)
		b->bad = true;
}

/* A string as jansson's dump writes it without JSON_ENSURE_ASCII and
 * JSON_ESCAPE_SLASH; NUL bytes and invalid UTF-8 (which json_t strings
 * from api_mp_decode cannot hold) make it bad. */
static void jb_str(struct jbuf *b, const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	jb_put(b, "\"", 1);
	size_t run = 0; /* bytes copied as they are, not yet put */
	for (size_t i = 0; i < n && !b->bad;) {
		unsigned c = p[i];
		const char *esc = NULL;
		char u[8];
		if (c >= 0x80) {
			size_t l = api_utf8_seq(p + i, n - i);
			if (l == 0) {
				b->bad = true;
				break;
			}
			i += l;
			run += l;
			continue;
		}
		switch (c) {
		case '"': esc = "\\\""; break;
		case '\\': esc = "\\\\"; break;
		case '\b': esc = "\\b"; break;
		case '\f': esc = "\\f"; break;
		case '\n': esc = "\\n"; break;
		case '\r': esc = "\\r"; break;
		case '\t': esc = "\\t"; break;
		case 0: b->bad = true; break;
		default:
			if (c < 0x20) {
				snprintf(u, sizeof(u), "\\u%04X", c);
				esc = u;
			}
		}
		if (esc == NULL) {
			i++;
			run++;
			continue;
		}
		jb_put(b, (const char *)p + i - run, run);
		jb_put(b, esc, strlen(esc));
		run = 0;
		i++;
	}
	if (run)
		jb_put(b, (const char *)p + n - run, run);
	jb_put(b, "\"", 1);
}

static void jb_value(struct jbuf *b, struct api_mpc *in, int depth)
{
	struct api_mval v;
	char num[24];
	if (b->bad || depth > MP_MAX_DEPTH || !api_mpc_read(in, &v)) {
		b->bad = true;
		return;
	}
	switch (v.kind) {
	case API_MV_NIL: jb_put(b, "null", 4); return;
	case API_MV_BOOL: jb_put(b, v.b ? "true" : "false", v.b ? 4 : 5); return;
	case API_MV_INT:
		jb_put(b, num, (size_t)snprintf(num, sizeof(num), "%" PRId64, v.i));
		return;
	case API_MV_STR: jb_str(b, v.s, (size_t)v.n); return;
	case API_MV_ARR:
		jb_put(b, "[", 1);
		for (uint64_t i = 0; i < v.n && !b->bad; i++) {
			if (i)
				jb_put(b, ",", 1);
			jb_value(b, in, depth + 1);
		}
		jb_put(b, "]", 1);
		return;
	case API_MV_MAP:
		jb_put(b, "{", 1);
		for (uint64_t i = 0; i < v.n && !b->bad; i++) {
			struct api_mval k;
			if (i)
				jb_put(b, ",", 1);
			if (!api_mpc_read(in, &k) || k.kind != API_MV_STR) {
				b->bad = true;
				return;
			}
			jb_str(b, k.s, (size_t)k.n);
			jb_put(b, ":", 1);
			jb_value(b, in, depth + 1);
		}
		jb_put(b, "}", 1);
		return;
	default:
		/* reals: jansson's own formatting is its to keep; ext */
		b->bad = true;
	}
}

char *api_mp_json(const void *data, size_t len, size_t *outlen)
{
	struct api_mpc in = { data, (const unsigned char *)data + len };
	struct jbuf b = { .sb = { .alloc = len + len / 2 + 64 } };
	if (data == NULL || len == 0 || (b.sb.data = malloc(b.sb.alloc)) == NULL)
		return NULL;
	jb_value(&b, &in, 0);
	if (in.p != in.end)
		b.bad = true;
	jb_put(&b, "", 1); /* the NUL, not counted */
	if (b.bad) {
		msgpack_sbuffer_destroy(&b.sb);
		return NULL;
	}
	*outlen = b.sb.size - 1;
	return b.sb.data;
}

bool api_mp_str_type(unsigned char t)
{
	return (t >= 0xa0 && t <= 0xbf) || (t >= 0xd9 && t <= 0xdb);
}

bool api_mpc_skip_sdk(struct api_mpc *c, int level)
{
	struct api_mval v;
	if (!api_mpc_read(c, &v) || v.kind == API_MV_EXT)
		return false;
	if (v.kind != API_MV_MAP && v.kind != API_MV_ARR)
		return true;
	if (level >= API_MP_SDK_DEPTH)
		return false;
	uint64_t items = v.kind == API_MV_MAP ? 2 * v.n : v.n;
	for (uint64_t i = 0; i < items; i++)
		if (!api_mpc_skip_sdk(c, level + 1))
			return false;
	return true;
}

bool api_mp_body_int(const void *data, size_t len, const char *key, bool *found,
    int64_t *out)
{
	struct api_mpc c = { data, (const unsigned char *)data + len }, w = c;
	struct api_mval m, k, v;
	size_t kl = strlen(key);
	*found = false;
	if (data == NULL || !api_mpc_skip_sdk(&w, 0) || w.p != w.end || !api_mpc_read(&c, &m))
		return false;
	if (m.kind != API_MV_MAP)
		return true;
	for (uint64_t i = 0; i < m.n; i++) {
		bool kstr = api_mp_str_type(*c.p);
		struct api_mpc at = c;
		if (!api_mpc_read(&at, &k))
			return false;
		if (kstr && k.n == kl && !memcmp(k.s, key, kl)) {
			if (!api_mpc_read(&at, &v))
				return false;
			if (v.kind == API_MV_INT) {
				*out = v.i;
				*found = true;
			}
			return true;
		}
		if (!api_mpc_skip_sdk(&c, 1) || !api_mpc_skip_sdk(&c, 1))
			return false;
	}
	return true;
}

json_t *api_mp_decode_next(struct api_mpc *c, int levels)
{
	/* mp_value refuses a value deeper than MP_MAX_DEPTH: start that
	 * many levels short of it */
	if (levels < 0 || levels > MP_MAX_DEPTH)
		return NULL;
	return mp_value(c, MP_MAX_DEPTH - levels);
}

/* --- a stored object with its resourceVersion, in msgpack ------------------------------ */

/* A map's size from its header (false: not a map). */
static bool mp_map_head(struct api_mpc *in, uint64_t *n)
{
	struct api_mval v;
	if (!api_mpc_read(in, &v) || v.kind != API_MV_MAP)
		return false;
	*n = v.n;
	return true;
}

static bool key_is(const unsigned char *k, size_t n, const char *want)
{
	return n == strlen(want) && !memcmp(k, want, n);
}

int api_mp_with_rv(const void *data, size_t len, int64_t rev, char **out,
    size_t *outlen)
{
	struct api_mpc in = { data, (const unsigned char *)data + len };
	const unsigned char *md_head = NULL, *md_end = NULL, *k;
	uint64_t n, mdn = 0;
	size_t klen;
	if (data == NULL || rev < 0 || !mp_map_head(&in, &n))
		return KB_EINVAL;
	/* Up to the end of metadata, no further: what follows (a pod's spec
	 * and status, most of its bytes) is copied unread. These are a
	 * store's bytes, which this server encoded; walking the rest only to
	 * find their end was most of the cost of every watch event and
	 * every write's answer. */
	uint64_t i = 0;
	for (; i < n && md_head == NULL; i++) {
		if (!mp_key(&in, &k, &klen))
			return KB_EINVAL;
		if (key_is(k, klen, "metadata")) {
			md_head = in.p;
			if (!mp_map_head(&in, &mdn))
				return KB_EINVAL;
			for (uint64_t j = 0; j < mdn; j++) {
				if (!mp_key(&in, &k, &klen) ||
				    key_is(k, klen, "resourceVersion") ||
				    !api_mpc_skip(&in, 2))
					return KB_EINVAL;
			}
			md_end = in.p;
		} else if (!api_mpc_skip(&in, 1)) {
			return KB_EINVAL;
		}
	}
	/* metadata last: nothing may follow it; else something must */
	if (md_head == NULL || (i == n) != (in.p == in.end) || mdn + 1 > UINT32_MAX)
		return KB_EINVAL;
	/* The same bytes with one more metadata entry at its end, as
	 * encoding the decoded object after set_rv writes them. */
	char rv[24];
	const char *p = api_u64_text((uint64_t)rev, rv);
	size_t rvlen = strlen(p);
	msgpack_sbuffer sb = { 0 };
	msgpack_packer pk;
	sb.alloc = len + 64;
	if ((sb.data = malloc(sb.alloc)) == NULL)
		return KB_ENOMEM;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	uint64_t was;
	struct api_mpc h = { md_head, md_end };
	mp_map_head(&h, &was);
	const unsigned char *body = h.p; /* metadata's entries */
	if (msgpack_sbuffer_write(&sb, data, (size_t)(md_head - (const unsigned char *)data)) ||
	    msgpack_pack_map(&pk, (size_t)mdn + 1) ||
	    msgpack_sbuffer_write(&sb, (const char *)body, (size_t)(md_end - body)) ||
	    msgpack_pack_str_with_body(&pk, "resourceVersion", 15) ||
	    msgpack_pack_str_with_body(&pk, p, rvlen) ||
	    msgpack_sbuffer_write(&sb, (const char *)md_end, (size_t)(in.end - md_end))) {
		msgpack_sbuffer_destroy(&sb);
		return KB_ENOMEM;
	}
	*out = sb.data;
	*outlen = sb.size;
	return 0;
}

/* --- json_t -> msgpack --------------------------------------------------------------- */

static int to_mp(msgpack_packer *pk, const json_t *j, int depth);

static int to_mp_object(msgpack_packer *pk, const json_t *j, int depth)
{
	const char *k;
	size_t klen;
	json_t *v;
	if (msgpack_pack_map(pk, json_object_size(j)))
		return KB_ENOMEM;
	json_object_keylen_foreach((json_t *)j, k, klen, v)
	{
		if (msgpack_pack_str_with_body(pk, k, klen))
			return KB_ENOMEM;
		int rc = to_mp(pk, v, depth + 1);
		if (rc)
			return rc;
	}
	return 0;
}

static int to_mp_array(msgpack_packer *pk, const json_t *j, int depth)
{
	size_t i;
	json_t *v;
	if (msgpack_pack_array(pk, json_array_size(j)))
		return KB_ENOMEM;
	json_array_foreach(j, i, v) {
		int rc = to_mp(pk, v, depth + 1);
		if (rc)
			return rc;
	}
	return 0;
}

static int to_mp(msgpack_packer *pk, const json_t *j, int depth)
{
	int rc;
	if (j == NULL || depth > MP_MAX_DEPTH)
		return KB_EINVAL;
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		return to_mp_object(pk, j, depth);
	case JSON_ARRAY:
		return to_mp_array(pk, j, depth);
	case JSON_STRING:
		rc = msgpack_pack_str_with_body(pk, json_string_value(j),
		    json_string_length(j));
		break;
	case JSON_INTEGER:
		rc = msgpack_pack_int64(pk, json_integer_value(j));
		break;
	case JSON_REAL:
		rc = msgpack_pack_double(pk, json_real_value(j));
		break;
	case JSON_TRUE:
		rc = msgpack_pack_true(pk);
		break;
	case JSON_FALSE:
		rc = msgpack_pack_false(pk);
		break;
	default:
		rc = msgpack_pack_nil(pk);
	}
	return rc ? KB_ENOMEM : 0;
}

int api_mp_from_json(msgpack_packer *pk, const json_t *j)
{
	return to_mp(pk, j, 0);
}

int api_mp_encode(const json_t *j, char **out, size_t *len)
{
	msgpack_sbuffer sb;
	msgpack_packer pk;
	int rc;
	msgpack_sbuffer_init(&sb);
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	rc = to_mp(&pk, j, 0);
	if (rc) {
		msgpack_sbuffer_destroy(&sb);
		return rc;
	}
	/* the sbuffer's storage is malloc'd: hand it over as is */
	*out = sb.data;
	*len = sb.size;
	return 0;
}

char *api_json_text(const json_t *j, size_t *len)
{
	char *s = j ? json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
	if (len)
		*len = s ? strlen(s) : 0;
	return s;
}
