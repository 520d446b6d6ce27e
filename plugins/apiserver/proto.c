/* plugins/apiserver/proto.c — Kubernetes protobuf request bodies to json_t.
 *
 * The body is "k8s\0" then a runtime.Unknown {1: TypeMeta {1: apiVersion,
 * 2: kind}, 2: raw, 3: contentEncoding, 4: contentType}; raw is the object
 * in protobuf wire format, decoded here with the schema for its kind
 * (proto_schema.c) into the JSON Kubernetes itself would serve for it.
 * Kubernetes' Go types are proto2 with non-nullable fields, so zero values
 * travel on the wire; Go's omitempty is re-applied per field (PB_KEEP).
 *
 * Every read is bounds-checked; malformed input of any kind is a 400, a
 * kind without a schema a 415.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codec.h"

static const unsigned char pb_magic[4] = { 'k', '8', 's', 0 };

struct pb_in {
	const unsigned char *p, *end;
};

/* One field off the wire. Varints in v; length-delimited, fixed32 and
 * fixed64 as bytes in p/len. Groups (deprecated) are skipped whole. */
struct pb_item {
	unsigned num, wt;
	uint64_t v;
	const unsigned char *p;
	size_t len;
};

struct pb_dec {
	struct api_error *e;
	int depth;
	bool failed;
};

/* Record the first decode error (the detail api_proto_decode wraps in
 * Kubernetes' words); later ones are its consequences. */
static bool pb_fail(struct pb_dec *d, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static bool pb_fail(struct pb_dec *d, const char *fmt, ...)
{
	va_list ap;
	if (d->failed)
		return false;
	d->failed = true;
	d->e->code = 400;
	d->e->reason = "BadRequest";
	va_start(ap, fmt);
	vsnprintf(d->e->message, sizeof d->e->message, fmt, ap);
	va_end(ap);
	return false;
}

/* 0 ok, -1 truncated, -2 more than 64 bits */
static int pb_varint(struct pb_in *in, uint64_t *v)
{
	uint64_t r = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		unsigned char b;
		if (in->p >= in->end)
			return -1;
		b = *in->p++;
		if (shift == 63 && b > 1)
			return -2;
		r |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = r;
			return 0;
		}
	}
	return -2;
}

static bool pb_take(struct pb_dec *d, struct pb_in *in, uint64_t n,
    struct pb_item *it)
{
	if ((uint64_t)(in->end - in->p) < n)
		return pb_fail(d, "unexpected EOF");
	it->p = in->p;
	it->len = (size_t)n;
	in->p += n;
	return true;
}

static bool pb_read_varint(struct pb_dec *d, struct pb_in *in, uint64_t *v)
{
	int rc = pb_varint(in, v);
	if (rc == -1)
		return pb_fail(d, "unexpected EOF");
	if (rc == -2)
		return pb_fail(d, "proto: integer overflow");
	return true;
}

static int pb_next(struct pb_dec *d, struct pb_in *in, const char *msg,
    struct pb_item *it);

/* Skip a group up to its end tag, groups inside it too. */
static bool pb_skip_group(struct pb_dec *d, struct pb_in *in, const char *msg,
    unsigned num)
{
	struct pb_item it;
	int rc;
	if (++d->depth > API_MAX_DEPTH)
		return pb_fail(d, "proto: %s: groups nest too deep", msg);
	while ((rc = pb_next(d, in, msg, &it)) == 1) {
		if (it.wt == 4) {
			d->depth--;
			return it.num == num ||
			    pb_fail(d, "proto: %s: mismatched end group %u",
				msg, it.num);
		}
	}
	return rc == 0 ? pb_fail(d, "unexpected EOF") : false;
}

/* The next field: 1, 0 at the end of input, -1 on error (d->e set). An
 * end-group tag (wire type 4) is returned for pb_skip_group to see. */
