/* plugins/apiserver/select.c — label and field selectors.
 *
 * A selector is a list of requirements, all of which must hold. Labels
 * read metadata.labels; fields read a dotted path of the object, the
 * supported set per resource being Kubernetes' own (others are a 400).
 */
#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "server.h"

enum op { OP_EQ, OP_NE, OP_IN, OP_NOTIN, OP_EXISTS, OP_NOTEXISTS, OP_GT, OP_LT };

struct req {
	char *key;
	int op;
	char **vals;
	size_t nvals;
};

struct api_selector {
	bool fields;        /* key is an object path, not a label */
	struct req *reqs;
	size_t n;
};

void api_selector_free(struct api_selector *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++) {
		free(s->reqs[i].key);
		for (size_t j = 0; j < s->reqs[i].nvals; j++)
			free(s->reqs[i].vals[j]);
		free(s->reqs[i].vals);
	}
	free(s->reqs);
	free(s);
}

static struct req *add_req(struct api_selector *s, const char *key, size_t kl, int op)
{
	struct req *r = realloc(s->reqs, (s->n + 1) * sizeof(*r));
	if (r == NULL)
		return NULL;
	s->reqs = r;
	r = &s->reqs[s->n++];
	memset(r, 0, sizeof(*r));
	r->key = strndup(key, kl);
	r->op = op;
	return r;
}

static void add_val(struct req *r, const char *v, size_t vl)
{
	char **nv = realloc(r->vals, (r->nvals + 1) * sizeof(char *));
	if (nv == NULL)
		return;
	r->vals = nv;
	r->vals[r->nvals++] = strndup(v, vl);
}

static const char *skip_ws(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

static bool key_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.' || c == '/';
}

static bool val_char(char c)
{
	return isalnum((unsigned char)c) || c == '-' || c == '_' || c == '.';
}

/* Label keys: [prefix/]name, name <= 63 chars of [A-Za-z0-9-_.] starting
 * and ending alphanumeric, prefix a DNS subdomain. */
static const char *bad_label_key(const char *k, size_t n)
{
	const char *slash = memchr(k, '/', n);
	const char *name = slash ? slash + 1 : k;
	size_t nl = n - (size_t)(name - k);
	if (nl == 0 || nl > 63)
		return "name part must be no more than 63 characters and non-empty";
	if (!isalnum((unsigned char)name[0]) || !isalnum((unsigned char)name[nl - 1]))
		return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
	for (size_t i = 0; i < nl; i++)
		if (!val_char(name[i]))
			return "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
	if (slash && (slash == k || (size_t)(slash - k) > 253))
		return "prefix part must be a non-empty DNS subdomain";
	return NULL;
}

static const char *bad_label_value(const char *v, size_t n)
{
	if (n == 0)
		return NULL;
	if (n > 63)
		return "must be no more than 63 characters";
	if (!isalnum((unsigned char)v[0]) || !isalnum((unsigned char)v[n - 1]))
		return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
	for (size_t i = 0; i < n; i++)
		if (!val_char(v[i]))
			return "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character";
	return NULL;
}

/* n bytes at s as Go's strconv.ParseInt(s, 10, 64) takes them: a sign,
 * then digits only, within int64. Both matchers read Gt and Lt values
 * with it, so that the bytes' label (not NUL-ended) and the json_t's
 * give the same answer however long they are. */
static bool int_of(const char *s, size_t n, long long *out)
{
	bool neg = n > 0 && s[0] == '-';
	size_t i = n > 0 && (s[0] == '-' || s[0] == '+');
	unsigned long long v = 0, lim = neg ? (unsigned long long)INT64_MAX + 1 :
					      (unsigned long long)INT64_MAX;

	if (i == n)
		return false;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9' || v > (lim - (unsigned)(s[i] - '0')) / 10)
			return false;
		v = v * 10 + (unsigned)(s[i] - '0');
	}
	*out = neg ? (long long)(0 - v) : (long long)v;
	return true;
}

static struct api_selector *parse_fail(struct api_selector *s, struct api_error *e,
    const char *input, const char *why)
{
	api_err(e, 400, "BadRequest", "unable to parse requirement: %s (in \"%s\")", why, input);
	api_selector_free(s);
	return NULL;
}

