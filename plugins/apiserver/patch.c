/* plugins/apiserver/patch.c — PATCH bodies: JSON patch (RFC 6902), JSON
 * merge patch (RFC 7386), strategic merge patch (patch_smp.c) and
 * server-side apply.
 *
 * Each answers as kube-apiserver does, errors included: it runs JSON
 * patches with evanphx/json-patch v4 and merge patches with its MergePatch,
 * so their quirks that users can lean on are kept (negative array indexes,
 * "replace" of a missing member adds it) and every failed operation is the
 * same bare 422 kubectl prints as "The request is invalid: the server
 * rejected our request due to an error in our request".
 *
 * The result never shares a json_t with the object or the patch.
 */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "patch.h"

#define MAX_JSON_PATCH_OPS 10000
/* What "copy" operations may add to the document, in bytes of JSON text:
 * Kubernetes' JSONPatchMaxCopyBytes (its request size limit). Each copy
 * can double the document, so a patch of a few dozen operations would
 * otherwise ask for gigabytes. */
#define MAX_JSON_PATCH_COPY_BYTES (3 * 1024 * 1024)

/* --- errors --------------------------------------------------------------- */

void patch_fail(struct api_error *e, int code, const char *reason,
    const char *fmt, ...)
{
	char msg[sizeof(e->message)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	api_err(e, code, reason, "%s", msg);
}

const char *patch_go_type(const json_t *v)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_OBJECT:
		return "map[string]interface {}";
	case JSON_ARRAY:
		return "[]interface {}";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
		return "int64";
	case JSON_REAL:
		return "float64";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	default:
		return "<nil>";
	}
}

const char *patch_json_kind(const json_t *v)
{
	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	default:
		return "null";
	}
}

/* --- Go's %v, for the messages Kubernetes builds with it ------------------ */

struct gobuf {
	char *p;
	size_t len, cap;
};