static int pb_next(struct pb_dec *d, struct pb_in *in, const char *msg,
    struct pb_item *it)
{
	uint64_t key;
	if (in->p >= in->end)
		return 0;
	if (!pb_read_varint(d, in, &key))
		return -1;
	it->wt = (unsigned)(key & 7);
	if ((key >> 3) == 0 || (key >> 3) > 0x1fffffff) {
		pb_fail(d, "proto: %s: illegal tag %u", msg,
		    (unsigned)(key >> 3));
		return -1;
	}
	it->num = (unsigned)(key >> 3);
	switch (it->wt) {
	case 0:
		return pb_read_varint(d, in, &it->v) ? 1 : -1;
	case 1:
		return pb_take(d, in, 8, it) ? 1 : -1;
	case 2:
		if (!pb_read_varint(d, in, &it->v))
			return -1;
		return pb_take(d, in, it->v, it) ? 1 : -1;
	case 3:
		return pb_skip_group(d, in, msg, it->num) ? 1 : -1;
	case 4:
		return 1;
	case 5:
		return pb_take(d, in, 4, it) ? 1 : -1;
	default:
		pb_fail(d, "proto: %s: illegal wireType %u", msg, it->wt);
		return -1;
	}
}

/* --- values ------------------------------------------------------------------- */

static json_t *pb_string(struct pb_dec *d, const struct pb_item *it,
    const char *field)
{
	json_t *s;
	if (memchr(it->p, 0, it->len)) {
		pb_fail(d, "proto: %s: a string holds a NUL byte", field);
		return NULL;
	}
	s = json_stringn((const char *)it->p, it->len);
	if (s == NULL)
		pb_fail(d, "proto: %s: invalid UTF-8 in a string", field);
	return s;
}

static json_t *pb_base64(const unsigned char *p, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t o = 0;
	char *out = malloc((n + 2) / 3 * 4 + 1);
	json_t *j;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = (uint32_t)p[i] << 16;
		if (i + 1 < n)
			w |= (uint32_t)p[i + 1] << 8;
		if (i + 2 < n)
			w |= p[i + 2];
		out[o++] = tab[w >> 18 & 63];
		out[o++] = tab[w >> 12 & 63];
		out[o++] = i + 1 < n ? tab[w >> 6 & 63] : '=';
		out[o++] = i + 2 < n ? tab[w & 63] : '=';
	}
	j = json_stringn(out, o);
	free(out);
	return j;
}

/* intstr.IntOrString {1: type (0 int, 1 string), 2: intVal, 3: strVal} */
static json_t *pb_intstr(struct pb_dec *d, const struct pb_item *outer)
{
	struct pb_in in = { outer->p, outer->p + outer->len };
	struct pb_item it;
	uint64_t type = 0;
	int32_t ival = 0;
	json_t *sval = NULL;
	int rc;
	while ((rc = pb_next(d, &in, "IntOrString", &it)) == 1) {
		if (it.num == 1 && it.wt == 0) {
			type = it.v;
		} else if (it.num == 2 && it.wt == 0) {
			ival = (int32_t)(uint32_t)it.v;
		} else if (it.num == 3 && it.wt == 2) {
			json_decref(sval);
			if ((sval = pb_string(d, &it, "IntOrString")) == NULL)
				return NULL;
		} else if (it.num <= 3 || it.wt == 4) {
			rc = -1;
			pb_fail(d,
			    "proto: wrong wireType = %u for field "
			    "IntOrString",
			    it.wt);
			break;
		}
	}
	if (rc < 0) {
		json_decref(sval);
		return NULL;
	}
	if (type == 1)
		return sval ? sval : json_string("");
	json_decref(sval);
	return json_integer(ival);
}

/* A message of one string field 1 (resource.Quantity) or one bytes field
 * 1 (FieldsV1): its bytes, empty when absent. */
static bool pb_field1(struct pb_dec *d, const struct pb_item *outer,
    const char *msg, struct pb_item *val)
{
	struct pb_in in = { outer->p, outer->p + outer->len };
	struct pb_item it;
	int rc;
	val->p = outer->p;
	val->len = 0;
	while ((rc = pb_next(d, &in, msg, &it)) == 1) {
		if (it.num == 1 && it.wt == 2)
			*val = it;
		else if (it.num == 1 || it.wt == 4)
			return pb_fail(d,
			    "proto: wrong wireType = %u for "
			    "field %s",
			    it.wt, msg);
	}
	return rc == 0;
}

