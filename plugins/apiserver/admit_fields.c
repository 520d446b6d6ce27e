/* admit_fields.c — a body against its kind's schema, as the API server's
 * decoder (sigs.k8s.io/json into the Go types) treats it:
 *
 *  - unknown fields: with fieldValidation=Strict the decoder fails with
 *    `strict decoding error: unknown field "spec.foo"` (the path uses
 *    [i] for list items); Warn sends each as a Warning header; Ignore,
 *    and every mode once decoding succeeded, drops them — they are never
 *    stored. adm_unknown_fields() lists them; adm_decode() drops them.
 *  - type errors: the first becomes the 400's text, e.g. "json: cannot
 *    unmarshal string into Go struct field DeploymentSpec.spec.replicas
 *    of type int32" (the path there has no list indices); a bad quantity,
 *    time or base64 value gives its parser's message instead.
 *  - null fields are dropped, quantities and times rewritten in the form
 *    the API server writes them back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "admit.h"

struct walk {
	json_t *unknown; /* collect unknown paths here, or NULL */
	bool decode;     /* drop, normalise, report type errors */
	bool report;     /* report them without decoding */
	char saved[600]; /* the first type error (decoding goes on) */
	char fatal[600]; /* an error that stops decoding (and wins) */
};

/* Where a value is, as a chain up to the body: a field (key) or a list
 * item (key NULL, idx). The paths are only written out when an error or
 * an unknown field is recorded, which a good body never needs. */
struct where {
	const struct where *up; /* the enclosing field or item, NULL at the top */
	const char *key;        /* the field's name, NULL for a list item */
	size_t idx;             /* the item's index */
	const char *gostruct;   /* "Container" */
};

/* The Go type named in a type error, written out only for the error:
 * fixed text, or the field's type (elem: of one of its items). */
struct gotype {
	const struct adm_sfield *f;
	bool elem;
	const char *fixed;
};

static void walk_obj(struct walk *w, const struct adm_stype *t, json_t *obj,
    const struct where *up);

/* Append s to buf (ADM_PATH bytes, *n used), cut as snprintf cuts. */
static void path_put(char *buf, size_t *n, const char *s, size_t len)
{
	if (*n + len > ADM_PATH - 1)
		len = ADM_PATH - 1 - *n;
	memcpy(buf + *n, s, len);
	*n += len;
	buf[*n] = '\0';
}

/* "spec.containers[0].name" (strict) or "spec.containers.name" (the Go
 * path: no list indices), as "%s.%s" and "%s[%zu]" into ADM_PATH bytes
 * made them level by level. */
static void path_text(const struct where *at, bool strict, char *buf,
    size_t *n)
{
	if (at == NULL)
		return;
	path_text(at->up, strict, buf, n);
	if (at->key) {
		if (*n)
			path_put(buf, n, ".", 1);
		path_put(buf, n, at->key, strlen(at->key));
	} else if (strict) {
		char num[24];
		const char *p = api_u64_text(at->idx, num);
		path_put(buf, n, "[", 1);
		path_put(buf, n, p, strlen(p));
		path_put(buf, n, "]", 1);
	}
}

static const char *path_of(const struct where *at, bool strict, char *buf)
{
	size_t n = 0;
	const struct where *k = at;
	/* A field at the top was its own name, uncut (the Go path also
	 * through the items of a list there). */
	while (!strict && k && !k->key)
		k = k->up;
	if (k && k->key && k->up == NULL)
		return k->key;
	buf[0] = '\0';
	path_text(at, strict, buf, &n);
	return buf;
}

static const char *json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "object";
	case JSON_ARRAY:
		return "array";
	case JSON_STRING:
		return "string";
	case JSON_TRUE:
	case JSON_FALSE:
		return "bool";
	default:
		return "number";
	}
}

static void number_text(const json_t *v, char *buf, size_t len)
{
	if (json_is_integer(v)) {
		snprintf(buf, len, "%lld", (long long)json_integer_value(v));
		return;
	}
	for (int prec = 1; prec <= 17; prec++) {
		snprintf(buf, len, "%.*g", prec, json_real_value(v));
		if (strtod(buf, NULL) == json_real_value(v))
			return;
	}
}

static void gotype_text(const struct gotype *g, char *buf, size_t len);

static void type_error(struct walk *w, const struct where *at,
    const char *value, const struct gotype *g)
{
	char go[ADM_PATH], gotype[128];

	if (!(w->decode || w->report) || *w->saved)
		return;
	gotype_text(g, gotype, sizeof gotype);
	snprintf(w->saved, sizeof w->saved,
	    "json: cannot unmarshal %s into Go struct field %s.%s of type %s",
	    value, at->gostruct, path_of(at, false, go), gotype);
}

