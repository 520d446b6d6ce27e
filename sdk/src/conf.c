/* sdk/src/conf.c — configuration trees: YAML parsing, paths, --set,
 * strict scalar conversions and option tables (see kubus/conf.h).
 *
 * The tree is built from libyaml's event stream rather than its document
 * API because events carry the marks we need for every node and key, and
 * because anchors and aliases are easier to refuse there.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <yaml.h>

#include <kubus/conf.h>
#include <kubus/err.h>

/* Deep enough for any sane config, shallow enough for the C stack. */
#define CONF_MAX_DEPTH 64

/* Nodes changed by kb_conf_set() say so in messages instead of a line. */
#define CONF_SET_FILE "--set"

struct kb_conf {
	int type;               /* enum kb_conf_type */
	char *text;             /* KB_CONF_SCALAR */
	struct kb_conf **items; /* KB_CONF_MAP / KB_CONF_SEQ values */
	size_t len, cap;
	char *key; /* key in the parent map, else NULL */
	int key_line, key_col;
	char *file;    /* NULL when unknown */
	int line, col; /* 1-based; 0 when not from a file */
	char *where;   /* path from the root, "" for the root */
};

/* --- small helpers ------------------------------------------------------- */

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (!err || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

static char *str_printf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *str_printf(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (!s)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

static char *str_dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* "FILE:LINE:COL: ", "FILE: " or "" for messages. */
static void format_pos(char *buf, size_t len, const char *file, int line,
    int col)
{
	if (file && line > 0)
		snprintf(buf, len, "%s:%d:%d: ", file, line, col);
	else if (file)
		snprintf(buf, len, "%s: ", file);
	else
		buf[0] = '\0';
}

static bool is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* --- nodes --------------------------------------------------------------- */

static kb_conf *node_new(int type, const char *file, int line, int col,
    const char *where)
{
	kb_conf *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->type = type;
	n->line = line;
	n->col = col;
	n->file = str_dup_or_null(file);
	n->where = strdup(where ? where : "");
	if ((file && !n->file) || !n->where) {
		free(n->file);
		free(n->where);
		free(n);
		return NULL;
	}
	return n;
}

static void node_clear_value(kb_conf *n)
{
	for (size_t i = 0; i < n->len; i++)
		kb_conf_free(n->items[i]);
	free(n->items);
	free(n->text);
	n->items = NULL;
	n->len = n->cap = 0;
	n->text = NULL;
}

void kb_conf_free(kb_conf *n)
{
	if (!n)
		return;
	node_clear_value(n);
	free(n->key);
	free(n->file);
	free(n->where);
	free(n);
}

static int node_append(kb_conf *parent, kb_conf *child)
{
	if (parent->len == parent->cap) {
		size_t cap = parent->cap ? parent->cap * 2 : 4;
		kb_conf **items = realloc(parent->items, cap * sizeof(*items));

		if (!items)
			return KB_ENOMEM;
		parent->items = items;
		parent->cap = cap;
	}
	parent->items[parent->len++] = child;
	return KB_OK;
}

static kb_conf *map_find(const kb_conf *map, const char *key)
{
	for (size_t i = 0; i < map->len; i++)
		if (strcmp(map->items[i]->key, key) == 0)
			return map->items[i];
	return NULL;
}

/* The path of a map entry, with '.', '[' and '\' escaped so that
 * kb_conf_path() can follow it back. */
static char *where_key(const char *parent, const char *key)
{
	size_t plen = strlen(parent), klen = strlen(key);
	char *s = malloc(plen + 1 + 2 * klen + 1), *p;

	if (!s)
		return NULL;
	memcpy(s, parent, plen);
	p = s + plen;
	if (plen > 0)
		*p++ = '.';
	for (const char *k = key; *k; k++) {
		if (*k == '.' || *k == '[' || *k == '\\')
			*p++ = '\\';
		*p++ = *k;
	}
	*p = '\0';
	return s;
}

static char *where_index(const char *parent, size_t i)
{
	return str_printf("%s[%zu]", parent, i);
}

kb_conf *kb_conf_new_map(const char *file, const char *where)
{
	return node_new(KB_CONF_MAP, file, 0, 0, where);
}

/* --- reading a tree ------------------------------------------------------ */

int kb_conf_type(const kb_conf *n)
{
	return n ? n->type : KB_CONF_NULL;
}

const char *kb_conf_str(const kb_conf *n)
{
	return n && n->type == KB_CONF_SCALAR ? n->text : NULL;
}

size_t kb_conf_len(const kb_conf *n)
{
	if (!n || (n->type != KB_CONF_MAP && n->type != KB_CONF_SEQ))
		return 0;
	return n->len;
}

const kb_conf *kb_conf_get(const kb_conf *map, const char *key)
{
	if (!map || map->type != KB_CONF_MAP || !key)
		return NULL;
	return map_find(map, key);
}

const kb_conf *kb_conf_at(const kb_conf *n, size_t i)
{
	return i < kb_conf_len(n) ? n->items[i] : NULL;
}

const char *kb_conf_key_at(const kb_conf *map, size_t i)
{
	if (!map || map->type != KB_CONF_MAP || i >= map->len)
		return NULL;
	return map->items[i]->key;
}

const char *kb_conf_file(const kb_conf *n)
{
	return n ? n->file : NULL;
}

int kb_conf_line(const kb_conf *n)
{
	return n ? n->line : 0;
}

int kb_conf_col(const kb_conf *n)
{
	return n ? n->col : 0;
}

const char *kb_conf_where(const kb_conf *n)
{
	return n ? n->where : "";
}

/* --- paths --------------------------------------------------------------- */

struct path_iter {
	const char *p;
	char *key; /* room for the longest key: strlen(path) + 1 */
	bool first;
	bool is_index;
	size_t index;
};

static int path_begin(struct path_iter *it, const char *path)
{
	it->p = path;
	it->first = true;
	it->key = malloc(strlen(path) + 1);
	return it->key ? KB_OK : KB_ENOMEM;
}

static bool path_parse_index(struct path_iter *it)
{
	const char *p = it->p + 1;
	size_t v = 0;

	if (!is_digit(*p))
		return false;
	for (; is_digit(*p); p++) {
		size_t d = (size_t)(*p - '0');

		if (v > (SIZE_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (*p != ']')
		return false;
	it->p = p + 1;
	it->is_index = true;
	it->index = v;
	return true;
}

static bool path_parse_key(struct path_iter *it)
{
	const char *p = it->p;
	size_t n = 0;

	if (!it->first) {
		if (*p != '.')
			return false;
		p++;
	}
	while (*p && *p != '.' && *p != '[') {
		if (*p == '\\' && p[1])
			p++;
		it->key[n++] = *p++;
	}
	if (n == 0)
		return false;
	it->key[n] = '\0';
	it->p = p;
	it->is_index = false;
	return true;
}

/* 1 with the next step in it, 0 at the end, -1 when the path is malformed. */
static int path_next(struct path_iter *it)
{
	bool ok;

	if (*it->p == '\0')
		return 0;
	ok = *it->p == '[' ? path_parse_index(it) : path_parse_key(it);
	it->first = false;
	return ok ? 1 : -1;
}

/* [i] indexes sequences only, though kb_conf_at() also walks maps. */
static const kb_conf *seq_at(const kb_conf *n, size_t i)
{
	return n->type == KB_CONF_SEQ ? kb_conf_at(n, i) : NULL;
}

const kb_conf *kb_conf_path(const kb_conf *n, const char *path)
{
	struct path_iter it;
	int step;

	if (!n || !path || path_begin(&it, path) != KB_OK)
		return NULL;
	while (n && (step = path_next(&it)) != 0) {
		if (step < 0)
			n = NULL;
		else if (it.is_index)
			n = seq_at(n, it.index);
		else
			n = kb_conf_get(n, it.key);
	}
	free(it.key);
	return n;
}

/* --- changing a tree ----------------------------------------------------- */

static const char *type_name(int type)
{
	switch (type) {
	case KB_CONF_SCALAR:
		return "a scalar";
	case KB_CONF_MAP:
		return "a map";
	case KB_CONF_SEQ:
		return "a sequence";
	default:
		return "null";
	}
}

static const char *where_or_root(const kb_conf *n)
{
	return n->where[0] ? n->where : "the top level";
}

static kb_conf *set_add_key(kb_conf *map, const char *key)
{
	char *where = where_key(map->where, key);
	kb_conf *child =
	    where ? node_new(KB_CONF_NULL, CONF_SET_FILE, 0, 0, where) : NULL;

	free(where);
	if (!child)
		return NULL;
	child->key = strdup(key);
	if (!child->key || node_append(map, child) != KB_OK) {
		kb_conf_free(child);
		return NULL;
	}
	return child;
}

/* One step of kb_conf_set(). In a dry run nothing changes and *n becomes
 * NULL once the path leaves the tree; later key steps would create maps. */
static int set_step(kb_conf **n, const struct path_iter *it, bool dry,
    const char *path, char *err, size_t errlen)
{
	kb_conf *cur = *n;

	if (!cur && it->is_index) {
		set_err(err, errlen, "cannot set `%s`: no sequence to index",
		    path);
		return KB_EINVAL;
	}
	if (!cur)
		return KB_OK;
	if (it->is_index) {
		const char *why = ", not a sequence";

		if (cur->type == KB_CONF_SEQ)
			why = " too short";

		if (cur->type != KB_CONF_SEQ || it->index >= cur->len) {
			set_err(err, errlen, "cannot set `%s`: %s is %s%s",
			    path, where_or_root(cur), type_name(cur->type),
			    why);
			return KB_EINVAL;
		}
		*n = cur->items[it->index];
		return KB_OK;
	}
	if (cur->type != KB_CONF_MAP && cur->type != KB_CONF_NULL) {
		set_err(err, errlen, "cannot set `%s`: %s is %s, not a map",
		    path, where_or_root(cur), type_name(cur->type));
		return KB_EINVAL;
	}
	*n = cur->type == KB_CONF_MAP ? map_find(cur, it->key) : NULL;
	if (dry || *n)
		return KB_OK;
	/* A null value (`config:` left empty) becomes the map it will hold. */
	cur->type = KB_CONF_MAP;
	*n = set_add_key(cur, it->key);
	if (!*n) {
		set_err(err, errlen, "cannot set `%s`: out of memory", path);
		return KB_ENOMEM;
	}
	return KB_OK;
}

static int set_walk(kb_conf *root, const char *path, bool dry, kb_conf **out,
    char *err, size_t errlen)
{
	struct path_iter it;
	kb_conf *n = root;
	int step, rc = KB_OK;

	if (path_begin(&it, path) != KB_OK) {
		set_err(err, errlen, "cannot set `%s`: out of memory", path);
		return KB_ENOMEM;
	}
	while (rc == KB_OK && (step = path_next(&it)) != 0) {
		if (step < 0) {
			set_err(err, errlen, "cannot set `%s`: malformed path",
			    path);
			rc = KB_EINVAL;
		} else {
			rc = set_step(&n, &it, dry, path, err, errlen);
		}
	}
	free(it.key);
	*out = n;
	return rc;
}

static int set_value(kb_conf *n, const char *value, const char *path, char *err,
    size_t errlen)
{
	char *text = NULL, *file = strdup(CONF_SET_FILE);

	if (value)
		text = strdup(value);
	if (!file || (value && !text)) {
		free(file);
		free(text);
		set_err(err, errlen, "cannot set `%s`: out of memory", path);
		return KB_ENOMEM;
	}
	node_clear_value(n);
	n->type = value ? KB_CONF_SCALAR : KB_CONF_NULL;
	n->text = text;
	free(n->file);
	n->file = file;
	n->line = n->col = n->key_line = n->key_col = 0;
	return KB_OK;
}

int kb_conf_set(kb_conf *root, const char *path, const char *value, char *err,
    size_t errlen)
{
	kb_conf *n;
	int rc;

	if (!root || !path || !*path) {
		set_err(err, errlen, "cannot set an empty path");
		return KB_EINVAL;
	}
	/* Check the whole path first so that a bad one changes nothing. */
	rc = set_walk(root, path, true, &n, err, errlen);
	if (rc != KB_OK)
		return rc;
	if (n && (n->type == KB_CONF_MAP || n->type == KB_CONF_SEQ)) {
		set_err(err, errlen, "cannot set `%s`: it is %s, not a scalar",
		    path, type_name(n->type));
		return KB_EINVAL;
	}
	rc = set_walk(root, path, false, &n, err, errlen);
	if (rc != KB_OK)
		return rc;
	return set_value(n, value, path, err, errlen);
}

/* --- parsing YAML -------------------------------------------------------- */

struct builder {
	yaml_parser_t parser;
	const char *text;
	size_t len;
	const char *file;
	char *err;
	size_t errlen;
	int depth;
};

static void build_err(struct builder *b, yaml_mark_t mark, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void build_err(struct builder *b, yaml_mark_t mark, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	set_err(b->err, b->errlen, "%s:%zu:%zu: %s", b->file, mark.line + 1,
	    mark.column + 1, msg);
}

/* The reader reports a byte offset, not a mark: count lines ourselves. */
static yaml_mark_t mark_at_offset(const struct builder *b, size_t off)
{
	yaml_mark_t m = { 0 };

	for (size_t i = 0; i < off && i < b->len; i++) {
		if (b->text[i] == '\n') {
			m.line++;
			m.column = 0;
		} else {
			m.column++;
		}
	}
	return m;
}

static void parser_err(struct builder *b)
{
	yaml_parser_t *p = &b->parser;
	const char *problem = p->problem ? p->problem : "malformed YAML";

	if (p->error == YAML_MEMORY_ERROR) {
		set_err(b->err, b->errlen, "%s: out of memory", b->file);
	} else if (p->error == YAML_READER_ERROR) {
		build_err(b, mark_at_offset(b, p->problem_offset), "%s",
		    problem);
	} else if (p->context) {
		build_err(b, p->problem_mark, "%s (%s at line %zu)", problem,
		    p->context, p->context_mark.line + 1);
	} else {
		build_err(b, p->problem_mark, "%s", problem);
	}
}

static int next_event(struct builder *b, yaml_event_t *ev)
{
	if (yaml_parser_parse(&b->parser, ev))
		return KB_OK;
	parser_err(b);
	return b->parser.error == YAML_MEMORY_ERROR ? KB_ENOMEM : KB_EINVAL;
}

static bool is_null_scalar(const yaml_event_t *ev)
{
	static const char *const nulls[] = { "", "~", "null", "Null", "NULL" };
	const char *v = (const char *)ev->data.scalar.value;

	if (ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
		if (strcmp(v, nulls[i]) == 0)
			return true;
	return false;
}

static const yaml_char_t *event_anchor(const yaml_event_t *ev)
{
	switch (ev->type) {
	case YAML_SCALAR_EVENT:
		return ev->data.scalar.anchor;
	case YAML_SEQUENCE_START_EVENT:
		return ev->data.sequence_start.anchor;
	case YAML_MAPPING_START_EVENT:
		return ev->data.mapping_start.anchor;
	default:
		return NULL;
	}
}

/* Aliases would make a tree a graph, and copying them invites "billion
 * laughs"; a config file gains little from them, so refuse them. */
static int check_no_anchor(struct builder *b, const yaml_event_t *ev)
{
	if (ev->type == YAML_ALIAS_EVENT) {
		build_err(b, ev->start_mark,
		    "aliases (*%s) are not supported in kubus configs",
		    (const char *)ev->data.alias.anchor);
		return KB_EINVAL;
	}
	if (event_anchor(ev)) {
		build_err(b, ev->start_mark,
		    "anchors (&%s) are not supported in kubus configs",
		    (const char *)event_anchor(ev));
		return KB_EINVAL;
	}
	return KB_OK;
}

static int build_node(struct builder *b, yaml_event_t *ev, const char *where,
    kb_conf **out);

static int build_seq(struct builder *b, kb_conf *seq)
{
	yaml_event_t ev;
	kb_conf *child;
	char *where;
	int rc;

	for (;;) {
		rc = next_event(b, &ev);
		if (rc != KB_OK)
			return rc;
		if (ev.type == YAML_SEQUENCE_END_EVENT) {
			yaml_event_delete(&ev);
			return KB_OK;
		}
		where = where_index(seq->where, seq->len);
		if (!where) {
			yaml_event_delete(&ev);
			return KB_ENOMEM;
		}
		rc = build_node(b, &ev, where, &child);
		free(where);
		if (rc == KB_OK && node_append(seq, child) != KB_OK) {
			kb_conf_free(child);
			rc = KB_ENOMEM;
		}
		if (rc != KB_OK)
			return rc;
	}
}

/* Read a map key into *key; KB_OK with *key NULL at the end of the map. */
static int build_key(struct builder *b, const kb_conf *map, char **key,
    yaml_mark_t *mark)
{
	yaml_event_t ev;
	int rc;

	*key = NULL;
	rc = next_event(b, &ev);
	if (rc != KB_OK)
		return rc;
	*mark = ev.start_mark;
	if (ev.type == YAML_MAPPING_END_EVENT) {
		rc = KB_OK;
	} else if ((rc = check_no_anchor(b, &ev)) != KB_OK) {
		;
	} else if (ev.type != YAML_SCALAR_EVENT) {
		build_err(b, ev.start_mark, "keys in %s must be scalars",
		    where_or_root(map));
		rc = KB_EINVAL;
	} else if (map_find(map, (const char *)ev.data.scalar.value)) {
		build_err(b, ev.start_mark, "duplicate key `%s` in %s",
		    (const char *)ev.data.scalar.value, where_or_root(map));
		rc = KB_EINVAL;
	} else {
		*key = strdup((const char *)ev.data.scalar.value);
		rc = *key ? KB_OK : KB_ENOMEM;
	}
	yaml_event_delete(&ev);
	return rc;
}

static int build_map_entry(struct builder *b, kb_conf *map, char *key,
    yaml_mark_t mark)
{
	yaml_event_t ev;
	kb_conf *child;
	char *where;
	int rc;

	rc = next_event(b, &ev);
	if (rc != KB_OK)
		return rc;
	where = where_key(map->where, key);
	if (!where) {
		yaml_event_delete(&ev);
		return KB_ENOMEM;
	}
	rc = build_node(b, &ev, where, &child);
	free(where);
	if (rc != KB_OK)
		return rc;
	child->key = key;
	child->key_line = (int)mark.line + 1;
	child->key_col = (int)mark.column + 1;
	if (node_append(map, child) != KB_OK) {
		child->key = NULL; /* still the caller's */
		kb_conf_free(child);
		return KB_ENOMEM;
	}
	return KB_OK;
}

static int build_map(struct builder *b, kb_conf *map)
{
	yaml_mark_t mark;
	char *key;
	int rc;

	for (;;) {
		rc = build_key(b, map, &key, &mark);
		if (rc != KB_OK || !key)
			return rc;
		rc = build_map_entry(b, map, key, mark);
		if (rc != KB_OK) {
			free(key);
			return rc;
		}
	}
}

static int build_scalar(const yaml_event_t *ev, kb_conf *n)
{
	if (is_null_scalar(ev))
		return KB_OK;
	n->type = KB_CONF_SCALAR;
	n->text = strdup((const char *)ev->data.scalar.value);
	return n->text ? KB_OK : KB_ENOMEM;
}

static int build_children(struct builder *b, const yaml_event_t *ev, kb_conf *n)
{
	int rc;

	if (++b->depth > CONF_MAX_DEPTH) {
		build_err(b, ev->start_mark, "nested deeper than %d levels",
		    CONF_MAX_DEPTH);
		return KB_EINVAL;
	}
	if (ev->type == YAML_SEQUENCE_START_EVENT) {
		n->type = KB_CONF_SEQ;
		rc = build_seq(b, n);
	} else {
		n->type = KB_CONF_MAP;
		rc = build_map(b, n);
	}
	b->depth--;
	return rc;
}

/* Build the node that starts with *ev, which this consumes. */
static int build_node(struct builder *b, yaml_event_t *ev, const char *where,
    kb_conf **out)
{
	kb_conf *n = NULL;
	int rc;

	*out = NULL;
	rc = check_no_anchor(b, ev);
	if (rc == KB_OK) {
		yaml_mark_t m = ev->start_mark;

		n = node_new(KB_CONF_NULL, b->file, (int)m.line + 1,
		    (int)m.column + 1, where);
		rc = n ? KB_OK : KB_ENOMEM;
	}
	if (rc == KB_OK && ev->type == YAML_SCALAR_EVENT)
		rc = build_scalar(ev, n);
	else if (rc == KB_OK)
		rc = build_children(b, ev, n);
	yaml_event_delete(ev);
	if (rc == KB_ENOMEM)
		set_err(b->err, b->errlen, "%s: out of memory", b->file);
	if (rc != KB_OK) {
		kb_conf_free(n);
		return rc;
	}
	*out = n;
	return KB_OK;
}

/* Expect an event of `type` that carries nothing we keep. */
static int skip_event(struct builder *b, yaml_event_type_t type)
{
	yaml_event_t ev;
	int rc = next_event(b, &ev);

	if (rc != KB_OK)
		return rc;
	if (ev.type != type) {
		if (type == YAML_STREAM_END_EVENT)
			build_err(b, ev.start_mark,
			    "more than one YAML document in one file");
		else
			build_err(b, ev.start_mark, "unexpected YAML event");
		rc = KB_EINVAL;
	}
	yaml_event_delete(&ev);
	return rc;
}

static kb_conf *build_document(struct builder *b)
{
	yaml_event_t ev;
	kb_conf *root = NULL;

	if (skip_event(b, YAML_STREAM_START_EVENT) != KB_OK ||
	    next_event(b, &ev) != KB_OK)
		return NULL;
	if (ev.type == YAML_STREAM_END_EVENT) {
		/* An empty file is a config with nothing in it. */
		yaml_event_delete(&ev);
		return node_new(KB_CONF_NULL, b->file, 1, 1, "");
	}
	yaml_event_delete(&ev); /* DOCUMENT-START */
	if (next_event(b, &ev) != KB_OK ||
	    build_node(b, &ev, "", &root) != KB_OK)
		return NULL;
	if (skip_event(b, YAML_DOCUMENT_END_EVENT) != KB_OK ||
	    skip_event(b, YAML_STREAM_END_EVENT) != KB_OK) {
		kb_conf_free(root);
		return NULL;
	}
	return root;
}

kb_conf *kb_conf_parse_yaml(const char *text, size_t len, const char *file,
    char *err, size_t errlen)
{
	struct builder b = {
		.text = text,
		.len = len,
		.file = file ? file : "<config>",
		.err = err,
		.errlen = errlen,
	};
	kb_conf *root;

	if (!text && len > 0) {
		set_err(err, errlen, "%s: no text to parse", b.file);
		return NULL;
	}
	if (!yaml_parser_initialize(&b.parser)) {
		set_err(err, errlen, "%s: out of memory", b.file);
		return NULL;
	}
	yaml_parser_set_input_string(&b.parser,
	    (const unsigned char *)(text ? text : ""), len);
	root = build_document(&b);
	yaml_parser_delete(&b.parser);
	if (root && err && errlen)
		err[0] = '\0';
	return root;
}

static char *read_all(FILE *f, size_t *len)
{
	size_t cap = 4096, n = 0, got;
	char *buf = malloc(cap), *nbuf;

	while (buf && (got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n < cap)
			continue;
		nbuf = realloc(buf, cap * 2);
		if (!nbuf) {
			free(buf);
			return NULL;
		}
		buf = nbuf;
		cap *= 2;
	}
	if (buf && ferror(f)) {
		free(buf);
		return NULL;
	}
	*len = n;
	return buf;
}

kb_conf *kb_conf_load_file(const char *path, char *err, size_t errlen)
{
	FILE *f;
	char *text;
	size_t len = 0;
	kb_conf *root;

	if (!path) {
		set_err(err, errlen, "no config file named");
		return NULL;
	}
	f = fopen(path, "rb");
	if (!f) {
		set_err(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	errno = 0;
	text = read_all(f, &len);
	if (!text)
		set_err(err, errlen, "%s: %s", path,
		    errno ? strerror(errno) : "read failed");
	fclose(f);
	if (!text)
		return NULL;
	root = kb_conf_parse_yaml(text, len, path, err, errlen);
	free(text);
	return root;
}

/* --- scalar conversions -------------------------------------------------- */

int kb_conf_to_bool(const char *s, bool *out)
{
	static const char *const yes[] = { "true", "yes", "on" };
	static const char *const no[] = { "false", "no", "off" };

	if (!s)
		return KB_EINVAL;
	for (size_t i = 0; i < 3; i++) {
		if (strcasecmp(s, yes[i]) == 0) {
			*out = true;
			return KB_OK;
		}
		if (strcasecmp(s, no[i]) == 0) {
			*out = false;
			return KB_OK;
		}
	}
	return KB_EINVAL;
}

int kb_conf_to_int(const char *s, int64_t *out)
{
	uint64_t v = 0, lim;
	bool neg = false;

	if (!s)
		return KB_EINVAL;
	if (*s == '+' || *s == '-')
		neg = *s++ == '-';
	if (!is_digit(*s))
		return KB_EINVAL;
	lim = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
	for (; is_digit(*s); s++) {
		uint64_t d = (uint64_t)(*s - '0');

		if (v > (lim - d) / 10)
			return KB_EINVAL;
		v = v * 10 + d;
	}
	if (*s)
		return KB_EINVAL;
	if (!neg)
		*out = (int64_t)v;
	else
		*out = v == lim ? INT64_MIN : -(int64_t)v;
	return KB_OK;
}

int kb_conf_to_double(const char *s, double *out)
{
	char *end;
	double v;

	/* strtod would also take "inf", "nan", hex and leading blanks. */
	if (!s || !*s || strspn(s, "0123456789+-.eE") != strlen(s))
		return KB_EINVAL;
	errno = 0;
	v = strtod(s, &end);
	if (end == s || *end || !isfinite(v))
		return KB_EINVAL;
	if (errno == ERANGE && (v == HUGE_VAL || v == -HUGE_VAL))
		return KB_EINVAL;
	*out = v;
	return KB_OK;
}

/* A decimal "12" or "1.5": the integer part, and the fraction as an
 * integer over 10^nfrac with trailing zeros dropped, so that scaling by a
 * unit stays exact. */
struct decimal {
	uint64_t ip, frac;
	int nfrac;
};

/* 10^18 is the largest power of ten in a uint64_t. */
#define DECIMAL_MAX_FRAC 18

static const char *parse_decimal(const char *s, struct decimal *d)
{
	int zeros = 0;

	*d = (struct decimal){ 0 };
	if (!is_digit(*s))
		return NULL;
	for (; is_digit(*s); s++)
		if (__builtin_mul_overflow(d->ip, 10, &d->ip) ||
		    __builtin_add_overflow(d->ip, (uint64_t)(*s - '0'), &d->ip))
			return NULL;
	if (*s != '.')
		return s;
	if (!is_digit(*++s))
		return NULL;
	for (; is_digit(*s); s++) {
		if (*s == '0') {
			zeros++;
			continue;
		}
		if (d->nfrac + zeros + 1 > DECIMAL_MAX_FRAC)
			return NULL;
		for (int i = 0; i <= zeros; i++)
			d->frac *= 10;
		d->frac += (uint64_t)(*s - '0');
		d->nfrac += zeros + 1;
		zeros = 0;
	}
	return s;
}

static uint64_t gcd(uint64_t a, uint64_t b)
{
	while (b) {
		uint64_t t = a % b;

		a = b;
		b = t;
	}
	return a;
}

/* d * unit as a whole number that fits an int64_t, or KB_EINVAL. */
static int decimal_scale(const struct decimal *d, uint64_t unit, uint64_t *out)
{
	uint64_t whole, part = 0, num = d->frac;

	if (__builtin_mul_overflow(d->ip, unit, &whole))
		return KB_EINVAL;
	if (num) {
		uint64_t den = 1, g;

		for (int i = 0; i < d->nfrac; i++)
			den *= 10;
		g = gcd(num, den);
		num /= g;
		den /= g;
		g = gcd(unit, den);
		den /= g;
		if (den != 1)
			return KB_EINVAL; /* not a whole number of units */
		if (__builtin_mul_overflow(num, unit / g, &part))
			return KB_EINVAL;
	}
	if (__builtin_add_overflow(whole, part, out) || *out > INT64_MAX)
		return KB_EINVAL;
	return KB_OK;
}

struct unit {
	const char *name;
	uint64_t mult;
};

#define KB_ 1000ULL
#define KIB_ 1024ULL

static const struct unit size_units[] = {
	{ "", 1 },
	{ "B", 1 },
	{ "k", KB_ },
	{ "K", KB_ },
	{ "kB", KB_ },
	{ "KB", KB_ },
	{ "Ki", KIB_ },
	{ "KiB", KIB_ },
	{ "M", KB_ *KB_ },
	{ "MB", KB_ *KB_ },
	{ "Mi", KIB_ *KIB_ },
	{ "MiB", KIB_ *KIB_ },
	{ "G", KB_ *KB_ *KB_ },
	{ "GB", KB_ *KB_ *KB_ },
	{ "Gi", KIB_ *KIB_ *KIB_ },
	{ "GiB", KIB_ *KIB_ *KIB_ },
	{ "T", KB_ *KB_ *KB_ *KB_ },
	{ "TB", KB_ *KB_ *KB_ *KB_ },
	{ "Ti", KIB_ *KIB_ *KIB_ *KIB_ },
	{ "TiB", KIB_ *KIB_ *KIB_ *KIB_ },
	{ "P", KB_ *KB_ *KB_ *KB_ *KB_ },
	{ "PB", KB_ *KB_ *KB_ *KB_ *KB_ },
	{ "Pi", KIB_ *KIB_ *KIB_ *KIB_ *KIB_ },
	{ "PiB", KIB_ *KIB_ *KIB_ *KIB_ *KIB_ },
	{ "E", KB_ *KB_ *KB_ *KB_ *KB_ *KB_ },
	{ "EB", KB_ *KB_ *KB_ *KB_ *KB_ *KB_ },
	{ "Ei", KIB_ *KIB_ *KIB_ *KIB_ *KIB_ *KIB_ },
	{ "EiB", KIB_ *KIB_ *KIB_ *KIB_ *KIB_ *KIB_ },
};

int kb_conf_to_size(const char *s, int64_t *out)
{
	struct decimal d;
	uint64_t v;

	if (!s || !(s = parse_decimal(s, &d)))
		return KB_EINVAL;
	for (size_t i = 0; i < sizeof(size_units) / sizeof(*size_units); i++) {
		if (strcmp(s, size_units[i].name) != 0)
			continue;
		if (decimal_scale(&d, size_units[i].mult, &v) != KB_OK)
			return KB_EINVAL;
		*out = (int64_t)v;
		return KB_OK;
	}
	return KB_EINVAL;
}

/* Longest first, so that "ms" is not read as "m" followed by junk. */
static const struct unit duration_units[] = {
	{ "ms", 1 },
	{ "s", 1000 },
	{ "m", 60 * 1000ULL },
	{ "h", 3600 * 1000ULL },
};

static const char *duration_unit(const char *s, uint64_t *mult)
{
	for (size_t i = 0; i < sizeof(duration_units) / sizeof(*duration_units);
	     i++) {
		size_t n = strlen(duration_units[i].name);

		if (strncmp(s, duration_units[i].name, n) == 0) {
			*mult = duration_units[i].mult;
			return s + n;
		}
	}
	return NULL;
}

int kb_conf_to_duration_ms(const char *s, int64_t *out)
{
	uint64_t total = 0, part, mult;
	struct decimal d;

	if (!s || !*s)
		return KB_EINVAL;
	/* A bare number has no unit to guess, except zero. */
	if (strcmp(s, "0") == 0) {
		*out = 0;
		return KB_OK;
	}
	while (*s) {
		s = parse_decimal(s, &d);
		if (!s || !(s = duration_unit(s, &mult)))
			return KB_EINVAL;
		if (decimal_scale(&d, mult, &part) != KB_OK ||
		    __builtin_add_overflow(total, part, &total) ||
		    total > INT64_MAX)
			return KB_EINVAL;
	}
	*out = (int64_t)total;
	return KB_OK;
}

/* --- option tables ------------------------------------------------------- */

struct opts_ctx {
	const kb_conf *node;
	const char *owner;
	char *err;
	size_t errlen;
};

/* What a value of each option type must be, for messages. */
static const char *opt_expect(int type)
{
	switch (type) {
	case KB_OPT_STR_:
		return "a string";
	case KB_OPT_INT_:
		return "an integer";
	case KB_OPT_BOOL_:
		return "a boolean";
	case KB_OPT_DOUBLE_:
		return "a number";
	case KB_OPT_SIZE_:
		return "a size (like 512, 64Mi or 1.5G)";
	case KB_OPT_DURATION_:
		return "a duration (like 250ms, 10s or 1m30s)";
	case KB_OPT_STRLIST_:
		return "a string or a list of strings";
	default:
		return "a value";
	}
}

static const char *opt_unit(int type)
{
	switch (type) {
	case KB_OPT_SIZE_:
		return " bytes";
	case KB_OPT_DURATION_:
		return " ms";
	default:
		return "";
	}
}

/* "in plugins[2].config (store-lmdb)", or for a missing node "in
 * store-lmdb config". */
static void opts_scope(const struct opts_ctx *c, char *buf, size_t len)
{
	const char *owner = c->owner;

	if (!c->node)
		snprintf(buf, len, "in %s%sconfig", owner ? owner : "",
		    owner ? " " : "the ");
	else
		snprintf(buf, len, "in %s%s%s%s", where_or_root(c->node),
		    owner ? " (" : "", owner ? owner : "", owner ? ")" : "");
}

static void opts_err(const struct opts_ctx *c, const char *file, int line,
    int col, const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void opts_err(const struct opts_ctx *c, const char *file, int line,
    int col, const char *fmt, ...)
{
	char pos[256], msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	format_pos(pos, sizeof(pos), file, line, col);
	set_err(c->err, c->errlen, "%s%s", pos, msg);
}

static void *opt_field(const struct kb_opt *o, void *out)
{
	return (char *)out + o->offset;
}

static size_t opt_field_size(int type)
{
	switch (type) {
	case KB_OPT_STR_:
		return sizeof(char *);
	case KB_OPT_INT_:
	case KB_OPT_SIZE_:
	case KB_OPT_DURATION_:
		return sizeof(int64_t);
	case KB_OPT_BOOL_:
		return sizeof(bool);
	case KB_OPT_DOUBLE_:
		return sizeof(double);
	case KB_OPT_STRLIST_:
		return sizeof(char **);
	case KB_OPT_NODE_:
		return sizeof(const kb_conf *);
	default:
		return 0;
	}
}

static void strlist_free(char **list)
{
	if (!list)
		return;
	for (char **p = list; *p; p++)
		free(*p);
	free(list);
}

void kb_conf_opts_free(const struct kb_opt *opts, void *out)
{
	if (!opts || !out)
		return;
	for (const struct kb_opt *o = opts; o->key; o++) {
		void *f = opt_field(o, out);

		if (o->type == KB_OPT_STR_) {
			free(*(char **)f);
			*(char **)f = NULL;
		} else if (o->type == KB_OPT_STRLIST_) {
			strlist_free(*(char ***)f);
			*(char ***)f = NULL;
		}
	}
}

/* Convert scalar text into the option's field. */
static int opt_from_text(const struct kb_opt *o, const char *s, void *f)
{
	switch (o->type) {
	case KB_OPT_STR_:
		*(char **)f = strdup(s);
		return *(char **)f ? KB_OK : KB_ENOMEM;
	case KB_OPT_INT_:
		return kb_conf_to_int(s, f);
	case KB_OPT_BOOL_:
		return kb_conf_to_bool(s, f);
	case KB_OPT_DOUBLE_:
		return kb_conf_to_double(s, f);
	case KB_OPT_SIZE_:
		return kb_conf_to_size(s, f);
	case KB_OPT_DURATION_:
		return kb_conf_to_duration_ms(s, f);
	case KB_OPT_STRLIST_:
		*(char ***)f = calloc(2, sizeof(char *));
		if (!*(char ***)f)
			return KB_ENOMEM;
		(*(char ***)f)[0] = strdup(s);
		return (*(char ***)f)[0] ? KB_OK : KB_ENOMEM;
	default:
		return KB_EINVAL;
	}
}

static bool opt_has_bounds(const struct kb_opt *o)
{
	return o->min < o->max &&
	    (o->type == KB_OPT_INT_ || o->type == KB_OPT_SIZE_ ||
		o->type == KB_OPT_DURATION_);
}

static bool opt_in_bounds(const struct kb_opt *o, const void *f)
{
	/* Only bounded options hold an int64_t: a bool field must not be
	 * read as one. */
	if (!opt_has_bounds(o))
		return true;
	int64_t v = *(const int64_t *)f;

	return v >= o->min && v <= o->max;
}

static int opt_from_seq(const struct opts_ctx *c, const struct kb_opt *o,
    const kb_conf *v, void *f)
{
	char **list, scope[512];

	for (size_t i = 0; i < v->len; i++) {
		const kb_conf *item = v->items[i];

		if (item->type == KB_CONF_SCALAR)
			continue;
		opts_scope(c, scope, sizeof(scope));
		opts_err(c, item->file, item->line, item->col,
		    "`%s` %s must be a list of strings, got %s at %s", o->key,
		    scope, type_name(item->type), item->where);
		return KB_EINVAL;
	}
	list = calloc(v->len + 1, sizeof(*list));
	if (!list)
		return KB_ENOMEM;
	*(char ***)f = list;
	for (size_t i = 0; i < v->len; i++)
		if (!(list[i] = strdup(v->items[i]->text)))
			return KB_ENOMEM;
	return KB_OK;
}

static int opt_from_node(const struct opts_ctx *c, const struct kb_opt *o,
    const kb_conf *v, void *f)
{
	char scope[512];
	int rc;

	if (o->type == KB_OPT_NODE_) {
		*(const kb_conf **)f = v;
		return KB_OK;
	}
	if (o->type == KB_OPT_STRLIST_ && v->type == KB_CONF_SEQ)
		return opt_from_seq(c, o, v, f);
	opts_scope(c, scope, sizeof(scope));
	if (v->type != KB_CONF_SCALAR) {
		opts_err(c, v->file, v->line, v->col,
		    "`%s` %s must be %s, got %s", o->key, scope,
		    opt_expect(o->type), type_name(v->type));
		return KB_EINVAL;
	}
	rc = opt_from_text(o, v->text, f);
	if (rc == KB_EINVAL) {
		opts_err(c, v->file, v->line, v->col,
		    "`%s` %s must be %s, got `%s`", o->key, scope,
		    opt_expect(o->type), v->text);
	} else if (rc == KB_OK && !opt_in_bounds(o, f)) {
		opts_err(c, v->file, v->line, v->col,
		    "`%s` %s must be between %lld and %lld%s, got `%s`", o->key,
		    scope, (long long)o->min, (long long)o->max,
		    opt_unit(o->type), v->text);
		rc = KB_EINVAL;
	}
	return rc;
}

/* A default that does not convert is the plugin's bug, not the user's. */
static int opt_from_default(const struct opts_ctx *c, const struct kb_opt *o,
    void *f)
{
	int rc = opt_from_text(o, o->def, f);

	if (rc == KB_OK && !opt_in_bounds(o, f))
		rc = KB_EINVAL;
	if (rc == KB_EINVAL)
		set_err(c->err, c->errlen,
		    "bad default `%s` for `%s`%s%s%s: must be %s", o->def,
		    o->key, c->owner ? " (" : "", c->owner ? c->owner : "",
		    c->owner ? ")" : "", opt_expect(o->type));
	return rc;
}

static int opt_missing(const struct opts_ctx *c, const struct kb_opt *o,
    const kb_conf *v)
{
	char scope[512];

	opts_scope(c, scope, sizeof(scope));
	if (v)
		opts_err(c, v->file, v->line, v->col, "`%s` %s needs a value",
		    o->key, scope);
	else if (c->node)
		opts_err(c, c->node->file, c->node->line, c->node->col,
		    "missing required key `%s` %s", o->key, scope);
	else
		set_err(c->err, c->errlen, "missing required key `%s` %s",
		    o->key, scope);
	return KB_EINVAL;
}

static int opt_fill(const struct opts_ctx *c, const struct kb_opt *o, void *out)
{
	const kb_conf *v = kb_conf_get(c->node, o->key);
	void *f = opt_field(o, out);

	if (v && (v->type != KB_CONF_NULL || o->type == KB_OPT_NODE_))
		return opt_from_node(c, o, v, f);
	/* `key:` with nothing after it counts as not given. */
	if (o->def)
		return opt_from_default(c, o, f);
	if (o->optional)
		return KB_OK;
	return opt_missing(c, o, v);
}

static const struct kb_opt *opt_find(const struct kb_opt *opts, const char *key)
{
	for (const struct kb_opt *o = opts; o->key; o++)
		if (strcmp(o->key, key) == 0)
			return o;
	return NULL;
}

static int opts_check_keys(const struct opts_ctx *c, const struct kb_opt *opts)
{
	char scope[512];
	size_t n = kb_conf_len(c->node);

	for (size_t i = 0; i < n && c->node->type == KB_CONF_MAP; i++) {
		const kb_conf *v = c->node->items[i];

		if (opt_find(opts, v->key))
			continue;
		opts_scope(c, scope, sizeof(scope));
		opts_err(c, v->file, v->key_line, v->key_col,
		    "unknown key `%s` %s", v->key, scope);
		return KB_EINVAL;
	}
	return KB_OK;
}

static int opts_check_node(const struct opts_ctx *c)
{
	const kb_conf *n = c->node;
	char scope[512];

	if (!n || n->type == KB_CONF_MAP || n->type == KB_CONF_NULL)
		return KB_OK;
	opts_scope(c, scope, sizeof(scope));
	opts_err(c, n->file, n->line, n->col,
	    "options %s must be a map, got %s", scope, type_name(n->type));
	return KB_EINVAL;
}

int kb_conf_opts(const kb_conf *node, const struct kb_opt *opts, void *out,
    const char *owner, char *err, size_t errlen)
{
	const struct opts_ctx c = {
		.node = node,
		.owner = owner,
		.err = err,
		.errlen = errlen,
	};
	int rc;

	if (!opts || !out) {
		set_err(err, errlen, "no option table or output");
		return KB_EINVAL;
	}
	/* Zero first so that a failure half-way frees exactly what was set. */
	for (const struct kb_opt *o = opts; o->key; o++)
		memset(opt_field(o, out), 0, opt_field_size(o->type));
	rc = opts_check_node(&c);
	if (rc == KB_OK)
		rc = opts_check_keys(&c, opts);
	for (const struct kb_opt *o = opts; rc == KB_OK && o->key; o++)
		rc = opt_fill(&c, o, out);
	if (rc == KB_ENOMEM)
		set_err(err, errlen, "out of memory");
	if (rc != KB_OK)
		kb_conf_opts_free(opts, out);
	return rc;
}