static json_t *pb_quantity(struct pb_dec *d, const struct pb_item *outer)
{
	struct pb_item v;
	if (!pb_field1(d, outer, "Quantity", &v))
		return NULL;
	/* Go prints the zero Quantity as "0" */
	return v.len ? pb_string(d, &v, "Quantity") : json_string("0");
}

/* meta.v1.Time {1: seconds, 2: nanos}; *zero set for the zero time, which
 * Kubernetes leaves out. */
static json_t *pb_time(struct pb_dec *d, const struct pb_item *outer,
    bool micro, bool *zero)
{
	struct pb_in in = { outer->p, outer->p + outer->len };
	struct pb_item it;
	int64_t secs = 0;
	int32_t nanos = 0;
	struct tm tm;
	char buf[96], frac[16] = "";
	int rc;
	while ((rc = pb_next(d, &in, "Time", &it)) == 1) {
		if (it.num == 1 && it.wt == 0)
			secs = (int64_t)it.v;
		else if (it.num == 2 && it.wt == 0)
			nanos = (int32_t)(uint32_t)it.v;
		else if (it.num <= 2 || it.wt == 4)
			rc = -1;
		if (rc < 0) {
			pb_fail(d, "proto: wrong wireType = %u for field Time",
			    it.wt);
			break;
		}
	}
	if (rc < 0)
		return NULL;
	*zero = secs == 0 && nanos == 0;
	time_t t = (time_t)secs;
	/* years 0..9999, as Go's RFC 3339 marshalling allows */
	if (nanos < 0 || nanos > 999999999 || secs < -62167219200LL ||
	    secs > 253402300799LL || gmtime_r(&t, &tm) == NULL) {
		pb_fail(d, "proto: Time: timestamp out of range");
		return NULL;
	}
	if (micro)
		snprintf(frac, sizeof frac, ".%06d", nanos / 1000);
	snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d%sZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
	    tm.tm_sec, frac);
	return json_string(buf);
}

/* FieldsV1 {1: raw}: the raw bytes are JSON and go into the object as such. */
static json_t *pb_fields_v1(struct pb_dec *d, const struct pb_item *outer)
{
	struct api_error je = { 0 };
	struct pb_item v;
	json_t *j;
	if (!pb_field1(d, outer, "FieldsV1", &v))
		return NULL;
	if (v.len == 0)
		return json_object();
	j = api_json_decode((const char *)v.p, v.len, "json parse error", &je);
	if (j == NULL)
		pb_fail(d, "proto: FieldsV1: %s", je.message);
	api_err_clear(&je);
	return j;
}

/* --- messages ------------------------------------------------------------------------ */

static bool pb_message(struct pb_dec *d, const struct pb_msg *m,
    const unsigned char *p, size_t len, json_t *obj);

static const struct pb_field *pb_find(const struct pb_msg *m, unsigned num)
{
	for (size_t i = 0; i < m->nfields; i++)
		if (m->fields[i].num == num)
			return &m->fields[i];
	return NULL;
}

static bool wants_varint(const struct pb_field *f)
{
	return f->type == PB_INT32 || f->type == PB_INT64 || f->type == PB_BOOL;
}

/* Store a value of field f: appended when repeated, else set (last one
 * wins, as in protobuf) or removed when it is Go's zero value and the
 * field is omitempty. Steals v. */
static bool pb_put(json_t *obj, const struct pb_field *f, json_t *v, bool zero)
{
	json_t *arr;
	if (v == NULL)
		return false;
	if (f->flags & PB_REP) {
		arr = json_object_get(obj, f->name);
		if (arr == NULL) {
			arr = json_array();
			if (json_object_set_new(obj, f->name, arr))
				arr = NULL;
		}
		return json_array_append_new(arr, v) == 0;
	}
	if (zero && !(f->flags & PB_KEEP)) {
		json_decref(v);
		json_object_del(obj, f->name);
		return true;
	}
	return json_object_set_new(obj, f->name, v) == 0;
}