static void fatal(struct walk *w, const char *msg)
{
	if ((w->decode || w->report) && !*w->fatal)
		snprintf(w->fatal, sizeof w->fatal, "%s", msg);
}

/* --- scalars --------------------------------------------------------------- */

static const char *scalar_gotype(int kind)
{
	static const char *const names[] = {
		[ADM_S_STR] = "string",
		[ADM_S_I32] = "int32",
		[ADM_S_I64] = "int64",
		[ADM_S_BOOL] = "bool",
		[ADM_S_F64] = "float64",
		[ADM_S_QTY] = "resource.Quantity",
		[ADM_S_INTSTR] = "int32",
		[ADM_S_TIME] = "string",
		[ADM_S_MTIME] = "string",
		[ADM_S_BYTES] = "[]uint8",
	};
	return names[kind];
}

static void check_int(struct walk *w, const json_t *v, int kind,
    const struct where *at, const struct gotype *gotype)
{
	char num[64], desc[80];
	long long n;

	if (!json_is_number(v)) {
		type_error(w, at, json_kind(v), gotype);
		return;
	}
	n = json_is_integer(v) ? json_integer_value(v) : 0;
	bool fits = json_is_integer(v) &&
	    (kind == ADM_S_I64 || (n >= INT32_MIN && n <= INT32_MAX));
	if (!fits) {
		number_text(v, num, sizeof num);
		snprintf(desc, sizeof desc, "number %s", num);
		type_error(w, at, desc, gotype);
	}
}

static json_t *quantity(struct walk *w, const json_t *v)
{
	struct adm_qty q;
	const char *err = adm_qty_json(v, &q);
	char buf[64];

	if (err) {
		fatal(w, err);
		return NULL;
	}
	adm_qty_text(&q, buf, sizeof buf);
	return json_string(buf);
}

static bool digits_at(const char *s, int from, int n, int *v)
{
	*v = 0;
	for (int i = from; i < from + n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (s[i] - '0');
	}
	return true;
}

/* "2006-01-02T15:04:05Z" with a real date and time in years 1000-9999:
 * what the parse below gives back unchanged (the server's own stamps). */
bool adm_canonical_time(const char *s, size_t n)
{
	static const int mdays[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
	int y, mo, d, h, mi, se;
	if (n != 20 || s[4] != '-' || s[7] != '-' || s[10] != 'T' ||
	    s[13] != ':' || s[16] != ':' || s[19] != 'Z' ||
	    !digits_at(s, 0, 4, &y) || !digits_at(s, 5, 2, &mo) ||
	    !digits_at(s, 8, 2, &d) || !digits_at(s, 11, 2, &h) ||
	    !digits_at(s, 14, 2, &mi) || !digits_at(s, 17, 2, &se))
		return false;
	if (y < 1000 || mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || se > 59)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	return d <= mdays[mo - 1] + (mo == 2 && leap);
}

/* RFC 3339 as time.Parse reads it; the value rewritten in UTC, to the
 * second (Time) or microsecond (MicroTime). */
static json_t *timestamp(struct walk *w, const json_t *v, bool micro,
    const struct where *at)
{
	struct tm tm = { 0 };
	int usec = 0, n = 0, oh = 0, om = 0;
	const char *s, *p;
	char buf[96], msg[300];

	if (!json_is_string(v)) {
		type_error(w, at, json_kind(v),
		    &(struct gotype){ .fixed = "string" });
		return NULL;
	}
	s = json_string_value(v);
	if (!*s)
		return json_null(); /* lenient: "" reads as an unset time */
	if (!micro && adm_canonical_time(s, strlen(s)))
		return NULL; /* would be written back as it is */
	if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
		&tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n != 19)
		goto bad;
	p = s + n;
	if (*p == '.') {
		int digits = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, digits++)
			if (digits < 6)
				usec = usec * 10 + (*p - '0');
		for (; digits < 6; digits++)
			usec *= 10;
	}
	if (*p == 'Z') {
		p++;
	} else if ((*p == '+' || *p == '-') &&
	    sscanf(p + 1, "%2d:%2d%n", &oh, &om, &n) == 2 && n == 5) {
		int sign = *p == '-' ? -1 : 1;
		oh *= sign, om *= sign;
		p += 6;
	} else {
		goto bad;
	}
	if (*p || tm.tm_mon < 1 || tm.tm_mon > 12 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
	    tm.tm_sec > 60)
		goto bad;
	tm.tm_year -= 1900;
	tm.tm_mon--;
	time_t t = timegm(&tm) - oh * 3600 - om * 60;
	gmtime_r(&t, &tm);
	/* The parse above reads four-digit years only: one that the offset
	 * takes out of them could be stored but never decoded again. */
	if (tm.tm_year < -1900 || tm.tm_year > 9999 - 1900) {
		snprintf(msg, sizeof msg,
		    "parsing time \"%s\": year outside of range [0,9999] in UTC",
		    s);
		fatal(w, msg);
		return NULL;
	}
	/* with the year in four digits, as Go writes it (strftime's %Y
	 * writes 276 for 0276, which would not parse back) */
	snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec);
	if (micro)
		snprintf(buf + strlen(buf), sizeof buf - strlen(buf), ".%06dZ",
		    usec);
	else
		strcat(buf, "Z");
	return json_string(buf);
