/* plugins/apiserver/yaml.c — one YAML document to json_t, typed as
 * Kubernetes types it (sigs.k8s.io/yaml over go-yaml v2, YAML 1.1 rules):
 * plain scalars become null, booleans (true/yes/on…), integers (0x1F,
 * 0o17, 017, 1_000) or floats; quoted and block scalars stay strings;
 * anchors, aliases and "<<" merge keys are resolved, v2's way (a merge
 * overrides the keys before it, the keys after it override the merge).
 *
 * Bounded like the JSON path: nesting by API_MAX_DEPTH, alias expansion by
 * a node budget (the "billion laughs" document gets a 400, not our RAM).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <yaml.h>

#include "codec.h"

/* libyaml names the core tags but this one */
#define YAML_BINARY_TAG "tag:yaml.org,2002:binary"

/* Nodes aliases may copy in, all told. */
#define YAML_ALIAS_BUDGET 200000

struct yframe {
	json_t *node; /* the mapping or sequence being built */
	json_t *key;  /* a mapping's key waiting for its value */
	bool merge;   /* the waiting key is "<<" */
	char *anchor; /* its anchor, registered when it ends */
	size_t nodes; /* nodes inside, for the alias budget */
	int height;   /* levels of containers below it */
};

struct ydoc {
	yaml_parser_t parser;
	struct yframe stack[API_MAX_DEPTH];
	int depth;
	json_t *root;
	int docs;
	json_t *anchors; /* name -> [node, nodes, levels of containers] */
	size_t alias_nodes;
	struct api_error *e;
};

static bool yfail(struct ydoc *d, const char *fmt, const char *arg)
{
	char msg[512];
	snprintf(msg, sizeof msg, fmt, arg);
	api_err(d->e, 400, "BadRequest",
	    "error converting YAML to JSON: "
	    "yaml: %s",
	    msg);
	return false;
}

/* --- scalars ------------------------------------------------------------------ */

static bool is_one_of(const char *s, const char *const *set)
{
	for (; *set; set++)
		if (strcmp(s, *set) == 0)
			return true;
	return false;
}

static const char *const yaml_nulls[] = { "", "~", "null", "Null", "NULL",
	NULL };
static const char *const yaml_trues[] = { "y", "Y", "yes", "Yes", "YES", "true",
	"True", "TRUE", "on", "On", "ON", NULL };
static const char *const yaml_falses[] = { "n", "N", "no", "No", "NO", "false",
	"False", "FALSE", "off", "Off", "OFF", NULL };

static int digit_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return 99;
}

/* Go's strconv.ParseInt(s, 0, 64): sign, then 0x/0b/0o or a leading 0
 * for octal, else decimal; the whole string, no overflow. */
static bool parse_go_int(const char *s, long long *out)
{
	bool neg = false;
	unsigned base = 10;
	unsigned long long v = 0, lim;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X'))
		base = 16, s += 2;
	else if (s[0] == '0' && (s[1] == 'b' || s[1] == 'B'))
		base = 2, s += 2;
	else if (s[0] == '0' && (s[1] == 'o' || s[1] == 'O'))
		base = 8, s += 2;
	else if (s[0] == '0' && s[1])
		base = 8, s += 1;
	if (*s == '\0')
		return false;
	lim = neg ? (unsigned long long)INT64_MAX + 1 :
		    (unsigned long long)INT64_MAX;
	for (; *s; s++) {
		unsigned dv = (unsigned)digit_value(*s);
		if (dv >= base || v > (lim - dv) / base)
			return false;
		v = v * base + dv;
	}
	*out = neg ? (long long)(0 - v) : (long long)v;
	return true;
}

/* go-yaml's float syntax: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)? */
static bool yaml_float_syntax(const char *s)
{
	size_t digits = 0;
	if (*s == '+' || *s == '-')
		s++;
	if (*s == '.') {
		for (s++; *s >= '0' && *s <= '9'; s++)
			digits++;
		if (digits == 0)
			return false;
	} else {
		for (; *s >= '0' && *s <= '9'; s++)
			digits++;
		if (digits == 0)
			return false;
		if (*s == '.')
			for (s++; *s >= '0' && *s <= '9'; s++)
				;
	}
	if (*s == 'e' || *s == 'E') {
		s++;
		if (*s == '+' || *s == '-')
			s++;
		if (*s < '0' || *s > '9')
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
	}
	return *s == '\0';
}

/* A number for a plain scalar starting like one (go-yaml's "hint": a
 * sign, a digit or a dot); NULL when it is not one (then it is a string),
 * or with *failed set when it is a number JSON cannot carry. */