struct api_selector *api_label_selector(const char *in, struct api_error *e)
{
	struct api_selector *s = calloc(1, sizeof(*s));
	if (s == NULL || in == NULL)
		return s;
	const char *p = skip_ws(in);
	while (*p) {
		bool neg = false;
		if (*p == '!') {
			neg = true;
			p = skip_ws(p + 1);
		}
		const char *k = p;
		while (key_char(*p))
			p++;
		size_t kl = (size_t)(p - k);
		const char *why = kl ? bad_label_key(k, kl) : "key is empty";
		if (why)
			return parse_fail(s, e, in, why);
		p = skip_ws(p);
		struct req *r;
		if (neg || *p == ',' || *p == '\0') {
			r = add_req(s, k, kl, neg ? OP_NOTEXISTS : OP_EXISTS);
		} else if (!strncmp(p, "==", 2) || *p == '=' || !strncmp(p, "!=", 2) ||
		           *p == '>' || *p == '<') {
			int op = *p == '!' ? OP_NE : *p == '>' ? OP_GT : *p == '<' ? OP_LT : OP_EQ;
			p += (!strncmp(p, "==", 2) || *p == '!') ? 2 : 1;
			p = skip_ws(p);
			const char *v = p;
			while (val_char(*p))
				p++;
			if ((why = bad_label_value(v, (size_t)(p - v))))
				return parse_fail(s, e, in, why);
			long long num;
			if ((op == OP_GT || op == OP_LT) && p == v)
				return parse_fail(s, e, in, "for 'gt', 'lt' operators, exactly one value is required");
			if ((op == OP_GT || op == OP_LT) && !int_of(v, (size_t)(p - v), &num))
				return parse_fail(s, e, in, "for 'Gt', 'Lt' operators, the value must be an integer");
			r = add_req(s, k, kl, op);
			if (r)
				add_val(r, v, (size_t)(p - v));
		} else if (!strncmp(p, "in", 2) || !strncmp(p, "notin", 5)) {
			int op = p[0] == 'i' ? OP_IN : OP_NOTIN;
			p = skip_ws(p + (op == OP_IN ? 2 : 5));
			if (*p != '(')
				return parse_fail(s, e, in, "expected '(' after in or notin");
			r = add_req(s, k, kl, op);
			p = skip_ws(p + 1);
			while (r && *p && *p != ')') {
				const char *v = p;
				while (val_char(*p))
					p++;
				if ((why = bad_label_value(v, (size_t)(p - v))))
					return parse_fail(s, e, in, why);
				add_val(r, v, (size_t)(p - v));
				p = skip_ws(p);
				if (*p == ',')
					p = skip_ws(p + 1);
				else if (*p != ')')
					return parse_fail(s, e, in, "expected ',' or ')'");
			}
			if (*p != ')')
				return parse_fail(s, e, in, "found end of string, expected: ')'");
			if (r && r->nvals == 0)
				return parse_fail(s, e, in, "for 'in', 'notin' operators, values set can't be empty");
			p++;
		} else {
			return parse_fail(s, e, in, "expected an operator (=, ==, !=, in, notin)");
		}
		if (r == NULL)
			return parse_fail(s, e, in, "out of memory");
		p = skip_ws(p);
		if (*p == ',')
			p = skip_ws(p + 1);
		else if (*p)
			return parse_fail(s, e, in, "expected ','");
	}
	return s;
}

/* Fields each resource may be selected by, besides metadata.name and
 * metadata.namespace (Kubernetes' field label conversion functions). */
static const char *const pod_fields[] = { "spec.nodeName", "spec.restartPolicy",
	"spec.schedulerName", "spec.serviceAccountName", "spec.hostNetwork",
	"status.phase", "status.podIP", "status.nominatedNodeName", NULL };
static const char *const event_fields[] = { "involvedObject.kind",
	"involvedObject.namespace", "involvedObject.name", "involvedObject.uid",
	"involvedObject.apiVersion", "involvedObject.resourceVersion",
	"involvedObject.fieldPath", "reason", "reportingComponent", "source",
	"type", NULL };
static const char *const node_fields[] = { "spec.unschedulable", NULL };
static const char *const ns_fields[] = { "status.phase", NULL };
static const char *const secret_fields[] = { "type", NULL };
static const char *const rs_fields[] = { "status.replicas", NULL };

static const char *const *fields_of(const struct api_resource *r)
{
	if (r == NULL)
		return NULL;
	if (!strcmp(r->plural, "pods"))
		return pod_fields;
	if (!strcmp(r->plural, "events"))
		return event_fields;
	if (!strcmp(r->plural, "nodes"))
		return node_fields;
	if (!strcmp(r->plural, "namespaces"))
		return ns_fields;
	if (!strcmp(r->plural, "secrets"))
		return secret_fields;
	if (!strcmp(r->plural, "replicasets"))
		return rs_fields;
	return NULL;
}