bad:
	snprintf(msg, sizeof msg,
	    "parsing time \"%s\" as \"%s\": cannot parse \"%s\" as \"2006\"", s,
	    micro ? "2006-01-02T15:04:05.000000Z07:00" :
		    "2006-01-02T15:04:05Z07:00",
	    s);
	fatal(w, msg);
	return NULL;
}

static void bytes(struct walk *w, const json_t *v, const struct where *at)
{
	long bad;
	char msg[80];

	if (!json_is_string(v)) {
		type_error(w, at, json_kind(v),
		    &(struct gotype){ .fixed = "[]uint8" });
		return;
	}
	if (adm_base64_decode(json_string_value(v), NULL, &bad) < 0) {
		snprintf(msg, sizeof msg,
		    "illegal base64 data at input byte %ld", bad);
		/* encoding/json saves this one and carries on */
		if ((w->decode || w->report) && !*w->saved)
			snprintf(w->saved, sizeof w->saved, "%s", msg);
	}
}

static void intstr(struct walk *w, const json_t *v, const struct where *at)
{
	if (!json_is_string(v))
		check_int(w, v, ADM_S_I32, at,
		    &(struct gotype){ .fixed = "int32" });
}

/* One value of a field: checked, and replaced when decoding rewrites it
 * (the replacement is returned, or NULL to keep it). */
static json_t *value(struct walk *w, const struct adm_sfield *f, json_t *v,
    const struct where *at, const struct gotype *gotype)
{
	switch (f->kind) {
	case ADM_S_STR:
		if (!json_is_string(v))
			type_error(w, at, json_kind(v), gotype);
		return NULL;
	case ADM_S_BOOL:
		if (!json_is_boolean(v))
			type_error(w, at, json_kind(v), gotype);
		return NULL;
	case ADM_S_F64:
		if (!json_is_number(v))
			type_error(w, at, json_kind(v), gotype);
		return NULL;
	case ADM_S_I32:
	case ADM_S_I64:
		check_int(w, v, f->kind, at, gotype);
		return NULL;
	case ADM_S_QTY:
		return quantity(w, v);
	case ADM_S_INTSTR:
		intstr(w, v, at);
		return NULL;
	case ADM_S_TIME:
	case ADM_S_MTIME:
		return timestamp(w, v, f->kind == ADM_S_MTIME, at);
	case ADM_S_BYTES:
		bytes(w, v, at);
		return NULL;
	case ADM_S_OBJ:
		if (!json_is_object(v)) {
			struct gotype t = { .f = f, .elem = true };
			type_error(w, at, json_kind(v), &t);
		} else {
			walk_obj(w, f->type, v, at);
		}
		return NULL;
	default:
		return NULL;
	}
}

static void elem_gotype(const struct adm_sfield *f, char *buf, size_t len)
{
	if (f->kind == ADM_S_OBJ)
		snprintf(buf, len, "v1.%s", f->type->go);
	else if (f->gotype && f->shape == ADM_ONE)
		snprintf(buf, len, "%s", f->gotype);
	else
		snprintf(buf, len, "%s", scalar_gotype(f->kind));
}

static void field_gotype(const struct adm_sfield *f, char *buf, size_t len)
{
	char elem[96];

	elem_gotype(f, elem, sizeof elem);
	if (f->gotype)
		snprintf(buf, len, "%s", f->gotype);
	else if (f->shape == ADM_LIST)
		snprintf(buf, len, "[]%s", elem);
	else if (f->shape == ADM_MAP)
		snprintf(buf, len, "map[string]%s", elem);
	else
		snprintf(buf, len, "%s", elem);
}