static void gput(struct gobuf *b, const char *s)
{
	size_t n = strlen(s);

	if (b->len + 1 >= b->cap)
		return;
	if (n > b->cap - 1 - b->len)
		n = b->cap - 1 - b->len;
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

/* float64 as Go's %v prints it (strconv 'g', shortest): the fewest
 * digits that read back, in %e form when the exponent is below -4 or at
 * least 6 (1e+06, 1.5, 0.0001). */
static void gput_real(struct gobuf *b, double d)
{
	char s[64];
	int prec = 1, exp10;

	for (; prec < 17; prec++) {
		snprintf(s, sizeof(s), "%.*e", prec - 1, d);
		if (strtod(s, NULL) == d)
			break;
	}
	snprintf(s, sizeof(s), "%.*e", prec - 1, d);
	exp10 = strchr(s, 'e') ? atoi(strchr(s, 'e') + 1) : 0;
	if (exp10 >= -4 && exp10 < 6) {
		int decimals = prec - 1 - exp10;
		snprintf(s, sizeof(s), "%.*f", decimals > 0 ? decimals : 0, d);
	}
	gput(b, s);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void gfmt(struct gobuf *b, const json_t *v);

/* Go prints a map's keys sorted. */
static void gfmt_object(struct gobuf *b, const json_t *v)
{
	size_t n = json_object_size(v), i = 0;
	const char **keys = calloc(n ? n : 1, sizeof(*keys));
	const char *k;
	json_t *x;

	if (keys == NULL)
		return;
	json_object_foreach((json_t *)v, k, x)
		keys[i++] = k;
	qsort(keys, n, sizeof(*keys), cmp_str);
	gput(b, "map[");
	for (i = 0; i < n; i++) {
		gput(b, i ? " " : "");
		gput(b, keys[i]);
		gput(b, ":");
		gfmt(b, json_object_get(v, keys[i]));
	}
	gput(b, "]");
	free(keys);
}

static void gfmt(struct gobuf *b, const json_t *v)
{
	char num[32];
	size_t i;
	json_t *x;

	switch (v ? json_typeof(v) : JSON_NULL) {
	case JSON_OBJECT:
		gfmt_object(b, v);
		break;
	case JSON_ARRAY:
		gput(b, "[");
		json_array_foreach(v, i, x) {
			gput(b, i ? " " : "");
			gfmt(b, x);
		}
		gput(b, "]");
		break;
	case JSON_STRING:
		gput(b, json_string_value(v));
		break;
	case JSON_INTEGER:
		snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT,
		    json_integer_value(v));
		gput(b, num);
		break;
	case JSON_REAL:
		gput_real(b, json_real_value(v));
		break;
	case JSON_TRUE:
		gput(b, "true");
		break;
	case JSON_FALSE:
		gput(b, "false");
		break;
	default:
		gput(b, "<nil>");
		break;
	}
}

char *patch_go_fmt(const json_t *v, char *buf, size_t len)
{
	struct gobuf b = { buf, 0, len };

	if (len)
		buf[0] = '\0';
	gfmt(&b, v);
	return buf;
}

/* --- JSON patch (RFC 6902) ------------------------------------------------ */

/* Where a JSON pointer lands: the container and the last token. */
struct loc {
	json_t *parent;
	char *key; /* decoded (malloc'd) */
};

/* One reference token, "~1" -> "/", "~0" -> "~" (another "~x" stays, as
 * json-patch v4 leaves it). */
static char *decode_token(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;

	for (size_t i = 0; out && i < n; i++) {
		if (s[i] == '~' && i + 1 < n &&
		    (s[i + 1] == '0' || s[i + 1] == '1'))
			*o++ = s[++i] == '0' ? '~' : '/';
		else
			*o++ = s[i];
	}
	if (out)
		*o = '\0';
	return out;
}

/* An array index as Go's strconv.Atoi reads it; false when it is none. */
static bool parse_index(const char *s, long long *out)
{
	char *end;

	if (*s == '\0' || isspace((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoll(s, &end, 10);
	return *end == '\0' && errno == 0;
}

/* An existing index of a (negative counts from the end); -1 if none. */
static long long array_slot(const json_t *a, const char *key)
{
	long long i, n = (long long)json_array_size(a);

	if (!parse_index(key, &i))
		return -1;
	if (i < 0)
		i += n;
	return i >= 0 && i < n ? i : -1;
}

/* The member `key` of container c, or NULL. */
static json_t *child(json_t *c, const char *key)
{
	if (json_is_object(c))
		return json_object_get(c, key);
	long long i = array_slot(c, key);
	return i >= 0 ? json_array_get(c, (size_t)i) : NULL;
}

/* Resolve everything but the last token of path; -1 when the path does
 * not start with "/" or a step is missing or not a container. */
static int locate(json_t *doc, const char *path, struct loc *l)
{
	const char *p = path, *slash;
	json_t *cur = doc;

	l->parent = NULL;
	l->key = NULL;
	if (*p++ != '/')
		return -1;
	while ((slash = strchr(p, '/')) != NULL) {
		char *tok = decode_token(p, (size_t)(slash - p));
		cur = tok ? child(cur, tok) : NULL;
		free(tok);
		if (!json_is_object(cur) && !json_is_array(cur))
			return -1;
		p = slash + 1;
	}
	l->parent = cur;
	l->key = decode_token(p, strlen(p));
	return l->key ? 0 : -1;
}

/* Add v (stolen) at l: set a member, or insert before an index ("-" and
 * len append; negative counts from the end). */
static int loc_add(struct loc *l, json_t *v)
{
	json_t *a = l->parent;
	long long i, n = (long long)json_array_size(a);

	if (json_is_object(a))
		return json_object_set_new(a, l->key, v);
	if (strcmp(l->key, "-") == 0)
		return json_array_append_new(a, v);
	if (!parse_index(l->key, &i) || i > n || i < -(n + 1)) {
		json_decref(v);
		return -1;
	}
	if (i < 0)
		i += n + 1;
	return json_array_insert_new(a, (size_t)i, v);
}

static int loc_remove(struct loc *l)
{
	if (json_is_object(l->parent))
		return json_object_del(l->parent, l->key);
	long long i = array_slot(l->parent, l->key);
	return i >= 0 ? json_array_remove(l->parent, (size_t)i) : -1;
}

/* "replace" of a missing member adds it (json-patch v4 does). */
static int loc_replace(struct loc *l, json_t *v)
{
	if (json_is_object(l->parent))
		return json_object_set_new(l->parent, l->key, v);
	long long i = array_slot(l->parent, l->key);
	if (i < 0) {
		json_decref(v);
		return -1;
	}
	return json_array_set_new(l->parent, (size_t)i, v);
}

static const char *op_str(const json_t *op, const char *name)
{
	return json_string_value(json_object_get(op, name));
}

/* The op's value (copied); absent is null, as in json-patch v4. */
static json_t *op_value(const json_t *op)
{
	const json_t *v = json_object_get(op, "value");
	return v ? json_deep_copy(v) : json_null();
}

/* "test": a missing member matches an absent or null value. */
static int op_test(json_t *doc, const char *path, const json_t *op)
{
	const json_t *want = json_object_get(op, "value");
	struct loc l;
	int rc = -1;

	if (*path == '\0')
		return json_equal(doc, want) ? 0 : -1;
	if (locate(doc, path, &l) == 0) {
		const json_t *have = child(l.parent, l.key);
		if (have == NULL && json_is_array(l.parent))
			rc = -1;
		else if (have == NULL || json_is_null(have))
			rc = want == NULL || json_is_null(want) ? 0 : -1;
		else
			rc = json_equal(have, want) ? 0 : -1;
	}
	free(l.key);
	return rc;
}

/* The value at path, detached from doc (for "move"); NULL if none. */
static json_t *take(json_t *doc, const char *path)
{
	struct loc l;
	json_t *v = NULL;

	if (locate(doc, path, &l) == 0) {
		v = json_incref(child(l.parent, l.key));
		if (v && loc_remove(&l)) {
			json_decref(v);
			v = NULL;
		}
	}
	free(l.key);
	return v;
}

/* A JSON patch being applied. Its operations may nest the document no
 * deeper than a body may (API_MAX_DEPTH): "add", "move" and "copy" can
 * put a deep value under a deep path, and the store cannot take back
 * what the decoders would refuse. `depth` bounds the document's depth,
 * so that most operations need not measure what they move. */
struct jpatch {
	json_t *doc;
	int depth;
	size_t copied; /* what "copy" added, in bytes of JSON text */
};

/* Levels of objects and arrays in v, as the body decoders count them (a
 * scalar has none). */
static int depth_of(const json_t *v)
{
	const char *k;
	json_t *x;
	size_t i;
	int d = 0, xd;

	json_object_foreach((json_t *)v, k, x)
		if ((xd = depth_of(x)) > d)
			d = xd;
	json_array_foreach(v, i, x)
		if ((xd = depth_of(x)) > d)
			d = xd;
	return json_is_object(v) || json_is_array(v) ? d + 1 : 0;
}

/* The containers above a path's value: one per token. */
static int levels(const char *path)
{
	int n = 0;

	for (; *path; path++)
		n += *path == '/';
	return n;
}

/* A copy of the value at path (for "copy"), its depth in *vd; NULL if
 * none, or when it would take the copies so far past the limit. */
static json_t *copy_of(struct jpatch *p, const char *path, int *vd)
{
	struct loc l;
	json_t *v = NULL;

	if (locate(p->doc, path, &l) == 0) {
		const json_t *from = child(l.parent, l.key);
		int flags = JSON_COMPACT | JSON_ENCODE_ANY;
		/* its size as text, counted without writing it */
		if (from)
			p->copied += json_dumpb(from, NULL, 0, flags);
		if (p->copied <= MAX_JSON_PATCH_COPY_BYTES) {
			v = json_deep_copy(from);
			*vd = depth_of(from);
		}
	}
	free(l.key);
	return v;
}

/* Put v (stolen; vd levels deep) at path with add or replace
 * semantics, if the document stays within API_MAX_DEPTH. */
static int put(struct jpatch *p, const char *path, json_t *v, int vd,
    bool replace)
{
	struct loc l;
	int rc = -1, at = levels(path);

	if (v == NULL)
		return -1;
	if (at + vd > API_MAX_DEPTH) {
		json_decref(v);
		return -1;
	}
	if (locate(p->doc, path, &l) == 0)
		rc = replace ? loc_replace(&l, v) : loc_add(&l, v);
	else
		json_decref(v);
	free(l.key);
	if (rc == 0 && at + vd > p->depth)
		p->depth = at + vd;
	return rc;
}

/* "move": what it takes is no deeper than the document's bound leaves
 * below `from`; measured only when that is not enough. */
static int move(struct jpatch *p, const char *from, const char *path)
{
	json_t *v = take(p->doc, from);
	int vd = p->depth - levels(from);

	if (v && levels(path) + vd > API_MAX_DEPTH)
		vd = depth_of(v);
	return put(p, path, v, vd, false);
}

/* "add" or "replace" of the op's value (measured: it is the body's). */
static int put_value(struct jpatch *p, const char *path, const json_t *op,
    bool replace)
{
	json_t *v = op_value(op);

	return put(p, path, v, depth_of(v), replace);
}

/* "replace" at "" swaps the whole document. */
static int replace_root(struct jpatch *p, const json_t *op)
{
	const json_t *v = json_object_get(op, "value");

	if (!json_is_object(v) || (p->depth = depth_of(v)) > API_MAX_DEPTH)
		return -1;
	json_decref(p->doc);
	p->doc = json_deep_copy(v);
	return p->doc ? 0 : -1;
}

static int json_patch_op(struct jpatch *p, const json_t *op)
{
	const char *kind = op_str(op, "op"), *path = op_str(op, "path");
	const char *from = op_str(op, "from");
	struct loc l;
	int vd = 0;

	if (kind == NULL || path == NULL)
		return -1;
	if (strcmp(kind, "test") == 0)
		return op_test(p->doc, path, op);
	if (strcmp(kind, "replace") == 0 && *path == '\0')
		return replace_root(p, op);
	if (strcmp(kind, "add") == 0)
		return put_value(p, path, op, false);
	if (strcmp(kind, "replace") == 0)
		return put_value(p, path, op, true);
	if (strcmp(kind, "move") == 0 && from)
		return move(p, from, path);
	if (strcmp(kind, "copy") == 0 && from) {
		/* apart: vd must be set before put's arguments read it */
		json_t *v = copy_of(p, from, &vd);
		return put(p, path, v, vd, false);
	}
	if (strcmp(kind, "remove") != 0)
		return -1;
	int rc = locate(p->doc, path, &l) == 0 ? loc_remove(&l) : -1;
	free(l.key);
	return rc;
}

/* Kubernetes decodes the body into []Operation before anything: a
 * non-array, or an element that is no object, is a 400. */
static bool json_patch_decodes(const json_t *ops, struct api_error *e)
{
	size_t i;
	json_t *op;

	if (!json_is_array(ops)) {
		patch_fail(e, 400, "BadRequest",
		    "json: cannot unmarshal %s into Go value of type "
		    "jsonpatch.Patch",
		    patch_json_kind(ops));
		return false;
	}
	json_array_foreach(ops, i, op) {
		if (json_is_object(op) || json_is_null(op))
			continue;
		patch_fail(e, 400, "BadRequest",
		    "json: cannot unmarshal %s into Go value of type "
		    "jsonpatch.Operation",
		    patch_json_kind(op));
		return false;
	}
	if (json_array_size(ops) > MAX_JSON_PATCH_OPS) {
		patch_fail(e, 413, "RequestEntityTooLarge",
		    "Request entity too large: The allowed maximum operations "
		    "in a JSON patch is %d, got %zu",
		    MAX_JSON_PATCH_OPS, json_array_size(ops));
		return false;
	}
	return true;
}

static json_t *json_patch(const json_t *obj, const json_t *ops,
    struct api_error *e)
{
	struct jpatch p = { NULL, 0, 0 };
	size_t i;
	json_t *op;

	if (ops == NULL) {
		patch_fail(e, 400, "BadRequest",
		    "unexpected end of JSON input");
		return NULL;
	}
	if (!json_is_null(ops) && !json_patch_decodes(ops, e))
		return NULL;
	p.doc = json_deep_copy(obj);
	p.depth = depth_of(p.doc);
	json_array_foreach(ops, i, op) {
		if (p.doc == NULL || json_patch_op(&p, op)) {
			json_decref(p.doc);
			patch_fail(e, 422, "Invalid", PATCH_REJECTED);
			return NULL;
		}
	}
	return p.doc;
}

/* --- JSON merge patch (RFC 7386) ------------------------------------------ */

/* A patch value as it lands: nulls dropped from maps, also inside lists
 * (json-patch v4 prunes those too); null list elements stay. */
static json_t *pruned(const json_t *v)
{
	json_t *out, *x;
	const char *k;
	size_t i;

	if (json_is_object(v)) {
		out = json_object();
		json_object_foreach((json_t *)v, k, x)
			if (!json_is_null(x))
				json_object_set_new(out, k, pruned(x));
		return out;
	}
	if (json_is_array(v)) {
		out = json_array();
		json_array_foreach(v, i, x)
			json_array_append_new(out, pruned(x));
		return out;
	}
	return json_deep_copy(v);
}

static void merge_into(json_t *doc, const json_t *patch)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)patch, k, v) {
		json_t *cur = json_object_get(doc, k);
		if (json_is_null(v))
			json_object_del(doc, k);
		else if (json_is_object(cur) && json_is_object(v))
			merge_into(cur, v);
		else
			json_object_set_new(doc, k, pruned(v));
	}
}

/* Go's %q of s, into buf. */
static void go_quote(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; *s && o + 3 < len; s++) {
		if (*s == '"' || *s == '\\')
			buf[o++] = '\\';
		buf[o++] = *s;
	}
	buf[o] = '\0';
}