static json_t *yaml_number(struct ydoc *d, const char *s, bool *failed)
{
	char buf[128];
	size_t o = 0;
	long long i;
	/* go-yaml drops '_' from integers and signed or digit-led floats,
	 * but parses a dot-led float as it is */
	for (const char *p = s; *p; p++) {
		if (*p == '_' && *s != '.')
			continue;
		if (o + 1 >= sizeof buf)
			return NULL;
		buf[o++] = *p;
	}
	buf[o] = '\0';
	if (*s != '.' && parse_go_int(buf, &i))
		return json_integer(i);
	if (!yaml_float_syntax(buf))
		return NULL;
	json_t *j = json_real(strtod(buf, NULL));
	if (j == NULL) {
		*failed = true;
		yfail(d, "the number %s is out of range", s);
	}
	return j;
}

/* An untagged plain scalar, resolved as go-yaml v2 does. Timestamps stay
 * strings: v2 hands them to an interface{} as the text it read. */
static json_t *yaml_plain(struct ydoc *d, const char *s, bool *failed)
{
	static const char *const inf[] = { ".inf", ".Inf", ".INF", "+.inf",
		"+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN",
		".NAN", NULL };
	json_t *n;
	if (is_one_of(s, yaml_nulls))
		return json_null();
	if (is_one_of(s, yaml_trues))
		return json_true();
	if (is_one_of(s, yaml_falses))
		return json_false();
	if (is_one_of(s, inf)) {
		*failed = true;
		yfail(d, "json: unsupported value: %s", s);
		return NULL;
	}
	if (*s && strchr("+-.0123456789", *s) &&
	    ((n = yaml_number(d, s, failed)) != NULL || *failed))
		return n;
	return json_string(s);
}

/* go-yaml's short name of what a value resolved to. */
static const char *short_tag(const json_t *j)
{
	switch (json_typeof(j)) {
	case JSON_NULL:
		return "!!null";
	case JSON_TRUE:
	case JSON_FALSE:
		return "!!bool";
	case JSON_INTEGER:
		return "!!int";
	case JSON_REAL:
		return "!!float";
	default:
		return "!!str";
	}
}

/* A scalar with an explicit tag. The core tags must match what the text
 * resolves to (!!float takes an integer too); go-yaml leaves other tags'
 * values as text. */
static json_t *yaml_tagged(struct ydoc *d, const char *tag, const char *s,
    bool *failed)
{
	static const char *const core[] = { YAML_NULL_TAG, YAML_BOOL_TAG,
		YAML_INT_TAG, YAML_FLOAT_TAG, NULL };
	char want[16], msg[160];
	json_t *j;
	if (strcmp(tag, YAML_BINARY_TAG) == 0) {
		*failed = true;
		yfail(d, "%s",
		    "!!binary values are not supported; send the "
		    "text itself");
		return NULL;
	}
	if (!is_one_of(tag, core))
		return json_string(s);
	j = yaml_plain(d, s, failed);
	snprintf(want, sizeof want, "!!%s", tag + strlen("tag:yaml.org,2002:"));
	if (j == NULL || strcmp(short_tag(j), want) == 0)
		return j;
	if (json_is_integer(j) && strcmp(want, "!!float") == 0) {
		json_t *f = json_real((double)json_integer_value(j));
		json_decref(j);
		return f;
	}
	snprintf(msg, sizeof msg, "cannot decode %s `%.64s` as a %s",
	    short_tag(j), s, want);
	json_decref(j);
	*failed = true;
	yfail(d, "%s", msg);
	return NULL;
}

static json_t *yaml_scalar(struct ydoc *d, const yaml_event_t *ev)
{
	const char *s = (const char *)ev->data.scalar.value;
	const char *tag = (const char *)ev->data.scalar.tag;
	bool failed = false;
	json_t *j;
	if (strlen(s) != ev->data.scalar.length) {
		yfail(d, "%s", "NUL characters are not allowed in a string");
		return NULL;
	}
	if (tag && strcmp(tag, "!") != 0)
		j = yaml_tagged(d, tag, s, &failed);
	else if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE || tag)
		j = json_string(s);
	else
		j = yaml_plain(d, s, &failed);
	if (j == NULL && !failed)
		yfail(d, "%s", "invalid UTF-8 in a string");
	return j;
}

/* A mapping key as JSON wants it: a string. Typed plain keys print as
 * sigs.k8s.io/yaml prints them (1 -> "1", true -> "true"); a null key has
 * no JSON form. */
static json_t *yaml_key(struct ydoc *d, const yaml_event_t *ev)
{
	json_t *v = yaml_scalar(d, ev);
	char buf[32];
	if (v == NULL || json_is_string(v))
		return v;
	if (json_is_null(v)) {
		yfail(d, "%s", "unsupported map key: null");
		return NULL;
	}
	if (json_is_integer(v))
		snprintf(buf, sizeof buf, "%lld",
		    (long long)json_integer_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, sizeof buf, "%s",
		    json_is_true(v) ? "true" : "false");
	else if (json_is_real(v)) /* as written */
		snprintf(buf, sizeof buf, "%.31s", ev->data.scalar.value);
	json_decref(v);
	return json_string(buf);
}