static json_t *pb_scalar(const struct pb_field *f, uint64_t v, bool *zero)
{
	*zero = v == 0;
	switch (f->type) {
	case PB_BOOL:
		return json_boolean(v != 0);
	case PB_INT32:
		*zero = (int32_t)(uint32_t)v == 0;
		return json_integer((int32_t)(uint32_t)v);
	default:
		return json_integer((int64_t)v);
	}
}

/* A packed repeated varint field: the varints back to back. */
static bool pb_packed(struct pb_dec *d, const struct pb_field *f,
    const struct pb_item *it, json_t *obj)
{
	struct pb_in in = { it->p, it->p + it->len };
	uint64_t v;
	bool zero;
	json_t *j;
	while (in.p < in.end) {
		if (!pb_read_varint(d, &in, &v))
			return false;
		j = pb_scalar(f, v, &zero);
		if (!pb_put(obj, f, j, zero))
			return false;
	}
	return true;
}

/* A map entry {1: key, 2: value} into obj[f->name][key]. */
static bool pb_map_entry(struct pb_dec *d, const struct pb_field *f,
    const struct pb_item *outer, json_t *obj)
{
	struct pb_in in = { outer->p, outer->p + outer->len };
	struct pb_item it, key = { .p = outer->p, .len = 0 };
	json_t *val = NULL, *map, *k;
	int rc;
	while ((rc = pb_next(d, &in, f->name, &it)) == 1) {
		if (it.wt == 4 || (it.num <= 2 && it.wt != 2)) {
			rc = -1;
			pb_fail(d,
			    "proto: wrong wireType = %u for a "
			    "%s entry",
			    it.wt, f->name);
			break;
		}
		if (it.num == 1) {
			key = it;
		} else if (it.num == 2) {
			json_decref(val);
			val = f->type == PB_MAP_STRING ?
			    pb_string(d, &it, f->name) :
			    f->type == PB_MAP_BYTES ? pb_base64(it.p, it.len) :
						      pb_quantity(d, &it);
			if (val == NULL) {
				rc = -1;
				break;
			}
		}
	}
	if (rc == 0 && val == NULL)
		val = f->type == PB_MAP_QUANTITY ? json_string("0") :
						   json_string("");
	if (rc < 0 || val == NULL ||
	    (k = pb_string(d, &key, f->name)) == NULL) {
		json_decref(val);
		return false;
	}
	map = json_object_get(obj, f->name);
	if (map == NULL &&
	    json_object_set_new(obj, f->name, map = json_object()))
		map = NULL;
	rc = json_object_set_new(map, json_string_value(k), val);
	json_decref(k);
	return rc == 0;
}

/* A nested message: appended, merged into the object already there (as
 * protobuf merges a repeated non-repeated message), or inlined. */
static bool pb_submsg(struct pb_dec *d, const struct pb_field *f,
    const struct pb_item *it, json_t *obj)
{
	json_t *sub;
	bool ok;
	if (f->flags & PB_INLINE)
		return pb_message(d, f->msg, it->p, it->len, obj);
	sub = (f->flags & PB_REP) ? NULL : json_object_get(obj, f->name);
	if (json_is_object(sub))
		return pb_message(d, f->msg, it->p, it->len, sub);
	sub = json_object();
	if (sub == NULL)
		return false;
	ok = pb_message(d, f->msg, it->p, it->len, sub);
	if (!ok) {
		json_decref(sub);
		return false;
	}
	return pb_put(obj, f, sub, false);
}

