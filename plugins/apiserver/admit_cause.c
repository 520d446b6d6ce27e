/* admit_cause.c — causes worded as Kubernetes' field.Error bodies, Go's
 * quoting and JSON rendering of bad values, and small JSON helpers.
 *
 * Rendering of bad values: strings are Go-quoted (%q), integers and
 * booleans plain, anything else as json.Marshal writes it. That is
 * apimachinery's ErrorBody() since the field.Error cleanup released with
 * Kubernetes 1.32 (older servers printed complex values with %#v). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admit.h"

/* Field paths are built for every field validated, so the formats they
 * use ("%s.name", "%s[%zu]") are written out here by hand, a literal run
 * or an argument at a time, cut at ADM_PATH - 1 bytes as vsnprintf cuts;
 * any other conversion goes to vsnprintf. */
static size_t path_put(char *buf, size_t n, const char *s, size_t len)
{
	if (len > ADM_PATH - 1 - n)
		len = ADM_PATH - 1 - n;
	memcpy(buf + n, s, len);
	return n + len;
}

const char *adm_path(char *buf, const char *fmt, ...)
{
	va_list ap;
	size_t n = 0;
	const char *f = fmt;

	va_start(ap, fmt);
	for (;;) {
		const char *pc = strchr(f, '%');
		n = path_put(buf, n, f, pc ? (size_t)(pc - f) : strlen(f));
		if (pc == NULL)
			break;
		if (pc[1] == 's') {
			const char *s = va_arg(ap, const char *);
			n = path_put(buf, n, s, strlen(s));
			f = pc + 2;
		} else if (pc[1] == 'z' && pc[2] == 'u') {
			char num[24];
			const char *p = api_u64_text(va_arg(ap, size_t), num);
			n = path_put(buf, n, p, (size_t)(num + 23 - p));
			f = pc + 3;
		} else {
			/* start over with the arguments from the first */
			va_end(ap);
			va_start(ap, fmt);
			vsnprintf(buf, ADM_PATH, fmt, ap);
			va_end(ap);
			return buf;
		}
	}
	va_end(ap);
	buf[n] = '\0';
	return buf;
}

/* --- Go's strconv.Quote ------------------------------------------------------ */