/* An array merge patch replaces the whole object with the array, which
 * Kubernetes then fails to decode as an object. */
static void merge_patch_not_object(const json_t *patch, struct api_error *e)
{
	json_t *v = pruned(patch);
	char *text = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
	char q[512];

	go_quote(text ? text : "", q, sizeof(q));
	api_err_cause(e, "FieldValueInvalid", "patch",
	    "Invalid value: \"%s\": couldn't get version/kind; json parse "
	    "error: json: cannot unmarshal array into Go value of type struct "
	    "{ APIVersion string \"json:\\\"apiVersion,omitempty\\\"\"; Kind "
	    "string \"json:\\\"kind,omitempty\\\"\" }",
	    q);
	api_err_invalid(e, "", "");
	free(text);
	json_decref(v);
}

static json_t *merge_patch(const json_t *obj, const json_t *patch,
    struct api_error *e)
{
	json_t *doc;

	if (json_is_array(patch)) {
		merge_patch_not_object(patch, e);
		return NULL;
	}
	if (!json_is_object(patch)) {
		patch_fail(e, 400, "BadRequest", "Invalid JSON Patch");
		return NULL;
	}
	doc = json_is_object(obj) ? json_deep_copy(obj) : json_object();
	if (doc)
		merge_into(doc, patch);
	else
		patch_fail(e, 500, "InternalError", "out of memory");
	return doc;
}