static bool field_supported(const struct api_resource *r, const char *f)
{
	if (!strcmp(f, "metadata.name") || !strcmp(f, "metadata.namespace"))
		return true;
	const char *const *v = fields_of(r);
	for (; v && *v; v++)
		if (!strcmp(*v, f))
			return true;
	return false;
}

struct api_selector *api_field_selector(const struct api_resource *r,
    const char *in, struct api_error *e)
{
	struct api_selector *s = calloc(1, sizeof(*s));
	if (s == NULL || in == NULL)
		return s;
	s->fields = true;
	const char *p = in;
	while (*p) {
		const char *end = strchr(p, ',');
		size_t n = end ? (size_t)(end - p) : strlen(p);
		char *term = strndup(p, n);
		char *op = strstr(term, "!=");
		int kind = OP_NE;
		size_t oplen = 2;
		if (op == NULL && (op = strstr(term, "=="))) {
			kind = OP_EQ;
		} else if (op == NULL && (op = strchr(term, '='))) {
			kind = OP_EQ;
			oplen = 1;
		}
		if (op == NULL) {
			api_err(e, 400, "BadRequest", "invalid selector: '%s'; can't understand '%s'", in, term);
			free(term);
			api_selector_free(s);
			return NULL;
		}
		*op = '\0';
		if (!field_supported(r, term)) {
			api_err(e, 400, "BadRequest", "field label not supported: %s", term);
			free(term);
			api_selector_free(s);
			return NULL;
		}
		struct req *q = add_req(s, term, strlen(term), kind);
		if (q)
			add_val(q, op + oplen, strlen(op + oplen));
		free(term);
		p += n;
		if (*p == ',')
			p++;
	}
	return s;
}

struct api_selector *api_selector_from_json(const json_t *sel, struct api_error *e)
{
	struct api_selector *s = calloc(1, sizeof(*s));
	if (s == NULL || sel == NULL)
		return s;
	const char *k;
	json_t *v;
	json_object_foreach(json_object_get(sel, "matchLabels"), k, v) {
		struct req *r = add_req(s, k, strlen(k), OP_EQ);
		if (r && json_is_string(v))
			add_val(r, json_string_value(v), json_string_length(v));
	}
	size_t i;
	json_t *x;
	json_array_foreach(json_object_get(sel, "matchExpressions"), i, x) {
		const char *key = json_string_value(json_object_get(x, "key"));
		const char *op = json_string_value(json_object_get(x, "operator"));
		int kind = !op ? -1 : !strcmp(op, "In") ? OP_IN : !strcmp(op, "NotIn") ? OP_NOTIN
		    : !strcmp(op, "Exists") ? OP_EXISTS : !strcmp(op, "DoesNotExist") ? OP_NOTEXISTS : -1;
		if (key == NULL || kind < 0) {
			api_err(e, 400, "BadRequest", "%s is not a valid label selector operator", op ? op : "(none)");
			api_selector_free(s);
			return NULL;
		}
		struct req *r = add_req(s, key, strlen(key), kind);
		size_t j;
		json_t *val;
		json_array_foreach(json_object_get(x, "values"), j, val)
			if (r && json_is_string(val))
				add_val(r, json_string_value(val), json_string_length(val));
	}
	return s;
}

/* The field's value as a string: strings as they are, booleans and
 * numbers printed; absent is "". */
static const char *field_value(const json_t *obj, const char *path, char *buf, size_t n)
{
	json_t *v = api_get(obj, path);
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_boolean(v))
		return json_is_true(v) ? "true" : "false";
	if (json_is_integer(v)) {
		snprintf(buf, n, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	return "";
}

/* A Gt or Lt requirement on the label value v (n bytes): false, as in
 * Kubernetes, when the value is not an integer. */
static bool int_cmp(const struct req *r, const char *v, size_t n)
{
	long long have, want;

	if (r->nvals != 1 || !int_of(v, n, &have) ||
	    !int_of(r->vals[0], strlen(r->vals[0]), &want))
		return false;
	return r->op == OP_GT ? have > want : have < want;
}

static bool in_vals(const struct req *r, const char *v)
{
	for (size_t i = 0; i < r->nvals; i++)
		if (!strcmp(r->vals[i], v))
			return true;
	return false;
}

static bool req_match(const struct api_selector *s, const struct req *r, const json_t *obj)
{
	char buf[32];
	if (s->fields) {
		const char *v = field_value(obj, r->key, buf, sizeof(buf));
		return r->op == OP_EQ ? !strcmp(v, r->vals[0]) : strcmp(v, r->vals[0]) != 0;
	}
	json_t *lv = json_object_get(json_object_get(obj, "metadata"), "labels");
	json_t *val = json_object_get(lv, r->key);
	const char *v = json_string_value(val);
	switch (r->op) {
	case OP_EXISTS: return v != NULL;
	case OP_NOTEXISTS: return v == NULL;
	case OP_EQ: case OP_IN: return v && in_vals(r, v);
	case OP_NE: case OP_NOTIN: return v == NULL || !in_vals(r, v);
	case OP_GT: case OP_LT:
		return v != NULL && int_cmp(r, v, strlen(v));
	}
	return false;
}

bool api_selector_match(const struct api_selector *s, const json_t *obj)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (!req_match(s, &s->reqs[i], obj))
			return false;
	return true;
}