static bool pb_delimited(struct pb_dec *d, const struct pb_field *f,
    const struct pb_item *it, json_t *obj)
{
	bool zero = it->len == 0;
	switch (f->type) {
	case PB_STRING:
		return pb_put(obj, f, pb_string(d, it, f->name), zero);
	case PB_BYTES:
		return pb_put(obj, f, pb_base64(it->p, it->len), zero);
	case PB_MSG:
		return pb_submsg(d, f, it, obj);
	case PB_MAP_STRING:
	case PB_MAP_BYTES:
	case PB_MAP_QUANTITY:
		return pb_map_entry(d, f, it, obj);
	case PB_INTSTR:
		return pb_put(obj, f, pb_intstr(d, it), false);
	case PB_QUANTITY:
		return pb_put(obj, f, pb_quantity(d, it), false);
	case PB_TIME:
	case PB_MICROTIME: {
		json_t *t = pb_time(d, it, f->type == PB_MICROTIME, &zero);
		/* the zero time is null in Go's JSON; leave it out */
		return pb_put(obj, f, t, zero && !(f->flags & PB_REP));
	}
	case PB_FIELDS:
		return pb_put(obj, f, pb_fields_v1(d, it), false);
	default:
		return pb_packed(d, f, it, obj);
	}
}

static bool pb_field(struct pb_dec *d, const struct pb_msg *m,
    const struct pb_field *f, const struct pb_item *it, json_t *obj)
{
	bool zero;
	json_t *v;
	if (it->wt == 0 && wants_varint(f)) {
		v = pb_scalar(f, it->v, &zero);
		return pb_put(obj, f, v, zero) ||
		    pb_fail(d, "proto: %s: out of memory", m->name);
	}
	if (it->wt == 2 && (!wants_varint(f) || (f->flags & PB_REP)))
		return pb_delimited(d, f, it, obj) ||
		    pb_fail(d, "proto: %s: cannot decode field %s", m->name,
			f->name);
	return pb_fail(d, "proto: wrong wireType = %u for field %s", it->wt,
	    f->name);
}

static bool pb_message(struct pb_dec *d, const struct pb_msg *m,
    const unsigned char *p, size_t len, json_t *obj)
{
	struct pb_in in = { p, p + len };
	struct pb_item it;
	const struct pb_field *f;
	int rc;
	if (++d->depth > API_MAX_DEPTH)
		return pb_fail(d, "proto: %s: messages nest too deep", m->name);
	while ((rc = pb_next(d, &in, m->name, &it)) == 1) {
		if (it.wt == 4)
			return pb_fail(d,
			    "proto: %s: wiretype end group for "
			    "non-group",
			    m->name);
		f = pb_find(m, it.num);
		if (f == NULL || it.wt == 3)
			continue; /* unknown fields are skipped */
		if (!pb_field(d, m, f, &it, obj))
			return false;
	}
	d->depth--;
	return rc == 0;
}

/* --- the envelope ----------------------------------------------------------------------- */

struct pb_unknown {
	struct pb_item api_version, kind, raw, encoding, ctype;
};

static bool pb_type_meta(struct pb_dec *d, const struct pb_item *outer,
    struct pb_unknown *u)
{
	struct pb_in in = { outer->p, outer->p + outer->len };
	struct pb_item it;
	int rc;
	while ((rc = pb_next(d, &in, "TypeMeta", &it)) == 1) {
		if (it.num <= 2 && it.wt != 2)
			return pb_fail(d,
			    "proto: wrong wireType = %u for "
			    "field TypeMeta",
			    it.wt);
		if (it.num == 1)
			u->api_version = it;
		else if (it.num == 2)
			u->kind = it;
	}
	return rc == 0;
}

static bool pb_envelope(struct pb_dec *d, const unsigned char *p, size_t len,
    struct pb_unknown *u)
{
	struct pb_in in = { p, p + len };
	struct pb_item it;
	int rc;
	memset(u, 0, sizeof *u);
	while ((rc = pb_next(d, &in, "Unknown", &it)) == 1) {
		if (it.num > 4 || it.wt == 3)
			continue;
		if (it.wt != 2)
			return pb_fail(d,
			    "proto: wrong wireType = %u for "
			    "field Unknown",
			    it.wt);
		switch (it.num) {
		case 1:
			if (!pb_type_meta(d, &it, u))
				return false;
			break;
		case 2:
			u->raw = it;
			break;
		case 3:
			u->encoding = it;
			break;
		case 4:
			u->ctype = it;
			break;
		}
	}
	return rc == 0;
}