/* --- strategic merge patch and server-side apply -------------------------- */

static json_t *strategic_patch(const struct api_resource *r, const json_t *obj,
    const json_t *patch, struct api_error *e)
{
	if (patch == NULL) {
		patch_fail(e, 400, "BadRequest",
		    "unexpected end of JSON input");
		return NULL;
	}
	if (json_is_null(patch)) /* decodes to an empty patch */
		return json_deep_copy(obj);
	if (!json_is_object(patch)) {
		patch_fail(e, 400, "BadRequest",
		    "json: cannot unmarshal %s into Go value of type "
		    "map[string]interface {}",
		    patch_json_kind(patch));
		return NULL;
	}
	return smp_patch(smp_kind_type(r ? r->kind : NULL), obj, patch, e);
}

/* The checks the field manager makes before an apply. */
static bool apply_config_ok(const struct api_resource *r, const json_t *cfg,
    struct api_error *e)
{
	const json_t *md = json_object_get(cfg, "metadata");
	const char *av = json_string_value(json_object_get(cfg, "apiVersion"));
	const char *kind = json_string_value(json_object_get(cfg, "kind"));
	char gv[128];

	if (json_object_get(md, "managedFields") &&
	    !json_is_null(json_object_get(md, "managedFields"))) {
		patch_fail(e, 400, "BadRequest",
		    "metadata.managedFields must be nil");
		return false;
	}
	if (r == NULL)
		return true;
	snprintf(gv, sizeof(gv), "%s%s%s", r->group, r->group[0] ? "/" : "",
	    r->version);
	if (av == NULL || strcmp(av, gv) != 0) {
		patch_fail(e, 400, "BadRequest",
		    "Incorrect version specified in apply patch. Specified "
		    "patch version: %s, expected: %s",
		    av ? av : "", gv);
		return false;
	}
	if (kind == NULL || strcmp(kind, r->kind) != 0) {
		patch_fail(e, 500, "",
		    "failed to create typed patch object (%s, Kind=%s): no "
		    "corresponding type for %s, Kind=%s",
		    gv, kind ? kind : "", gv, kind ? kind : "");
		return false;
	}
	return true;
}