static void gotype_text(const struct gotype *g, char *buf, size_t len)
{
	if (g->fixed)
		snprintf(buf, len, "%s", g->fixed);
	else if (g->elem)
		elem_gotype(g->f, buf, len);
	else
		field_gotype(g->f, buf, len);
}

static void replace_in(struct walk *w, json_t *container, const char *key,
    size_t idx, json_t *v)
{
	if (!v)
		return;
	if (!w->decode)
		json_decref(v); /* checking only: the body stays as it is */
	else if (key && json_is_null(v))
		json_object_del(container, key);
	else if (key)
		json_object_set_new(container, key, v);
	else
		json_array_set_new(container, idx, v);
}

static void walk_list(struct walk *w, const struct adm_sfield *f, json_t *arr,
    const struct where *at)
{
	struct gotype gotype = { .f = f, .elem = true };
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v) {
		struct where el = { .up = at, .idx = i,
			.gostruct = at->gostruct };
		if (json_is_null(v))
			continue;
		replace_in(w, arr, NULL, i, value(w, f, v, &el, &gotype));
	}
}

static void walk_map(struct walk *w, const struct adm_sfield *f, json_t *obj,
    const struct where *at)
{
	struct gotype gotype = { .f = f, .elem = true };
	const char *k;
	json_t *v, *tmp;

	json_object_foreach_safe(obj, tmp, k, v)
	{
		if (json_is_null(v)) {
			if (w->decode)
				json_object_del(obj, k);
			continue;
		}
		replace_in(w, obj, k, 0, value(w, f, v, at, &gotype));
	}
}

static const struct adm_sfield *lookup(const struct adm_stype *t,
    const char *name)
{
	for (const struct adm_sfield *f = t->fields; f->name; f++)
		if (f->name[0] == name[0] && !strcmp(f->name, name))
			return f;
	return NULL;
}

static void walk_field(struct walk *w, const struct adm_sfield *f, json_t *obj,
    const char *key, json_t *v, const struct where *at)
{
	struct gotype gotype = { .f = f };

	if (f->kind == ADM_S_ANY)
		return;
	if (f->shape == ADM_LIST && !json_is_array(v))
		type_error(w, at, json_kind(v), &gotype);
	else if (f->shape == ADM_MAP && !json_is_object(v))
		type_error(w, at, json_kind(v), &gotype);
	else if (f->shape == ADM_LIST)
		walk_list(w, f, v, at);
	else if (f->shape == ADM_MAP)
		walk_map(w, f, v, at);
	else
		replace_in(w, obj, key, 0, value(w, f, v, at, &gotype));
}

static void walk_obj(struct walk *w, const struct adm_stype *t, json_t *obj,
    const struct where *up)
{
	char sp[ADM_PATH];
	const char *k;
	json_t *v, *tmp;

	json_object_foreach_safe(obj, tmp, k, v)
	{
		const struct adm_sfield *f = lookup(t, k);
		struct where at = { .up = up, .key = k, .gostruct = t->go };
		if (!f) {
			if (w->unknown)
				json_array_append_new(w->unknown,
				    json_string(path_of(&at, true, sp)));
			if (w->decode)
				json_object_del(obj, k);
			continue;
		}
		if (json_is_null(v)) {
			if (w->decode)
				json_object_del(obj, k);
			continue;
		}
		walk_field(w, f, obj, k, v, &at);
	}
}

bool adm_decodable(const struct adm_stype *t, const json_t *obj)
{
	json_t *unknown = json_array();
	struct walk w = { .unknown = unknown, .report = true };

	if (unknown == NULL)
		return false;
	if (t && json_is_object(obj))
		walk_obj(&w, t, (json_t *)obj, NULL);
	bool ok = json_array_size(unknown) == 0 && !*w.fatal && !*w.saved;
	json_decref(unknown);
	return ok;
}

void adm_unknown_fields(const struct adm_stype *t, const json_t *obj,
    json_t *out)
{
	struct walk w = { .unknown = out };

	if (t && json_is_object(obj))
		walk_obj(&w, t, (json_t *)obj, NULL);
}

bool adm_decode(const struct adm_stype *t, json_t *obj, char *err,
    size_t errlen)
{
	struct walk w = { .decode = true };

	if (!t || !json_is_object(obj))
		return true;
	walk_obj(&w, t, obj, NULL);
	if (*w.fatal || *w.saved) {
		snprintf(err, errlen, "%s", *w.fatal ? w.fatal : w.saved);
		return false;
	}
	return true;
}