/* --- building ------------------------------------------------------------------- */

static bool merge_one(struct ydoc *d, json_t *dst, json_t *src)
{
	const char *k;
	json_t *v;
	if (!json_is_object(src))
		return yfail(d, "%s",
		    "map merge requires map or sequence "
		    "of maps as the value");
	/* go-yaml v2 sets the merged keys over those already there */
	json_object_foreach(src, k, v)
		json_object_set(dst, k, v);
	return true;
}

/* "<<: *a" or "<<: [*a, *b]"; in a sequence the earlier maps win, so they
 * are merged last. */
static bool merge_value(struct ydoc *d, json_t *dst, json_t *v)
{
	if (!json_is_array(v))
		return merge_one(d, dst, v);
	for (size_t i = json_array_size(v); i > 0; i--)
		if (!merge_one(d, dst, json_array_get(v, i - 1)))
			return false;
	return true;
}

/* A finished value: the document's root, an element, or a key's value.
 * Steals v. */
static bool add_value(struct ydoc *d, json_t *v, size_t nodes, int height)
{
	struct yframe *f;
	bool ok;
	if (d->depth == 0) {
		/* an empty document after the first ("a: 1\n---\n") is
		 * harmless; anything more is a second object */
		if (d->docs == 1) {
			d->root = v;
			return true;
		}
		ok = json_is_null(v);
		json_decref(v);
		return ok ||
		    yfail(d, "%s",
			"the body holds more than one "
			"document; send one object");
	}
	f = &d->stack[d->depth - 1];
	f->nodes += nodes;
	if (height > f->height)
		f->height = height;
	if (json_is_array(f->node))
		return json_array_append_new(f->node, v) == 0;
	if (f->merge) {
		ok = merge_value(d, f->node, v);
		json_decref(v);
	} else {
		ok = json_object_set_new(f->node, json_string_value(f->key),
			 v) == 0;
	}
	json_decref(f->key);
	f->key = NULL;
	f->merge = false;
	return ok;
}

static bool remember_anchor(struct ydoc *d, const char *name, json_t *node,
    size_t nodes, int height)
{
	json_t *entry;
	if (name == NULL)
		return true;
	entry = json_pack("[O,I,i]", node, (json_int_t)nodes, height);
	return entry && json_object_set_new(d->anchors, name, entry) == 0;
}

/* Is the top of the stack a mapping waiting for a key? */
static struct yframe *wants_key(struct ydoc *d)
{
	struct yframe *f = d->depth ? &d->stack[d->depth - 1] : NULL;
	return f && json_is_object(f->node) && f->key == NULL && !f->merge ?
	    f :
	    NULL;
}

static bool on_scalar(struct ydoc *d, const yaml_event_t *ev)
{
	struct yframe *f = wants_key(d);
	const char *anchor = (const char *)ev->data.scalar.anchor;
	json_t *v;
	if (f) {
		if (ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
		    ev->data.scalar.tag == NULL &&
		    strcmp((const char *)ev->data.scalar.value, "<<") == 0) {
			f->merge = true;
			return true;
		}
		f->key = yaml_key(d, ev);
		return f->key && remember_anchor(d, anchor, f->key, 1, 0);
	}
	v = yaml_scalar(d, ev);
	if (v == NULL || !remember_anchor(d, anchor, v, 1, 0)) {
		json_decref(v);
		return false;
	}
	return add_value(d, v, 1, 0);
}

static bool on_start(struct ydoc *d, const yaml_event_t *ev, bool mapping)
{
	struct yframe *f;
	const yaml_char_t *anchor = mapping ? ev->data.mapping_start.anchor :
					      ev->data.sequence_start.anchor;
	if (wants_key(d))
		return yfail(d, "%s",
		    "invalid map key: a mapping or a "
		    "sequence cannot be a key");
	if (d->depth >= API_MAX_DEPTH)
		return yfail(d, "the document nests deeper than %s levels",
		    "100");
	f = &d->stack[d->depth];
	memset(f, 0, sizeof *f);
	f->node = mapping ? json_object() : json_array();
	f->anchor = anchor ? strdup((const char *)anchor) : NULL;
	if (f->node == NULL || (anchor && f->anchor == NULL)) {
		json_decref(f->node);
		free(f->anchor);
		return yfail(d, "%s", "out of memory");
	}
	d->depth++;
	return true;
}