/* Server-side apply without field ownership: the applied configuration
 * merges into the live object as a strategic merge patch would (lists by
 * their keys, in the configuration's order); with no live object it is
 * the new object. */
static json_t *apply_patch(const struct api_resource *r, const json_t *obj,
    const json_t *cfg, struct api_error *e)
{
	json_t *empty = NULL, *out = NULL;

	if (cfg == NULL || json_is_null(cfg))
		cfg = empty = json_object();
	if (!json_is_object(cfg)) {
		patch_fail(e, 400, "BadRequest",
		    "error decoding YAML: error unmarshaling JSON: while "
		    "decoding JSON: json: cannot unmarshal %s into Go value of "
		    "type map[string]interface {}",
		    patch_json_kind(cfg));
		return NULL;
	}
	if (apply_config_ok(r, cfg, e))
		out = smp_patch(smp_kind_type(r ? r->kind : NULL), obj, cfg, e);
	json_decref(empty);
	return out;
}

/* --- the entry point ------------------------------------------------------ */

json_t *api_patch(int type, const struct api_resource *r, const json_t *obj,
    const json_t *patch, struct api_error *e)
{
	if (type == API_PATCH_APPLY)
		return apply_patch(r, obj, patch, e);
	if (!json_is_object(obj) && type >= API_PATCH_JSON &&
	    type <= API_PATCH_STRATEGIC) {
		/* Only apply creates; rest.c answers 404 before we get here. */
		patch_fail(e, 404, "NotFound",
		    "the server could not find the requested resource");
		return NULL;
	}
	switch (type) {
	case API_PATCH_JSON:
		return json_patch(obj, patch, e);
	case API_PATCH_MERGE:
		return merge_patch(obj, patch, e);
	case API_PATCH_STRATEGIC:
		return strategic_patch(r, obj, patch, e);
	default:
		patch_fail(e, 415, "UnsupportedMediaType",
		    "the body of the request was in an unknown format - "
		    "accepted media types include: "
		    "application/json-patch+json, "
		    "application/merge-patch+json, "
		    "application/apply-patch+yaml, "
		    "application/strategic-merge-patch+json");
		return NULL;
	}
}