/* --- the same on msgpack ----------------------------------------------------------
 *
 * The watch cache keeps objects as msgpack (as api_mp_encode writes them)
 * and decodes them only for HTTP watchers: selectors, namespace and name
 * filters read the bytes in place. A value reads as its decoded json_t
 * would: str and bin are strings, unsigned integers past INT64_MAX reals. */

/* The value at a dotted path of map keys. */
static bool mpc_path(const void *mp, size_t len, const char *path, struct api_mval *v,
    struct api_mpc *at)
{
	struct api_mpc c = { mp, (const unsigned char *)mp + len };
	if (mp == NULL)
		return false;
	while (*path) {
		size_t kl = strcspn(path, ".");
		if (!api_mpc_find(&c, path, kl))
			return false;
		path += kl;
		if (*path == '.')
			path++;
	}
	if (at)
		*at = c;
	return api_mpc_read(&c, v);
}

/* mpc_path through a memo of where paths were found (m may be NULL). */
static bool mpc_path_m(const void *mp, size_t len, const char *path, struct api_mp_memo *m,
    struct api_mval *v, struct api_mpc *at)
{
	size_t pl = strlen(path);
	bool memo = m && pl < sizeof(m->e[0].path);
	for (unsigned i = 0; memo && i < m->n; i++) {
		if (strcmp(m->e[i].path, path))
			continue;
		if (m->e[i].at == NULL)
			return false;
		struct api_mpc c = { m->e[i].at, (const unsigned char *)mp + len };
		if (at)
			*at = c;
		return api_mpc_read(&c, v);
	}
	struct api_mpc where = { 0 };
	bool found = mpc_path(mp, len, path, v, &where);
	if (memo && m->n < API_MP_MEMO) {
		memcpy(m->e[m->n].path, path, pl + 1);
		m->e[m->n++].at = found ? where.p : NULL;
	}
	if (found && at)
		*at = where;
	return found;
}

const char *api_mp_str(const void *mp, size_t len, const char *path, size_t *n)
{
	struct api_mval v;
	if (!mpc_path(mp, len, path, &v, NULL) || v.kind != API_MV_STR)
		return NULL;
	/* as json_string_value reads it: up to a NUL */
	const char *nul = memchr(v.s, '\0', (size_t)v.n);
	*n = nul ? (size_t)(nul - v.s) : (size_t)v.n;
	return v.s;
}

bool api_mp_has(const void *mp, size_t len, const char *path)
{
	struct api_mval v;
	return mpc_path(mp, len, path, &v, NULL);
}

/* s (n bytes) equals the C string want. */
static bool bytes_are(const char *s, size_t n, const char *want)
{
	return strlen(want) == n && !memcmp(s, want, n);
}

bool api_mp_str_is(const void *mp, size_t len, const char *path, const char *want,
    struct api_mp_memo *m)
{
	struct api_mval v;
	if (!mpc_path_m(mp, len, path, m, &v, NULL) || v.kind != API_MV_STR)
		return bytes_are("", 0, want);
	const char *nul = memchr(v.s, '\0', (size_t)v.n);
	return bytes_are(v.s, nul ? (size_t)(nul - v.s) : (size_t)v.n, want);
}

static bool in_vals_n(const struct req *r, const char *v, size_t n)
{
	for (size_t i = 0; i < r->nvals; i++)
		if (bytes_are(v, n, r->vals[i]))
			return true;
	return false;
}

/* A field's value as field_value reads it: strings, booleans, integers;
 * else "". *n bytes at the result (buf holds an integer's digits). */
