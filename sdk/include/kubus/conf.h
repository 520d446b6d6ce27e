/* kubus/conf.h — configuration trees and option tables.
 *
 * The host parses the YAML config file into a tree of kb_conf nodes that
 * remember their file, line and column. Each plugin receives its `config:`
 * subtree and declares its options as a table (as nginx modules do), which
 * kb_conf_opts() checks and fills in, so that every plugin's config errors
 * read the same:
 *
 *   configs/x.yaml:14:5: unknown key `mapsize` in plugins[2].config (store-lmdb)
 *
 *     struct cfg { char *path; int64_t mapsize; bool sync; };
 *     static const struct kb_opt opts[] = {
 *             KB_OPT_STR("path", struct cfg, path, "store", "where the data lives"),
 *             KB_OPT_SIZE("map_size", struct cfg, mapsize, "1Gi", "initial map"),
 *             KB_OPT_BOOL("sync", struct cfg, sync, "true", "fsync each commit"),
 *             KB_OPT_END,
 *     };
 *
 * Nodes are owned by the tree; every pointer returned here is borrowed and
 * valid as long as the tree (for a plugin: until its init returns, unless it
 * copied what it needs — kb_conf_opts() copies strings).
 */
#ifndef KUBUS_CONF_H
#define KUBUS_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kb_conf kb_conf;

enum kb_conf_type {
	KB_CONF_NULL = 0, /* absent or `~` */
	KB_CONF_SCALAR = 1,
	KB_CONF_MAP = 2,
	KB_CONF_SEQ = 3,
};

/* --- reading a tree ------------------------------------------------------ */

/* Parse YAML text (one document) into a tree. On error returns NULL and
 * writes "FILE:LINE:COL: what" to err. `file` names the source in messages. */
kb_conf *kb_conf_parse_yaml(const char *text, size_t len, const char *file,
    char *err, size_t errlen);
kb_conf *kb_conf_load_file(const char *path, char *err, size_t errlen);
/* Free a tree returned by the two functions above. */
void kb_conf_free(kb_conf *root);

int kb_conf_type(const kb_conf *n);                /* KB_CONF_NULL for NULL */
const char *kb_conf_str(const kb_conf *n);         /* scalar text or NULL */
size_t kb_conf_len(const kb_conf *n);              /* entries of a map/seq */
const kb_conf *kb_conf_get(const kb_conf *map, const char *key);
const kb_conf *kb_conf_at(const kb_conf *n, size_t i);   /* i-th value */
const char *kb_conf_key_at(const kb_conf *map, size_t i); /* i-th key */
/* Follow a dotted path of keys and [i] indexes: "plugins[2].config.path". */
const kb_conf *kb_conf_path(const kb_conf *n, const char *path);

/* Where the node came from, and its path from the root for messages
 * ("plugins[2].config.mapsize"). */
const char *kb_conf_file(const kb_conf *n);
int kb_conf_line(const kb_conf *n);
int kb_conf_col(const kb_conf *n);
const char *kb_conf_where(const kb_conf *n);

/* --- changing a tree (the host's --set) ---------------------------------- */

/* Set the scalar at a dotted path under `root`, creating maps on the way.
 * Fails with KB_EINVAL when the path crosses a scalar or a sequence. */
int kb_conf_set(kb_conf *root, const char *path, const char *value,
    char *err, size_t errlen);
/* A new empty map node (for a plugin with no `config:`). */
kb_conf *kb_conf_new_map(const char *file, const char *where);

/* --- scalar conversions (strict: the whole text must be used) ------------ */
int kb_conf_to_bool(const char *s, bool *out);        /* true/false/yes/no/on/off */
int kb_conf_to_int(const char *s, int64_t *out);
int kb_conf_to_double(const char *s, double *out);
int kb_conf_to_size(const char *s, int64_t *out);     /* 512, 1.5Mi, 64MiB, 2G */
int kb_conf_to_duration_ms(const char *s, int64_t *out); /* 250ms, 10s, 5m, 1h */

/* --- option tables ------------------------------------------------------- */

enum kb_opt_type {
	KB_OPT_END_ = 0,
	KB_OPT_STR_,      /* char * (malloc'd copy) */
	KB_OPT_INT_,      /* int64_t */
	KB_OPT_BOOL_,     /* bool */
	KB_OPT_DOUBLE_,   /* double */
	KB_OPT_SIZE_,     /* int64_t bytes */
	KB_OPT_DURATION_, /* int64_t milliseconds */
	KB_OPT_STRLIST_,  /* char ** NULL-terminated (malloc'd) */
	KB_OPT_NODE_,     /* const kb_conf * (borrowed subtree, any type) */
};

struct kb_opt {
	const char *key;
	int type;           /* enum kb_opt_type */
	size_t offset;      /* offsetof the field in the output struct */
	const char *def;    /* default as text; NULL = required unless optional */
	bool optional;      /* no default and may be absent (field left zero) */
	int64_t min, max;   /* bounds for INT/SIZE/DURATION when min < max */
	const char *help;   /* one line, for docs and `kubus plugins -v` */
};

#define KB_OPT_(k, t, st, f, d, o, lo, hi, h)                                \
	{ .key = (k), .type = (t), .offset = offsetof(st, f), .def = (d),    \
	  .optional = (o), .min = (lo), .max = (hi), .help = (h) }
#define KB_OPT_STR(k, st, f, d, h) KB_OPT_(k, KB_OPT_STR_, st, f, d, (d) == NULL, 0, 0, h)
#define KB_OPT_STR_REQ(k, st, f, h) KB_OPT_(k, KB_OPT_STR_, st, f, NULL, false, 0, 0, h)
#define KB_OPT_INT(k, st, f, d, lo, hi, h) KB_OPT_(k, KB_OPT_INT_, st, f, d, false, lo, hi, h)
#define KB_OPT_BOOL(k, st, f, d, h) KB_OPT_(k, KB_OPT_BOOL_, st, f, d, false, 0, 0, h)
#define KB_OPT_DOUBLE(k, st, f, d, h) KB_OPT_(k, KB_OPT_DOUBLE_, st, f, d, false, 0, 0, h)
#define KB_OPT_SIZE(k, st, f, d, h) KB_OPT_(k, KB_OPT_SIZE_, st, f, d, false, 0, 0, h)
#define KB_OPT_DURATION(k, st, f, d, h) KB_OPT_(k, KB_OPT_DURATION_, st, f, d, false, 0, 0, h)
#define KB_OPT_STRLIST(k, st, f, h) KB_OPT_(k, KB_OPT_STRLIST_, st, f, NULL, true, 0, 0, h)
#define KB_OPT_NODE(k, st, f, h) KB_OPT_(k, KB_OPT_NODE_, st, f, NULL, true, 0, 0, h)
#define KB_OPT_END { .key = NULL, .type = KB_OPT_END_ }

/* Check `node` (a map, or NULL/null for "no options given") against the
 * table and fill `out`. Unknown keys, missing required keys, wrong types and
 * out-of-range values are errors: the message, written to err, reads
 * "FILE:LINE:COL: unknown key `x` in WHERE (OWNER)" where OWNER is e.g. the
 * plugin's name. On error nothing needs freeing; on success free with
 * kb_conf_opts_free(). */
int kb_conf_opts(const kb_conf *node, const struct kb_opt *opts, void *out,
    const char *owner, char *err, size_t errlen);
void kb_conf_opts_free(const struct kb_opt *opts, void *out);

#ifdef __cplusplus
}
#endif
#endif