static bool on_end(struct ydoc *d)
{
	struct yframe f = d->stack[--d->depth];
	bool ok =
	    remember_anchor(d, f.anchor, f.node, f.nodes + 1, f.height + 1);
	free(f.anchor);
	json_decref(f.key);
	if (!ok) {
		json_decref(f.node);
		return yfail(d, "%s", "out of memory");
	}
	return add_value(d, f.node, f.nodes + 1, f.height + 1);
}

static bool on_alias(struct ydoc *d, const yaml_event_t *ev)
{
	const char *name = (const char *)ev->data.alias.anchor;
	json_t *a = json_object_get(d->anchors, name), *node;
	struct yframe *f = wants_key(d);
	size_t nodes;
	int height;
	if (a == NULL)
		return yfail(d, "unknown anchor '%s' referenced", name);
	node = json_array_get(a, 0);
	nodes = (size_t)json_integer_value(json_array_get(a, 1));
	height = (int)json_integer_value(json_array_get(a, 2));
	if (f) {
		if (!json_is_string(node))
			return yfail(d,
			    "invalid map key: alias '%s' is "
			    "not a string",
			    name);
		f->key = json_incref(node);
		return true;
	}
	d->alias_nodes += nodes;
	if (d->alias_nodes > YAML_ALIAS_BUDGET)
		return yfail(d, "%s", "document contains excessive aliasing");
	if (d->depth + height > API_MAX_DEPTH)
		return yfail(d, "the document nests deeper than %s levels",
		    "100");
	node = json_deep_copy(node);
	if (node == NULL)
		return yfail(d, "%s", "out of memory");
	return add_value(d, node, nodes, height);
}

static bool on_event(struct ydoc *d, const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_DOCUMENT_START_EVENT:
		d->docs++;
		return true;
	case YAML_SCALAR_EVENT:
		return on_scalar(d, ev);
	case YAML_SEQUENCE_START_EVENT:
		return on_start(d, ev, false);
	case YAML_MAPPING_START_EVENT:
		return on_start(d, ev, true);
	case YAML_SEQUENCE_END_EVENT:
	case YAML_MAPPING_END_EVENT:
		return on_end(d);
	case YAML_ALIAS_EVENT:
		return on_alias(d, ev);
	default:
		return true;
	}
}

/* libyaml's problem, as go-yaml (a port of it) words it. */
static void parser_error(struct ydoc *d)
{
	const yaml_parser_t *p = &d->parser;
	const char *problem = p->problem ? p->problem : "unknown error";
	if (p->error == YAML_READER_ERROR)
		api_err(d->e, 400, "BadRequest",
		    "error converting YAML to "
		    "JSON: yaml: %s",
		    problem);
	else
		api_err(d->e, 400, "BadRequest",
		    "error converting YAML to "
		    "JSON: yaml: line %zu: %s",
		    p->problem_mark.line + 1, problem);
}

static void ydoc_free(struct ydoc *d)
{
	while (d->depth > 0) {
		struct yframe *f = &d->stack[--d->depth];
		json_decref(f->node);
		json_decref(f->key);
		free(f->anchor);
	}
	json_decref(d->anchors);
	yaml_parser_delete(&d->parser);
}

static bool run_parser(struct ydoc *d)
{
	yaml_event_t ev;
	for (;;) {
		if (!yaml_parser_parse(&d->parser, &ev)) {
			parser_error(d);
			return false;
		}
		bool ok = on_event(d, &ev);
		bool end = ev.type == YAML_STREAM_END_EVENT;
		yaml_event_delete(&ev);
		if (!ok)
			return false;
		if (end)
			return true;
	}
}

/* The root must be an object or an array, as every request body is. */
static json_t *check_root(struct ydoc *d, json_t *root)
{
	if (root && (json_is_object(root) || json_is_array(root)))
		return root;
	if (root == NULL || json_is_null(root))
		yfail(d, "%s", "the body holds no YAML document");
	else
		yfail(d, "%s", "the document must be a mapping, not a scalar");
	json_decref(root);
	return NULL;
}

json_t *api_yaml_decode(const char *data, size_t len, struct api_error *e)
{
	struct ydoc *d = calloc(1, sizeof *d);
	json_t *root = NULL;
	if (d == NULL || !yaml_parser_initialize(&d->parser)) {
		free(d);
		api_err(e, 500, "InternalError", "out of memory");
		return NULL;
	}
	d->e = e;
	d->anchors = json_object();
	yaml_parser_set_input_string(&d->parser, (const unsigned char *)data,
	    len);
	if (d->anchors == NULL)
		api_err(e, 500, "InternalError", "out of memory");
	else if (run_parser(d))
		root = check_root(d, d->root);
	else
		json_decref(d->root);
	ydoc_free(d);
	free(d);
	return root;
}