static bool item_is(const struct pb_item *it, const char *s)
{
	return it->len == strlen(s) && memcmp(it->p, s, it->len) == 0;
}

static const struct pb_kind *pb_kind_find(const struct pb_unknown *u)
{
	for (size_t i = 0; i < pb_nkinds; i++)
		if (item_is(&u->api_version, pb_kinds[i].api_version) &&
		    item_is(&u->kind, pb_kinds[i].kind))
			return &pb_kinds[i];
	return NULL;
}

/* "Kind (apiVersion)" for messages, printable whatever the bytes. */
static void kind_name(const struct pb_unknown *u, char *buf, size_t len)
{
	char k[64], v[96];
	snprintf(k, sizeof k, "%.*s", (int)u->kind.len,
	    (const char *)u->kind.p);
	snprintf(v, sizeof v, "%.*s", (int)u->api_version.len,
	    (const char *)u->api_version.p);
	for (char *c = k; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	for (char *c = v; *c; c++)
		if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f)
			*c = '?';
	snprintf(buf, len, "%s (%s)", k, v[0] ? v : "no apiVersion");
}

static bool pb_check_envelope(struct api_error *e, const struct pb_unknown *u)
{
	char what[192];
	if (u->kind.len == 0) {
		api_err(e, 400, "BadRequest",
		    "Object 'Kind' is missing in the "
		    "protobuf envelope");
		return false;
	}
	kind_name(u, what, sizeof what);
	if (u->encoding.len ||
	    (u->ctype.len &&
		!item_is(&u->ctype, "application/vnd.kubernetes.protobuf"))) {
		api_err(e, 415, "UnsupportedMediaType",
		    "the body of the request "
		    "was in an unknown format - %s is wrapped in a content type "
		    "or encoding other than plain protobuf",
		    what);
		return false;
	}
	if (pb_kind_find(u) == NULL) {
		api_err(e, 415, "UnsupportedMediaType",
		    "the body of the request "
		    "was in an unknown format - %s is not accepted as "
		    "application/vnd.kubernetes.protobuf; accepted media types "
		    "include: application/json, application/yaml",
		    what);
		return false;
	}
	return true;
}

/* Kubernetes' words for an object it could not decode. */
static void pb_decode_error(struct api_error *e, const struct pb_kind *k)
{
	char detail[sizeof e->message];
	const char *slash = strchr(k->api_version, '/');
	snprintf(detail, sizeof detail, "%s", e->message);
	api_err(e, 400, "BadRequest",
	    "%s in version \"%s\" cannot be handled "
	    "as a %s: %s",
	    k->kind, slash ? slash + 1 : k->api_version, k->kind, detail);
}

json_t *api_proto_decode(const void *data, size_t len, struct api_error *e)
{
	struct pb_dec d = { .e = e };
	struct pb_unknown u;
	const struct pb_kind *k;
	json_t *obj;
	if (len < sizeof pb_magic || memcmp(data, pb_magic, sizeof pb_magic)) {
		api_err(e, 400, "BadRequest",
		    "the object provided is "
		    "unrecognized: provided data does not appear to be a "
		    "protobuf message, expected prefix [107 56 115 0]");
		return NULL;
	}
	if (!pb_envelope(&d, (const unsigned char *)data + 4, len - 4, &u)) {
		char detail[sizeof e->message];
		snprintf(detail, sizeof detail, "%s", e->message);
		api_err(e, 400, "BadRequest",
		    "the object provided is "
		    "unrecognized: %s",
		    detail);
		return NULL;
	}
	if (!pb_check_envelope(e, &u))
		return NULL;
	k = pb_kind_find(&u);
	obj = json_pack("{s:s,s:s}", "kind", k->kind, "apiVersion",
	    k->api_version);
	/* no raw field is an object with nothing set */
	if (u.raw.p == NULL)
		u.raw.p = data;
	if (obj && !pb_message(&d, k->msg, u.raw.p, u.raw.len, obj)) {
		pb_decode_error(e, k);
		json_decref(obj);
		return NULL;
	}
	if (obj == NULL)
		api_err(e, 500, "InternalError", "out of memory");
	return obj;
}