static const char *field_text(const void *mp, size_t len, const char *path,
    struct api_mp_memo *m, char buf[32], size_t *n)
{
	struct api_mval x;
	*n = 0;
	if (!mpc_path_m(mp, len, path, m, &x, NULL))
		return "";
	if (x.kind == API_MV_STR) {
		const char *nul = memchr(x.s, '\0', (size_t)x.n);
		*n = nul ? (size_t)(nul - x.s) : (size_t)x.n;
		return x.s;
	}
	if (x.kind == API_MV_BOOL) {
		*n = x.b ? 4 : 5;
		return x.b ? "true" : "false";
	}
	if (x.kind == API_MV_INT) {
		snprintf(buf, 32, "%lld", (long long)x.i);
		*n = strlen(buf);
		return buf;
	}
	return "";
}

bool api_mp_field(const void *mp, size_t len, const char *path,
    struct api_mp_memo *m, char *out, size_t cap)
{
	char buf[32];
	size_t n;
	const char *v = field_text(mp, len, path, m, buf, &n);
	if (n >= cap)
		return false;
	memcpy(out, v, n);
	out[n] = '\0';
	return true;
}

const char *api_selector_eq(const struct api_selector *s, const char *path)
{
	for (size_t i = 0; s && s->fields && i < s->n; i++)
		if (s->reqs[i].op == OP_EQ && s->reqs[i].nvals == 1 &&
		    !strcmp(s->reqs[i].key, path))
			return s->reqs[i].vals[0];
	return NULL;
}

static bool req_match_mp(const struct api_selector *s, const struct req *r,
    const void *mp, size_t len, struct api_mp_memo *m)
{
	char buf[32];
	const char *v = NULL;
	size_t n = 0;
	if (s->fields) {
		v = field_text(mp, len, r->key, m, buf, &n);
		bool eq = bytes_are(v, n, r->vals[0]);
		return r->op == OP_EQ ? eq : !eq;
	}
	struct api_mpc c;
	struct api_mval x;
	if (mpc_path_m(mp, len, "metadata.labels", m, &x, &c) &&
	    api_mpc_find(&c, r->key, strlen(r->key)) && api_mpc_read(&c, &x) && x.kind == API_MV_STR) {
		const char *nul = memchr(x.s, '\0', (size_t)x.n);
		v = x.s;
		n = nul ? (size_t)(nul - x.s) : (size_t)x.n;
	}
	switch (r->op) {
	case OP_EXISTS: return v != NULL;
	case OP_NOTEXISTS: return v == NULL;
	case OP_EQ: case OP_IN: return v && in_vals_n(r, v, n);
	case OP_NE: case OP_NOTIN: return v == NULL || !in_vals_n(r, v, n);
	case OP_GT: case OP_LT:
		return v != NULL && int_cmp(r, v, n);
	}
	return false;
}

bool api_selector_match_mp(const struct api_selector *s, const void *mp, size_t len,
    struct api_mp_memo *m)
{
	for (size_t i = 0; s && i < s->n; i++)
		if (!req_match_mp(s, &s->reqs[i], mp, len, m))
			return false;
	return true;
}

bool api_selector_empty(const struct api_selector *s)
{
	return s == NULL || s->n == 0;
}

int api_mp_set_rv(const void *mp, size_t len, int64_t rev, char **out, size_t *outlen)
{
	struct api_mval v;
	struct api_mpc at;
	if (rev < 0 || !mpc_path(mp, len, "metadata.resourceVersion", &v, &at) || v.kind != API_MV_STR)
		return KB_EINVAL;
	/* at.p: the old value's head; the value ends at v.s + v.n */
	const char *head = (const char *)at.p, *tail = v.s + v.n;
	char rv[24];
	const char *p = api_u64_text((uint64_t)rev, rv);
	msgpack_sbuffer sb = { 0 };
	msgpack_packer pk;
	sb.alloc = len + 32;
	if ((sb.data = malloc(sb.alloc)) == NULL)
		return KB_ENOMEM;
	msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
	if (msgpack_sbuffer_write(&sb, mp, (size_t)(head - (const char *)mp)) ||
	    msgpack_pack_str_with_body(&pk, p, strlen(p)) ||
	    msgpack_sbuffer_write(&sb, tail, (size_t)((const char *)mp + len - tail))) {
		msgpack_sbuffer_destroy(&sb);
		return KB_ENOMEM;
	}
	*out = sb.data;
	*outlen = sb.size;
	return 0;
}