struct sbuf {
	char *p;
	size_t len, cap;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 64;
		while (cap < b->len + n + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			abort(); /* out of memory: nothing sensible to answer */
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = 0;
}

static void sb_fmt(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void sb_fmt(struct sbuf *b, const char *fmt, ...)
{
	char tmp[32];
	va_list ap;

	va_start(ap, fmt);
	int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
	va_end(ap);
	sb_put(b, tmp, (size_t)n);
}

/* Length of the UTF-8 sequence at s (0: invalid) and its code point. */
static size_t utf8_seq(const unsigned char *s, unsigned *cp)
{
	size_t n;
	unsigned c = s[0];

	if (c < 0x80) {
		*cp = c;
		return 1;
	}
	if ((c & 0xe0) == 0xc0)
		n = 2, c &= 0x1f;
	else if ((c & 0xf0) == 0xe0)
		n = 3, c &= 0x0f;
	else if ((c & 0xf8) == 0xf0)
		n = 4, c &= 0x07;
	else
		return 0;
	for (size_t i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	*cp = c;
	return n;
}

static void quote_char(struct sbuf *b, unsigned char c)
{
	static const char esc[] = "\a\b\f\n\r\t\v";
	static const char name[] = "abfnrtv";
	const char *p = c ? strchr(esc, c) : NULL;

	if (p) {
		char two[2] = { '\\', name[p - esc] };
		sb_put(b, two, 2);
	} else if (c == '"' || c == '\\') {
		char two[2] = { '\\', (char)c };
		sb_put(b, two, 2);
	} else if (c < 0x20 || c == 0x7f) {
		sb_fmt(b, "\\x%02x", c);
	} else {
		sb_put(b, (const char *)&c, 1);
	}
}

char *adm_quote(const char *s)
{
	struct sbuf b = { 0 };
	const unsigned char *p = (const unsigned char *)s;

	sb_put(&b, "\"", 1);
	while (*p) {
		unsigned cp;
		size_t n = utf8_seq(p, &cp);

		if (n == 0) {
			sb_fmt(&b, "\\x%02x", *p++);
		} else if (n == 1) {
			quote_char(&b, *p++);
		} else if (cp < 0xa0) {
			/* C1 controls are not printable for Go */
			sb_fmt(&b, "\\u%04x", cp);
			p += n;
		} else {
			sb_put(&b, (const char *)p, n);
			p += n;
		}
	}
	sb_put(&b, "\"", 1);
	return b.p;
}

char *adm_render(const json_t *v)
{
	if (!v || json_is_null(v))
		return strdup("null");
	char *s =
	    json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	return s ? s : strdup("null");
}

/* A LabelSelector marshals matchLabels (sorted) before matchExpressions,
 * each requirement as key, operator, values. */
char *adm_render_selector(const json_t *sel)
{
	struct sbuf b = { 0 };
	json_t *ml = adm_obj(sel, "matchLabels");
	json_t *me = adm_arr(sel, "matchExpressions");

	if (!sel || !json_is_object(sel))
		return strdup("null");
	sb_put(&b, "{", 1);
	if (ml && json_object_size(ml)) {
		char *m = adm_render(ml);
		sb_put(&b, "\"matchLabels\":", 14);
		sb_put(&b, m, strlen(m));
		free(m);
	}
	if (me && json_array_size(me)) {
		if (b.len > 1)
			sb_put(&b, ",", 1);
		sb_put(&b, "\"matchExpressions\":[", 20);
		size_t i;
		json_t *r;
		json_array_foreach(me, i, r) {
			json_t *o = json_object();
			const char *k[] = { "key", "operator", "values" };
			char *m;
			for (int j = 0; j < 3; j++)
				if (json_object_get(r, k[j]))
					json_object_set(o, k[j],
					    json_object_get(r, k[j]));
			/* key < operator < values: sorted order is Go's */
			m = adm_render(o);
			json_decref(o);
			if (i)
				sb_put(&b, ",", 1);
			sb_put(&b, m, strlen(m));
			free(m);
		}
		sb_put(&b, "]", 1);
	}
	sb_put(&b, "}", 1);
	return b.p;
}

/* --- causes ------------------------------------------------------------------ */

static void cause(struct api_error *e, const char *reason, const char *path,
    const char *body, const char *detail)
{
	if (detail && *detail)
		api_err_cause(e, reason, path, "%s: %s", body, detail);
	else
		api_err_cause(e, reason, path, "%s", body);
}

static void cause_value(struct api_error *e, const char *reason,
    const char *type, const char *path, const char *v, const char *detail)
{
	size_t n = strlen(type) + strlen(v) + 3;
	char *body = malloc(n);

	if (!body)
		abort();
	snprintf(body, n, "%s: %s", type, v);
	cause(e, reason, path, body, detail);
	free(body);
}

void adm_required(struct api_error *e, const char *path, const char *detail)
{
	cause(e, "FieldValueRequired", path, "Required value", detail);
}

void adm_forbidden(struct api_error *e, const char *path, const char *detail)
{
	cause(e, "FieldValueForbidden", path, "Forbidden", detail);
}

void adm_invalid_raw(struct api_error *e, const char *path, const char *v,
    const char *detail)
{
	cause_value(e, "FieldValueInvalid", "Invalid value", path, v, detail);
}

void adm_invalid_str(struct api_error *e, const char *path, const char *v,
    const char *detail)
{
	char *q = adm_quote(v ? v : "");
	adm_invalid_raw(e, path, q, detail);
	free(q);
}

void adm_invalid_int(struct api_error *e, const char *path, long long v,
    const char *detail)
{
	char num[32];
	snprintf(num, sizeof num, "%lld", v);
	adm_invalid_raw(e, path, num, detail);
}

void adm_invalid_json(struct api_error *e, const char *path, const json_t *v,
    const char *detail)
{
	char *r;

	if (json_is_string(v)) {
		adm_invalid_str(e, path, json_string_value(v), detail);
		return;
	}
	r = adm_render(v);
	adm_invalid_raw(e, path, r, detail);
	free(r);
}

void adm_unsupported_raw(struct api_error *e, const char *path, const char *v,
    const char *const *supported)
{
	struct sbuf d = { 0 };

	sb_put(&d, "supported values: ", 18);
	for (size_t i = 0; supported[i]; i++) {
		char *s = adm_quote(supported[i]);
		if (i)
			sb_put(&d, ", ", 2);
		sb_put(&d, s, strlen(s));
		free(s);
	}
	cause_value(e, "FieldValueNotSupported", "Unsupported value", path, v,
	    d.p);
	free(d.p);
}

void adm_unsupported(struct api_error *e, const char *path, const char *v,
    const char *const *supported)
{
	char *q = adm_quote(v ? v : "");
	adm_unsupported_raw(e, path, q, supported);
	free(q);
}

void adm_duplicate_raw(struct api_error *e, const char *path, const char *v)
{
	cause_value(e, "FieldValueDuplicate", "Duplicate value", path, v, NULL);
}

void adm_duplicate_str(struct api_error *e, const char *path, const char *v)
{
	char *q = adm_quote(v ? v : "");
	adm_duplicate_raw(e, path, q);
	free(q);
}

void adm_notfound_str(struct api_error *e, const char *path, const char *v)
{
	char *q = adm_quote(v ? v : "");
	cause_value(e, "FieldValueNotFound", "Not found", path, q, NULL);
	free(q);
}

void adm_toolong(struct api_error *e, const char *path, long long max)
{
	char d[64];
	snprintf(d, sizeof d, "may not be more than %lld %s", max,
	    max == 1 ? "byte" : "bytes");
	cause(e, "FieldValueTooLong", path, "Too long", d);
}

void adm_toomany(struct api_error *e, const char *path, long long actual,
    long long max)
{
	char v[32], d[64];
	snprintf(v, sizeof v, "%lld", actual);
	snprintf(d, sizeof d, "must have at most %lld %s", max,
	    max == 1 ? "item" : "items");
	cause_value(e, "FieldValueTooMany", "Too many", path, v, d);
}

void adm_bad_request(struct api_error *e, const char *kind, const char *version,
    const char *fmt, ...)
{
	char msg[800];
	va_list ap;

	if (e->code && e->code != 422)
		return; /* decoding stops at its first error */
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	api_err(e, 400, "BadRequest",
	    "%s in version \"%s\" cannot be handled as a %s: %s", kind, version,
	    kind, msg);
}

/* --- JSON helpers ------------------------------------------------------------ */

const char *adm_str(const json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_string(v) ? json_string_value(v) : NULL;
}

bool adm_int(const json_t *obj, const char *key, long long *out)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;

	if (!json_is_integer(v))
		return false;
	*out = json_integer_value(v);
	return true;
}

bool adm_bool(const json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_true(v);
}

json_t *adm_obj(const json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_object(v) ? v : NULL;
}

json_t *adm_arr(const json_t *obj, const char *key)
{
	json_t *v = json_is_object(obj) ? json_object_get(obj, key) : NULL;
	return json_is_array(v) ? v : NULL;
}

json_t *adm_obj_make(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);

	if (json_is_object(v))
		return v;
	v = json_object();
	json_object_set_new(obj, key, v);
	return v;
}

void adm_default(json_t *obj, const char *key, json_t *v)
{
	json_t *cur = json_object_get(obj, key);

	if (!json_is_object(obj) || (cur && !json_is_null(cur))) {
		json_decref(v);
		return;
	}
	json_object_set_new(obj, key, v);
}

void adm_default_str(json_t *obj, const char *key, const char *v)
{
	json_t *cur = json_object_get(obj, key);

	if (json_is_object(obj) &&
	    (!cur || json_is_null(cur) ||
		(json_is_string(cur) && !*json_string_value(cur))))
		json_object_set_new(obj, key, json_string(v));
}

bool adm_is_empty(const char *s)
{
	return !s || !*s;
}

bool adm_in_list(const char *s, const char *const *list)
{
	for (size_t i = 0; s && list[i]; i++)
		if (!strcmp(s, list[i]))
			return true;
	return false;
}

static bool is_zero(const json_t *v)
{
	if (!v || json_is_null(v) || json_is_false(v))
		return true;
	if (json_is_string(v))
		return !*json_string_value(v);
	if (json_is_integer(v))
		return json_integer_value(v) == 0;
	if (json_is_real(v))
		return json_real_value(v) == 0;
	if (json_is_object(v))
		return json_object_size(v) == 0;
	if (json_is_array(v))
		return json_array_size(v) == 0;
	return false;
}

static bool obj_equal(const json_t *a, const json_t *b)
{
	const char *k;
	json_t *v;

	json_object_foreach((json_t *)a, k, v)
		if (!adm_equal(v, json_object_get(b, k)))
			return false;
	json_object_foreach((json_t *)b, k, v)
		if (!json_object_get(a, k) && !is_zero(v))
			return false;
	return true;
}

bool adm_equal(const json_t *a, const json_t *b)
{
	if (is_zero(a) && is_zero(b))
		return true;
	if (!a || !b)
		return false;
	if (json_is_object(a) && json_is_object(b))
		return obj_equal(a, b);
	if (json_is_array(a) && json_is_array(b)) {
		if (json_array_size(a) != json_array_size(b))
			return false;
		for (size_t i = 0; i < json_array_size(a); i++)
			if (!adm_equal(json_array_get(a, i),
				json_array_get(b, i)))
				return false;
		return true;
	}
	return json_equal((json_t *)a, (json_t *)b);
}
